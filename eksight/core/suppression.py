"""Which findings a deployment's suppressions cover (`detection.suppressions`, written by `eksight suppress`).

A covered finding is still stored (the findings archive, the ledger) and counted, and carries `suppressed_by`;
it is only kept off the findings bus, so Security Hub and the alert topic never see it. An entry covers a finding
of its rule whose principal key or name matches its `principal` glob and whose every named object lies in a
namespace matching its `namespace` glob (a finding that also touched other namespaces is not covered), until the
entry's expiry date: the finding's latest event decides, so activity after expiry is forwarded again."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eksight.core.detection_runtime import SuppressionMethods as Suppression
    from eksight.core.findings import Finding


def covering(finding: Finding, entries: Iterable[Suppression]) -> Suppression | None:
    """The first entry that covers `finding`, or None."""
    for entry in entries:
        if entry.rule == finding.rule_id and not entry.expired(finding.last_seen) and _in_scope(entry, finding):
            return entry
    return None


def mark_suppressed(findings: Sequence[Finding], entries: Sequence[Suppression]) -> int:
    """Sets `suppressed_by` on the findings an entry covers; returns how many it set."""
    if not entries:
        return 0
    marked = 0
    for finding in findings:
        entry = covering(finding, entries)
        if entry is not None:
            finding.suppressed_by = f"{entry.label}: {entry.reason}"
            marked += 1
    return marked


def _in_scope(entry: Suppression, finding: Finding) -> bool:
    if entry.principal:
        names = (finding.principal.get("key", ""), finding.principal.get("name", ""))
        if not any(name and fnmatchcase(name, entry.principal) for name in names):
            return False
    if entry.namespace:
        namespaces = {resource.namespace for resource in finding.resources}
        if not namespaces or not all(name and fnmatchcase(name, entry.namespace) for name in namespaces):
            return False
    return True
