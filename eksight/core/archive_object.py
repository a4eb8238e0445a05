"""One archive object through detection: the per-object step of the detector Lambda, callable locally too.

    process_object(reader, key, publisher=..., quarantine=..., finding_archive=...)
      detector = build_detector(detection, baselines)       fresh per object: rule state depends on the object only
      detector.run(decode_stream(reader.open(key), ...))    streamed, never the whole object in memory
      detector.flush(batch_id)                              baselines: score, then read/write profiles (cached)
      ledger.fold(store, detector.findings(), batch_id)     totals over earlier objects of the same finding ids
      mark_suppressed(findings, detection.suppressions)     `suppressed_by` on what the deployment suppresses
      finding_archive.write(key, findings)                  every finding, all severities, kept under findings/
      publisher.publish(unsuppressed findings)              deterministic ids; suppressed ones are only counted
      quarantine.write(key, detector.quarantined, counts)   records that are not audit events, with reasons
      → ObjectResult                                        counts for metrics; small and JSON-serialisable

Pure apart from what is injected: the reader, the publisher and the quarantine sink are small objects with one
method each (`eksight.adapters` has the AWS ones; `LocalFileReader` reads files). If the object cannot be read
to its end (an I/O error mid-stream), `ObjectUnreadable` is raised before anything is published, so the caller
retries the whole object instead of publishing half of it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from eksight.core import ledger
from eksight.core.behaviour.analyzer import DEFAULT_LEARNING_DAYS, BehaviourAnalyzer
from eksight.core.decode import DecodeStats, Quarantined, context_from_key, decode_stream
from eksight.core.detector import Detector
from eksight.core.findings import Finding, Severity, to_json_line
from eksight.core.rules import engine_for
from eksight.core.suppression import mark_suppressed

if TYPE_CHECKING:
    from eksight.core.behaviour.cache import ProfileCache
    from eksight.core.detection_runtime import AnyDetectionOptions
    from eksight.core.state import StateStore


class ObjectReader(Protocol):
    def open(self, key: str, version_id: str | None = None) -> AbstractContextManager[BinaryIO]: ...


class FindingSink(Protocol):
    def publish(self, findings: Sequence[Finding]) -> object: ...


class FindingArchiveSink(Protocol):
    def write(self, source_key: str, findings: Sequence[Finding]) -> str | None: ...


class QuarantineSink(Protocol):
    def write(self, source_key: str, records: Sequence[Quarantined], counts: Mapping[str, int]) -> str | None: ...


class ObjectUnreadable(RuntimeError):
    """The object could not be read to its end; nothing was published for it."""


@dataclass
class ObjectResult:
    key: str
    version_id: str | None = None
    records: int = 0
    events: int = 0
    duplicates: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    findings_by_severity: dict[str, int] = field(default_factory=dict)
    """Severity name → findings (all five names present), suppressed ones included."""
    published: int = 0
    suppressed: int = 0
    """Findings stored but not published: a `detection.suppressions` entry covers them."""
    newest_event_time: float | None = None
    bytes_in: int = 0
    bytes_decoded: int = 0
    quarantine_key: str | None = None
    rule_errors: dict[str, int] = field(default_factory=dict)

    @property
    def records_quarantined(self) -> int:
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectResult:
        known = cls.__dataclass_fields__
        return cls(**{name: value for name, value in data.items() if name in known})


# An object is one baseline batch (one profile read and at most one write per principal), however large.
BASELINE_BATCH_PER_OBJECT = 10**9


def build_detector(
    detection: AnyDetectionOptions | None = None,
    baselines: StateStore | None = None,
    *,
    learning_days: int | None = None,
    baseline_batch: int = BASELINE_BATCH_PER_OBJECT,
    profile_cache: ProfileCache | None = None,
) -> Detector:
    """A fresh detector (rule state — thresholds, dedup windows — starts empty); with a profile store, it also
    learns and scores behaviour (the profiles persist in the store across objects). `learning_days` overrides
    the detection options' (default 7); `baseline_batch`: events scored per profile read/write round;
    `profile_cache`: warm profiles kept across detectors, written back only when they changed materially."""
    if learning_days is None:
        learning_days = detection.learning_days if detection is not None else DEFAULT_LEARNING_DAYS
    behaviour = (
        BehaviourAnalyzer(baselines, learning_days=learning_days, cache=profile_cache)
        if baselines is not None
        else None
    )
    return Detector(engine_for(detection), baselines=behaviour, baseline_batch=baseline_batch)


def process_object(
    reader: ObjectReader,
    key: str,
    *,
    publisher: FindingSink,
    quarantine: QuarantineSink | None = None,
    finding_archive: FindingArchiveSink | None = None,
    version_id: str | None = None,
    source: str | None = None,
    detection: AnyDetectionOptions | None = None,
    baselines: StateStore | None = None,
    batch_id: str | None = None,
    profile_cache: ProfileCache | None = None,
) -> ObjectResult:
    """Detect over one object and publish what it found. `source` names the object in quarantined records
    (default: the key); its context (account, region, cluster) comes from the key's ``name=value`` parts,
    overridden by what CloudWatch envelopes inside it say. `baselines`: the profile store; `batch_id` (default:
    source, version) makes the profile update idempotent if the object is processed again after a failure;
    `profile_cache`: the caller's warm profiles (the Lambda's, per container)."""
    detector = build_detector(detection, baselines, profile_cache=profile_cache)
    decoded = DecodeStats()
    with reader.open(key, version_id) as stream:
        detector.run(decode_stream(stream, source=source or key, defaults=context_from_key(key), stats=decoded))
    if detector.stats.quarantined.get("unreadable"):
        details = "; ".join(q.detail for q in detector.quarantined if q.reason == "unreadable")
        raise ObjectUnreadable(f"{source or key}: {details or 'read failed'}")

    batch_id = batch_id or f"{source or key}#{version_id or ''}"
    detector.flush(batch_id)
    findings = detector.findings()
    if baselines is not None:  # totals across objects, so a growing finding is re-published whole
        findings = ledger.fold(baselines, findings, batch_id)
    suppressed = mark_suppressed(findings, detection.suppressions) if detection is not None else 0
    if findings and finding_archive is not None:  # kept before publishing: a retried object overwrites it
        finding_archive.write(key, findings)
    forwarded = [finding for finding in findings if not finding.suppressed_by] if suppressed else findings
    if forwarded:
        publisher.publish(forwarded)
    written = None
    if quarantine is not None and detector.stats.quarantined:
        written = quarantine.write(key, detector.quarantined, detector.stats.quarantined)

    by_severity = Counter(finding.severity.name for finding in findings)
    newest = _newest_event_time(detector)
    return ObjectResult(
        key=key,
        version_id=version_id,
        records=detector.stats.records,
        events=detector.stats.events,
        duplicates=detector.stats.duplicates,
        quarantined=dict(detector.stats.quarantined),
        skipped=dict(decoded.skipped + detector.stats.skipped),
        findings_by_severity={severity.name: by_severity[severity.name] for severity in reversed(Severity)},
        published=len(forwarded),
        suppressed=suppressed,
        newest_event_time=newest,
        bytes_in=decoded.bytes_in,
        bytes_decoded=decoded.bytes_decoded,
        quarantine_key=written,
        rule_errors=dict(detector.engine.errors),
    )


def _newest_event_time(detector: Detector) -> float | None:
    return detector.last_event_time or None


class LocalFileReader:
    """Reads keys as paths under `root` (replays and benchmarks of archive objects copied locally)."""

    def __init__(self, root: str | os.PathLike[str] = ".") -> None:
        self.root = Path(root)

    @contextmanager
    def open(self, key: str, version_id: str | None = None) -> Iterator[BinaryIO]:
        with (self.root / key).open("rb") as handle:
            yield handle


class JsonLinesPublisher:
    """A FindingSink that appends findings as JSON lines to a binary stream (local runs)."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink

    def publish(self, findings: Sequence[Finding]) -> int:
        for finding in findings:
            self.sink.write(to_json_line(finding))
        return len(findings)
