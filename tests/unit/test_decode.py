"""Tests for eksight.core.decode: every input shape, built from real events (the dev set's first lines, Falco's and
Panther's test events); damaged input of each kind quarantined with its reason and offset while the records around
it still decode; directories; and the dev set's two encodings (JSON lines, CloudWatch Logs subscription payloads as
Firehose stores them) decoding to the same events.

Data: ../shared/datasets (see its README for sources and licences); tests that need it skip when it is absent.
"""

from __future__ import annotations

import base64
import gzip
import io
import itertools
import json
import os
import zlib
from collections import Counter
from pathlib import Path

import pytest

from eksight.core.decode import (
    MAX_RECORD_BYTES,
    Decoder,
    DecodeStats,
    Quarantined,
    RawEvent,
    SourceContext,
    context_from_key,
    decode_bytes,
    decode_path,
    decode_stream,
)
from eksight.core.decode.model import MAX_VALUE_DEPTH
from eksight.core.events import EventError, parse_event

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEV = DATASETS / "dev-scenarios"
FALCO = DATASETS / "falco-k8s-audit"
PANTHER = DATASETS / "panther-eks" / "events.jsonl"
MISSING = "../shared/datasets (dev-scenarios, falco-k8s-audit, panther-eks) is not present beside the project"

CLUSTER_CONTEXT = SourceContext(
    cluster="prod",
    account="111122223333",
    log_group="/aws/eks/prod/cluster",
    log_stream="kube-apiserver-audit-0123456789abcdef0123456789abcdef",
)


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    """The dev set's first six events, one JSON object per line, exactly as stored."""
    if not (DEV / "audit.jsonl.gz").is_file():
        pytest.skip(MISSING)
    with gzip.open(DEV / "audit.jsonl.gz") as handle:
        return [line.rstrip(b"\n") for line in itertools.islice(handle, 6)]


@pytest.fixture(scope="module")
def falco() -> dict[str, bytes]:
    if not FALCO.is_dir():
        pytest.skip(MISSING)
    return {path.name: path.read_bytes() for path in sorted(FALCO.glob("*.json"))}


# --- helpers ------------------------------------------------------------------------------------------------------


def decode(data: bytes, **kwargs: object) -> tuple[list[RawEvent | Quarantined], DecodeStats]:
    stats = DecodeStats()
    items = list(decode_bytes(data, source="test", stats=stats, **kwargs))  # type: ignore[arg-type]
    assert sum(stats.accounted.values()) == stats.bytes_decoded  # every decoded byte is accounted for
    assert stats.events == sum(isinstance(item, RawEvent) for item in items)
    assert stats.quarantined.total() == sum(isinstance(item, Quarantined) for item in items)
    return items, stats


def events_of(items: list[RawEvent | Quarantined]) -> list[RawEvent]:
    return [item for item in items if isinstance(item, RawEvent)]


def quarantined_of(items: list[RawEvent | Quarantined]) -> list[Quarantined]:
    return [item for item in items if isinstance(item, Quarantined)]


def audit_ids(items: list[RawEvent | Quarantined]) -> list[str]:
    return [json.loads(event.data)["auditID"] for event in events_of(items)]


def ids(lines: list[bytes]) -> list[str]:
    return [json.loads(line)["auditID"] for line in lines]


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def envelope(
    messages: list[bytes],
    *,
    message_type: str = "DATA_MESSAGE",
    first_id: int = 0,
    log_group: str = "/aws/eks/prod/cluster",
    log_stream: str = "kube-apiserver-audit-0123456789abcdef0123456789abcdef",
) -> bytes:
    """A CloudWatch Logs subscription payload, as CloudWatch Logs writes it (compact JSON)."""
    return json.dumps(
        {
            "messageType": message_type,
            "owner": "111122223333",
            "logGroup": log_group,
            "logStream": log_stream,
            "subscriptionFilters": ["eksight-audit"],
            "logEvents": [
                {"id": str(first_id + i), "timestamp": 1_725_321_600_000 + first_id + i, "message": message.decode()}
                for i, message in enumerate(messages)
            ],
        },
        separators=(",", ":"),
    ).encode()


CONTROL = json.dumps(
    {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {
                "id": "",
                "timestamp": 1725321600000,
                "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
            }
        ],
    }
).encode()


def line_offsets(lines: list[bytes], separator: bytes = b"\n") -> list[int]:
    offsets, position = [], 0
    for line in lines:
        offsets.append(position)
        position += len(line) + len(separator)
    return offsets


class ShortReads(io.RawIOBase):
    """A stream that returns at most ``size`` bytes per read (and can fail after ``fail_after`` bytes)."""

    def __init__(self, data: bytes, size: int, fail_after: int | None = None) -> None:
        self.data, self.size, self.position, self.fail_after = data, size, 0, fail_after

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.fail_after is not None and self.position >= self.fail_after:
            raise OSError(5, "Input/output error")
        chunk = self.data[self.position : self.position + min(self.size, n if n >= 0 else self.size)]
        self.position += len(chunk)
        return chunk


