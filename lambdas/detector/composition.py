"""The detector Lambda's composition root: settings read once from the environment, the collaborators built from
injected AWS clients (`build`), and the SQS entry point around them (`create_handler`).

SQS (S3 ObjectCreated notifications for ``audit/`` objects) → detection → EventBridge. Each SQS message is one batch
item (Powertools `BatchProcessor`), so a poison message fails only itself (``batchItemFailures``) and goes to the
dead-letter queue after the queue's ``maxReceiveCount``. A message's body is an S3 event notification (Powertools'
`S3Event`); records that are not ObjectCreated or whose key is outside ``audit/`` are counted (``ObjectsIgnored``)
and skipped, and S3's ``s3:TestEvent`` is acknowledged.

Per object, idempotent on (bucket, key, versionId, eTag) — Powertools Idempotency in the baseline table
(``STATE_TABLE``: ``pk`` = ``idempotency#eksight-detector``, ``sk`` = ``eksight-detector/object#<md5>``; profiles
use ``pk`` = ``<cluster>|<principal>``, so the two never meet), kept 7 days: an object delivered again (S3 delivers
at least once; SQS too) publishes nothing and is counted as ``DuplicateObjects``. While an object is processed its
record is INPROGRESS until the invocation's deadline; if processing raises, the record is deleted and the message
is retried; if the invocation dies (timeout, out of memory), the record expires at that deadline and the retried
message processes the object again (re-published findings have the same ids: consumers dedupe on ``detail.id``).

Cold start: the clients, the settings and the detection options are ready before the first invocation; detection
itself (`eksight.core.archive_object`: decoder, rules, behavioural scoring with numpy — a third of the import time)
is imported with the first object, which needs it anyway (bench/detector_object.py measures both).

An invocation that times out returns its whole batch to the queue, so one object that cannot be processed in time
would take its batch-mates to the dead-letter queue with it. Hence each object gets a share of the invocation's
remaining time (what is left, less a reserve, divided by the objects still to go) and is stopped when reading past
it (`TimeBudget`: it fails alone, ``ObjectsOverTime``), and messages received fewer times go first, so an object
that failed before runs after the batch's fresh ones, with whatever time they left.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple, Protocol, cast
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event, SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from eksight.adapters import TRACED_MODULES
from eksight.adapters.dynamodb import DynamoStateStore
from eksight.adapters.eventbridge import FindingPublisher
from eksight.adapters.network_lists import NetworkListsUnavailable, read_network_lists
from eksight.adapters.s3 import FindingArchiveWriter, QuarantineWriter, S3ObjectReader
from eksight.core.archive_layout import AUDIT_ROOT
from eksight.core.detection_runtime import RuntimeDetectionOptions, load_runtime_detection, with_changes

if TYPE_CHECKING:
    from botocore.client import BaseClient

    from eksight.core.archive_object import ObjectReader, ObjectResult
    from eksight.core.behaviour.cache import ProfileCache

HERE = Path(__file__).resolve().parent
IDEMPOTENCY_PK = "idempotency#eksight-detector"  # fixed: renaming the function must not reprocess the archive
IDEMPOTENCY_KEY_PREFIX = "eksight-detector/object"
IDEMPOTENCY_EXPIRY_SECONDS = 7 * 24 * 3600
IDEMPOTENCY_TTL_ATTRIBUTE = "expires_at"  # the table's TTL attribute (epoch seconds), shared with the profiles

REQUIRED_VARIABLES = ("FINDINGS_BUS_NAME", "ARCHIVE_BUCKET", "STATE_TABLE")
TIME_RESERVE = 0.1  # of an invocation's remaining time, kept back for the cleanup of an object stopped over time

LambdaHandler = Callable[[dict[str, Any], LambdaContext], PartialItemFailureResponse]


class SettingsError(ValueError):
    """The function's environment is incomplete or malformed; the message names the variable."""


