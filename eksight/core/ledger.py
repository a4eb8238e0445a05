"""What was already published for each finding id, so a finding that grows across archive objects is
re-published whole (count, evidence, first/last seen, severity) instead of being overwritten by the part
the latest object saw.

Finding ids are stable across objects (the dedup window is the clock hour of event time), and each object
is detected on its own; the ledger (same store and table as the behavioural profiles: one item per finding,
key ("<cluster>|finding", id), TTL a week) folds each object's part into the total with the same optimistic
concurrency as the profiles, and remembers which objects it folded in, so a retried object counts once.
Consumers (Security Hub, EventBridge rules) then see one finding whose `UpdatedAt`/`last_seen` moves on.
"""

from __future__ import annotations

import time as wall_clock
from collections.abc import Callable, Sequence
from dataclasses import replace

import msgspec

from eksight.core.findings import MAX_EVIDENCE, SEVERITY_CONTEXT, Finding, Severity, add_unique
from eksight.core.state import Key, StateStore, apply_updates

TTL_SECONDS = 7 * 86400
MAX_APPLIED = 16


class _Entry(msgspec.Struct, omit_defaults=True):
    count: int = 0
    first_seen: float = 0.0
    last_seen: float = 0.0
    severity: int = 0
    title: str = ""
    description: str = ""
    severity_context: dict[str, str] = {}  # of the part that set the severity (eksight.core.behaviour.context)
    evidence: list[str] = []
    source_ips: list[str] = []
    user_agents: list[str] = []
    applied: list[str] = []


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_Entry)


def ledger_key(finding: Finding) -> Key:
    return (f"{finding.cluster}|finding", finding.id)


def fold(
    store: StateStore, findings: Sequence[Finding], batch_id: str, now: Callable[[], float] = wall_clock.time
) -> list[Finding]:
    """The findings as totals over every object folded in so far (this one included, once)."""
    if not findings:
        return []
    merges = {ledger_key(f): _merge(f, batch_id) for f in findings}
    written = apply_updates(store, merges, expires_at=int(now() + TTL_SECONDS))
    stored = store.get_many([k for k in merges if k not in written]) if len(written) < len(merges) else {}
    totals = []
    for finding in findings:
        key = ledger_key(finding)
        item = written.get(key) or stored.get(key)
        blob = item.blob if item else None
        totals.append(_total(finding, _DECODER.decode(blob)) if blob else finding)
    return totals


def _merge(part: Finding, batch_id: str) -> Callable[[bytes | None], bytes | None]:
    def merge(current: bytes | None) -> bytes | None:
        entry = _DECODER.decode(current) if current else _Entry(first_seen=part.first_seen)
        if batch_id in entry.applied:
            return None  # this object was folded in by an earlier delivery
        entry.first_seen = min(entry.first_seen, part.first_seen) if current else part.first_seen
        entry.count += part.count
        entry.last_seen = max(entry.last_seen, part.last_seen)
        if int(part.severity) >= entry.severity:
            entry.severity, entry.title, entry.description = int(part.severity), part.title, part.description
            entry.severity_context = part.details.get(SEVERITY_CONTEXT) or {}
        entry.evidence = _union(entry.evidence, part.evidence, MAX_EVIDENCE)
        entry.source_ips = _union(entry.source_ips, part.source_ips, 20)
        entry.user_agents = _union(entry.user_agents, part.user_agents, 10)
        entry.applied = [*entry.applied, batch_id][-MAX_APPLIED:]
        return _ENCODER.encode(entry)

    return merge


def _total(part: Finding, entry: _Entry) -> Finding:
    severity = Severity(max(entry.severity, int(part.severity)))
    details = part.details
    if entry.severity > part.severity:  # an earlier part set the severity: its text and reason stand
        title, description = entry.title, entry.description
        details = {k: v for k, v in part.details.items() if k != SEVERITY_CONTEXT}
        if entry.severity_context:
            details[SEVERITY_CONTEXT] = entry.severity_context
    else:
        title, description = part.title, part.description
    return replace(
        part,
        count=max(entry.count, part.count),
        first_seen=min(entry.first_seen, part.first_seen),
        last_seen=max(entry.last_seen, part.last_seen),
        severity=severity,
        title=title,
        description=description,
        details=details,
        evidence=_union(entry.evidence, part.evidence, MAX_EVIDENCE),
        source_ips=_union(entry.source_ips, part.source_ips, 20),
        user_agents=_union(entry.user_agents, part.user_agents, 10),
    )


def _union(first: list[str], second: list[str], limit: int) -> list[str]:
    out = list(first)
    for value in second:
        add_unique(out, value, limit)
    return out
