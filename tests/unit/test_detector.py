"""The pipeline: one request counted once across its stages, bad records quarantined with their reason,
event time falling back to the CloudWatch timestamp."""

from __future__ import annotations

import json
from typing import Any

from eksight.core import detector as detector_module
from eksight.core.decode import Quarantined, RawEvent, SourceContext
from eksight.core.detector import Detector


def record(
    audit_id: str,
    stage: str = "ResponseComplete",
    subresource: str = "exec",
    *,
    time: str | None = "2024-09-10T10:00:00.000000Z",
    log_time_ms: int | None = None,
) -> RawEvent:
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": audit_id,
        "stage": stage,
        "verb": "create",
        "requestURI": "/api/v1/namespaces/kube-system/pods/coredns-1/exec?command=sh&container=c",
        "user": {"username": "alice"},
        "sourceIPs": ["198.51.100.1"],
        "objectRef": {"resource": "pods", "namespace": "kube-system", "name": "coredns-1", "subresource": subresource},
        "responseStatus": {"code": 101},
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    if time:
        event["requestReceivedTimestamp"] = time
    return RawEvent(
        json.dumps(event).encode(), SourceContext(cluster="prod", account="1", region="r"), "test", 0, log_time_ms
    )


def test_an_exec_is_detected_at_response_started_and_counted_once() -> None:
    detector = Detector().run([record("x", "ResponseStarted"), record("x", "ResponseComplete")])
    assert (detector.stats.events, detector.stats.duplicates) == (1, 1)
    assert {f.rule_id for f in detector.findings()} == {"EKS-111"}  # exec into kube-system
    assert all(f.count == 1 and f.evidence == ["x"] for f in detector.findings())


def test_non_final_stages_of_other_requests_are_skipped_and_counted() -> None:
    detector = Detector().run([record("w", "ResponseStarted", subresource=""), record("r", "RequestReceived")])
    assert detector.stats.events == 0
    assert detector.stats.skipped == {"stage_ResponseStarted": 1, "stage_RequestReceived": 1}


def test_records_that_are_not_audit_events_are_quarantined_with_a_reason() -> None:
    bad = RawEvent(b'{"kind": "Pod"}', SourceContext(), "file.json", 42, None)
    broken = RawEvent(b'{"kind": "Event", "auditID": ', SourceContext(), "file.json", 99, None)
    detector = Detector().run([bad, broken, Quarantined("f.gz", 7, "truncated_gzip", "cut", b"")])
    assert detector.stats.quarantined == {"not_audit_event": 1, "invalid_json": 1, "truncated_gzip": 1}
    assert [(q.source, q.offset) for q in detector.quarantined] == [("file.json", 42), ("file.json", 99), ("f.gz", 7)]


def test_an_unparseable_timestamp_is_quarantined_not_detected_on() -> None:
    detector = Detector().run([record("bad", time="yesterday at noon")])
    assert detector.stats.quarantined == {"invalid_timestamp": 1} and not detector.findings()


def test_event_time_falls_back_to_the_cloudwatch_timestamp() -> None:
    detector = Detector().run([record("t", time=None, log_time_ms=1_726_000_000_000)])
    assert detector.findings()[0].first_seen == 1_726_000_000.0


def test_kept_quarantine_is_bounded_but_counts_stay_exact(monkeypatch: Any) -> None:
    monkeypatch.setattr(detector_module, "QUARANTINE_KEPT", 3)
    detector = Detector().run([Quarantined("f", i, "invalid_json", "x", b"") for i in range(10)])
    assert detector.stats.quarantined == {"invalid_json": 10} and len(detector.quarantined) == 3
