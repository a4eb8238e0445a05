"""Import findings into Security Hub (CSPM) as ASFF.

``BatchImportFindings`` takes at most 100 findings per call (`asff_batches`) and reports per-finding failures in
``FailedFindings``; only those are sent again, after a bounded exponential backoff with jitter. A throttled call
(10 TPS per account and Region, burst 30: ``TooManyRequestsException``/``ThrottlingException``/
``LimitExceededException``) or a 5xx is retried whole the same way. Findings whose failure cannot change on retry
(``InvalidInput``, ``FindingSizeExceeded``, ``InvalidAccess``...) are not retried. `import_findings` raises
`ImportFailed` when anything is left unimported, so the trigger (EventBridge) retries or dead-letters the event.

Findings keep a deterministic ASFF ``Id`` and carry ``UpdatedAt`` = the finding's ``last_seen``, so a finding
that grew (more events in its window) updates the same Security Hub finding with a later ``UpdatedAt``, and a
re-sent identical one is a no-op.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from eksight.adapters.retry import Backoff, Pending, error_code, is_transient, retry_failed
from eksight.core.finding_formats import asff_batches, to_asff
from eksight.core.findings import Finding

SECURITYHUB_THROTTLING = frozenset({"LimitExceededException"})
PERMANENT_ERRORS = frozenset(
    {
        "InvalidInput",
        "InvalidInputException",
        "FindingSizeExceeded",
        "InvalidAccess",
        "InvalidAccessException",
        "AccessDeniedException",
    }
)


@dataclass
class ImportResult:
    imported: int = 0
    failed: int = 0
    requests: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    """``ErrorCode: ErrorMessage`` → findings that finally failed with it."""
    failed_ids: list[str] = field(default_factory=list)


class ImportFailed(RuntimeError):
    def __init__(self, result: ImportResult) -> None:
        super().__init__(
            f"{result.failed} of {result.imported + result.failed} findings not imported into Security "
            f"Hub: {'; '.join(f'{reason} ({n})' for reason, n in sorted(result.reasons.items()))}"
        )
        self.result = result


def product_account(product_arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of ``arn:<partition>:securityhub:<region>:<account>:product/...``."""
    parts = product_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "securityhub":
        raise ValueError(f"not a Security Hub product ARN: {product_arn!r}")
    return parts[1], parts[3], parts[4]


class SecurityHubImporter:
    def __init__(self, client: Any, product_arn: str, *, backoff: Backoff | None = None) -> None:
        self.client = client
        self.product_arn = product_arn
        self.partition, self.region, self.account = product_account(product_arn)
        self.backoff = backoff or Backoff()

    def to_asff(self, finding: Finding) -> dict[str, Any]:
        # BatchImportFindings with the default product ARN must be called by the account in AwsAccountId; the
        # finding's own account (its cluster's) is used when it has one, so a mismatch fails loudly.
        return to_asff(
            finding,
            product_arn=self.product_arn,
            aws_account_id=finding.account or self.account,
            partition=self.partition,
        )

    def import_findings(self, findings: Iterable[Finding]) -> ImportResult:
        return self.import_asff(self.to_asff(finding) for finding in findings)

    def import_asff(self, findings: Iterable[dict[str, Any]]) -> ImportResult:
        result = ImportResult()
        for batch in asff_batches(findings):
            self._send(batch, result)
        if result.failed:
            raise ImportFailed(result)
        return result

    def _send(self, batch: Sequence[dict[str, Any]], result: ImportResult) -> None:
        def batch_import(findings: list[dict[str, Any]]) -> list[Pending[dict[str, Any]]]:
            result.requests += 1
            response = self.client.batch_import_findings(Findings=findings)
            failures = {f.get("Id", ""): f for f in response.get("FailedFindings", [])}
            retry = []
            for finding in findings:
                failure = failures.get(finding["Id"])
                if failure is None:
                    result.imported += 1
                    continue
                code = failure.get("ErrorCode", "UnknownError")
                reason = f"{code}: {failure.get('ErrorMessage', '')}".rstrip(": ")
                if code in PERMANENT_ERRORS:
                    _failed(result, finding["Id"], reason)
                else:
                    retry.append(Pending(finding, reason))
            return retry

        for left in retry_failed(batch_import, batch, self.backoff, retry_error=_transient_reason):
            _failed(result, left.item["Id"], left.reason or "UnknownError")


def _transient_reason(error: ClientError) -> str | None:
    if not is_transient(error, SECURITYHUB_THROTTLING):
        return None
    return f"{error_code(error)}: {error.response.get('Error', {}).get('Message', '')}".rstrip(": ")


def _failed(result: ImportResult, finding_id: str, reason: str) -> None:
    result.failed += 1
    result.reasons[reason] += 1
    result.failed_ids.append(finding_id)
