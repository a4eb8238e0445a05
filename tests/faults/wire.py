"""Faults at the wire of a boto3 client, through its own event hooks: our code sends its real requests and reads
what comes back; only the service's answer changes.

- `refuse`: the call gets an error response instead of reaching the emulator (``before-call`` answers it). The
  SDK's own retries are not involved, so one refused call stands for a fault that outlasted them.
- `fail_entries`: a batch call (PutEvents, BatchImportFindings) reaches the emulator without the entries picked
  to fail, and its answer reports those as failed, as the service does when part of a batch fails.
- `interrupt`: the call raises `LambdaTimedOut`, a BaseException that no handler catches: the invocation stops
  there, as when Lambda ends it at its timeout (nothing after that point runs, not even cleanup).
- `trickle`: GetObject bodies arrive slowly and stop the invocation once its deadline has passed: an object that
  cannot be read within the invocation's time.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

Params = dict[str, Any]


class LambdaTimedOut(BaseException):
    """The invocation was stopped mid-call (Lambda's timeout); raised past every `except Exception`."""


def _context_key() -> str:
    """Where one registered fault keeps its decision for a call, in botocore's per-call request context."""
    return f"eksight-tests-fault-{next(_faults)}"


_faults = itertools.count()


def _service(client: Any) -> str:
    return str(client.meta.service_model.service_id.hyphenize())


def refuse(
    client: Any, operation: str, code: str, when: Callable[[Params], bool], *, status: int = 400
) -> Counter[str]:
    """Answer `operation` with the error `code` whenever `when(params)` says so; returns a counter of refusals."""
    refused: Counter[str] = Counter()
    service, decision = _service(client), _context_key()

    def decide(params: Params, context: dict[str, Any], **_: Any) -> None:
        context[decision] = when(params)

    def answer(context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not context.get(decision):
            return None
        refused[code] += 1
        error = {"Code": code, "Message": f"injected by the fault-injection tests ({code})"}
        return AWSResponse("http://fault", status, {}, None), {
            "Error": error,
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}},
        }

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", decide)
    client.meta.events.register(f"before-call.{service}.{operation}", answer)
    return refused


def interrupt(client: Any, operation: str, when: Callable[[Params], bool]) -> None:
    """Stop the invocation (`LambdaTimedOut`) at the first call of `operation` for which `when(params)` holds."""
    service = _service(client)

    def stop(params: Params, **_: Any) -> None:
        if when(params):
            raise LambdaTimedOut(f"{service}.{operation}")

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", stop)


class SlowBody:
    """A GetObject body that trickles (`chunk` bytes per read, `pause` seconds each) and, once `deadline()` has
    passed, stops the invocation there (`LambdaTimedOut`): an object that cannot be read in time."""

    def __init__(self, body: Any, deadline: Callable[[], float], chunk: int = 256, pause: float = 0.05) -> None:
        self.body, self.deadline, self.chunk, self.pause = body, deadline, chunk, pause

    def read(self, size: int | None = None) -> bytes:
        time.sleep(self.pause)
        if time.time() > self.deadline():
            raise LambdaTimedOut("GetObject body read past the invocation's deadline")
        data: bytes = self.body.read(self.chunk if size is None or size < 0 else min(size, self.chunk))
        return data

    def close(self) -> None:
        self.body.close()


def trickle(client: Any, when: Callable[[Params], bool], deadline: Callable[[], float]) -> None:
    """GetObject bodies of the calls `when(params)` picks become `SlowBody`s."""
    service, decision = _service(client), _context_key()

    def decide(params: Params, context: dict[str, Any], **_: Any) -> None:
        context[decision] = when(params)

    def slow_down(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        if context.get(decision) and "Body" in parsed:
            parsed["Body"] = SlowBody(parsed["Body"], deadline)

    client.meta.events.register(f"before-parameter-build.{service}.GetObject", decide)
    client.meta.events.register(f"after-call.{service}.GetObject", slow_down)


# operation → (the request's list, the response's per-entry results, how they line up, the failed-count field)
BATCH_SHAPES = {
    "PutEvents": ("Entries", "Entries", "by-position", "FailedEntryCount"),
    "BatchImportFindings": ("Findings", "FailedFindings", "by-id", "FailedCount"),
}


def fail_entries(client: Any, operation: str, code: str, pick: Callable[[Any], bool]) -> list[Any]:
    """Requests of `operation` reach the emulator without the entries `pick` chooses; the answer reports each
    of those as failed with `code` (pick at least one entry to keep). Returns the entries reported failed so far."""
    request_list, response_list, alignment, failed_count = BATCH_SHAPES[operation]
    service, decision = _service(client), _context_key()
    failed: list[Any] = []

    def drop(params: Params, context: dict[str, Any], **_: Any) -> None:
        entries = params[request_list]
        dropped = [(index, entry) for index, entry in enumerate(entries) if pick(entry)]
        params[request_list] = [entry for entry in entries if not any(entry is d for _, d in dropped)]
        context[decision] = dropped

    def report(parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        dropped = context.get(decision) or []
        if not dropped or parsed.get("Error"):
            return
        outcome = {"ErrorCode": code, "ErrorMessage": "injected by the fault-injection tests"}
        results = list(parsed.get(response_list, []))
        if alignment == "by-position":
            for index, _entry in dropped:
                results.insert(index, dict(outcome))
        else:
            results += [{"Id": entry["Id"], **outcome} for _, entry in dropped]
        parsed[response_list] = results
        parsed[failed_count] = parsed.get(failed_count, 0) + len(dropped)
        failed.extend(entry for _, entry in dropped)

    client.meta.events.register(f"before-parameter-build.{service}.{operation}", drop)
    client.meta.events.register(f"after-call.{service}.{operation}", report)
    return failed


class Countdown:
    """A `when` that holds for calls number `start` … `start + times - 1` among those matching `matches`."""

    def __init__(self, start: int, times: int = 1, matches: Callable[[Params], bool] = lambda _params: True) -> None:
        self.start, self.times, self.matches = start, times, matches
        self.seen = 0

    def __call__(self, params: Params) -> bool:
        if not self.matches(params):
            return False
        self.seen += 1
        return self.start <= self.seen < self.start + self.times
