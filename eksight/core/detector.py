"""The detection pipeline shared by the Lambda and `eksight replay`:
decoded records → typed events → once per request → principal → rules → deduplicated findings."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from eksight.core.behaviour.analyzer import BehaviourAnalyzer
from eksight.core.decode import Quarantined, RawEvent, SourceContext
from eksight.core.events import AuditEvent, EventError, event_time, parse_event
from eksight.core.findings import DEFAULT_WINDOW_SECONDS, UNKNOWN_CLUSTER, Finding, FindingAggregator, Severity
from eksight.core.identity import resolve_principal
from eksight.core.rules import default_engine
from eksight.core.rules.engine import RuleEngine

# Interactive sessions are logged at ResponseStarted (when they open) and again at ResponseComplete (when
# they close, maybe hours later): detect at the first, count the request once.
STREAMING_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
SEEN_CAPACITY = 500_000  # auditIDs remembered for de-duplication (~50 MB at most)
QUARANTINE_KEPT = 10_000  # records kept for writing out (≤ 4 KiB sample each); counts stay exact beyond it
BASELINE_BATCH = 20_000  # events scored per profile read/write round in long replays


@dataclass
class DetectionStats:
    records: int = 0
    events: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    observations: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "records": self.records,
            "events": self.events,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
            "quarantined": dict(self.quarantined),
            "observations": self.observations,
        }


class Detector:
    def __init__(
        self,
        engine: RuleEngine | None = None,
        *,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        cluster: str = "",
        account: str = "",
        region: str = "",
        baselines: BehaviourAnalyzer | None = None,
        baseline_batch: int = BASELINE_BATCH,
    ) -> None:
        """`cluster`/`account`/`region` apply to records whose own context doesn't say (raw files).
        With `baselines`, every event also feeds behavioural profiles; call `flush()` at the end of a unit
        of work (the Lambda: each S3 object) so they are scored and written back."""
        self.engine = engine or default_engine()
        self.baselines = baselines
        self.baseline_batch = baseline_batch
        self.aggregator = FindingAggregator(window_seconds)
        self.defaults = (cluster, account, region)
        self.stats = DetectionStats()
        self.quarantined: list[Quarantined] = []
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._last_time = 0.0
        self._context: SourceContext | None = None
        self._where = ("", "", "")  # cluster, account, region of `_context`

    @property
    def last_event_time(self) -> float:
        """The latest event time seen (own timestamp, else CloudWatch's); 0 before any event."""
        return self._last_time

    def run(self, records: Iterable[RawEvent | Quarantined]) -> Detector:
        process = self.process
        for record in records:
            process(record)
        return self

    def process(self, record: RawEvent | Quarantined) -> None:
        self.stats.records += 1
        if isinstance(record, Quarantined):
            self._quarantine(record)
            return
        try:
            event = parse_event(record.data)
            own_time = event_time(event)
        except EventError as error:
            self._quarantine(
                Quarantined(record.source, record.offset, error.reason, str(error), bytes(record.data[:4096]))
            )
            return
        if not self._first_sighting(event):
            return
        time = own_time or (record.log_time_ms or 0) / 1000 or self._last_time
        if time > self._last_time:
            self._last_time = time
        context = record.context
        if context is not self._context:  # records of one envelope share their context
            self._context = context
            self._where = (
                context.cluster or self.defaults[0] or UNKNOWN_CLUSTER,
                context.account or self.defaults[1],
                context.region or self.defaults[2],
            )
        cluster, account, region = self._where
        principal = resolve_principal(event)
        observations = self.engine.evaluate(
            event, principal, cluster=cluster, account=account, region=region, time=time
        )
        # With a baseline, the rules' observations come back from flush() with their severity in the principal's
        # context (routine → lowered, never-used context → raised: eksight.core.behaviour.context).
        if self.baselines is not None and self.baselines.add(
            event,
            principal,
            cluster=cluster,
            account=account,
            region=region,
            time=time,
            flagged=any(observation.severity >= Severity.MEDIUM for observation in observations),
            rule_observations=tuple(observations),
        ):
            if len(self.baselines) >= self.baseline_batch:
                self.flush()
            return
        for observation in observations:
            self.stats.observations += 1
            self.aggregator.add(observation)

    def flush(self, batch_id: str = "") -> None:
        """Score and learn the buffered events against their baselines (one profile read and write each).
        `batch_id` makes the profile update idempotent: see BehaviourAnalyzer.flush."""
        if self.baselines is None:
            return
        for observation in self.baselines.flush(batch_id):
            self.stats.observations += 1
            self.aggregator.add(observation)

    def findings(self) -> list[Finding]:
        self.flush()
        return self.aggregator.findings()

    def _first_sighting(self, event: AuditEvent) -> bool:
        if event.stage == "RequestReceived" or (
            event.stage == "ResponseStarted" and event.subresource not in STREAMING_SUBRESOURCES
        ):
            self.stats.skipped[f"stage_{event.stage}"] += 1
            return False
        if event.audit_id in self._seen:
            self.stats.duplicates += 1
            return False
        self._seen[event.audit_id] = None
        if len(self._seen) > SEEN_CAPACITY:
            self._seen.popitem(last=False)
        self.stats.events += 1
        return True

    def _quarantine(self, record: Quarantined) -> None:
        self.stats.quarantined[record.reason] += 1
        if len(self.quarantined) < QUARANTINE_KEPT:
            self.quarantined.append(record)
        else:
            self.stats.skipped["quarantine_not_kept"] += 1
