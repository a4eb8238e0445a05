"""Retrying AWS batch calls: bounded exponential backoff with full jitter, shared by the adapters.

`retry_failed` is the one loop behind PutEvents (EventBridge), BatchImportFindings (Security Hub) and BatchGetItem
(DynamoDB): send a batch, send again only what the answer says failed, pause before each retry, stop after
`Backoff.attempts` calls and hand back what is still pending. Each adapter keeps its own error vocabulary: its
`send` decides what counts as done, as failed for good, or as worth another try (and why).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
    }
)

Item = TypeVar("Item")


@dataclass(frozen=True)
class Backoff:
    """`attempts` calls in all (the first included); before retry n, sleep a uniform random time in
    [0, min(cap, base · 2^(n-1))] ("full jitter"). Defaults: 5 calls, at most 0.2+0.4+0.8+1.6 = 3 s of sleep."""

    attempts: int = 5
    base: float = 0.2
    cap: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Backoff.attempts must be at least 1")

    def wait(self, retry: int) -> float:
        """Sleep before retry number `retry` (1 = the first retry); returns the time slept."""
        delay = self.random() * min(self.cap, self.base * 2.0 ** (retry - 1))
        self.sleep(delay)
        return delay


@dataclass(frozen=True)
class Pending(Generic[Item]):
    """An item still to send, and why its last attempt failed."""

    item: Item
    reason: str


def retry_failed(
    send: Callable[[list[Item]], Sequence[Pending[Item]]],
    items: Sequence[Item],
    backoff: Backoff,
    *,
    retry_error: Callable[[ClientError], str | None] = lambda _error: None,
) -> list[Pending[Item]]:
    """Call `send` with `items`, then with only the ones it returned, until none are left or `backoff.attempts`
    calls were made; returns what is still pending (empty: all done). `send` settles the items it does not return
    (done, or failed for good). A `ClientError` from `send` retries all of its items when `retry_error` gives a
    reason for it (throttling, 5xx) and is raised otherwise."""
    pending = [Pending(item, "") for item in items]
    for attempt in range(1, backoff.attempts + 1):
        if not pending:
            break
        if attempt > 1:
            backoff.wait(attempt - 1)
        batch = [entry.item for entry in pending]
        try:
            pending = list(send(batch))
        except ClientError as error:
            reason = retry_error(error)
            if reason is None:
                raise
            pending = [Pending(item, reason) for item in batch]
    return pending


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: ClientError, extra_codes: frozenset[str] = frozenset()) -> bool:
    """Throttling or a server-side (5xx) failure: worth another try after a pause."""
    status: Any = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in THROTTLING_CODES | extra_codes or (isinstance(status, int) and status >= 500)