# --- shapes --------------------------------------------------------------------------------------------------------


def test_json_lines(lines: list[bytes]) -> None:
    data = b"\n".join(lines) + b"\n"
    items, stats = decode(data, defaults=SourceContext(region="eu-north-1"))
    assert [event.data for event in items] == lines  # the stored bytes, unchanged
    assert [event.offset for event in items] == line_offsets(lines)
    assert all(
        event.context == SourceContext(region="eu-north-1") and event.log_time_ms is None for event in events_of(items)
    )
    assert stats.bytes_in == stats.bytes_decoded == len(data)
    assert stats.accounted == Counter(event=len(data) - len(lines), blank=len(lines))


def test_json_lines_with_blank_lines_crlf_and_no_final_newline(lines: list[bytes]) -> None:
    data = b"\n\n" + b"\r\n".join(lines[:3]) + b"\r\n   \r\n\t\n" + b"\n".join(lines[3:])
    items, _ = decode(data)
    assert [event.data for event in items] == lines
    assert not quarantined_of(items)


def test_gzip_single_and_multi_member_decode_like_plain_text(lines: list[bytes]) -> None:
    text = b"\n".join(lines) + b"\n"
    plain, _ = decode(text)
    single, stats = decode(gz(text))
    cuts = [0, 700, 1500, 1501, 4000, len(text)]  # members split records mid-line, as pigz or a Firehose join can
    multi, multi_stats = decode(b"".join(gz(text[a:b]) for a, b in itertools.pairwise(cuts)))
    assert single == plain and multi == plain  # same records, same offsets (offsets are in decompressed text)
    assert stats.bytes_in == len(gz(text)) and stats.bytes_decoded == multi_stats.bytes_decoded == len(text)


def test_one_object_and_a_pretty_printed_object(falco: dict[str, bytes]) -> None:
    raw = falco["create_deployment.json"].strip()
    items, _ = decode(raw)
    assert [event.data for event in items] == [raw]
    pretty = json.dumps(json.loads(raw), indent=2).encode()
    items, _ = decode(pretty + b"\n")
    assert [event.data for event in items] == [pretty]
    assert parse_event(items[0].data).audit_id == json.loads(raw)["auditID"]


def test_concatenated_pretty_printed_objects(falco: dict[str, bytes]) -> None:
    objects = [
        json.loads(line)
        for name, text in falco.items()
        if name != "fal_01_003.json"
        for line in text.splitlines()
        if line.strip()
    ][:8]
    data = b"\n".join(json.dumps(obj, indent=4).encode() for obj in objects)
    items, _ = decode(data)
    assert [json.loads(event.data) for event in items] == objects
    assert not quarantined_of(items)


def test_json_array_compact_and_pretty(lines: list[bytes]) -> None:
    data = b"[" + b",".join(lines) + b"]"
    items, stats = decode(data)
    assert [event.data for event in items] == lines
    assert [event.offset for event in items] == [1 + offset for offset in line_offsets(lines, b",")]
    assert stats.accounted == Counter(event=sum(map(len, lines)), blank=len(lines) + 1)
    pretty = json.dumps([json.loads(line) for line in lines], indent=2).encode()
    items, _ = decode(pretty)
    assert audit_ids(items) == ids(lines) and not quarantined_of(items)


def test_event_list_pretty_printed(lines: list[bytes]) -> None:
    data = json.dumps(
        {
            "kind": "EventList",
            "apiVersion": "audit.k8s.io/v1",
            "metadata": {},
            "items": [json.loads(line) for line in lines],
        },
        indent=2,
    ).encode()
    items, stats = decode(data)
    assert audit_ids(items) == ids(lines)
    assert [event.offset for event in items] == list(range(len(lines)))  # the list's offset (0) + index
    assert stats.accounted == Counter(container=len(data))


