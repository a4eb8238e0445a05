"""The `eksight` command line. `eksight replay` runs the Lambda's detection over exported logs."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from eksight.core.findings import UNKNOWN_CLUSTER, Finding, Severity, to_json_line

if TYPE_CHECKING:
    from collections.abc import Callable

    from eksight.core.decode import DecodeStats, Quarantined
    from eksight.core.detector import Detector

PROGRESS_MIN_BYTES = 2 * 1024 * 1024  # a progress bar (on a terminal) from about 2 s of work (gzip input)
EXIT_NO_EVENTS = 3  # replay read its inputs but found no audit event in them


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="eksight", message="eksight %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Threat and anomaly detection for Amazon EKS audit logs.

    Set NO_COLOR (any value) for output without colours."""
    if os.environ.get("NO_COLOR"):  # https://no-color.org; subcommands inherit the context's colour setting
        ctx.color = False


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--cluster", help="Cluster name for raw files (CloudWatch envelopes carry their own).")
@click.option("--account", help="AWS account id for raw files.")
@click.option("--region", help="AWS region for raw files.")
@click.option(
    "--learning-days",
    type=click.IntRange(min=0, max=90),
    default=None,
    help="Days of event time per cluster during which behavioural baselines learn and anomaly findings "
    "stay INFORMATIONAL. Default: the config's detection.learning_days, else 7.",
)
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Also learn per-principal behaviour and report anomalies (in memory; the Lambda uses DynamoDB).",
)
@click.option(
    "--min-severity",
    default="INFORMATIONAL",
    show_default=True,
    type=click.Choice([s.name for s in Severity], case_sensitive=False),
    help="Only write findings at or above this severity.",
)
@click.option("--output", "-o", default="-", show_default=True, help="Findings file (JSON lines); - for stdout.")
@click.option(
    "--quarantine",
    type=click.Path(path_type=Path),
    help="Also write every record that could not be decoded (JSON lines with reason and offset).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A deployment config whose `detection` section applies (as it does in the Lambda): allow-lists, network "
    "lists, and suppressions (suppressed findings are still written, with suppressed_by).",
)
def replay(
    paths: tuple[Path, ...],
    cluster: str | None,
    account: str | None,
    region: str | None,
    learning_days: int | None,
    baselines: bool,
    min_severity: str,
    output: str,
    quarantine: Path | None,
    config_path: Path | None,
) -> None:
    """Run detection over exported audit logs: files or directories, JSON lines, JSON arrays/EventLists,
    CloudWatch exports or subscription payloads, gzip or not. Findings go to OUTPUT as JSON lines; a
    summary and the decode counts go to stderr.

    \b
    Exit codes: 0 done; 1 an input could not be read; 2 usage error (a missing input, an output path
    that is a directory or in a missing directory); 3 no audit event found in the inputs."""
    from eksight.config import ConfigError, load
    from eksight.core.archive_object import build_detector
    from eksight.core.decode import DecodeStats, SourceContext, decode_path
    from eksight.core.detector import BASELINE_BATCH
    from eksight.core.state import MemoryStateStore

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise click.UsageError(f"no such file or directory: {', '.join(missing)}")
    if output != "-":
        _check_writable(Path(output), "--output")
    if quarantine:
        _check_writable(quarantine, "--quarantine")
    defaults = SourceContext(cluster=cluster, account=account, region=region)
    try:
        detection = load(config_path).file.detection if config_path else None
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    # One baseline batch per BASELINE_BATCH events (a replay is not one archive object), profiles in memory.
    store = MemoryStateStore() if baselines else None
    detector = build_detector(detection, store, learning_days=learning_days, baseline_batch=BASELINE_BATCH)
    decoded = DecodeStats()
    with _progress(sum(_size(p) for p in paths)) as advance:
        for path in paths:
            for record in decode_path(path, defaults=defaults, stats=decoded):
                detector.process(record)
                advance(1)
    threshold = Severity[min_severity.upper()]
    findings = [f for f in detector.findings() if f.severity >= threshold]
    if detection is not None:
        from eksight.core.suppression import mark_suppressed

        mark_suppressed(findings, detection.suppressions)
    with click.open_file(output, "wb") as sink:
        for finding in findings:
            sink.write(to_json_line(finding))
    if quarantine:
        _write_quarantine(quarantine, detector.quarantined)
    click.echo(_summary(detector, decoded, findings), err=True)
    unreadable = [q for q in detector.quarantined if q.reason == "unreadable"]
    if unreadable:
        raise click.ClickException("could not read: " + "; ".join(f"{q.source} ({q.detail})" for q in unreadable))
    if detector.stats.events == 0:
        click.secho(f"eksight replay: no audit events found: {_what_was_seen(decoded)}", fg="red", err=True)
        sys.exit(EXIT_NO_EVENTS)
    unnamed = sum(1 for f in findings if f.cluster == UNKNOWN_CLUSTER)
    if unnamed:
        click.secho(
            f"warning: {unnamed} finding(s) name no cluster (cluster: {UNKNOWN_CLUSTER!r}): raw audit events do not "
            "carry it; pass --cluster NAME (and --account, --region) for such files, or keep them under a path that "
            "names it (…/cluster=NAME/… or …/aws/eks/NAME/cluster/…).",
            fg="yellow",
            err=True,
        )


