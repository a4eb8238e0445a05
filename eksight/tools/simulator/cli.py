"""`eksight simulate`: write a simulated EKS cluster's audit log, CloudWatch Logs parts and labels."""

from __future__ import annotations

from pathlib import Path

import click


def _list_attacks(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from eksight.tools.simulator.attacks import CATALOGUE

    for s in CATALOGUE:
        click.echo(f"{s.id}  {s.name:<42} {s.kind:<9} {s.mitre:<10} {s.summary}")
    ctx.exit()


@click.command()
@click.option("--days", type=float, default=14.0, show_default=True, help="Length of the log (fractions allowed).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--out", "out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Output directory (created)."
)
@click.option(
    "--attacks",
    default="all",
    show_default=True,
    help="Comma-separated scenario names, `all` or `none` (see --list-attacks).",
)
@click.option(
    "--scale",
    type=float,
    default=1.0,
    show_default=True,
    help="Cluster size multiplier (nodes, teams and apps, people).",
)
@click.option("--cluster", default="prod-eks", show_default=True)
@click.option("--account", default=None, help="12-digit AWS account id (default: derived from the seed).")
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--start", default="2025-03-03", show_default=True, help="First day (ISO date, UTC).")
@click.option(
    "--learning-days",
    type=float,
    default=7.0,
    show_default=True,
    help="labels.learning_end = start + this; attacks and benign novelty come after it.",
)
@click.option(
    "--rate",
    type=click.Choice(["auto", "sampled", "full"]),
    default="auto",
    show_default=True,
    help="Periodic heartbeats (leases, status, watches) at real rates (full) or thinned out (sampled); "
    "auto = full for runs of at most 0.1 day (benchmarks), sampled otherwise.",
)
@click.option("--no-cwl", is_flag=True, help="Skip the CloudWatch Logs parts.")
@click.option(
    "--drift",
    is_flag=True,
    help="Add benign drift labelled as hard negatives: a new VPN egress address for everyone, a night-time "
    "incident response, a new client tool, the cluster creator's Helm install with webhooks, an admin's "
    "--as discovery sweep, a team reorganisation (a developer gains a second team's namespace) and a developer's "
    "first on-call week (paged at night).",
)
@click.option(
    "--list-attacks",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_list_attacks,
    help="Print the scenario catalogue and exit.",
)
def simulate(
    days: float,
    seed: int,
    out: Path,
    attacks: str,
    scale: float,
    cluster: str,
    account: str | None,
    region: str,
    start: str,
    learning_days: float,
    rate: str,
    no_cwl: bool,
    drift: bool,
) -> None:
    """Simulate an EKS cluster's control-plane audit log with labelled attacks and benign novelty."""
    from eksight.tools.simulator import Config, generate

    if account is not None and not (account.isdigit() and len(account) == 12):
        raise click.BadParameter("must be 12 digits", param_hint="--account")
    try:
        summary = generate(
            Config(
                out=out,
                days=days,
                seed=seed,
                scale=scale,
                cluster=cluster,
                account=account,
                region=region,
                start=start,
                learning_days=learning_days,
                attacks=attacks,
                cwl=not no_cwl,
                rate=rate,
                drift=drift,
            )
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    click.echo(
        f"eksight simulate: {summary.events:,} events ({summary.bytes_json / 1e6:.1f} MB JSON, "
        f"{summary.bytes_gz / 1e6:.1f} MB gzip, {summary.cwl_parts} CloudWatch parts), "
        f"{summary.scenarios} scenarios, {summary.hard_negatives} hard-negative sets, "
        f"{summary.seconds:.1f} s ({summary.rate:,.0f} events/s) -> {out}",
        err=True,
    )
