"""Security Hub forwarder: one eksight finding event (EventBridge rule target) → BatchImportFindings (ASFF).

Thin: rebuild the Finding from the event's ``detail`` (`eksight.core.finding_formats.finding_from_detail`), import it with
`SecurityHubImporter` under this account's default product ARN (``SECURITYHUB_PRODUCT_ARN`` when set, else derived
from the function's own ARN). The ASFF ``Id`` is deterministic and ``UpdatedAt`` is the finding's ``last_seen``, so
a finding re-published after it grew updates the same Security Hub finding, and a replayed event changes nothing.

Loop guard: Security Hub emits an EventBridge event (``aws.securityhub`` / ``Security Hub Findings - Imported``)
for every import; an event whose source or detail-type is not eksight's is logged, counted
(``ForeignEventsIgnored``) and dropped. A failed import raises, so EventBridge's asynchronous invocation retries
the event and then hands it to the function's dead-letter queue / on-failure destination.

Environment: ``SECURITYHUB_PRODUCT_ARN`` (optional), ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_SERVICE_NAME``;
the client takes the standard variables (``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from eksight.adapters.securityhub import SecurityHubImporter
from eksight.core.finding_formats import FINDINGS_DETAIL_TYPE, FINDINGS_SOURCE, default_product_arn, finding_from_detail


@dataclass(frozen=True)
class ForwarderSettings:
    product_arn: str | None = None
    """The product ARN findings are imported under; None: this account's default, from the function's ARN."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ForwarderSettings:
        return cls(product_arn=environ.get("SECURITYHUB_PRODUCT_ARN") or None)


logger = Logger()
metrics = Metrics()
tracer = Tracer()

settings = ForwarderSettings.from_environ(os.environ)
securityhub = boto3.client("securityhub")


def product_arn_for(function_arn: str) -> str:
    """``arn:<partition>:lambda:<region>:<account>:function:<name>`` → this account's default product ARN."""
    parts = function_arn.split(":")
    if len(parts) < 7 or parts[0] != "arn" or parts[2] != "lambda":
        raise ValueError(f"not a Lambda function ARN: {function_arn!r}")
    return default_product_arn(parts[1], parts[3], parts[4])


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source, detail_type = event.get("source"), event.get("detail-type")
    if source != FINDINGS_SOURCE or detail_type != FINDINGS_DETAIL_TYPE:
        logger.warning(
            "ignoring an event that is not an eksight finding",
            extra={"source": source, "detail_type": detail_type, "event_id": event.get("id")},
        )
        metrics.add_metric(name="ForeignEventsIgnored", unit=MetricUnit.Count, value=1)
        return {"imported": 0, "ignored": True}
    try:
        finding = finding_from_detail(event.get("detail") or {})
        product_arn = settings.product_arn or product_arn_for(context.invoked_function_arn)
        importer = SecurityHubImporter(securityhub, product_arn)
        result = importer.import_findings([finding])  # raises ImportFailed when Security Hub refused it
    except Exception:
        metrics.add_metric(name="ForwardFailures", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="FindingsImported", unit=MetricUnit.Count, value=result.imported)
    logger.info(
        "finding imported",
        extra={
            "finding_id": finding.id,
            "rule_id": finding.rule_id,
            "severity": finding.severity.name,
            "count": finding.count,
            "requests": result.requests,
        },
    )
    return {"imported": result.imported, "ignored": False}


handler = lambda_handler  # the name the stack configures (handler.handler)