@dataclass(frozen=True)
class DetectorSettings:
    """What the function is told by its environment (set by stacks/constructs/detector_function.py)."""

    findings_bus_name: str
    archive_bucket: str
    """Where quarantined records are written."""
    state_table: str
    """Behavioural profiles, finding totals and idempotency records."""
    detection_config: Path | None = None
    """A JSON file holding the deployment config's ``detection`` section; None: eksight's defaults."""
    learning_days: int | None = None
    """The behavioural learning period; None: the detection config's (or eksight's default)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, root: Path = HERE) -> DetectorSettings:
        """``FINDINGS_BUS_NAME``, ``ARCHIVE_BUCKET``, ``STATE_TABLE`` (required); ``EKSIGHT_DETECTION_CONFIG``
        (relative to `root`, the function's code directory) and ``LEARNING_DAYS`` (optional)."""
        missing = [name for name in REQUIRED_VARIABLES if not environ.get(name)]
        if missing:
            raise SettingsError(f"the detector needs the environment variable(s) {', '.join(missing)} (unset or empty)")
        learning_days = environ.get("LEARNING_DAYS") or None
        if learning_days is not None and not learning_days.isdigit():
            raise SettingsError(f"LEARNING_DAYS must be a whole number of days, got {learning_days!r}")
        config = environ.get("EKSIGHT_DETECTION_CONFIG")
        return cls(
            findings_bus_name=environ["FINDINGS_BUS_NAME"],
            archive_bucket=environ["ARCHIVE_BUCKET"],
            state_table=environ["STATE_TABLE"],
            detection_config=root / config if config else None,
            learning_days=int(learning_days) if learning_days is not None else None,
        )


class DetectorClients(NamedTuple):
    s3: BaseClient
    events: BaseClient
    dynamodb: BaseClient


def process_object(*args: Any, **kwargs: Any) -> ObjectResult:
    """`eksight.core.archive_object.process_object`, imported with the first object (see the module docstring)."""
    from eksight.core.archive_object import process_object as process

    return process(*args, **kwargs)


class ProcessObject(Protocol):
    """`eksight.core.archive_object.process_object`'s signature (the local demo wraps it to count objects)."""

    def __call__(
        self,
        reader: ObjectReader,
        key: str,
        *,
        publisher: FindingPublisher,
        quarantine: QuarantineWriter,
        finding_archive: FindingArchiveWriter,
        version_id: str | None,
        source: str,
        detection: RuntimeDetectionOptions | None,
        baselines: DynamoStateStore,
        batch_id: str,
        profile_cache: ProfileCache,
    ) -> ObjectResult: ...


@dataclass(frozen=True)
class ObjectRef:
    """One archive object a notification announced, as S3 named it (key unquoted)."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None

    def identity(self) -> dict[str, str | None]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id, "etag": self.etag}


class ObjectOverTime(OSError):
    """The object was still being read when its share of the invocation's time ran out. An OSError: the decoder
    records it as the object's ``unreadable`` end, and `process_object` then fails the object before publishing."""


@dataclass
class TimeBudget:
    """When the object being processed must be done (`time.monotonic()`; None: no limit)."""

    deadline: float | None = None

    def check(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise ObjectOverTime(
                "stopped: the object was still being read when its share of the invocation's time ran out"
            )


class _TimedStream:
    def __init__(self, stream: BinaryIO, budget: TimeBudget) -> None:
        self.stream, self.budget = stream, budget

    def read(self, size: int = -1) -> bytes:
        self.budget.check()
        return self.stream.read(size)


@dataclass(frozen=True)
class TimedReader:
    """A reader whose streams stop (`ObjectOverTime`) once `budget` has run out."""

    reader: ObjectReader
    budget: TimeBudget

    @contextmanager
    def open(self, key: str, version_id: str | None = None) -> Iterator[BinaryIO]:
        with self.reader.open(key, version_id) as stream:
            yield cast(BinaryIO, _TimedStream(stream, self.budget))  # the decoder only calls read()


@dataclass(frozen=True)
class DetectorApp:
    """The handler's collaborators, built once per container."""

    settings: DetectorSettings
    publisher: FindingPublisher
    state: DynamoStateStore
    quarantine: QuarantineWriter
    finding_archive: FindingArchiveWriter
    """Every finding, all severities, under findings/ of the archive (Athena table `findings`)."""
    reader_for: Callable[[str], ObjectReader]
    """bucket → a reader of its objects (stopping at `budget`)."""
    persistence: DynamoDBPersistenceLayer
    idempotency: IdempotencyConfig
    detection: RuntimeDetectionOptions | None

    @cached_property
    def profiles(self) -> ProfileCache:
        """Warm behavioural profiles, kept for the container's lifetime: most objects then read and write only
        the profiles that changed materially (eksight.core.behaviour.cache, docs/baselines.md). Created with the
        first object: the cache brings the behavioural model (numpy)."""
        from eksight.core.behaviour.cache import ProfileCache

        return ProfileCache()

    budget: TimeBudget = field(default_factory=TimeBudget)
    """The current object's share of the invocation's time (set by the handler per object)."""

    def detect(self, ref: ObjectRef, process: ProcessObject = process_object) -> ObjectResult:
        """The domain call: one archive object through detection, findings published, quarantine written."""
        return process(
            self.reader_for(ref.bucket),
            ref.key,
            publisher=self.publisher,
            quarantine=self.quarantine,
            finding_archive=self.finding_archive,
            version_id=ref.version_id,
            source=f"s3://{ref.bucket}/{ref.key}",
            detection=self.detection,
            baselines=self.state,
            batch_id=f"s3://{ref.bucket}/{ref.key}#{ref.version_id}#{ref.etag}",
            profile_cache=self.profiles,
        )


def build(settings: DetectorSettings, clients: DetectorClients) -> DetectorApp:
    """The collaborators on `clients`; the detection options are the config file's, with ``LEARNING_DAYS`` (when
    set) as their learning period, checked like the config's own."""
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.state_table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PK,
        expiry_attr=IDEMPOTENCY_TTL_ATTRIBUTE,
        boto3_client=clients.dynamodb,
    )
    budget = TimeBudget()
    return DetectorApp(
        settings=settings,
        publisher=FindingPublisher(clients.events, settings.findings_bus_name),
        state=DynamoStateStore(clients.dynamodb, settings.state_table),
        quarantine=QuarantineWriter(clients.s3, settings.archive_bucket),
        finding_archive=FindingArchiveWriter(clients.s3, settings.archive_bucket),
        reader_for=lambda bucket: TimedReader(S3ObjectReader(clients.s3, bucket), budget),
        persistence=persistence,
        idempotency=IdempotencyConfig(
            expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS,
            raise_on_no_idempotency_key=True,
            response_hook=_mark_duplicate,
        ),
        detection=detection_options(settings, clients.s3),
        budget=budget,
    )


def detection_options(settings: DetectorSettings, s3: BaseClient) -> RuntimeDetectionOptions | None:
    """The config file's detection options, with ``LEARNING_DAYS`` (when set) as their learning period, and the
    networks of its S3 object when it names one; None: eksight's defaults. Read without pydantic
    (`eksight.core.detection_runtime`: the stack validated the file with the config's models when it built the
    asset; what is added here is checked with the same constraints)."""
    if settings.detection_config is None and settings.learning_days is None:
        return None
    detection = load_runtime_detection(settings.detection_config) or RuntimeDetectionOptions()
    if settings.learning_days is not None:
        detection = with_changes(detection, learning_days=settings.learning_days)
    if detection.networks_object is not None:
        detection = with_object_networks(detection, s3)
    return detection


def with_object_networks(detection: RuntimeDetectionOptions, s3: BaseClient) -> RuntimeDetectionOptions:
    """`detection` with the threat and trusted networks of its S3 object added, validated like the config's own
    (entries, at most 10,000 per list). An object that cannot be read or fails validation is logged and left
    out: detection goes on with the config's lists rather than stopping the function."""
    source = detection.networks_object
    assert source is not None
    try:
        extra = read_network_lists(s3, source.bucket, source.key)
        return with_changes(
            detection,
            threat_networks=_union(detection.threat_networks, extra.threat_networks),
            trusted_networks=_union(detection.trusted_networks, extra.trusted_networks),
        )
    except (NetworkListsUnavailable, ValueError) as error:  # msgspec's ValidationError is a ValueError
        Logger().error(
            "network lists object not used; keeping the config's lists",
            extra={"bucket": source.bucket, "key": source.key, "error": str(error)[:2000]},
        )
        return detection


def _union(first: list[str], second: list[str]) -> list[str]:
    return list(dict.fromkeys([*first, *second]))


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> dict[str, Any]:
    """Called only when the idempotency store returns an earlier result instead of running the function."""
    return {**(response or {}), "duplicate": True}


def audit_objects(notification: S3Event) -> tuple[list[ObjectRef], list[dict[str, str]]]:
    """The ``audit/`` objects an S3 notification announces, and the records it ignored (event name, key)."""
    refs: list[ObjectRef] = []
    ignored: list[dict[str, str]] = []
    for record in notification.records if notification.get("Records") else ():
        s3_object = record.s3.get_object
        key = unquote_plus(s3_object.key)
        if not record.event_name.startswith("ObjectCreated:") or not key.startswith(AUDIT_ROOT):
            ignored.append({"event_name": record.event_name, "key": key})
            continue
        refs.append(ObjectRef(record.s3.bucket.name, key, s3_object.version_id or None, s3_object.etag or None))
    return refs, ignored


def create_handler(app: DetectorApp, detect: Callable[[ObjectRef], ObjectResult] | None = None) -> LambdaHandler:
    """The Lambda entry point over `app`: SQS batch in, ``batchItemFailures`` out, with Powertools logging,
    metrics (EMF, namespace and service from the environment) and tracing. `detect` defaults to `app.detect`."""
    logger, metrics, tracer = Logger(), Metrics(), Tracer(patch_modules=TRACED_MODULES)
    detect_object = detect or app.detect
    processor = BatchProcessor(event_type=EventType.SQS)

    def detect_as_dict(*, s3_object: dict[str, Any]) -> dict[str, Any]:
        return detect_object(ObjectRef(**s3_object)).as_dict()

    detect_once: Callable[..., dict[str, Any]] = idempotent_function(
        detect_as_dict,
        data_keyword_argument="s3_object",
        persistence_store=app.persistence,
        config=app.idempotency,
        key_prefix=IDEMPOTENCY_KEY_PREFIX,
    )

    invocation = _Invocation()

    def handle_object(ref: ObjectRef) -> None:
        started = time.monotonic()
        where = {"bucket": ref.bucket, "key": ref.key}
        app.budget.deadline = started + invocation.share_seconds()
        try:
            stored = detect_once(s3_object=ref.identity())
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds this object right now (S3/SQS delivered it twice at once): retry later,
            # when it has completed (then this is a duplicate) or its deadline has passed (then this one runs).
            logger.warning("object in progress elsewhere; retrying later", extra=where)
            metrics.add_metric(name="ObjectsInProgressElsewhere", unit=MetricUnit.Count, value=1)
            raise
        except Exception:
            over_time = time.monotonic() > app.budget.deadline
            logger.exception("object failed", extra={**where, "over_time": over_time})
            metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=1)
            if over_time:
                metrics.add_metric(name="ObjectsOverTime", unit=MetricUnit.Count, value=1)
            raise
        finally:
            app.budget.deadline = None
        if stored.get("duplicate"):
            logger.info("object already processed", extra=where)
            metrics.add_metric(name="DuplicateObjects", unit=MetricUnit.Count, value=1)
            return
        from eksight.core.archive_object import ObjectResult  # imported by now: the object was just processed

        result = ObjectResult.from_dict(stored)
        _object_metrics(metrics, result)
        logger.info(
            "object processed",
            extra={
                **where,
                "events": result.events,
                "records": result.records,
                "quarantined": result.quarantined,
                "skipped": result.skipped,
                "findings": result.findings_by_severity,
                "suppressed": result.suppressed,
                "quarantine_key": result.quarantine_key,
                "rule_errors": result.rule_errors,
                "seconds": round(time.monotonic() - started, 3),
            },
        )

    @tracer.capture_method
    def record_handler(record: SQSRecord) -> None:
        notification = record.decoded_nested_s3_event
        if notification.get("Event") == "s3:TestEvent":
            logger.info("S3 test event acknowledged", extra={"bucket": notification.get("Bucket")})
            metrics.add_metric(name="S3TestEvents", unit=MetricUnit.Count, value=1)
            return
        refs, ignored = audit_objects(notification)
        for skipped in ignored:
            logger.info("ignoring notification record", extra=skipped)
        if ignored:
            metrics.add_metric(name="ObjectsIgnored", unit=MetricUnit.Count, value=len(ignored))
        try:
            for ref in refs:
                handle_object(ref)
        finally:
            invocation.messages_left -= 1

    @logger.inject_lambda_context
    @tracer.capture_lambda_handler
    @metrics.log_metrics(capture_cold_start_metric=True)
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        app.idempotency.register_lambda_context(context)  # INPROGRESS records expire at this invocation's deadline
        records = sorted(event.get("Records", []), key=_receive_count)  # failed before: after the fresh ones
        invocation.start(context, len(records))
        return process_partial_response(
            event={**event, "Records": records}, record_handler=record_handler, processor=processor, context=context
        )

    return lambda_handler


