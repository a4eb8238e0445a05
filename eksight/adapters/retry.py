"""Bounded exponential backoff with full jitter, shared by the adapters (sleep and randomness injectable)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
        delay = self.random() * min(self.cap, self.base * 2 ** (retry - 1))
        self.sleep(delay)
        return delay


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def is_transient(error: ClientError, extra_codes: frozenset[str] = frozenset()) -> bool:
    """Throttling or a server-side (5xx) failure: worth another try after a pause."""
    status: Any = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(error) in THROTTLING_CODES | extra_codes or (isinstance(status, int) and status >= 500)
