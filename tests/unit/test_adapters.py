"""The AWS adapters' batching and retry logic, at the boundary: real botocore clients with `Stubber` (the service's
answers are scripted, our code is not). Sleeps are recorded instead of slept."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, IncompleteReadError
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from eksight.adapters.eventbridge import FindingPublisher, PublishError, request_batches
from eksight.adapters.retry import Backoff, Pending, error_code, is_transient, retry_failed
from eksight.adapters.s3 import FindingArchiveWriter, QuarantineWriter, S3ObjectReader
from eksight.core.archive_layout import findings_key, quarantine_key
from eksight.core.archive_object import ObjectUnreadable, process_object
from eksight.core.decode import Quarantined
from eksight.core.finding_formats import entry_size
from eksight.core.findings import Finding, ResourceRef, Severity

BUS = "eksight-findings"


def finding(n: int, **changes: Any) -> Finding:
    values: dict[str, Any] = dict(
        id=f"{n:032x}",
        type="Execution:Kubernetes/ExecInKubeSystemPod",
        severity=Severity.HIGH,
        title=f"exec #{n}",
        description="exec into a kube-system pod",
        detector="rule",
        rule_id="EKS-301",
        cluster="prod",
        account="111122223333",
        region="eu-west-1",
        principal={"name": "alice", "kind": "iam-role", "key": "iam:arn:aws:iam::111122223333:role/dev"},
        first_seen=1_700_000_000.0 + n,
        last_seen=1_700_000_100.0 + n,
        count=1,
        evidence=[f"audit-{n}"],
        resources=[ResourceRef("kube-system", "pods/exec", f"coredns-{n}")],
    )
    values.update(changes)
    return Finding(**values)


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def backoff(attempts: int = 5) -> tuple[Backoff, Sleeps]:
    sleeps = Sleeps()
    return Backoff(attempts=attempts, base=0.2, cap=5.0, sleep=sleeps, random=lambda: 1.0), sleeps


@pytest.fixture
def events() -> Any:
    return boto3.client("events", region_name="eu-west-1")


def ok(entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {"FailedEntryCount": 0, "Entries": [{"EventId": f"e-{i}"} for i in range(len(entries))]}


def detail_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [json.loads(entry["Detail"])["id"] for entry in entries]


# ---- FindingPublisher -------------------------------------------------------------------------------------------


def test_only_the_failed_entries_are_sent_again(events: Any) -> None:
    policy, sleeps = backoff()
    publisher = FindingPublisher(events, BUS, backoff=policy)
    findings = [finding(n) for n in range(12)]
    entries = publisher.entries(findings)
    first, second = entries[:10], entries[10:]
    failing = {3, 7}
    answer = {
        "FailedEntryCount": 2,
        "Entries": [
            {"ErrorCode": "ThrottlingException" if i == 3 else "InternalFailure", "ErrorMessage": "try again"}
            if i in failing
            else {"EventId": f"e-{i}"}
            for i in range(10)
        ],
    }
    with Stubber(events) as stub:
        stub.add_response("put_events", answer, {"Entries": first})
        stub.add_response("put_events", ok([first[3], first[7]]), {"Entries": [first[3], first[7]]})
        stub.add_response("put_events", ok(second), {"Entries": second})

        result = publisher.publish(findings)

        stub.assert_no_pending_responses()
    assert (result.published, result.failed, result.requests) == (12, 0, 3)
    assert detail_ids([first[3], first[7]]) == [findings[3].id, findings[7].id]
    assert sleeps.slept == [0.2]  # one backoff, before the retry of the two


def test_permanent_entry_errors_are_not_retried_and_raise(events: Any) -> None:
    policy, sleeps = backoff()
    publisher = FindingPublisher(events, BUS, backoff=policy)
    findings = [finding(n) for n in range(3)]
    entries = publisher.entries(findings)
    answer = {
        "FailedEntryCount": 2,
        "Entries": [
            {"EventId": "e-0"},
            {"ErrorCode": "MalformedDetail", "ErrorMessage": "bad"},
            {"ErrorCode": "InternalFailure", "ErrorMessage": "oops"},
        ],
    }
    with Stubber(events) as stub:
        stub.add_response("put_events", answer, {"Entries": entries})
        stub.add_response("put_events", ok([entries[2]]), {"Entries": [entries[2]]})

        with pytest.raises(PublishError, match=r"1 of 3 findings not published.*MalformedDetail=1") as raised:
            publisher.publish(findings)

        stub.assert_no_pending_responses()
    assert raised.value.result.failed_ids == [findings[1].id]
    assert raised.value.result.published == 2
    assert sleeps.slept == [0.2]  # one retry, for the InternalFailure entry only


def test_retries_are_bounded_with_exponential_backoff(events: Any) -> None:
    policy, sleeps = backoff(attempts=4)
    publisher = FindingPublisher(events, BUS, backoff=policy)
    [entry] = publisher.entries([finding(1)])
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "down"}]}
    with Stubber(events) as stub:
        for _ in range(4):
            stub.add_response("put_events", failed, {"Entries": [entry]})

        with pytest.raises(PublishError) as raised:
            publisher.publish([finding(1)])

        stub.assert_no_pending_responses()
    assert sleeps.slept == [0.2, 0.4, 0.8]  # full jitter with random() = 1: the caps themselves
    assert (raised.value.result.requests, dict(raised.value.result.errors)) == (4, {"InternalFailure": 1})


def test_jitter_stays_under_the_cap() -> None:
    delays = [Backoff(base=0.2, cap=1.0, sleep=lambda _s: None, random=lambda: 0.999).wait(n) for n in range(1, 8)]
    assert all(0 <= d <= 1.0 for d in delays) and delays[-1] == pytest.approx(0.999)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


def test_retry_failed_sends_only_what_failed_until_done() -> None:
    policy, sleeps = backoff()
    calls: list[list[str]] = []
    still_failing = {"b": 2, "c": 1}  # how many more calls each item fails

    def send(items: list[str]) -> list[Pending[str]]:
        calls.append(items)
        for item in items:
            still_failing[item] = still_failing.get(item, 0) - 1
        return [Pending(item, f"{item} throttled") for item in items if still_failing[item] >= 0]

    assert retry_failed(send, ["a", "b", "c"], policy) == []
    assert calls == [["a", "b", "c"], ["b", "c"], ["b"]]
    assert sleeps.slept == [0.2, 0.4]  # full jitter at its top (random = 1.0): base, then doubled


def test_retry_failed_is_bounded_and_returns_the_last_reasons() -> None:
    policy, sleeps = backoff(attempts=3)
    calls: list[list[int]] = []

    def send(items: list[int]) -> list[Pending[int]]:
        calls.append(items)
        return [Pending(item, f"attempt {len(calls)}") for item in items if item % 2]

    assert retry_failed(send, [1, 2, 3], policy) == [Pending(1, "attempt 3"), Pending(3, "attempt 3")]
    assert calls == [[1, 2, 3], [1, 3], [1, 3]]
    assert sleeps.slept == [0.2, 0.4]
    assert retry_failed(send, [], policy) == [] and len(calls) == 3  # nothing to send: no call


def test_retry_failed_retries_transient_errors_whole_and_raises_the_others() -> None:
    policy, sleeps = backoff()
    answers: list[Exception | None] = [client_error("ThrottlingException"), client_error("InternalError", 500), None]

    def send(items: list[str]) -> list[Pending[str]]:
        answer = answers.pop(0)
        if answer is not None:
            raise answer
        return []

    def transient(error: ClientError) -> str | None:
        return error_code(error) if is_transient(error) else None

    assert retry_failed(send, ["a", "b"], policy, retry_error=transient) == [] and answers == []
    assert len(sleeps.slept) == 2

    answers[:] = [client_error("ThrottlingException")] * 5
    assert retry_failed(send, ["a"], backoff(attempts=2)[0], retry_error=transient) == [
        Pending("a", "ThrottlingException")
    ]
    answers[:] = [client_error("AccessDeniedException")]
    with pytest.raises(ClientError, match="AccessDeniedException"):
        retry_failed(send, ["a"], policy, retry_error=transient)
    answers[:] = [client_error("ThrottlingException")]
    with pytest.raises(ClientError):  # without retry_error, every client error is the caller's
        retry_failed(send, ["a"], policy)


def test_throttled_requests_are_retried_whole_and_other_errors_raise(events: Any) -> None:
    policy, sleeps = backoff()
    publisher = FindingPublisher(events, BUS, backoff=policy)
    entries = publisher.entries([finding(1), finding(2)])
    with Stubber(events) as stub:
        stub.add_client_error(
            "put_events", "ThrottlingException", "Rate exceeded", 400, expected_params={"Entries": entries}
        )
        stub.add_response("put_events", ok(entries), {"Entries": entries})
        assert publisher.publish([finding(1), finding(2)]).published == 2

        stub.add_client_error("put_events", "ResourceNotFoundException", "no such bus", 400)
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            publisher.publish([finding(1)])
    assert sleeps.slept == [0.2]


def test_nothing_to_publish_makes_no_call(events: Any) -> None:
    with Stubber(events) as stub:
        assert FindingPublisher(events, BUS).publish([]).requests == 0
        stub.assert_no_pending_responses()


def test_requests_stay_within_ten_entries_and_256_kb(events: Any) -> None:
    publisher = FindingPublisher(events, BUS)
    small = publisher.entries([finding(n) for n in range(23)])
    assert [len(b) for b in request_batches(small)] == [10, 10, 3]
    big = publisher.entries([finding(n, description="x" * 1000, details={"blob": "y" * 100_000}) for n in range(5)])
    batches = list(request_batches(big))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert all(sum(entry_size(e) for e in batch) <= 256 * 1024 for batch in batches)
    assert [e for batch in batches for e in batch] == big  # order kept, nothing lost


# ---- S3 ------------------------------------------------------------------------------------------------------


def test_quarantine_key_mirrors_the_archive_partitions() -> None:
    key = "audit/account=1/region=eu-west-1/cluster=prod/year=2026/month=11/day=26/hour=16/stream-1-2026.gz"
    assert quarantine_key(key) == (
        "quarantine/account=1/region=eu-west-1/cluster=prod/year=2026/month=11/day=26/"
        "hour=16/stream-1-2026.gz.quarantine.jsonl.gz"
    )


def test_quarantine_writer_writes_gzip_json_lines_with_counts() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    records = [
        Quarantined("s3://b/audit/x", 10, "invalid_json", "bad", b"{oops\xff"),
        Quarantined("s3://b/audit/x", 99, "truncated_gzip", "cut", b""),
    ]
    with Stubber(s3) as stub:
        stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "archive",
                "Key": "quarantine/x.quarantine.jsonl.gz",
                "Body": ANY,
                "ContentType": "application/x-ndjson",
                "Metadata": {
                    "eksight-source-key": "audit/x",
                    "eksight-records": "12",
                    "eksight-kept": "2",
                    "eksight-reasons": "invalid_json=11,truncated_gzip=1",
                },
            },
        )
        captured: dict[str, Any] = {}
        s3.meta.events.register("provide-client-params.s3.PutObject", lambda params, **_: captured.update(params))
        key = QuarantineWriter(s3, "archive").write("audit/x", records, {"invalid_json": 11, "truncated_gzip": 1})
    assert key == "quarantine/x.quarantine.jsonl.gz"
    lines = [json.loads(line) for line in gzip.decompress(captured["Body"]).splitlines()]
    assert lines == [
        {"source": "s3://b/audit/x", "offset": 10, "reason": "invalid_json", "detail": "bad", "sample": "{oops\\xff"},
        {"source": "s3://b/audit/x", "offset": 99, "reason": "truncated_gzip", "detail": "cut", "sample": ""},
    ]


def test_findings_key_keeps_the_archive_hour_and_names_the_cluster() -> None:
    key = "audit/account=1/region=eu-west-1/cluster=prod/year=2026/month=11/day=26/hour=16/stream-1-2026.gz"
    assert findings_key(key) == (
        "findings/year=2026/month=11/day=26/hour=16/1.eu-west-1.prod.stream-1-2026.gz.findings.jsonl.gz"
    )
    assert findings_key("audit/x") == "findings/x.findings.jsonl.gz"  # a key without partitions keeps its path


def test_finding_archive_writer_writes_every_finding_as_gzip_json_lines() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    findings = [finding(1), finding(2, severity=Severity.INFORMATIONAL)]
    with Stubber(s3) as stub:
        stub.add_response(
            "put_object",
            {},
            {
                "Bucket": "archive",
                "Key": "findings/x.findings.jsonl.gz",
                "Body": ANY,
                "ContentType": "application/x-ndjson",
                "Metadata": {"eksight-source-key": "audit/x", "eksight-findings": "2"},
            },
        )
        captured: dict[str, Any] = {}
        s3.meta.events.register("provide-client-params.s3.PutObject", lambda params, **_: captured.update(params))
        assert FindingArchiveWriter(s3, "archive").write("audit/x", findings) == "findings/x.findings.jsonl.gz"
        assert FindingArchiveWriter(s3, "archive").write("audit/y", []) is None  # nothing to write: no request
        stub.assert_no_pending_responses()
    rows = [json.loads(line) for line in gzip.decompress(captured["Body"]).splitlines()]
    assert [(r["id"], r["severity"]) for r in rows] == [(findings[0].id, "HIGH"), (findings[1].id, "INFORMATIONAL")]
    assert rows[0]["title"] == findings[0].title and rows[0]["evidence"] == findings[0].evidence


class _BreaksAfter(io.RawIOBase):
    """A socket that delivers `good` bytes, then fails the way botocore reports a short read."""

    def __init__(self, good: bytes) -> None:
        self.good = io.BytesIO(good)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.good.read(size)
        if data:
            return data
        raise IncompleteReadError(actual_bytes=len(self.good.getvalue()), expected_bytes=10**9)


class _Recorder:
    def __init__(self) -> None:
        self.published: list[Finding] = []

    def publish(self, findings: list[Finding]) -> None:
        self.published.extend(findings)


def test_a_read_failure_mid_object_publishes_nothing_and_raises() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    event = json.dumps(
        {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "auditID": "a-1",
            "stage": "ResponseComplete",
            "verb": "create",
            "requestURI": "/api/v1/namespaces/kube-system/pods/p/exec?command=sh",
            "objectRef": {"resource": "pods", "namespace": "kube-system", "name": "p", "subresource": "exec"},
            "stageTimestamp": "2026-11-26T10:00:00.000000Z",
            "user": {"username": "alice"},
        }
    ).encode()
    good = gzip.compress(event + b"\n" * 3_000_000)  # more than one read chunk before the failure
    body = StreamingBody(_BreaksAfter(good), 10**9)
    publisher = _Recorder()
    with Stubber(s3) as stub:
        stub.add_response("get_object", {"Body": body}, {"Bucket": "archive", "Key": "audit/x.gz", "VersionId": "v1"})
        with pytest.raises(ObjectUnreadable, match="IncompleteReadError"):
            process_object(S3ObjectReader(s3, "archive"), "audit/x.gz", version_id="v1", publisher=publisher)
    assert publisher.published == []


def test_a_missing_object_raises_the_client_error() -> None:
    s3 = boto3.client("s3", region_name="eu-west-1")
    with Stubber(s3) as stub:
        stub.add_client_error("get_object", "NoSuchKey", "The specified key does not exist.", 404)
        with pytest.raises(ClientError, match="NoSuchKey"):
            process_object(S3ObjectReader(s3, "archive"), "audit/gone.gz", publisher=_Recorder())


# ---- the pipeline with local files (what a local demo or replay of archive objects uses) ----------------------


def test_process_object_over_a_local_archive_object(tmp_path: Any) -> None:
    from eksight.core.archive_object import JsonLinesPublisher, LocalFileReader

    key = "audit/account=111122223333/region=eu-west-1/cluster=prod/year=2026/month=11/day=26/hour=10/d-1.gz"
    exec_event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "a-1",
        "stage": "ResponseComplete",
        "verb": "create",
        "requestURI": "/api/v1/namespaces/kube-system/pods/coredns/exec?command=sh",
        "objectRef": {"resource": "pods", "namespace": "kube-system", "name": "coredns", "subresource": "exec"},
        "responseStatus": {"code": 101},
        "annotations": {"authorization.k8s.io/decision": "allow"},
        "stageTimestamp": "2026-11-26T10:00:00.000000Z",
        "user": {"username": "alice"},
    }
    path = tmp_path / key
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(json.dumps(exec_event).encode() + b"\nnot json\n"))
    sink = io.BytesIO()

    result = process_object(LocalFileReader(tmp_path), key, publisher=JsonLinesPublisher(sink))

    published = [json.loads(line) for line in sink.getvalue().splitlines()]
    assert result.published == len(published) >= 1 and result.events == 1
    assert result.quarantined == {"invalid_json": 1}
    assert {(f["cluster"], f["account"], f["region"]) for f in published} == {("prod", "111122223333", "eu-west-1")}
    assert result.newest_event_time == datetime(2026, 11, 26, 10, tzinfo=UTC).timestamp()
