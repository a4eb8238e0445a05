"""Security Hub forwarder: a batch of eksight finding events from its SQS queue → BatchImportFindings (ASFF).

The Security Hub rule of the findings bus targets an SQS queue; the function reads it in batches of up to 100
(``stacks/constructs/securityhub_forwarder.py``), so a burst of findings becomes a few 100-finding imports at a
bounded concurrency instead of one import per finding racing Security Hub's 10 TPS.

Each message body is the EventBridge event. Only events that are eksight findings of *this* account and region
are imported: the ``source``/``detail-type`` guard keeps Security Hub's own ``aws.securityhub`` "Findings -
Imported" events out (no loop), and the ``account``/``region`` check drops an event that did not come from this
deployment's bus. Anything else is logged, counted (``ForeignEventsIgnored``) and acknowledged (never retried).

The findings of one batch go to Security Hub together (`SecurityHubImporter`: 100 per request, with its
throttling/``FailedFindings`` retry). Powertools' `BatchProcessor` then reports each message whose finding still
failed (``batchItemFailures``): SQS hands only those out again and, after the queue's receive limit, moves them
to its dead-letter queue. The ASFF ``Id`` is deterministic and ``UpdatedAt`` is the finding's ``last_seen``, so
a redelivered or replayed message changes nothing.

Environment: ``SECURITYHUB_PRODUCT_ARN`` (optional), ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_SERVICE_NAME``;
the client takes the standard variables (``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from eksight.adapters import TRACED_MODULES
from eksight.adapters.botocore_session import botocore_session
from eksight.adapters.retry import Backoff
from eksight.adapters.securityhub import ImportFailed, SecurityHubImporter, product_account
from eksight.core.finding_formats import FINDINGS_DETAIL_TYPE, FINDINGS_SOURCE, default_product_arn, finding_from_detail
from eksight.core.findings import Finding


@dataclass(frozen=True)
class ForwarderSettings:
    product_arn: str | None = None
    """The product ARN findings are imported under; None: this account's default, from the function's ARN."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ForwarderSettings:
        return cls(product_arn=environ.get("SECURITYHUB_PRODUCT_ARN") or None)


class NotImported(RuntimeError):
    """This message's finding is not in Security Hub after the importer's retries."""


logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=TRACED_MODULES)

settings = ForwarderSettings.from_environ(os.environ)
securityhub = boto3.Session(botocore_session=botocore_session()).client("securityhub")
backoff = Backoff()  # the importer's retry of throttled calls and failed findings (tests replace its sleep)


def product_arn_for(function_arn: str) -> str:
    """``arn:<partition>:lambda:<region>:<account>:function:<name>`` → this account's default product ARN."""
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda":
        raise ValueError(f"not a Lambda function ARN: {function_arn!r}")
    return default_product_arn(parts[1], parts[3], parts[4])


def foreign_reason(event: Mapping[str, Any], account: str, region: str) -> str | None:
    """Why `event` is not an eksight finding of this account and region (None: it is one)."""
    if event.get("source") != FINDINGS_SOURCE or event.get("detail-type") != FINDINGS_DETAIL_TYPE:
        return "not an eksight finding"
    if event.get("account") != account or event.get("region") != region:
        return f"from account {event.get('account')} in {event.get('region')}, not this forwarder's"
    return None


def _findings_of(
    records: list[SQSRecord], account: str, region: str
) -> tuple[dict[str, Finding], dict[str, list[str]]]:
    """The batch's findings by id (the latest ``last_seen`` of a finding that appears twice), and which
    messages carry each id. A malformed finding detail raises: the whole batch is retried, then dead-lettered."""
    latest: dict[str, Finding] = {}
    messages: dict[str, list[str]] = {}
    for record in records:
        event = json.loads(record.body)
        reason = foreign_reason(event, account, region)
        if reason:
            logger.warning(
                "ignoring an event that is not an eksight finding of this account and region",
                extra={
                    "reason": reason,
                    "source": event.get("source"),
                    "detail_type": event.get("detail-type"),
                    "account": event.get("account"),
                    "region": event.get("region"),
                    "event_id": event.get("id"),
                },
            )
            metrics.add_metric(name="ForeignEventsIgnored", unit=MetricUnit.Count, value=1)
            continue
        finding = finding_from_detail(event.get("detail") or {})
        if finding.id not in latest or finding.last_seen > latest[finding.id].last_seen:
            latest[finding.id] = finding
        messages.setdefault(finding.id, []).append(record.message_id)
    return latest, messages


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    product_arn = settings.product_arn or product_arn_for(context.invoked_function_arn)
    _, region, account = product_account(product_arn)
    importer = SecurityHubImporter(securityhub, product_arn, backoff=backoff)
    records = [SQSRecord(raw) for raw in event.get("Records", [])]
    findings, messages = _findings_of(records, account, region)

    asff = {finding_id: importer.to_asff(finding) for finding_id, finding in findings.items()}
    failed_ids: set[str] = set()
    try:
        result = importer.import_asff(asff.values())
        imported, requests = result.imported, result.requests
    except ImportFailed as failure:
        logger.error("findings not imported into Security Hub", extra={"reasons": dict(failure.result.reasons)})
        failed_ids = set(failure.result.failed_ids)
        imported, requests = failure.result.imported, failure.result.requests
        metrics.add_metric(name="ForwardFailures", unit=MetricUnit.Count, value=failure.result.failed)
    metrics.add_metric(name="FindingsImported", unit=MetricUnit.Count, value=imported)
    logger.info(
        "batch forwarded",
        extra={"messages": len(records), "findings": len(findings), "imported": imported, "requests": requests},
    )

    failed_messages = {
        message_id for finding_id, ids in messages.items() if asff[finding_id]["Id"] in failed_ids for message_id in ids
    }

    def record_handler(record: SQSRecord) -> None:
        # The import already ran for the whole batch; this only tells the processor which messages failed.
        if record.message_id in failed_messages:
            raise NotImported(record.message_id)

    return process_partial_response(
        event=event,
        record_handler=record_handler,
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )


handler = lambda_handler  # the name the stack configures (handler.handler)