def test_event_list_of_v1beta1_events(falco: dict[str, bytes]) -> None:
    # Falco's minikube events are audit.k8s.io/v1beta1; an EventList may carry apiVersion only on the list
    item = json.loads(falco["create_nginx_pod_unprivileged.json"])
    item.pop("apiVersion")
    items, _ = decode(json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1beta1", "items": [item]}).encode())
    assert parse_event(items[0].data).audit_id == item["auditID"]


def test_cloudwatch_logs_export(lines: list[bytes]) -> None:
    """`aws logs filter-log-events` output (pretty, as the CLI prints it), two pages concatenated."""

    def page(messages: list[bytes], token: str | None) -> bytes:
        events = [
            {
                "logStreamName": "kube-apiserver-audit-aa",
                "timestamp": 1_725_321_600_000 + i,
                "message": message.decode(),
                "ingestionTime": 1_725_321_601_000,
                "eventId": str(i),
            }
            for i, message in enumerate(messages)
        ]
        return json.dumps(
            {"events": events, "searchedLogStreams": [], **({"nextToken": token} if token else {})}, indent=4
        ).encode()

    data = page(lines[:4], "t1") + b"\n" + page(lines[4:], None)
    items, _ = decode(data, defaults=SourceContext(cluster="prod"))
    assert audit_ids(items) == ids(lines)
    assert items[0].context == SourceContext(cluster="prod", log_stream="kube-apiserver-audit-aa")
    assert [event.log_time_ms for event in items] == [1_725_321_600_000 + i for i in (0, 1, 2, 3, 0, 1)]
    # the same pages as JSON lines, and bare log events (jq '.events[]')
    compact = b"\n".join(json.dumps(json.loads(p)).encode() for p in (page(lines[:4], "t"), page(lines[4:], None)))
    assert audit_ids(decode(compact)[0]) == ids(lines)
    bare = b"\n".join(json.dumps(e).encode() for e in json.loads(page(lines, None))["events"])
    assert audit_ids(decode(bare)[0]) == ids(lines)


def test_empty_documents_are_skipped_and_counted() -> None:
    items, stats = decode(b'[]\n{"kind":"EventList","items":[]}\n{"events":[],"nextToken":"x"}\n')
    assert items == [] and stats.skipped == Counter(empty_document=3)


# --- CloudWatch Logs subscription envelopes --------------------------------------------------------------------------


def expected_envelope_events(lines: list[bytes], first_id: int = 0) -> list[tuple[bytes, SourceContext, int]]:
    return [(line, CLUSTER_CONTEXT, 1_725_321_600_000 + first_id + i) for i, line in enumerate(lines)]


def as_tuples(items: list[RawEvent | Quarantined]) -> list[tuple[bytes, SourceContext, int | None]]:
    return [(event.data, event.context, event.log_time_ms) for event in events_of(items)]


@pytest.fixture
def envelopes(lines: list[bytes]) -> list[bytes]:
    return [envelope(lines[:2]), envelope(lines[2:3], first_id=2), envelope(lines[3:], first_id=3)]


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda envs: b"\n".join(envs), id="plain-newline-delimited"),
        pytest.param(lambda envs: b"".join(envs), id="plain-back-to-back"),
        pytest.param(lambda envs: b"".join(gz(e) for e in envs), id="firehose-gzip-members-back-to-back"),
        pytest.param(lambda envs: gz(b"".join(e + b"\n" for e in envs)), id="firehose-processors-newlines-gzip-once"),
        pytest.param(lambda envs: b"\n".join(base64.b64encode(gz(e)) for e in envs) + b"\n", id="kinesis-base64-gzip"),
        pytest.param(
            lambda envs: b"".join(
                json.dumps({"awslogs": {"data": base64.b64encode(gz(e)).decode()}}).encode() for e in envs
            ),
            id="lambda-awslogs-events",
        ),
        pytest.param(lambda envs: json.dumps([json.loads(e) for e in envs], indent=1).encode(), id="pretty-array"),
    ],
)
def test_envelope_encodings(lines: list[bytes], envelopes: list[bytes], encode) -> None:
    data = encode([CONTROL, *envelopes])
    items, stats = decode(data)
    assert as_tuples(items) == expected_envelope_events(lines)
    assert not quarantined_of(items)
    assert stats.skipped == Counter(control_message=1)  # skipped and counted, not quarantined


def test_envelope_offsets_are_the_envelope_offset_plus_the_index(lines: list[bytes], envelopes: list[bytes]) -> None:
    data = b"\n".join(envelopes)
    items, stats = decode(data)
    starts = line_offsets(envelopes)
    assert [event.offset for event in items] == [
        starts[0],
        starts[0] + 1,
        starts[1],
        starts[2],
        starts[2] + 1,
        starts[2] + 2,
    ]
    assert stats.accounted == Counter(container=len(data) - 2, blank=2)


def test_firehose_and_kinesis_events_carry_the_region(lines: list[bytes], envelopes: list[bytes]) -> None:
    firehose = {
        "invocationId": "i",
        "deliveryStreamArn": "arn:aws:firehose:eu-west-1:111122223333:deliverystream/x",
        "region": "eu-west-1",
        "records": [
            {"recordId": str(i), "approximateArrivalTimestamp": 1, "data": base64.b64encode(gz(e)).decode()}
            for i, e in enumerate(envelopes)
        ],
    }
    items, _ = decode(json.dumps(firehose).encode())
    assert [event.context.region for event in items] == ["eu-west-1"] * len(lines)
    assert [event.data for event in items] == lines
    kinesis = {
        "Records": [
            {
                "awsRegion": "us-east-2",
                "eventSource": "aws:kinesis",
                "kinesis": {"data": base64.b64encode(gz(e)).decode()},
            }
            for e in envelopes
        ]
    }
    items, _ = decode(json.dumps(kinesis).encode())
    assert [(event.data, event.context.region, event.context.cluster) for event in items] == [
        (line, "us-east-2", "prod") for line in lines
    ]


