"""Hostile input: one audit event nested far deeper than any Kubernetes object quarantines only itself.

Before the limits, an event whose `requestObject` nested ~1,000 levels raised RecursionError past `parse_event`:
the detector Lambda's `process_object` raised (the object was retried and dead-lettered with no findings) and, in
JSON lines, the decoder recorded `internal_error` and stopped reading the file. Here the same objects go through
`eksight replay` (the click command) and `process_object` (with a MemoryStateStore for baselines, as the Lambda
has DynamoDB): the privileged pods on either side of the deep event are still found, and the deep event is the
one record quarantined, with reason ``nesting_too_deep``.

Objects are built the way the archive holds them: CloudWatch Logs subscription envelopes (one DATA_MESSAGE per
line after a CONTROL_MESSAGE), gzip, as Firehose writes them to S3; and plain JSON lines.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from eksight.core.archive_object import LocalFileReader, process_object
from eksight.core.decode import Quarantined
from eksight.core.findings import Finding
from eksight.core.state import MemoryStateStore
from eksight.tools.cli import main

CLUSTER, ACCOUNT = "prod-a", "111122223333"
KEY = f"audit/account={ACCOUNT}/region=eu-west-1/cluster={CLUSTER}/object.gz"
PRIVILEGED_CONTAINER = "EKS-301"


def pod_create(audit_id: str, pod: str, request_object: str | None = None) -> bytes:
    """A privileged pod created by kubectl, as the API server logs it at RequestResponse level; with
    ``request_object``, that JSON text replaces the pod as the request body."""
    pod_body = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": pod, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    event = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/default/pods",
        "verb": "create",
        "user": {"username": "alice", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.0.1"],
        "userAgent": "kubectl/v1.30.0",
        "objectRef": {"resource": "pods", "namespace": "default", "name": pod, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": 201},
        "requestObject": "BODY",
        "requestReceivedTimestamp": "2024-09-03T10:00:00.000000Z",
        "stageTimestamp": "2024-09-03T10:00:00.050000Z",
        "annotations": {"authorization.k8s.io/decision": "allow"},
    }
    text = json.dumps(event, separators=(",", ":"))
    return text.replace('"BODY"', request_object or json.dumps(pod_body, separators=(",", ":"))).encode()


def deep(depth: int, opener: str = '{"a":', closer: str = "}") -> str:
    return opener * depth + "1" + closer * depth


FIRST = pod_create("11111111-0000-4000-8000-000000000001", "first")
LAST = pod_create("11111111-0000-4000-8000-000000000003", "last")
DEEP_ID = "11111111-0000-4000-8000-000000000002"
HOSTILE = {
    "objects_5000_deep": pod_create(DEEP_ID, "deep", deep(5000)),
    "lists_5000_deep": pod_create(DEEP_ID, "deep", "[" * 5000 + "]" * 5000),
    "lists_100k_deep": pod_create(DEEP_ID, "deep", "[" * 100_000 + "]" * 100_000),
    "lists_100k_deep_unclosed": pod_create(DEEP_ID, "deep", "[" * 100_000),
}


def envelope(messages: Sequence[bytes]) -> bytes:
    return json.dumps(
        {
            "messageType": "DATA_MESSAGE",
            "owner": ACCOUNT,
            "logGroup": f"/aws/eks/{CLUSTER}/cluster",
            "logStream": "kube-apiserver-audit-0123456789abcdef",
            "subscriptionFilters": ["eksight-audit"],
            "logEvents": [
                {"id": str(i), "timestamp": 1725357600000 + i, "message": m.decode()} for i, m in enumerate(messages)
            ],
        }
    ).encode()


CONTROL = json.dumps(
    {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 1725357600000, "message": "CWL CONTROL MESSAGE: Checking health"}],
    }
).encode()


def firehose_object(events: Sequence[bytes], per_envelope: int) -> bytes:
    envelopes = [CONTROL] + [envelope(events[i : i + per_envelope]) for i in range(0, len(events), per_envelope)]
    return gzip.compress(b"\n".join(envelopes) + b"\n", mtime=0)


def json_lines(events: Sequence[bytes]) -> bytes:
    return b"\n".join(events) + b"\n"


LAYOUTS = {
    "one_envelope": lambda events: firehose_object(events, per_envelope=3),
    "envelope_each": lambda events: firehose_object(events, per_envelope=1),
    "json_lines": json_lines,
    "json_lines_gzip": lambda events: gzip.compress(json_lines(events), mtime=0),
}


def pods_flagged_privileged(findings: Sequence[Mapping[str, object]]) -> set[str]:
    return {
        str(resource["name"])  # type: ignore[index]
        for finding in findings
        if finding["rule_id"] == PRIVILEGED_CONTAINER
        for resource in finding["resources"]  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_replay_quarantines_only_the_deep_event(tmp_path: Path, layout: str, hostile: str) -> None:
    path = tmp_path / KEY
    path.parent.mkdir(parents=True)
    path.write_bytes(LAYOUTS[layout]([FIRST, HOSTILE[hostile], LAST]))
    out, rejected = tmp_path / "findings.jsonl", tmp_path / "rejected.jsonl"

    result = CliRunner().invoke(main, ["replay", str(path), "-o", str(out), "--quarantine", str(rejected)])

    assert result.exit_code == 0, result.output
    assert result.exception is None and "Traceback" not in result.output
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert pods_flagged_privileged(findings) == {"first", "last"}
    quarantined = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [q["reason"] for q in quarantined] == ["nesting_too_deep"], quarantined
    assert "quarantined: nesting_too_deep=1" in result.stderr


class ListPublisher:
    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def publish(self, findings: Sequence[Finding]) -> int:
        self.findings.extend(findings)
        return len(findings)


class ListQuarantine:
    def __init__(self) -> None:
        self.records: list[Quarantined] = []

    def write(self, source_key: str, records: Sequence[Quarantined], counts: Mapping[str, int]) -> str:
        self.records.extend(records)
        return f"quarantine/{source_key}"


@pytest.mark.parametrize("hostile", sorted(HOSTILE))
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_process_object_quarantines_only_the_deep_event(tmp_path: Path, layout: str, hostile: str) -> None:
    (tmp_path / KEY).parent.mkdir(parents=True)
    (tmp_path / KEY).write_bytes(LAYOUTS[layout]([FIRST, HOSTILE[hostile], LAST]))
    publisher, quarantine = ListPublisher(), ListQuarantine()

    result = process_object(
        LocalFileReader(tmp_path), KEY, publisher=publisher, quarantine=quarantine, baselines=MemoryStateStore()
    )

    assert pods_flagged_privileged([finding.to_dict() for finding in publisher.findings]) == {"first", "last"}
    assert result.events == 2 and result.quarantined == {"nesting_too_deep": 1}
    assert [record.reason for record in quarantine.records] == ["nesting_too_deep"]
    assert result.quarantine_key == f"quarantine/{KEY}"
    (record,) = quarantine.records
    assert record.sample.startswith(b'{"kind":"Event"') and len(record.sample) <= 4096


CLOSED = {"lists": b"[" * 100_000 + b"]" * 100_000, "objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000}
UNCLOSED = {"lists_unclosed": b"[" * 100_000, "objects_unclosed": b'{"a":' * 100_000}


@pytest.mark.parametrize(
    ("data", "quarantined"),
    [
        *[(FIRST + b"\n" + value + b"\n" + LAST, {"nesting_too_deep": 1}) for value in CLOSED.values()],
        *[(FIRST + b"\n" + value + LAST, {"nesting_too_deep": 1}) for value in CLOSED.values()],  # no newline
        (FIRST + b"\n" + UNCLOSED["objects_unclosed"] + b"\n" + LAST, {"nesting_too_deep": 1}),
        # the top-level array it opens is not closed either: the event after it is read as that array's element
        (FIRST + b"\n" + UNCLOSED["lists_unclosed"] + b"\n" + LAST, {"nesting_too_deep": 1, "truncated_json": 1}),
    ],
    ids=[*CLOSED, *(f"{name}_run_into_next" for name in CLOSED), *UNCLOSED],
)
def test_a_bare_100k_deep_value_between_events(tmp_path: Path, data: bytes, quarantined: dict[str, int]) -> None:
    """Not an event at all: 100k levels of brackets between two good events, on a line of its own or run into the
    next event. (An unclosed one run into the next record takes it along: only parsing could tell where it ends.)"""
    (tmp_path / "audit.jsonl").write_bytes(data + b"\n")
    publisher, quarantine = ListPublisher(), ListQuarantine()
    result = process_object(LocalFileReader(tmp_path), "audit.jsonl", publisher=publisher, quarantine=quarantine)
    assert pods_flagged_privileged([finding.to_dict() for finding in publisher.findings]) == {"first", "last"}
    assert result.events == 2
    assert result.quarantined == quarantined