@dataclass
class _Invocation:
    """The running invocation's time, shared out among the messages it still has to process."""

    context: LambdaContext | None = None
    messages_left: int = 0
    reserve_ms: float = 0.0

    def start(self, context: LambdaContext, messages: int) -> None:
        self.context, self.messages_left = context, messages
        self.reserve_ms = TIME_RESERVE * context.get_remaining_time_in_millis()

    def share_seconds(self) -> float:
        """The time the next object may take: what is left of the invocation, less the reserve, divided by the
        messages still to go (this one included)."""
        if self.context is None:
            return float("inf")
        left_ms = self.context.get_remaining_time_in_millis() - self.reserve_ms
        return max(0.0, left_ms) / 1000 / max(1, self.messages_left)


def _receive_count(record: Mapping[str, Any]) -> int:
    count = str((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
    return int(count) if count.isdigit() else 1


def _object_metrics(metrics: Metrics, result: ObjectResult) -> None:
    metrics.add_metric(name="ObjectsProcessed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=result.events)
    metrics.add_metric(name="RecordsQuarantined", unit=MetricUnit.Count, value=result.records_quarantined)
    for severity, count in result.findings_by_severity.items():
        metrics.add_metric(name=f"Findings{severity.title()}", unit=MetricUnit.Count, value=count)
    if result.suppressed:
        metrics.add_metric(name="FindingsSuppressed", unit=MetricUnit.Count, value=result.suppressed)
    if result.newest_event_time:
        lag = max(0.0, time.time() - result.newest_event_time)
        metrics.add_metric(name="EventLagSeconds", unit=MetricUnit.Seconds, value=lag)
