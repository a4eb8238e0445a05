"""`eksight hunt` (library queries on local files or on Athena) and `eksight timeline` (one principal's story)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from eksight.queries import Query, QueryError, all_queries, get, parse_time
from eksight.tools.hunt.output import FORMATS, write

if TYPE_CHECKING:
    from eksight.adapters.athena import Target

DEFAULT_PREFIX = "eksight"  # the config's default name_prefix


@click.command()
@click.argument("name", required=False)
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--list", "list_queries", is_flag=True, help="List the queries (name<TAB>description) and exit.")
@click.option("--local", "local", is_flag=True, help="Query local files (PATHS: archive objects, JSON lines, dirs).")
@click.option("--athena", is_flag=True, help="Query the deployed archive with Athena (detection stack's workgroup).")
@click.option("--principal", help="Resolved name (SSO user, system:serviceaccount:NS:NAME, ...), username or IAM ARN.")
@click.option("--resource", help="KIND/NAMESPACE/NAME or KIND/NAME, e.g. secrets/payments/db-password.")
@click.option("--cluster", help="Only this cluster (local mode: also the cluster of plain JSON-lines input).")
@click.option("--since", help="Start of the window, ISO 8601 (UTC unless it has an offset).")
@click.option("--until", help="End of the window (exclusive), ISO 8601.")
@click.option("--finding", help="Finding id (finding-context).")
@click.option("--window", "window_minutes", type=int, help="Minutes around the finding (finding-context).")
@click.option("--min-count", type=int, help="Smallest burst to show (access-denied).")
@click.option("--lookback-days", type=int, help="Days before --since that make a principal known (new-principals).")
@click.option("--findings", "findings_file", type=click.Path(path_type=Path), help="Local findings file (replay -o).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Deployment config (stack prefix).")
@click.option("--region", help="Region of the detection stack (Athena). Default: the config's or your profile's.")
def hunt(
    name: str | None,
    paths: tuple[Path, ...],
    list_queries: bool,
    local: bool,
    athena: bool,
    findings_file: Path | None,
    fmt: str,
    config_path: Path | None,
    region: str | None,
    **values: object,
) -> None:
    """Run a hunting query NAME over local files (--local PATHS...) or the deployed archive (--athena).

    `eksight hunt --list` shows the queries; docs/hunting.md describes them and the columns."""
    if list_queries:
        for query in all_queries().values():
            click.echo(f"{query.name}\t{query.description}")
        return
    if not name:
        raise click.UsageError("give a query NAME (eksight hunt --list shows them)")
    if local == athena:
        raise click.UsageError("choose one of --local PATHS... or --athena")
    if paths and not local:
        raise click.UsageError(f"unexpected arguments {' '.join(map(str, paths))} (files go with --local)")
    try:
        query = get(name)
        query.bind(values)  # fail on unknown or invalid parameters before reading anything
    except QueryError as error:
        raise click.UsageError(str(error)) from None
    if local:
        columns, rows = _run_local(query, values, paths, findings_file)
    else:
        columns, rows = _run_athena(query, values, config_path, region)
    write(rows, columns, fmt, sys.stdout)


Rows = tuple[list[str], Sequence[Sequence[Any]]]


def _run_local(query: Query, values: Mapping[str, object], paths: Sequence[Path], findings_file: Path | None) -> Rows:
    from eksight.tools.hunt import local

    if not paths:
        raise click.UsageError("--local needs at least one PATH")
    try:
        cluster = str(values.get("cluster") or "")
        con = local.connect(paths, findings_file, cluster=cluster, progress=sys.stderr.isatty())
        result = local.run(con, query, values)
    except local.InputError as error:
        raise click.ClickException(str(error)) from None
    return result.columns, result.rows


def _run_athena(query: Query, values: Mapping[str, object], config_path: Path | None, region: str | None) -> Rows:
    import boto3

    from eksight.adapters import athena

    region, target = deployed_athena(config_path, region)
    try:
        run = athena.run_query(
            boto3.client("athena", region_name=region),
            target,
            query.athena_sql(target.database),
            query.athena_parameters(values),
            progress=_progress,
        )
    except athena.AthenaError as error:
        click.echo("", err=True)
        raise click.ClickException(str(error)) from None
    click.echo("", err=True)
    click.echo(
        f"athena: {len(run.rows)} rows in {run.seconds:.1f}s, {run.bytes_scanned / 1e6:,.1f} MB scanned, "
        f"about ${run.dollars:.4f} at $5/TB",
        err=True,
    )
    return run.columns, run.rows


def deployed_athena(config_path: Path | None, region: str | None) -> tuple[str, Target]:
    """The region and the Athena workgroup/database of the deployed detection stack (its outputs), for the
    config's name prefix (eksight's default without one); errors are usage errors naming what to fix."""
    import boto3

    from eksight.adapters import athena

    prefix, region = _deployment(config_path, region)
    region = region or boto3.session.Session().region_name
    if not region:
        raise click.UsageError("no region: pass --region or set AWS_REGION")
    stack = f"{prefix}-detection-{region}"  # RegionDeployment.detection_stack_name
    try:
        return region, athena.read_target(boto3.client("cloudformation", region_name=region), stack)
    except athena.AthenaError as error:
        raise click.ClickException(str(error)) from None


def _deployment(config_path: Path | None, region: str | None) -> tuple[str, str | None]:
    if config_path is None:
        return DEFAULT_PREFIX, region
    from eksight.config import ConfigError, load

    try:
        config = load(config_path)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    regions = [r.region for r in config.regions]
    if region is None and len(regions) == 1:
        region = regions[0]
    return config.file.name_prefix, region


def _progress(state: str, seconds: float, scanned: int) -> None:
    click.echo(f"\rathena: {state.lower()} {seconds:5.1f}s, {scanned / 1e6:,.1f} MB scanned   ", err=True, nl=False)


@click.command()
@click.argument("principal")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--local", "local", is_flag=True, required=True, help="Read local files (PATHS...).")
@click.option("--findings", "findings_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--around", help="Only show this ISO 8601 time ± --hours.")
@click.option("--hours", type=float, default=2.0, show_default=True, help="Half-width of the --around window.")
@click.option("--cluster", help="Only this cluster.")
@click.option("--burst-minutes", type=float, default=5.0, show_default=True, help="Gap that ends a burst.")
def timeline(
    principal: str,
    paths: tuple[Path, ...],
    local: bool,
    findings_file: Path | None,
    around: str | None,
    hours: float,
    cluster: str | None,
    burst_minutes: float,
) -> None:
    """The activity of PRINCIPAL as a story: bursts of requests, first-seen marks, findings inline."""
    from eksight.tools.hunt import timeline as story

    try:
        moment = parse_time(around, "around") if around else None
    except QueryError as error:
        raise click.UsageError(str(error)) from None
    columns, rows = _run_local(get("principal-activity"), {"principal": principal, "cluster": cluster}, paths, None)
    requests = [dict(zip(columns, row, strict=True)) for row in rows]
    folded = story.bursts(requests, burst_minutes)
    marks = story.findings_about(findings_file, principal, {r["audit_id"] for r in requests}) if findings_file else []
    click.echo(story.render(principal, folded, marks, around=moment, hours=hours))