def test_envelope_context_wins_over_key_and_defaults(lines: list[bytes], tmp_path: Path) -> None:
    key_dir = tmp_path / "audit" / "account=999999999999" / "region=eu-north-1" / "cluster=from-key"
    key_dir.mkdir(parents=True)
    (key_dir / "delivery-1").write_bytes(gz(envelope(lines[:1])))
    (key_dir / "events.jsonl").write_bytes(lines[1] + b"\n")
    items = list(decode_path(tmp_path, defaults=SourceContext(cluster="default", region="us-east-1", account="1")))
    assert [event.context for event in events_of(items)] == [
        SourceContext(
            cluster="prod",
            account="111122223333",
            region="eu-north-1",
            log_group="/aws/eks/prod/cluster",
            log_stream=CLUSTER_CONTEXT.log_stream,
        ),  # envelope > key > defaults
        SourceContext(cluster="from-key", account="999999999999", region="eu-north-1"),  # key > defaults
    ]


def test_non_audit_streams_of_an_eks_log_group_are_skipped(lines: list[bytes]) -> None:
    data = b"\n".join(
        [
            envelope(
                [b"I0903 00:00:01.000000 1 authenticator.go:1] access granted"],
                log_stream="authenticator-0123456789abcdef",
            ),
            envelope(lines[:2]),
        ]
    )
    items, stats = decode(data)
    assert [event.data for event in items] == lines[:2]
    assert stats.skipped == Counter(non_audit_stream=1)


def test_context_from_key() -> None:
    key = "audit/account=111122223333/region=eu-north-1/cluster=prod%2Dcore/year=2024/month=09/x.gz"
    assert context_from_key(key) == SourceContext(cluster="prod-core", account="111122223333", region="eu-north-1")
    base = SourceContext(cluster="c", region="r", log_group="g")
    assert context_from_key("no/partitions/here.gz", base) is base
    assert context_from_key("x/region=us-west-2/y", base) == SourceContext(
        cluster="c", region="us-west-2", log_group="g"
    )


# --- damaged input: the right reason and offset, and the neighbours survive ----------------------------------------


def test_a_line_that_is_not_json_and_a_truncated_final_line(lines: list[bytes]) -> None:
    cut = lines[1][:100]
    data = lines[0] + b"\n" + cut + b"\n" + lines[2] + b"\nnot json at all\n" + lines[3] + b"\n" + lines[4][:50]
    items, stats = decode(data)
    assert audit_ids(items) == ids([lines[0], lines[2], lines[3]])
    bad = quarantined_of(items)
    assert [(q.reason, q.offset, q.sample) for q in bad] == [
        ("invalid_json", len(lines[0]) + 1, cut),
        ("invalid_json", data.index(b"not json"), b"not json at all"),
        ("truncated_json", data.rindex(lines[4][:50]), lines[4][:50]),
    ]
    assert stats.accounted["quarantined"] == len(cut) + len(b"not json at all") + 50


def test_a_cut_line_before_the_last_does_not_take_the_last_one(lines: list[bytes]) -> None:
    data = lines[0] + b"\n" + b'{"kind":"Event","requestObject":' + b"\n" + lines[1]  # still a valid prefix at EOF
    items, _ = decode(data)
    assert audit_ids(items) == ids(lines[:2])
    assert [q.reason for q in quarantined_of(items)] == ["truncated_json"]


def test_back_to_back_records_with_a_cut_one(lines: list[bytes]) -> None:
    data = lines[0] + lines[1][:200] + lines[2] + b"xx" + lines[3]
    items, _ = decode(data)
    assert audit_ids(items) == ids([lines[0], lines[2], lines[3]])
    assert [(q.reason, q.offset) for q in quarantined_of(items)] == [
        ("invalid_json", len(lines[0])),
        ("invalid_json", data.index(b"xx")),
    ]


def test_truncated_gzip_keeps_what_came_before(lines: list[bytes]) -> None:
    compressed = gz(b"\n".join(lines) + b"\n")
    items, _ = decode(compressed[:-60])
    bad = quarantined_of(items)
    assert [q.reason for q in bad] == ["truncated_gzip"]
    assert audit_ids(items) == ids(lines)[: len(events_of(items))] and len(events_of(items)) >= 4
    assert bad[0].offset == line_offsets(lines)[len(events_of(items))]  # where the incomplete record starts