def _check_writable(path: Path, option: str) -> None:
    """Refuse before any work an output that could not be written at the end."""
    if path.is_dir():
        raise click.UsageError(f"{option} {path} is a directory: name a file in it, e.g. {path / 'findings.jsonl'}")
    if not path.parent.is_dir():
        raise click.UsageError(f"{option} {path}: directory {path.parent} does not exist")


def _what_was_seen(decoded: DecodeStats) -> str:
    seen = [f"{decoded.bytes_in:,} bytes read"]
    if decoded.quarantined:
        seen.append("not audit events: " + ", ".join(f"{r}={n}" for r, n in sorted(decoded.quarantined.items())))
    if decoded.skipped:
        seen.append("skipped: " + ", ".join(f"{r}={n}" for r, n in sorted(decoded.skipped.items())))
    if decoded.bytes_in == 0:
        seen.append("the inputs are empty")
    return "; ".join(seen)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class _progress:
    """A tqdm bar on stderr for big inputs, a no-op otherwise (and in pipes/CI)."""

    def __init__(self, total: int) -> None:
        self.bar = None
        if total >= PROGRESS_MIN_BYTES and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(unit=" records", unit_scale=True, desc="replay", file=sys.stderr, mininterval=0.5)

    def __enter__(self) -> Callable[[int], object]:
        return self.bar.update if self.bar is not None else (lambda _n: None)  # bool(tqdm) raises without a total

    def __exit__(self, *_exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_quarantine(path: Path, records: list[Quarantined]) -> None:
    import msgspec

    encoder = msgspec.json.Encoder()
    with path.open("wb") as sink:
        for record in records:
            sink.write(
                encoder.encode(
                    {
                        "source": record.source,
                        "offset": record.offset,
                        "reason": record.reason,
                        "detail": record.detail,
                        "sample": record.sample.decode("utf-8", "backslashreplace"),
                    }
                )
                + b"\n"
            )


def _summary(detector: Detector, decoded: DecodeStats, findings: list[Finding]) -> str:
    stats = detector.stats
    by_severity = Counter(f.severity.name for f in findings)
    lines = [
        f"eksight replay: {decoded.bytes_decoded / 1e6:.1f} MB decoded, {stats.events} events "
        f"({stats.duplicates} duplicate stages), {sum(stats.quarantined.values())} quarantined, "
        f"{len(findings)} findings"
    ]
    if detector.baselines is not None:
        behaviour = detector.baselines.stats
        anomalies = sum(1 for f in findings if f.detector == "anomaly")
        lines.append(
            f"  baselines: {behaviour.events} events of baselined principals, {behaviour.candidates} "
            f"security-relevant scored, {anomalies} anomaly findings"
        )
    if stats.quarantined:
        lines.append("  quarantined: " + ", ".join(f"{r}={n}" for r, n in sorted(stats.quarantined.items())))
    skipped = decoded.skipped + stats.skipped
    if skipped:
        lines.append("  skipped: " + ", ".join(f"{r}={n}" for r, n in sorted(skipped.items())))
    suppressed = sum(1 for f in findings if f.suppressed_by)
    if suppressed:
        lines.append(f"  suppressed: {suppressed} (written with suppressed_by; the Lambda would not forward them)")
    if findings:
        lines.append(
            "  findings: "
            + ", ".join(f"{s.name}={by_severity[s.name]}" for s in reversed(Severity) if by_severity[s.name])
        )
        top = sorted(findings, key=lambda f: (-f.severity, f.first_seen))[:10]
        lines.extend(
            f"  [{f.severity.name}] {f.title} — {f.principal.get('name', '?')} ({f.cluster}, {f.count}×)" for f in top
        )
    return "\n".join(lines)


from eksight.tools.simulator.cli import simulate  # noqa: E402

main.add_command(simulate)

from eksight.tools.setup.wizard import ui  # noqa: E402

main.add_command(ui)

from eksight.tools.setup.cli import check, generate  # noqa: E402

main.add_command(generate)
main.add_command(check)

from eksight.tools.hunt.cli import hunt, timeline  # noqa: E402
from eksight.tools.suppress import suppress  # noqa: E402

main.add_command(hunt)
main.add_command(timeline)
main.add_command(suppress)

if __name__ == "__main__":
    main()
