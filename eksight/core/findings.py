"""The finding contract, and deduplication on event time.

A finding is keyed by (detector, rule, cluster, principal, target). Repeats within the same dedup window
(default: the clock hour of *event* time, aligned to the epoch, so replays are deterministic) update the
same finding: count, last_seen, evidence (capped, never empty). The id is a hash of the key and the
window's start, so the same activity gets the same id however it is split across archive objects
(Security Hub and EventBridge consumers then update one finding instead of creating two).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import msgspec


class Severity(IntEnum):
    INFORMATIONAL = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}; use one of {', '.join(s.name for s in cls)}") from None


MAX_EVIDENCE = 50
UNKNOWN_CLUSTER = "unknown"  # the cluster of records whose source names none (raw files replayed without --cluster)
MAX_RESOURCES = 20  # objects listed on a finding that folds many objects (a sweep, an anomaly's requests)
MAX_UNLISTED = 10_000  # distinct objects beyond MAX_RESOURCES counted per finding (details.resources_not_listed)
DEFAULT_WINDOW_SECONDS = 3600.0
SEVERITY_CONTEXT = "severity_context"  # details key: a rule's severity adjusted to its principal's baseline


@dataclass(frozen=True, slots=True)
class ResourceRef:
    namespace: str
    kind: str
    name: str

    def as_dict(self) -> dict[str, str]:
        return {"namespace": self.namespace, "kind": self.kind, "name": self.name}


@dataclass(slots=True)
class Finding:
    id: str
    type: str
    severity: Severity
    title: str
    description: str
    detector: str  # "rule" | "anomaly"
    rule_id: str
    cluster: str
    account: str
    region: str
    principal: dict[str, str]
    first_seen: float
    last_seen: float
    count: int = 1
    evidence: list[str] = field(default_factory=list)
    mitre: list[str] = field(default_factory=list)
    resources: list[ResourceRef] = field(default_factory=list)
    source_ips: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    remediation: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    suppressed_by: str = ""
    """The deployment's suppression covering this finding (stored, not forwarded); "" when none does."""

    def to_dict(self) -> dict[str, Any]:
        suppressed = {"suppressed_by": self.suppressed_by} if self.suppressed_by else {}
        return {
            "id": self.id,
            "type": self.type,
            "severity": self.severity.name,
            "title": self.title,
            "description": self.description,
            "detector": self.detector,
            "rule_id": self.rule_id,
            "cluster": self.cluster,
            "account": self.account,
            "region": self.region,
            "principal": self.principal,
            "evidence": self.evidence,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "count": self.count,
            "mitre": self.mitre,
            "resources": [r.as_dict() for r in self.resources],
            "source_ips": self.source_ips,
            "user_agents": self.user_agents,
            "remediation": self.remediation,
            "details": self.details,
            **suppressed,  # only when set: unsuppressed findings read as they always have
        }


_ENCODER = msgspec.json.Encoder()


def to_json_line(finding: Finding) -> bytes:
    return _ENCODER.encode(finding.to_dict()) + b"\n"


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def when_and_where(epoch: float, cluster: str, note: str = "") -> str:
    """'At 2025-03-05 14:03:12 UTC (note) in cluster prod': how finding text says when and where an event happened."""
    moment = datetime.fromtimestamp(epoch, UTC)
    where = f" in cluster {cluster}" if cluster and cluster != UNKNOWN_CLUSTER else ""
    return f"At {moment:%Y-%m-%d %H:%M:%S} UTC" + (f" ({note})" if note else "") + where


@dataclass(frozen=True, slots=True)
class Observation:
    """One event's contribution to a finding (what a rule or detector produces)."""

    detector: str
    rule_id: str
    type: str
    severity: Severity
    title: str
    description: str
    cluster: str
    account: str
    region: str
    principal_key: str
    principal: dict[str, str]
    target: ResourceRef | None
    time: float
    audit_id: str
    source_ip: str
    user_agent: str
    mitre: tuple[str, ...] = ()
    remediation: str = ""
    details: dict[str, Any] | None = None
    # The object this event touched, when `target` is a coarser key that folds many objects into one finding
    # (a sweep: one principal, one rule, one window); findings list these instead of the key.
    touched: ResourceRef | None = None
    # Why the rule may be lowered when routine for this principal (the rule's `routine`); empty: it cannot be.
    routine: str = ""
    # The dedup window of this observation's finding when not the aggregator's (a rule's own, e.g. a UTC day).
    window_seconds: float = 0.0


