"""`eksight suppress`: add, renew or remove an entry of the deployment config's `detection.suppressions`.

The entry is written into the config file the other commands read, after the whole file was validated with it
(known rule id, a reason, a scope, no duplicate), so a written file always deploys. The detector then stores and
counts the findings it covers but does not forward them (eksight.core.suppression); `eksight plan` lists the
entries and `eksight check` reports expired ones."""

from __future__ import annotations

import gzip
import json
import shlex
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from eksight.core.detection_options import Suppression
    from eksight.core.findings import Finding

DEFAULT_CONFIG = "eksight.config.json"


def finding_scope(finding: Finding) -> dict[str, str]:
    """What a suppression made from `finding` covers: its rule, its principal (key, else name) and the namespace
    every object it names is in (none when they differ or are cluster-scoped)."""
    namespaces = {resource.namespace for resource in finding.resources}
    namespace = next(iter(namespaces)) if len(namespaces) == 1 else ""
    principal = finding.principal.get("key") or finding.principal.get("name", "")
    return {"rule": finding.rule_id, "principal": principal, "namespace": namespace}


def find_finding(finding_id: str, paths: Iterable[Path]) -> Finding | None:
    """The finding `finding_id` in findings files (JSON lines, gzip or not: `eksight replay -o`, or objects copied
    from the archive's findings/); its last line wins, as the archive keeps a growing finding's latest totals."""
    from eksight.core.finding_formats import finding_from_detail

    found = None
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8") if _gzipped(path) else path.open(encoding="utf-8") as lines:
            for line in lines:
                if finding_id not in line:  # cheap pre-filter: most lines are other findings
                    continue
                detail = json.loads(line)
                if isinstance(detail, dict) and detail.get("id") == finding_id:
                    found = finding_from_detail(detail)
    return found


