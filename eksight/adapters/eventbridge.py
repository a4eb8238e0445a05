"""Publish findings to an EventBridge bus.

PutEvents takes at most 10 entries and 256 KB per request; a request can succeed while some of its entries
fail (``FailedEntryCount``, per-entry ``ErrorCode``). Only the failed entries are sent again, after a bounded
exponential backoff with jitter; entries whose error AWS documents as non-retryable are not retried. If any
entry is still unpublished at the end, `publish` raises `PublishError` so the caller's SQS message is retried:
findings have deterministic ids, so publishing one again is safe (consumers dedupe on ``detail.id``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from eksight.adapters.retry import Backoff, Pending, error_code, is_transient, retry_failed
from eksight.core.finding_formats import (
    EVENTBRIDGE_MAX_BYTES,
    FINDINGS_DETAIL_TYPE,
    FINDINGS_SOURCE,
    entry_size,
    to_eventbridge_entry,
)
from eksight.core.findings import Finding

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = EVENTBRIDGE_MAX_BYTES
# PutEventsResultEntry.ErrorCode values AWS documents as non-retryable (retrying cannot help).
PERMANENT_ERRORS = frozenset(
    {
        "AccessDeniedException",
        "InvalidAccountIdException",
        "InvalidArgument",
        "MalformedDetail",
        "RedactionFailure",
        "NotAuthorizedForSourceException",
        "NotAuthorizedForDetailTypeException",
    }
)


@dataclass
class PublishResult:
    published: int = 0
    failed: int = 0
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    """Error code → entries that finally failed with it."""
    failed_ids: list[str] = field(default_factory=list)
    """Finding ids (``detail.id``) that were not published."""


class PublishError(RuntimeError):
    def __init__(self, result: PublishResult) -> None:
        super().__init__(
            f"{result.failed} of {result.published + result.failed} findings not published to "
            f"EventBridge ({', '.join(f'{code}={n}' for code, n in sorted(result.errors.items()))})"
        )
        self.result = result


def request_batches(
    entries: Iterable[dict[str, Any]], max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_REQUEST_BYTES
) -> Iterator[list[dict[str, Any]]]:
    """Consecutive groups of at most `max_entries` entries whose sizes (AWS's calculation) add up to at most
    `max_bytes`. Every entry must fit on its own (`to_eventbridge_entry` guarantees it)."""
    batch: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_bytes = entry_size(entry)
        if entry_bytes > max_bytes:
            raise ValueError(f"an entry of {entry_bytes} bytes exceeds the {max_bytes}-byte request limit")
        if batch and (len(batch) == max_entries or size + entry_bytes > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(entry)
        size += entry_bytes
    if batch:
        yield batch


class FindingPublisher:
    def __init__(
        self,
        client: Any,
        bus_name: str,
        *,
        source: str = FINDINGS_SOURCE,
        detail_type: str = FINDINGS_DETAIL_TYPE,
        backoff: Backoff | None = None,
    ) -> None:
        self.client = client
        self.bus_name = bus_name
        self.source = source
        self.detail_type = detail_type
        self.backoff = backoff or Backoff()

    def entries(self, findings: Iterable[Finding]) -> list[dict[str, Any]]:
        return [
            to_eventbridge_entry(finding, bus_name=self.bus_name, source=self.source, detail_type=self.detail_type)
            for finding in findings
        ]

    def publish(self, findings: Iterable[Finding]) -> PublishResult:
        """Publish every finding; raises `PublishError` (after trying them all) if any is still unpublished.
        A request-level error that is not throttling or a server error (no such bus, access denied) raises
        the `ClientError` at once."""
        result = PublishResult()
        for batch in request_batches(self.entries(findings)):
            self._send(batch, result)
        if result.failed:
            raise PublishError(result)
        return result

    def _send(self, batch: Sequence[dict[str, Any]], result: PublishResult) -> None:
        def put_events(entries: list[dict[str, Any]]) -> list[Pending[dict[str, Any]]]:
            result.requests += 1
            response = self.client.put_events(Entries=entries)
            outcomes = response.get("Entries", [])
            if not response.get("FailedEntryCount") and len(outcomes) == len(entries):
                result.published += len(entries)
                return []
            retry = []
            for index, entry in enumerate(entries):
                outcome = outcomes[index] if index < len(outcomes) else {"ErrorCode": "MissingResultEntry"}
                code = outcome.get("ErrorCode")
                if not code and outcome.get("EventId"):
                    result.published += 1
                elif code in PERMANENT_ERRORS:
                    _failed(result, entry, code)
                else:
                    retry.append(Pending(entry, code or "UnknownError"))
            return retry

        for left in retry_failed(put_events, batch, self.backoff, retry_error=_transient_code):
            _failed(result, left.item, left.reason)


def _transient_code(error: ClientError) -> str | None:
    return error_code(error) if is_transient(error) else None


def _failed(result: PublishResult, entry: dict[str, Any], code: str) -> None:
    result.failed += 1
    result.errors[code] += 1
    result.failed_ids.append(_detail_id(entry))


def _detail_id(entry: dict[str, Any]) -> str:
    try:
        return str(json.loads(entry["Detail"])["id"])
    except (KeyError, TypeError, ValueError):
        return "?"
