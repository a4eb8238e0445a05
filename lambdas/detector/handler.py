"""Detector Lambda: SQS (S3 ObjectCreated notifications for ``audit/`` objects) → detection → EventBridge.

Thin: parse the SQS batch and each S3 notification, then per object call `eksight.core.archive_object.process_object` with
the adapters wired from the environment. Each SQS message is one batch item (Powertools `BatchProcessor`), so a
poison message fails only itself (``batchItemFailures``) and goes to the dead-letter queue after the queue's
``maxReceiveCount``.

Per object, idempotent on (bucket, key, versionId, eTag) — Powertools Idempotency in the baseline table
(``STATE_TABLE``: ``pk`` = ``idempotency#eksight-detector``, ``sk`` = ``eksight-detector/object#<md5>``; profiles
use ``pk`` = ``<cluster>|<principal>``, so the two never meet), kept 7 days: an object delivered again (S3 delivers
at least once; SQS too) publishes nothing and is counted as ``DuplicateObjects``. While an object is processed its
record is INPROGRESS until the invocation's deadline; if processing raises, the record is deleted and the message
is retried; if the invocation dies (timeout, out of memory), the record expires at that deadline and the retried
message processes the object again (re-published findings have the same ids: consumers dedupe on ``detail.id``).

Environment: ``FINDINGS_BUS_NAME``, ``ARCHIVE_BUCKET`` (quarantine output), ``STATE_TABLE``,
``EKSIGHT_DETECTION_CONFIG`` (optional: a JSON file, relative to this directory, holding the deployment config's
``detection`` section), ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_SERVICE_NAME``; AWS clients take the
standard variables (``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from eksight.adapters.dynamodb import DynamoStateStore
from eksight.adapters.eventbridge import FindingPublisher
from eksight.adapters.s3 import QuarantineWriter, S3ObjectReader
from eksight.core.archive_layout import AUDIT_ROOT
from eksight.core.archive_object import ObjectResult, load_detection, process_object

HERE = Path(__file__).resolve().parent
IDEMPOTENCY_PK = "idempotency#eksight-detector"  # fixed: renaming the function must not reprocess the archive
IDEMPOTENCY_KEY_PREFIX = "eksight-detector/object"
IDEMPOTENCY_EXPIRY_SECONDS = 7 * 24 * 3600
IDEMPOTENCY_TTL_ATTRIBUTE = "expires_at"  # the table's TTL attribute (epoch seconds), shared with the profiles

logger = Logger()
metrics = Metrics()
tracer = Tracer()

s3 = boto3.client("s3")
events = boto3.client("events")
dynamodb = boto3.client("dynamodb")

_config = os.environ.get("EKSIGHT_DETECTION_CONFIG", "")
DETECTION = load_detection(HERE / _config if _config else None)
publisher = FindingPublisher(events, os.environ["FINDINGS_BUS_NAME"])
profiles = DynamoStateStore(dynamodb, os.environ["STATE_TABLE"])
quarantine = QuarantineWriter(s3, os.environ["ARCHIVE_BUCKET"])
processor = BatchProcessor(event_type=EventType.SQS)


def _mark_duplicate(response: dict[str, Any], _record: Any) -> dict[str, Any]:
    """Called only when the idempotency store returns an earlier result instead of running the function."""
    return {**(response or {}), "duplicate": True}


persistence = DynamoDBPersistenceLayer(
    table_name=os.environ["STATE_TABLE"],
    key_attr="pk",
    sort_key_attr="sk",
    static_pk_value=IDEMPOTENCY_PK,
    expiry_attr=IDEMPOTENCY_TTL_ATTRIBUTE,
    boto3_client=dynamodb,
)
idempotency = IdempotencyConfig(
    expires_after_seconds=IDEMPOTENCY_EXPIRY_SECONDS, raise_on_no_idempotency_key=True, response_hook=_mark_duplicate
)


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    version_id: str | None
    etag: str | None

    def identity(self) -> dict[str, str | None]:
        return {"bucket": self.bucket, "key": self.key, "version_id": self.version_id, "etag": self.etag}


@idempotent_function(
    data_keyword_argument="s3_object",
    persistence_store=persistence,
    config=idempotency,
    key_prefix=IDEMPOTENCY_KEY_PREFIX,
)
def _process_once(*, s3_object: dict[str, Any]) -> dict[str, Any]:
    result = process_object(
        S3ObjectReader(s3, s3_object["bucket"]),
        s3_object["key"],
        publisher=publisher,
        quarantine=quarantine,
        version_id=s3_object["version_id"],
        source=f"s3://{s3_object['bucket']}/{s3_object['key']}",
        detection=DETECTION,
        baselines=profiles,
        batch_id="s3://{bucket}/{key}#{version_id}#{etag}".format(**s3_object),
    )
    return result.as_dict()


def _objects(notification: dict[str, Any]) -> tuple[list[ObjectRef], int]:
    """The audit/ objects an S3 notification announces, and how many of its records were ignored."""
    refs, ignored = [], 0
    for record in notification.get("Records") or []:
        s3_part = record.get("s3") or {}
        key = unquote_plus((s3_part.get("object") or {}).get("key", ""))
        if not str(record.get("eventName", "")).startswith("ObjectCreated:") or not key.startswith(AUDIT_ROOT):
            logger.info("ignoring notification record", extra={"event_name": record.get("eventName"), "key": key})
            ignored += 1
            continue
        obj = s3_part["object"]
        refs.append(ObjectRef(s3_part["bucket"]["name"], key, obj.get("versionId") or None, obj.get("eTag") or None))
    return refs, ignored


@tracer.capture_method
def record_handler(record: SQSRecord) -> None:
    notification = json.loads(record.body)
    if notification.get("Event") == "s3:TestEvent":
        logger.info("S3 test event acknowledged", extra={"bucket": notification.get("Bucket")})
        metrics.add_metric(name="S3TestEvents", unit=MetricUnit.Count, value=1)
        return
    refs, ignored = _objects(notification)
    if ignored:
        metrics.add_metric(name="ObjectsIgnored", unit=MetricUnit.Count, value=ignored)
    for ref in refs:
        _handle_object(ref)


def _handle_object(ref: ObjectRef) -> None:
    started = time.monotonic()
    try:
        stored = _process_once(s3_object=ref.identity())
    except IdempotencyAlreadyInProgressError:
        # Another invocation holds this object right now (S3/SQS delivered it twice at once): retry later, when
        # it has completed (then this is a duplicate) or its deadline has passed (then this one processes it).
        logger.warning("object in progress elsewhere; retrying later", extra={"bucket": ref.bucket, "key": ref.key})
        metrics.add_metric(name="ObjectsInProgressElsewhere", unit=MetricUnit.Count, value=1)
        raise
    except Exception:
        logger.exception("object failed", extra={"bucket": ref.bucket, "key": ref.key})
        metrics.add_metric(name="ObjectsFailed", unit=MetricUnit.Count, value=1)
        raise
    if stored.get("duplicate"):
        logger.info("object already processed", extra={"bucket": ref.bucket, "key": ref.key})
        metrics.add_metric(name="DuplicateObjects", unit=MetricUnit.Count, value=1)
        return
    result = ObjectResult.from_dict(stored)
    metrics.add_metric(name="ObjectsProcessed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="EventsProcessed", unit=MetricUnit.Count, value=result.events)
    metrics.add_metric(name="RecordsQuarantined", unit=MetricUnit.Count, value=result.records_quarantined)
    for severity, count in result.findings.items():
        metrics.add_metric(name=f"Findings{severity.title()}", unit=MetricUnit.Count, value=count)
    if result.newest_event_time:
        metrics.add_metric(
            name="EventLagSeconds", unit=MetricUnit.Seconds, value=max(0.0, time.time() - result.newest_event_time)
        )
    logger.info(
        "object processed",
        extra={
            "bucket": ref.bucket,
            "key": ref.key,
            "events": result.events,
            "records": result.records,
            "quarantined": result.quarantined,
            "skipped": result.skipped,
            "findings": result.findings,
            "quarantine_key": result.quarantine_key,
            "rule_errors": result.rule_errors,
            "seconds": round(time.monotonic() - started, 3),
        },
    )


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    idempotency.register_lambda_context(context)  # INPROGRESS records expire at this invocation's deadline
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


handler = lambda_handler  # the name the stack configures (handler.handler)