def _gzipped(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def edited(raw: dict[str, Any], entry: dict[str, Any], *, replace: bool, remove: bool) -> dict[str, Any]:
    """`raw` (the config file's JSON) with `entry` added, replacing or removing the entry of the same rule,
    principal and namespace. Raises click.UsageError when that entry is missing (replace, remove) or already
    there (add)."""
    detection = dict(raw.get("detection") or {})
    entries = list(detection.get("suppressions") or [])
    scope = _scope(entry)
    same = [i for i, existing in enumerate(entries) if isinstance(existing, dict) and _scope(existing) == scope]
    label = " ".join(f"{k}={v}" for k, v in zip(("rule", "principal", "namespace"), scope, strict=True) if v)
    if (replace or remove) and not same:
        raise click.UsageError(f"no suppression for {label} in the config")
    if not (replace or remove) and same:
        raise click.UsageError(
            f"a suppression for {label} exists already. Fix: add --replace to renew it, or --remove to delete it"
        )
    if remove:
        del entries[same[0]]
    elif replace:
        entries[same[0]] = entry
    else:
        entries.append(entry)
    detection["suppressions"] = entries
    return {**raw, "detection": detection}


def _scope(entry: dict[str, Any]) -> tuple[str, str, str]:
    return (str(entry.get("rule", "")), str(entry.get("principal", "")), str(entry.get("namespace", "")))


@click.command()
@click.argument("finding_id", required=False)
@click.option("--rule", help="Rule id, e.g. EKS-102 (docs/detections.md); UEBA-1 for anomaly findings.")
@click.option("--principal", help="Principal key or name (glob), as in a finding's principal.key or .name.")
@click.option("--namespace", help="Namespace (glob) that every object of a covered finding is in.")
@click.option("all_principals", "--all", is_flag=True, help="Suppress the rule for everyone (no principal/namespace).")
@click.option("--reason", help="Why these findings are expected (required unless --remove).")
@click.option(
    "--expires",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="First day (UTC, YYYY-MM-DD) the entry no longer applies; must be after --today. Default: never.",
)
@click.option(
    "--findings",
    "findings_paths",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Findings file (JSON lines, gzip or not) to look FINDING_ID up in; repeatable.",
)
@click.option("--replace", is_flag=True, help="Renew: replace the entry with the same rule, principal and namespace.")
@click.option("--remove", is_flag=True, help="Delete the entry with this rule, principal and namespace.")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The date --expires must be after (default: today, UTC).",
)
@click.option(
    "--config",
    "config_path",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The deployment config to edit.",
)
def suppress(
    finding_id: str | None,
    rule: str | None,
    principal: str | None,
    namespace: str | None,
    all_principals: bool,
    reason: str | None,
    expires: datetime | None,
    findings_paths: tuple[Path, ...],
    replace: bool,
    remove: bool,
    today: datetime | None,
    config_path: Path,
) -> None:
    """Keep a finding (FINDING_ID, looked up in --findings files) or a rule for a principal and/or namespace off
    Security Hub and the alerts; the findings are still stored and counted, with `suppressed_by`.

    \b
    eksight suppress 17d115ef97d3c97250d14c79af7a4999 --findings findings.jsonl \\
        --reason "Terraform pipeline, reviewed in SEC-123" --expires 2027-03-31
    eksight suppress --rule EKS-102 --principal 'sa:ci/deployer' --namespace prod --reason "CI deploys"
    eksight suppress --rule EKS-102 --principal 'sa:ci/deployer' --namespace prod --remove"""
    from eksight.config import ConfigError, parse

    if finding_id:
        if rule or principal or namespace or all_principals:
            raise click.UsageError("give either FINDING_ID or --rule/--principal/--namespace/--all, not both")
        if not findings_paths:
            raise click.UsageError("FINDING_ID needs --findings FILE (a findings file it is in)")
        finding = find_finding(finding_id, findings_paths)
        if finding is None:
            raise click.UsageError(f"finding {finding_id} is in none of {', '.join(map(str, findings_paths))}")
        scope = finding_scope(finding)
    elif not rule:
        raise click.UsageError("give FINDING_ID (with --findings) or --rule")
    else:
        scope = {"rule": rule, "principal": principal or "", "namespace": namespace or ""}
    if not (scope["principal"].strip("*") or scope["namespace"].strip("*") or all_principals or remove):
        raise click.UsageError(
            f"suppressing {scope['rule']} for everyone: give --principal or --namespace, or --all to mean it"
        )
    if replace and remove:
        raise click.UsageError("--replace and --remove exclude each other")
    entry: dict[str, Any] = {key: value for key, value in scope.items() if value}
    if all_principals:
        entry["all_principals"] = True
    if not remove:
        if reason is None or not reason.strip():
            raise click.UsageError("--reason is required: say why these findings are expected")
        entry["reason"] = reason.strip()
        if expires is not None:
            day = (today or datetime.now(UTC)).date()
            if expires.date() <= day:
                raise click.UsageError(f"--expires {expires.date()} is not after today ({day}): give a future date")
            entry["expires"] = expires.date().isoformat()
        if finding_id:
            entry["finding"] = finding_id
    if not config_path.is_file():
        raise click.UsageError(f"{config_path} not found: pass --config PATH (the deployment config)")
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise click.ClickException(f"{config_path}: invalid JSON ({error})") from None
    if not isinstance(raw, dict):
        raise click.ClickException(f"{config_path}: not a JSON object")
    new = edited(raw, entry, replace=replace, remove=remove)
    try:
        parse(new, source=str(config_path))  # the file as it would be written must deploy
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    from eksight.tools.setup.generate import write_config

    write_config(config_path, new)
    click.echo(describe(entry, remove=remove, replace=replace, path=config_path))


def describe(entry: dict[str, Any], *, remove: bool, replace: bool, path: Path) -> str:
    scope = " ".join(f"{k}={entry[k]}" for k in ("principal", "namespace") if entry.get(k)) or "all principals"
    if remove:
        return f"Removed the suppression of {entry['rule']} for {scope} from {path}."
    until = f"until {entry['expires']} (exclusive)" if entry.get("expires") else "with no expiry"
    verb = "Renewed" if replace else "Suppressed"
    return (
        f"{verb} {entry['rule']} for {scope} {until} in {path}: {entry['reason']}\n"
        "Deploy to apply it (npx cdk deploy --all -c config=...); findings stay in the archive with suppressed_by."
    )


def renew_and_remove_commands(entry: Suppression, config_path: str) -> tuple[str, str]:
    """The `eksight suppress` command lines that renew `entry` (a new expiry to fill in) and that remove it."""
    scope = [f"--rule {entry.rule}"]
    scope += [f"--principal {shlex.quote(entry.principal)}"] if entry.principal else []
    scope += [f"--namespace {shlex.quote(entry.namespace)}"] if entry.namespace else []
    scope += ["--all"] if entry.all_principals else []
    scope += [f"--config {shlex.quote(config_path)}"]
    command = "eksight suppress " + " ".join(scope)
    return (f"{command} --reason {shlex.quote(entry.reason)} --expires YYYY-MM-DD --replace", f"{command} --remove")