def test_a_corrupt_gzip_member_loses_only_itself(lines: list[bytes], envelopes: list[bytes]) -> None:
    members = [gz(e) for e in envelopes]
    damaged = bytearray(members[1])
    damaged[len(damaged) // 2] ^= 0x55
    items, stats = decode(members[0] + bytes(damaged) + members[2])
    assert [event.data for event in items if isinstance(event, RawEvent)] == lines[:2] + lines[3:]
    assert [q.reason for q in quarantined_of(items)] == ["corrupt_gzip"]
    assert stats.bytes_in == len(members[0]) + len(damaged) + len(members[2])


def test_a_cut_member_followed_by_whole_ones(lines: list[bytes], envelopes: list[bytes]) -> None:
    members = [gz(e) for e in envelopes]
    items, _ = decode(members[0][: len(members[0]) // 2] + members[1] + members[2])
    assert [event.data for event in events_of(items)] == lines[2:]
    assert len(quarantined_of(items)) >= 1
    assert {q.reason for q in quarantined_of(items)} <= {"corrupt_gzip", "truncated_gzip", "invalid_json"}


def test_bytes_around_gzip_members(lines: list[bytes], envelopes: list[bytes]) -> None:
    members = b"".join(gz(e) for e in envelopes)
    items, _ = decode(members + b"\x00" * 512)  # padding after the last member
    assert [event.data for event in events_of(items)] == lines
    assert [(q.reason, q.sample) for q in quarantined_of(items)] == [("invalid_gzip", b"\x00" * 512)]
    items, _ = decode(b"\x00\xffjunk" + members)  # a damaged start
    assert [event.data for event in events_of(items)] == lines
    assert [(q.reason, q.sample) for q in quarantined_of(items)] == [("invalid_gzip", b"\x00\xffjunk")]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (
            b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/c/cluster","logStream":"kube-apiserver-audit-1",'
            b'"logEvents":{"id":"1"}}',
            "invalid_envelope",
        ),
        (
            b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"/aws/eks/c/cluster","logStream":"kube-apiserver-audit-1",'
            b'"logEvents":[]}',
            "empty_envelope",
        ),
        (b'{"messageType":"DATA_MESSAGE","owner":1,"logEvents":[{"message":"{}"}]}', "invalid_envelope"),
        (b'{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g"}', "invalid_envelope"),
        (b'{"messageType":"SURPRISE_MESSAGE","logEvents":[]}', "unknown_message_type"),
        (b"H4sIAAAAAAAA!!AAAA", "invalid_base64"),
        (b'{"awslogs":{"data":"H4sI%%%"}}', "invalid_base64"),
        (b'{"kind":"Event","auditID":"x","user":{"username":"\xff\xfe"}}', "invalid_utf8"),
        (b'"just a string"', "unknown_shape"),
        (b"12345", "unknown_shape"),
        (b'{"kind":"EventList","items":{"a":1}}', "unknown_shape"),
        (b"}}]]", "invalid_json"),
    ],
)
def test_damaged_record_between_good_ones(lines: list[bytes], bad: bytes, reason: str) -> None:
    for separator in (b"\n", b""):  # newline-delimited, and back to back where that is still decidable
        if separator == b"" and bad[:1] not in (b"{", b"}"):
            continue
        data = lines[0] + separator + bad + separator + lines[1]
        items, _ = decode(data)
        assert audit_ids(items) == ids(lines[:2]), (separator, bad)
        assert [(q.reason, q.offset) for q in quarantined_of(items)] == [(reason, len(lines[0]) + len(separator))]


def test_damaged_log_events_lose_only_themselves(lines: list[bytes]) -> None:
    data = (
        b'{"messageType":"DATA_MESSAGE","owner":"111122223333","logGroup":"/aws/eks/prod/cluster",'
        b'"logStream":"kube-apiserver-audit-0123456789abcdef0123456789abcdef","logEvents":['
        b'{"id":"0","timestamp":1,"message":' + json.dumps(lines[0].decode()).encode() + b"},"
        b'{"id":"1","timestamp":2,"message":5},'
        b'{"id":"2","timestamp":3,"message":"{\\"kind\\":\\"Event\\",\\"x\\":\\"\xff\\"}"},'
        b'{"id":"3","timestamp":4,"message":"I0903 a plain log line"},'
        b"7,"
        b'{"id":"5","timestamp":6,"message":' + json.dumps(lines[1].decode()).encode() + b"}]}"
    )
    items, _ = decode(data)
    assert [(event.data, event.offset, event.log_time_ms) for event in events_of(items)] == [
        (lines[0], 0, 1),
        (lines[1], 5, 6),
    ]
    assert [(q.reason, q.offset) for q in quarantined_of(items)] == [
        ("invalid_log_event", 1),
        ("invalid_utf8", 2),
        ("invalid_json", 3),
        ("invalid_log_event", 4),
    ]


def test_oversized_records(lines: list[bytes]) -> None:
    items, _ = decode(b"\n".join(lines), max_record=1300)
    assert [(item.reason if isinstance(item, Quarantined) else "event") for item in items] == [
        "event" if len(line) <= 1300 else "oversized" for line in lines
    ]
    big = json.dumps({"kind": "Event", "auditID": "big", "requestObject": {"data": "x" * MAX_RECORD_BYTES}}).encode()
    items, _ = decode(lines[0] + b"\n" + big + b"\n" + lines[1])
    assert audit_ids(items) == ids(lines[:2])
    assert [(q.reason, len(q.sample)) for q in quarantined_of(items)] == [("oversized", 4096)]
    items, _ = decode(envelope([big, lines[2]]))  # inside an envelope: only that log event
    assert [(item.reason if isinstance(item, Quarantined) else item.data) for item in items] == ["oversized", lines[2]]


@pytest.mark.parametrize("read_size", [1 << 20, 1000, 7])
def test_a_document_over_the_limit_is_one_record_however_it_arrives(lines: list[bytes], read_size: int) -> None:
    big = json.dumps({"kind": "EventList", "items": [json.loads(line) for line in lines]}, indent=1).encode()
    data = lines[0] + b"\n" + big + b"\n" + lines[1]
    stats = DecodeStats()
    items = list(decode_stream(ShortReads(data, read_size), source="s", stats=stats, max_document=5000))
    assert audit_ids(items) == ids(lines[:2])
    assert [(q.reason, q.offset) for q in quarantined_of(items)] == [("document_too_large", len(lines[0]) + 1)]
    assert stats.accounted["quarantined"] == len(big)


def test_payloads_nested_too_deep_are_quarantined(lines: list[bytes]) -> None:
    data = lines[0]
    for _ in range(3):
        data = base64.b64encode(gz(data))
    assert audit_ids(decode(data)[0]) == ids(lines[:1])  # three levels: fine
    items, _ = decode(base64.b64encode(gz(data)))
    assert [q.reason for q in quarantined_of(items)] == ["nesting_too_deep"]


def deep_object(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def reasons(items: list[RawEvent | Quarantined]) -> list[str]:
    return [item.reason if isinstance(item, Quarantined) else "event" for item in items]


@pytest.mark.parametrize("read_size", [1 << 20, 4096, 3])
def test_values_nested_past_the_limit_are_quarantined_before_parsing(lines: list[bytes], read_size: int) -> None:
    over = deep_object(MAX_VALUE_DEPTH + 1)
    records = [
        lines[0],
        deep_object(MAX_VALUE_DEPTH),  # at the limit: fine
        b"[" * MAX_VALUE_DEPTH + b"{}" + b"]" * MAX_VALUE_DEPTH,  # arrays at the limit; an element counts on its own
        over,  # a JSON line
        b"[" * (MAX_VALUE_DEPTH + 1) + b"]" * (MAX_VALUE_DEPTH + 1),  # the array one level too deep, from its "["
        b"[" * 100_000 + b"]" * 100_000,
        json.dumps(json.loads(over), indent=1).encode(),  # pretty-printed: no line is deep, the value is
        lines[0] + deep_object(5000),  # run into the event before it: no newline between them
        lines[1],
    ]
    data = b"\n".join(records) + b"\n"
    stats = DecodeStats()
    items = list(decode_stream(ShortReads(data, read_size), source="s", stats=stats))
    too_deep = "nesting_too_deep"
    assert reasons(items) == [
        "event",
        "event",
        "event",
        too_deep,
        too_deep,
        too_deep,
        too_deep,
        "event",
        too_deep,
        "event",
    ]
    assert [item.data for item in events_of(items)] == [*records[:2], b"{}", lines[0], lines[1]]
    at = line_offsets(records)
    expected = [at[3], at[4] + MAX_VALUE_DEPTH, at[5] + MAX_VALUE_DEPTH, at[6], at[7] + len(lines[0])]
    assert [q.offset for q in quarantined_of(items)] == expected
    assert sum(stats.accounted.values()) == stats.bytes_decoded == len(data)


def test_a_cut_deep_value_does_not_take_the_lines_after_it(lines: list[bytes]) -> None:
    for cut in (b'{"a":' * 100_000, b"[" * 100_000, b'[{"a":' * 1000):
        items, _ = decode(b"\n".join([lines[0], cut, lines[1], lines[2]]))
        assert audit_ids(items) == ids(lines[:3])
        assert "nesting_too_deep" in reasons(items)
    # no newline after it: the next line that starts with an object (as JSON lines records do) ends it
    items, _ = decode(lines[0] + b"\n" + b"[" * 600 + lines[1] + b"\n" + lines[2])
    assert audit_ids(items) == ids(lines[:1] + lines[2:3])  # (lines[1] is inside the unclosed arrays' line)


def test_an_envelope_is_read_in_one_pass_only_when_it_has_exactly_cloudwatchs_shape(lines: list[bytes]) -> None:
    plain = json.loads(envelope(lines[:2]))
    extracted = {**plain, "logEvents": [{**e, "extractedFields": {"a": "b"}} for e in plain["logEvents"]]}
    extra_field = {**plain, "deliveryInfo": {"x": [1, {"y": None}]}}
    deep_field = {**plain, "x": json.loads(deep_object(MAX_VALUE_DEPTH + 1))}
    for document in (plain, extracted, extra_field):
        items, _ = decode(json.dumps(document).encode() + b"\n" + lines[2])
        assert [(e.data, e.context.cluster) for e in events_of(items)] == [
            (lines[0], "prod"),
            (lines[1], "prod"),
            (lines[2], None),
        ]
    items, _ = decode(json.dumps(deep_field).encode() + b"\n" + lines[2])
    assert reasons(items) == ["nesting_too_deep", "event"]


def test_a_record_too_deep_for_an_event_is_handed_on_alone(lines: list[bytes]) -> None:
    """Deeper than an audit event may be but within the decoder's limit: the decoder yields it (from a container
    too), and parse_event quarantines just that one."""
    record = json.loads(lines[1])
    record["requestObject"] = json.loads(deep_object(200))
    event_list = {"kind": "EventList", "items": [json.loads(lines[0]), record, json.loads(lines[2])]}
    items, _ = decode(json.dumps(event_list).encode())
    verdicts = []
    for event in events_of(items):
        try:
            verdicts.append(parse_event(event.data).audit_id)
        except EventError as error:
            verdicts.append(error.reason)
    assert verdicts == [ids(lines)[0], "nesting_too_deep", ids(lines)[2]]


def test_a_bug_surfaces_as_a_record_not_an_exception(lines: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    from eksight.core.decode.text import TextScanner

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(TextScanner, "_event_lines", broken)
    items = list(decode_bytes(b"\n".join(lines), source="s"))
    assert [(q.reason, "RuntimeError: boom" in q.detail) for q in quarantined_of(items)] == [("internal_error", True)]


def test_a_single_line_array_is_decoded_element_by_element(lines: list[bytes]) -> None:
    data = b"[" + b",".join(lines * 50) + b"]"
    items = list(decode_stream(ShortReads(data, 4096), source="s", max_document=4096))  # far over the limit
    assert audit_ids(items) == ids(lines) * 50


def test_falco_files_decode_and_the_malformed_one_is_left_to_parse_event(falco: dict[str, bytes]) -> None:
    """The decoder finds records; judging them as audit events is `parse_event`'s job."""
    items = list(decode_path(FALCO))
    events = events_of(items)
    assert {(Path(q.source).name, q.reason) for q in quarantined_of(items)} == {("MANIFEST.tsv", "invalid_json")}
    assert {Path(event.source).name for event in events} == set(falco)
    assert sum(1 for text in falco.values() for line in text.splitlines() if line.strip()) == len(events)
    rejected = []
    for event in events:
        try:
            parse_event(event.data)
        except EventError as error:
            rejected.append((Path(event.source).name, error.reason))
    assert rejected == [("fal_01_003.json", "invalid_event_shape")]


def test_panther_events() -> None:
    if not PANTHER.is_file():
        pytest.skip(MISSING)
    items = list(decode_path(PANTHER))
    expected = [json.loads(line)["auditID"] for line in PANTHER.read_bytes().splitlines() if line.strip()]
    assert audit_ids(items) == expected and len(expected) > 100


# --- directories, streams, errors ------------------------------------------------------------------------------------


def test_directories_are_walked_sorted_recursively_without_hidden_entries(lines: list[bytes], tmp_path: Path) -> None:
    (tmp_path / "b" / "nested").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "a.json").write_bytes(json.dumps(json.loads(lines[0]), indent=2).encode())
    (tmp_path / "b" / "nested" / "part-0000").write_bytes(gz(lines[1] + b"\n" + lines[2]))  # no extension: sniffed
    (tmp_path / "b" / "z.txt").write_bytes(b"\n".join(base64.b64encode(gz(envelope([line]))) for line in lines[3:5]))
    (tmp_path / "c.gz").write_bytes(lines[5])  # a misleading name: plain text
    (tmp_path / ".hidden" / "x.json").write_bytes(lines[0])
    (tmp_path / ".dotfile").write_bytes(b"garbage")
    items = list(decode_path(tmp_path))
    assert audit_ids(items) == ids(lines)
    assert [Path(event.source).relative_to(tmp_path).as_posix() for event in events_of(items)] == [
        "a.json",
        "b/nested/part-0000",
        "b/nested/part-0000",
        "b/z.txt",
        "b/z.txt",
        "c.gz",
    ]
    assert list(decode_path(tmp_path)) == items  # deterministic


def test_unreadable_paths_and_failing_reads_are_quarantined(lines: list[bytes], tmp_path: Path) -> None:
    items = list(decode_path(tmp_path / "missing.jsonl"))
    assert [(q.reason, q.source) for q in quarantined_of(items)] == [("unreadable", str(tmp_path / "missing.jsonl"))]
    assert "No such file" in items[0].detail
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert [q.reason for q in decode_path(tmp_path)] == ["unreadable"]  # never blocks on a FIFO
    data = b"\n".join(lines) + b"\n"
    stats = DecodeStats()
    failing = ShortReads(data, 1000, fail_after=3000)
    items = list(decode_stream(failing, source="s3://bucket/key", stats=stats))
    assert audit_ids(items) == ids(lines)[:2]
    bad = quarantined_of(items)
    assert [(q.reason, q.offset) for q in bad] == [("unreadable", line_offsets(lines)[2])]
    assert "Input/output error" in bad[0].detail


def test_stream_reads_of_any_size_decode_the_same(lines: list[bytes], envelopes: list[bytes]) -> None:
    data = b"".join(gz(e) for e in [CONTROL, *envelopes]) + gz(b"\n".join(lines)[:-10])
    expected, _ = decode(data)
    for size in (1, 3, 64, 4096):
        assert list(decode_stream(ShortReads(data, size), source="test")) == expected


def test_decoder_keeps_stats_and_quarantine(lines: list[bytes], tmp_path: Path) -> None:
    (tmp_path / "one.jsonl").write_bytes(lines[0] + b"\nnot json\n" + lines[1])
    decoder = Decoder(defaults=SourceContext(region="eu-north-1"))
    first = list(decoder.events(tmp_path))
    second = list(decoder.events(gz(envelope(lines[2:4])) + gz(CONTROL), name="s3://b/k"))
    third = list(decoder.events(io.BytesIO(lines[4]), name="stdin"))
    assert [json.loads(e.data)["auditID"] for e in first + second + third] == ids(lines[:5])
    assert second[0].source == "s3://b/k" and second[0].context.region == "eu-north-1"
    assert [(q.reason, q.offset) for q in decoder.quarantined] == [("invalid_json", len(lines[0]) + 1)]
    assert decoder.stats.events == 5 and decoder.stats.quarantined == Counter(invalid_json=1)
    assert decoder.stats.skipped == Counter(control_message=1)
    assert len(decoder.take_quarantined()) == 1 and decoder.quarantined == []
    total = DecodeStats().merge(decoder.stats).merge(decoder.stats)
    assert total.events == 10 and total.skipped["control_message"] == 2


# --- the dev set: JSON lines and CloudWatch Logs payloads are the same events ---------------------------------------


@pytest.mark.slow
def test_dev_set_jsonl_and_cwl_payloads_hold_the_same_events() -> None:
    if not (DEV / "cwl").is_dir():
        pytest.skip(MISSING)
    labels = json.loads((DEV / "labels.json").read_text())
    jsonl_stats, cwl_stats = DecodeStats(), DecodeStats()
    jsonl = Counter(
        json.loads(event.data)["auditID"] for event in decode_path(DEV / "audit.jsonl.gz", stats=jsonl_stats)
    )
    # the archive key would give the region (the envelope has none); its cluster/account must lose to the envelope's
    key = context_from_key(f"audit/account=000000000000/region={labels['region']}/cluster=not-this-one/")
    cwl: Counter[str] = Counter()
    contexts: Counter[tuple[str | None, str | None, str | None]] = Counter()
    for event in decode_path(DEV / "cwl", defaults=key, stats=cwl_stats):
        assert isinstance(event, RawEvent), event
        assert event.log_time_ms is not None and event.context.log_stream.startswith("kube-apiserver-audit-")
        cwl[json.loads(event.data)["auditID"]] += 1
        contexts[(event.context.cluster, event.context.account, event.context.region)] += 1
    assert cwl == jsonl and jsonl.total() == labels["event_count"] == 105_575
    assert contexts == Counter({(labels["cluster"], labels["account"], labels["region"]): 105_575})
    assert jsonl_stats.quarantined == cwl_stats.quarantined == Counter()
    assert cwl_stats.skipped == Counter(control_message=1)
    for stats in (jsonl_stats, cwl_stats):
        assert sum(stats.accounted.values()) == stats.bytes_decoded > stats.bytes_in


def test_zlib_wbits_47_reads_what_the_decoder_reads(lines: list[bytes]) -> None:
    """Cross-check with the brief's reference technique: zlib auto-detection over concatenated members."""
    data = b"".join(gz(line + b"\n") for line in lines)
    text, rest = b"", data
    while rest:
        inflater = zlib.decompressobj(wbits=47)
        text += inflater.decompress(rest)
        rest = inflater.unused_data
    assert [event.data for event in events_of(decode(data)[0])] == text.splitlines()