class FindingAggregator:
    """Folds observations into findings, one per key per dedup window (event time)."""

    def __init__(self, window_seconds: float = DEFAULT_WINDOW_SECONDS, max_evidence: int = MAX_EVIDENCE) -> None:
        self.window = window_seconds
        self.max_evidence = max_evidence
        self._open: dict[tuple[tuple[str, ...], float], Finding] = {}  # (what and who, window start) → finding
        self._ends: dict[tuple[tuple[str, ...], float], float] = {}  # when each open finding's window ends
        self._first_end = float("-inf")
        self._closed: list[Finding] = []
        self._unlisted: dict[str, set[ResourceRef]] = {}  # open finding id → objects touched beyond MAX_RESOURCES

    def add(self, observation: Observation) -> Finding:
        target = observation.target
        where = (target.namespace, target.kind, target.name) if target else ("", "", "")
        key = (
            observation.detector,
            observation.rule_id,
            observation.cluster,
            observation.account,
            observation.principal_key,
            *where,
        )
        window = observation.window_seconds or self.window
        window_start = (observation.time // window) * window
        finding = self._open.get((key, window_start))
        if finding is None:
            self._close_before(window_start - self.window)
            finding = Finding(
                id=_finding_id(key, window_start),
                type=observation.type,
                severity=observation.severity,
                title=observation.title,
                description=observation.description,
                detector=observation.detector,
                rule_id=observation.rule_id,
                cluster=observation.cluster,
                account=observation.account,
                region=observation.region,
                principal=observation.principal,
                first_seen=observation.time,
                last_seen=observation.time,
                count=0,
                mitre=list(observation.mitre),
                resources=[first] if (first := observation.touched or target) else [],
                remediation=observation.remediation,
                details=dict(observation.details or {}),
            )
            self._open[(key, window_start)] = finding
            self._ends[(key, window_start)] = window_start + window
        finding.count += 1
        finding.first_seen = min(finding.first_seen, observation.time)
        finding.last_seen = max(finding.last_seen, observation.time)
        if observation.severity > finding.severity:
            finding.severity, finding.title, finding.description, finding.remediation = (
                observation.severity,
                observation.title,
                observation.description,
                observation.remediation,
            )
            _take_severity_context(finding, observation)
        if observation.detector == "anomaly" and observation.details and finding.count > 1:
            _merge_anomaly(finding, observation)
        if len(finding.evidence) < self.max_evidence and observation.audit_id not in finding.evidence:
            finding.evidence.append(observation.audit_id)
        touched = observation.touched
        if touched is not None and touched not in finding.resources:
            if len(finding.resources) < MAX_RESOURCES:
                finding.resources.append(touched)
            elif len(unlisted := self._unlisted.setdefault(finding.id, set())) < MAX_UNLISTED:
                unlisted.add(touched)
        if finding.id in self._unlisted:  # set again after each event: an anomaly's merge replaces its details
            finding.details["resources_not_listed"] = len(self._unlisted[finding.id])
        add_unique(finding.source_ips, observation.source_ip, 20)
        add_unique(finding.user_agents, observation.user_agent, 10)
        return finding

    def findings(self) -> list[Finding]:
        """All findings so far, oldest first (ties broken by id, so output order is deterministic)."""
        return sorted([*self._closed, *self._open.values()], key=lambda f: (f.first_seen, f.id))

    def drain_closed(self, before: float) -> Iterator[Finding]:
        """Findings whose window ended before `before` (event time): safe to publish as final."""
        self._close_before(before - self.window)
        closed, self._closed = self._closed, []
        yield from sorted(closed, key=lambda f: (f.first_seen, f.id))

    def _close_before(self, window_start: float) -> None:
        """Move findings whose window ended before `window_start` plus one window (hour-long windows: those that
        started before `window_start`) out of the open set (bounded memory: events arrive roughly in time order,
        so older windows won't grow again)."""
        cutoff = window_start + self.window
        if not self._open or cutoff <= self._first_end:
            return
        for key in [k for k, end in self._ends.items() if end < cutoff]:
            del self._ends[key]
            finding = self._open.pop(key)
            self._unlisted.pop(finding.id, None)
            self._closed.append(finding)
        self._first_end = min(self._ends.values(), default=cutoff)


def _merge_anomaly(finding: Finding, observation: Observation) -> None:
    """One anomaly finding per principal and window: it shows its strongest event's explanation, the
    strongest evidence per feature and every signal seen."""
    new, current = observation.details or {}, finding.details
    new_anomaly, anomaly = new.get("anomaly", {}), current.get("anomaly", {})
    other_profile, other_signals = new_anomaly.get("profile", {}), new_anomaly.get("signals", [])
    if new_anomaly.get("score", 0) > anomaly.get("score", 0):
        other_profile, other_signals = anomaly.get("profile", {}), anomaly.get("signals", [])
        current.clear()
        current.update(new)
        current["anomaly"] = anomaly = {
            **new_anomaly,
            "profile": dict(new_anomaly.get("profile", {})),
            "signals": list(new_anomaly.get("signals", [])),
        }
        finding.type = observation.type
        if observation.severity >= finding.severity:
            finding.title, finding.description = observation.title, observation.description
            finding.remediation = observation.remediation
    profile = anomaly.setdefault("profile", {})
    for feature, assessment in other_profile.items():
        kept = profile.get(feature)
        if kept is None or assessment.get("surprise_bits", 0) > kept.get("surprise_bits", 0):
            profile[feature] = assessment
    signals = anomaly.setdefault("signals", [])
    signals.extend(s for s in other_signals if s not in signals)
    anomaly["events"] = finding.count


def _take_severity_context(finding: Finding, observation: Observation) -> None:
    """The finding states the severity (and its reason: eksight.core.behaviour.context) of its strongest event."""
    context = (observation.details or {}).get(SEVERITY_CONTEXT)
    if context is None:
        finding.details.pop(SEVERITY_CONTEXT, None)
    else:
        finding.details[SEVERITY_CONTEXT] = context


def add_unique(values: list[str], value: str, limit: int) -> None:
    """Append `value` (non-empty) unless present or `values` already holds `limit` items."""
    if value and value not in values and len(values) < limit:
        values.append(value)


def _finding_id(key: Iterable[str], window_start: float) -> str:
    digest = hashlib.sha256("\x1f".join([*key, f"{window_start:.6f}"]).encode()).hexdigest()
    return digest[:32]
