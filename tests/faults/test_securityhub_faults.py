"""A burst of findings through the stack's Security Hub queue and the real forwarder into moto's Security Hub, which
pushes back at the wire of the forwarder's own client (tests/faults/wire.py): throttling by a token bucket (Security
Hub's per-account rate, far lower here) and per-finding failures. Security Hub upserts by finding id, so "none
duplicated" is: as many Security Hub findings as distinct ids, each the one sent."""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

import pytest

from eksight.adapters.retry import Backoff
from eksight.core.archive_object import build_detector
from eksight.core.decode import context_from_key, decode_bytes
from eksight.core.finding_formats import to_eventbridge_entry
from eksight.core.findings import Finding
from tests.faults.pipeline import (
    ACCOUNT,
    DEV,
    REGION,
    Account,
    archive_key,
    firehose_object,
    forwarder,
    object_lines,
    queue_depth,
)
from tests.faults.wire import fail_entries, refuse

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DEV / "audit.jsonl.gz").exists(), reason="dev-scenarios dataset absent"),
]
BURST = 1000


@dataclass
class TokenBucket:
    """Security Hub's rate limit on a clock that only the forwarder's backoff (and the batching window) move."""

    rate: float  # calls per second
    burst: float
    now: float = 0.0
    tokens: float = 0.0
    updated: float = 0.0
    throttled: int = 0

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def over_limit(self, _params: dict[str, Any]) -> bool:
        self.tokens = min(self.burst, self.tokens + (self.now - self.updated) * self.rate)
        self.updated = self.now
        if self.tokens < 1:
            self.throttled += 1
            return True
        self.tokens -= 1
        return False


def burst_of_findings(count: int) -> list[Finding]:
    """`count` findings that differ only in their id: the highest-severity one of the dev object."""
    cluster, key = "burst", archive_key("burst")
    detector = build_detector().run(
        decode_bytes(firehose_object(cluster, object_lines(0)), source=key, defaults=context_from_key(key))
    )
    base = max(detector.findings(), key=lambda f: f.severity)
    run = secrets.token_hex(4)
    return [replace(base, id=f"{run}{n:024x}") for n in range(count)]


def bus_event(finding: Finding) -> dict[str, Any]:
    """The event EventBridge hands the Security Hub rule's queue for an entry the detector put on the bus."""
    entry = to_eventbridge_entry(finding, bus_name="eksight-findings")
    return {
        "version": "0",
        "id": secrets.token_hex(16),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT,
        "time": entry["Time"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


def test_a_burst_of_1000_findings_against_a_throttled_security_hub(
    account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, function = forwarder(account)
    hub = TokenBucket(rate=0.2, burst=1.0)
    refuse(module.securityhub, "BatchImportFindings", "TooManyRequestsException", hub.over_limit, status=429)
    tried: set[str] = set()

    def first_try_of_every_seventh(finding: dict[str, Any]) -> bool:
        fail = finding["Id"] not in tried and len(tried) % 7 == 0
        tried.add(finding["Id"])
        return fail

    refused = fail_entries(module.securityhub, "BatchImportFindings", "InternalFailure", first_try_of_every_seventh)
    monkeypatch.setattr(
        module, "backoff", Backoff(sleep=hub.sleep, random=lambda: 1.0)
    )  # the forwarder's documented seam
    window = account.resource("detection", "AWS::Lambda::EventSourceMapping", "SecurityHubForwarder")["Properties"][
        "MaximumBatchingWindowInSeconds"
    ]
    sent = burst_of_findings(BURST)
    sqs, queue = account.client("sqs"), account.outputs["SecurityHubQueueUrl"]
    unsent = iter(range(0, BURST, 10))

    def bus_delivers(messages: int) -> None:
        """EventBridge puts the burst into the queue while the forwarder drains it (moto's SQS slows down with
        every message it holds, so the test keeps a few hundred in flight rather than all 1,000)."""
        for start in itertools.islice(unsent, messages // 10):
            entries = [
                {"Id": str(n), "MessageBody": json.dumps(bus_event(f))} for n, f in enumerate(sent[start : start + 10])
            ]
            sqs.send_message_batch(QueueUrl=queue, Entries=entries)

    def batching_window() -> None:
        hub.sleep(window)
        bus_delivers(100)

    function.between_invocations = batching_window
    bus_delivers(200)

    forwarding = function.deliver()

    why = (
        f"invocations={forwarding.invocations} errors={forwarding.errors} timed_out={forwarding.timed_out} "
        f"metrics={forwarding.metrics} last error={forwarding.last_error} log tail={forwarding.stdout[-3000:]!r}"
    )
    assert hub.throttled > 0 and len(refused) > BURST / 8, f"Security Hub never pushed back, proving nothing: {why}"
    assert forwarding.failed, "no message needed a second receive: the burst was absorbed without the queue's help"
    assert queue_depth(account, queue) == 0
    assert queue_depth(account, account.outputs["SecurityHubDeadLetterQueueUrl"]) == 0  # 0 dead-lettered
    ids = {f.id for f in sent}
    stored = [
        f
        for page in account.client("securityhub").get_paginator("get_findings").paginate()
        for f in page["Findings"]
        if f["ProductFields"]["eksight/finding_id"] in ids
    ]
    assert len(stored) == len({f["Id"] for f in stored}) == BURST  # each finding once, none missing
    assert {f["ProductFields"]["eksight/finding_id"] for f in stored} == ids
    assert {(f["Title"], f["Severity"]["Label"]) for f in stored} == {(sent[0].title, sent[0].severity.name)}
    assert forwarding.metrics["FindingsImported"] >= BURST
