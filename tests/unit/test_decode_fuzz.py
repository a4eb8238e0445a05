"""Property tests for eksight.core.decode (hypothesis).

Arbitrary bytes, token soups and damaged (truncated, bit-flipped, spliced, ...) versions of valid inputs of every
shape must never raise out of the iterator, must account for every decoded byte, must decode the same whatever the
read size and compression, and must keep a damaged record's neighbours where the damage leaves them decidable.

Hostile records too (values nested past every limit, closed or cut, records at and over the size limit, broken
encodings): they are quarantined alone, and every record the decoder hands on either parses as an audit event or
raises only `EventError`.

Short by default (200 examples per property: it runs in ``make test``). Long mode, for ``make fuzz``: the same
properties with more examples, ``EKSIGHT_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/unit/test_decode_fuzz.py
-q -n 2`` (optionally ``EKSIGHT_FUZZ_SEED=<n>`` for a different, reproducible run; ~1 ms per example and property).
Events come from the dev set and Panther's tests when ../shared/datasets is present, else from synthetic EKS events.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import io
import itertools
import json
import os
import random
import re
from pathlib import Path

from hypothesis import HealthCheck, assume, given, seed, settings
from hypothesis import strategies as st

from eksight.core.decode import DecodeStats, Quarantined, RawEvent, SourceContext, decode_bytes, decode_stream
from eksight.core.decode.model import MAX_VALUE_DEPTH
from eksight.core.events import EventError, parse_event

EXAMPLES = int(os.environ.get("EKSIGHT_FUZZ_EXAMPLES", "200"))
SEED = int(os.environ.get("EKSIGHT_FUZZ_SEED", "20241126"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
EKS_START = b'{"kind":"Event","apiVersion":"audit.k8s.io/'
GZIP_MEMBER = re.compile(rb"\x1f\x8b\x08[\x00-\x1f]")


def _synthetic(count: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "kind": "Event",
                "apiVersion": "audit.k8s.io/v1",
                "level": "Metadata",
                "auditID": f"00000000-0000-4000-8000-{i:012d}",
                "stage": "ResponseComplete",
                "requestURI": f"/api/v1/namespaces/default/pods/p{i}",
                "verb": "get",
                "user": {
                    "username": "kubernetes-admin",
                    "groups": ["system:masters"],
                    "extra": {"arn": ["arn:aws:sts::1:x"]},
                },
                "sourceIPs": ["10.0.0.1"],
                "userAgent": "kubectl/v1.30 \u00e9",
                "objectRef": {"resource": "pods", "name": f"p{i}"},
                "responseStatus": {"metadata": {}, "code": 200},
                "requestReceivedTimestamp": "2024-09-03T00:00:00.000000Z",
                "stageTimestamp": "2024-09-03T00:00:00.100000Z",
                "annotations": {"authorization.k8s.io/decision": "allow"},
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        for i in range(count)
    ]


def _load_events() -> list[bytes]:
    events: list[bytes] = []
    dev = DATASETS / "dev-scenarios" / "audit.jsonl.gz"
    if dev.is_file():
        with gzip.open(dev) as handle:
            events += [line.rstrip(b"\n") for line in itertools.islice(handle, 24)]
    panther = DATASETS / "panther-eks" / "events.jsonl"
    if panther.is_file():
        events += [line for line in panther.read_bytes().splitlines()[:8] if line.strip()]
    return events or _synthetic(24)


EVENTS = _load_events()
EKS_EVENTS = [event for event in EVENTS if event.startswith(EKS_START)] or _synthetic(8)
CLUSTER = SourceContext(
    cluster="c1", account="111", log_group="/aws/eks/c1/cluster", log_stream="kube-apiserver-audit-abc"
)
CONTROL = json.dumps(
    {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [
            {"id": "", "timestamp": 1, "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}
        ],
    }
).encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def envelope(events: list[bytes]) -> bytes:
    return json.dumps(
        {
            "messageType": "DATA_MESSAGE",
            "owner": "111",
            "logGroup": "/aws/eks/c1/cluster",
            "logStream": "kube-apiserver-audit-abc",
            "subscriptionFilters": ["f"],
            "logEvents": [{"id": str(i), "timestamp": 1000 + i, "message": e.decode()} for i, e in enumerate(events)],
        }
    ).encode()


def groups(events: list[bytes], rnd: random.Random) -> list[list[bytes]]:
    out, i = [], 0
    while i < len(events):
        size = rnd.randint(1, 3)
        out.append(events[i : i + size])
        i += size
    return out


def build(shape: str, events: list[bytes], rnd: random.Random) -> bytes:
    """One valid input of ``shape`` holding ``events``."""
    objects = [json.loads(event) for event in events]
    if shape == "jsonl":
        return b"\n".join(events) + b"\n"
    if shape == "jsonl_crlf":
        return b"\r\n".join(events)
    if shape == "concat":
        return b"".join(events)
    if shape == "array":
        return b"[" + b",".join(events) + b"]"
    if shape == "array_pretty":
        return json.dumps(objects, indent=2).encode()
    if shape == "eventlist":
        return json.dumps({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": objects}, indent=2).encode()
    if shape == "pretty_concat":
        return b"\n".join(json.dumps(obj, indent=2).encode() for obj in objects)
    if shape == "export":
        return b"\n".join(
            json.dumps(
                {"events": [{"logStreamName": "s", "timestamp": 5, "message": e.decode()} for e in group]}, indent=4
            ).encode()
            for group in groups(events, rnd)
        )
    envelopes = [CONTROL] + [envelope(group) for group in groups(events, rnd)]
    if shape == "envelopes_newline":
        return b"\n".join(envelopes) + b"\n"
    if shape == "envelopes_back_to_back":
        return b"".join(envelopes)
    if shape == "envelopes_gzip_members":
        return b"".join(gz(e) for e in envelopes)
    if shape == "envelopes_newline_gzip":
        return gz(b"\n".join(envelopes) + b"\n")
    if shape == "envelopes_base64":
        return b"\n".join(base64.b64encode(gz(e)) for e in envelopes) + b"\n"
    if shape == "awslogs":
        return b"\n".join(
            json.dumps({"awslogs": {"data": base64.b64encode(gz(e)).decode()}}).encode() for e in envelopes
        )
    raise ValueError(shape)


SHAPES = [
    "jsonl",
    "jsonl_crlf",
    "concat",
    "array",
    "array_pretty",
    "eventlist",
    "pretty_concat",
    "export",
    "envelopes_newline",
    "envelopes_back_to_back",
    "envelopes_gzip_members",
    "envelopes_newline_gzip",
    "envelopes_base64",
    "awslogs",
]


@st.composite
def valid_inputs(draw: st.DrawFn) -> tuple[str, list[bytes], bytes]:
    shape = draw(st.sampled_from(SHAPES))
    events = draw(st.lists(st.sampled_from(EVENTS), min_size=1, max_size=6))
    return shape, events, build(shape, events, random.Random(draw(st.integers(0, 2**32))))


INSERTS = [
    b"}",
    b"{",
    b"\n",
    b",",
    b"]",
    b"[",
    b'"',
    b"\\",
    b"\x1f\x8b\x08",
    b"\x00",
    b"\xff",
    b'{"messageType"',
    EKS_START,
    b"H4sI",
    b"\\ud800",
    b"\r\n",
]


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        op = draw(st.sampled_from(["truncate", "flip", "splice", "insert", "delete", "duplicate"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "truncate":
            data = data[:i]
        elif op == "flip":
            data = data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
        elif op == "splice":
            other = build(draw(st.sampled_from(SHAPES)), [draw(st.sampled_from(EVENTS))], random.Random(i))
            data = data[:i] + other[draw(st.integers(0, max(0, len(other) - 1))) :]
        elif op == "insert":
            data = data[:i] + draw(st.sampled_from(INSERTS) | st.binary(min_size=1, max_size=8)) + data[i:]
        elif op == "delete":
            data = data[:i] + data[i + draw(st.integers(1, 64)) :]
        else:
            j = min(len(data), i + draw(st.integers(1, 256)))
            data = data[:j] + data[i:j] + data[j:]
    return data


TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b'"',
    b"\\",
    b"\n",
    b" ",
    b"\r",
    b"\t",
    b"1",
    b"-",
    b"true",
    b"null",
    b'"kind"',
    b'"Event"',
    b'"messageType"',
    b'"DATA_MESSAGE"',
    b'"CONTROL_MESSAGE"',
    b'"logEvents"',
    b'"message"',
    b'"items"',
    b'"EventList"',
    b'"events"',
    b'"awslogs"',
    b'"data"',
    b'"records"',
    EKS_START,
    b"H4sI",
    b"eyJ",
    b"\x1f\x8b\x08",
    b"\x00",
    b"\xff",
    b"\xef\xbb\xbf",
    b"\\u00e9",
    b"\\ud800",
    b'"\xc3\xa9"',
]
token_soup = st.lists(st.sampled_from(TOKENS) | st.binary(max_size=4), max_size=60).map(b"".join)


class ShortReads(io.RawIOBase):
    def __init__(self, data: bytes, size: int) -> None:
        self.data, self.size, self.position = data, size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        chunk = self.data[self.position : self.position + min(self.size, n if n >= 0 else self.size)]
        self.position += len(chunk)
        return chunk


def key(items: list[RawEvent | Quarantined]) -> list[tuple]:
    return [
        (item.offset, item.data, item.context, item.log_time_ms)
        if isinstance(item, RawEvent)
        else (item.offset, item.reason, item.detail, item.sample)
        for item in items
    ]


def decoded(data: bytes) -> tuple[list[RawEvent | Quarantined], DecodeStats]:
    """Decode, checking what must hold for any input."""
    stats = DecodeStats()
    items = list(decode_bytes(data, source="fuzz", stats=stats))  # nothing raises
    quarantined = [item for item in items if isinstance(item, Quarantined)]
    assert not [item for item in quarantined if item.reason == "internal_error"], quarantined
    assert stats.bytes_in == len(data)
    assert sum(stats.accounted.values()) == stats.bytes_decoded  # every decoded byte is part of something
    if b"\x1f\x8b\x08" not in data:
        assert stats.bytes_decoded == len(data)  # plain input: that is every input byte
    assert stats.events == len(items) - len(quarantined)
    assert stats.quarantined.total() == len(quarantined)
    assert all(len(item.sample) <= 4096 and item.reason and item.detail for item in quarantined)
    if stats.accounted["quarantined"]:
        assert quarantined  # bytes were set aside: someone was told
    if data.removeprefix(b"\xef\xbb\xbf").strip(b" \t\r\n") and b"\x1f\x8b\x08" not in data:
        assert items or stats.skipped  # non-blank text (a BOM aside) always yields or counts something
    return items, stats


def same_for_any_read_size(data: bytes, items: list[RawEvent | Quarantined], size: int) -> None:
    assert key(list(decode_stream(ShortReads(data, size), source="fuzz"))) == key(items)


@seed(SEED)
@FUZZ
@given(st.binary(max_size=3000) | token_soup, st.sampled_from([1, 2, 7, 64, 4096]))
def test_arbitrary_bytes(data: bytes, size: int) -> None:
    items, _ = decoded(data)
    same_for_any_read_size(data, items, size)


@seed(SEED)
@FUZZ
@given(st.binary(max_size=600) | token_soup, st.sampled_from([1, 5, 300]))
def test_arbitrary_bytes_in_gzip(data: bytes, size: int) -> None:
    """Garbage inside good gzip, and garbage after a gzip magic."""
    for wrapped in (gz(data), b"\x1f\x8b\x08" + data, gz(data[: len(data) // 2]) + data):
        items, _ = decoded(wrapped)
        same_for_any_read_size(wrapped, items, size)


@seed(SEED)
@FUZZ
@given(valid_inputs())
def test_valid_inputs_decode_exactly(case: tuple[str, list[bytes], bytes]) -> None:
    shape, events, data = case
    items, stats = decoded(data)
    assert all(isinstance(item, RawEvent) for item in items), items
    assert [json.loads(item.data) for item in items] == [json.loads(event) for event in events]
    if shape in ("jsonl", "jsonl_crlf", "concat", "array"):
        assert [item.data for item in items] == events  # byte for byte
    assert stats.skipped == ({"control_message": 1} if shape.startswith(("envelopes", "awslogs")) else {})
    if shape.startswith(("envelopes", "awslogs")):
        assert all(item.context == CLUSTER for item in items)


@seed(SEED)
@FUZZ
@given(st.data(), valid_inputs(), st.sampled_from([1, 3, 64, 1000, 1 << 20]))
def test_damaged_inputs_of_every_shape(data: st.DataObject, case: tuple[str, list[bytes], bytes], size: int) -> None:
    damaged = data.draw(mutated(case[2]))
    items, _ = decoded(damaged)
    same_for_any_read_size(damaged, items, size)


@seed(SEED)
@FUZZ
@given(st.data(), valid_inputs())
def test_compression_is_transparent(data: st.DataObject, case: tuple[str, list[bytes], bytes]) -> None:
    """Plain text, the same text gzipped, and the same text split into gzip members at any points decode alike."""
    text = data.draw(mutated(case[2]) | st.just(case[2]))
    if text.startswith(b"\x1f\x8b") or b"\x1f\x8b\x08" in text:
        return  # already compressed (or holds gzip magic): not plain text
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=4)))
    members = b"".join(gz(text[a:b]) for a, b in itertools.pairwise([0, *cuts, len(text)]))
    plain = key(decoded(text)[0])
    assert key(decoded(gz(text))[0]) == plain
    assert key(decoded(members)[0]) == plain


@st.composite
def damaged_record(draw: st.DrawFn, record: bytes, other: bytes) -> bytes:
    op = draw(st.sampled_from(["truncate", "flip", "garbage", "splice", "delete", "insert"]))
    i = draw(st.integers(0, len(record) - 1))
    if op == "truncate":
        return record[:i]
    if op == "flip":
        for _ in range(draw(st.integers(1, 3))):
            j = draw(st.integers(0, len(record) - 1))
            record = record[:j] + bytes([record[j] ^ (1 << draw(st.integers(0, 7)))]) + record[j + 1 :]
        return record
    if op == "garbage":
        return draw(st.binary(min_size=1, max_size=30))
    if op == "splice":
        return record[:i] + other[draw(st.integers(0, len(other) - 1)) :]
    if op == "delete":
        return record[:i] + record[i + draw(st.integers(1, 30)) :]
    return record[:i] + draw(st.sampled_from(INSERTS)) + record[i:]


@seed(SEED)
@FUZZ
@given(st.data(), st.sampled_from(["jsonl", "concat", "envelopes_newline", "envelopes_back_to_back", "members"]))
def test_a_damaged_record_does_not_take_its_neighbours(data: st.DataObject, layout: str) -> None:
    """Decidable cases: records one per line; back-to-back API-server events (each starts with kind and apiVersion);
    envelopes (each starts with messageType); gzip members (the first member's header intact)."""
    if layout in ("jsonl", "concat"):
        records = data.draw(
            st.lists(st.sampled_from(EVENTS if layout == "jsonl" else EKS_EVENTS), min_size=2, max_size=6)
        )
        batches = [[record] for record in records]
    else:
        batches = groups(data.draw(st.lists(st.sampled_from(EVENTS), min_size=3, max_size=8)), random.Random(0))
        records = [envelope(batch) for batch in batches]
    k = data.draw(st.integers(0, len(records) - 1))
    other = records[(k + 1) % len(records)]
    if layout == "members":
        parts = [gz(record) for record in records]
        head = parts[k][:10] if k == 0 else b""  # a garbage start that looks like text is read as text
        parts[k] = head + data.draw(damaged_record(parts[k][len(head) :], gz(other)))
        damaged = b"".join(parts)
    else:
        bad = data.draw(damaged_record(records[k], other))
        separator = b"\n" if layout in ("jsonl", "envelopes_newline") else b""
        if separator:
            bad = bad.replace(b"\n", b" ")  # the damage stays inside its line
        damaged = separator.join([*records[:k], bad, *records[k + 1 :]]) + separator
        # gzip magic and flags near the start can make the decoder read the input as gzip (its documented rule)
        assume(not GZIP_MEMBER.search(damaged, 0, (64 << 10) + 4))
    items, _ = decoded(damaged)
    events = [item for item in items if isinstance(item, RawEvent)]
    if layout in ("jsonl", "concat"):
        found = {(event.offset, event.data) for event in events}
        position = 0
        for j, record in enumerate([*records[:k], bad, *records[k + 1 :]]):
            if j != k:
                assert (position, record) in found, (j, k)
            position += len(record) + len(separator)
    else:
        found_events = [(event.data, event.context, event.log_time_ms) for event in events]
        for j, batch in enumerate(batches):
            if j != k:
                for index, event in enumerate(batch):
                    assert (event, CLUSTER, 1000 + index) in found_events, (j, k)


# ---- hostile records ---------------------------------------------------------------------------------------

OPENERS = [b"[", b'{"a":', b'{"a":[', b'["[{",', b'{"k\\"":']  # with brackets and escapes inside strings
CLOSERS = {b"[": b"]", b'{"a":': b"}", b'{"a":[': b"]}", b'["[{",': b"]", b'{"k\\"":': b"}"}


@st.composite
def deep_value(draw: st.DrawFn) -> bytes:
    """A value nested anywhere from shallow to far past every limit; closed, or cut anywhere."""
    opener = draw(st.sampled_from(OPENERS))
    depth = draw(st.sampled_from([1, 127, 128, 129, MAX_VALUE_DEPTH, MAX_VALUE_DEPTH + 1]) | st.integers(0, 3000))
    value = opener * depth + b"1" + CLOSERS[opener] * depth
    if draw(st.booleans()):
        value = value[: draw(st.integers(1, len(value)))]
    return value


@st.composite
def hostile_event(draw: st.DrawFn) -> bytes:
    """An API-server-looking event whose body is hostile: deep, huge, or of any JSON type."""
    base = draw(st.sampled_from(EKS_EVENTS))
    body = draw(
        deep_value()
        | st.sampled_from([b"null", b"1e400", b'"x"', b"[]", b"-0", b"123456789012345678901234567890"])
        | st.integers(0, 1 << 21).map(lambda size: json.dumps("x" * size).encode())
    )
    return base[:-1] + b',"requestObject":' + body + b"}"


BROKEN_TEXT = [
    b"\xff",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\\ud800",
    b"\\udc00\\ud800",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\\u0000",
]


@st.composite
def broken_encoding(draw: st.DrawFn) -> bytes:
    """An event with bytes that are not UTF-8 (or escapes that are not characters) inside one of its strings."""
    event = draw(st.sampled_from(EVENTS))
    quotes = [i for i, byte in enumerate(event) if byte == 0x22]
    i = draw(st.sampled_from(quotes)) + 1 if quotes else 0
    return event[:i] + draw(st.sampled_from(BROKEN_TEXT) | st.binary(min_size=1, max_size=6)) + event[i:]


def judged(items: list[RawEvent | Quarantined]) -> None:
    """Every record handed on parses as an event or raises only EventError (never RecursionError...)."""
    for item in items:
        if isinstance(item, RawEvent):
            with contextlib.suppress(EventError):
                parse_event(item.data).request_body()


@seed(SEED)
@FUZZ
@given(
    st.data(),
    st.lists(st.sampled_from(EVENTS), min_size=2, max_size=5),
    deep_value() | hostile_event() | broken_encoding(),
    st.sampled_from(["jsonl", "envelope"]),
    st.sampled_from([1 << 20, 4096, 7]),
)
def test_a_hostile_record_is_quarantined_alone(
    data: st.DataObject, records: list[bytes], hostile: bytes, layout: str, size: int
) -> None:
    k = data.draw(st.integers(0, len(records)))
    hostile = hostile.replace(b"\n", b" ")  # on its own line
    if layout == "jsonl":
        text = b"\n".join([*records[:k], hostile, *records[k:]]) + b"\n"
    else:  # the hostile record as a log event between the others (its message a string, however deep)
        message = hostile.decode("utf-8", "replace").encode()  # a JSON string holds characters, not bytes
        text = envelope([*records[:k], message, *records[k:]])
    items, _ = decoded(text)
    same_for_any_read_size(text, items, size)
    judged(items)
    found = [item.data for item in items if isinstance(item, RawEvent)]
    for record in records:  # the good records all come through
        assert record in found


@seed(SEED)
@FUZZ
@given(st.lists(deep_value() | hostile_event() | broken_encoding() | st.sampled_from(EVENTS), max_size=6), st.data())
def test_hostile_records_in_any_arrangement(values: list[bytes], data: st.DataObject) -> None:
    """Run together, in arrays, concatenated without newlines, gzipped: nothing raises, everything is accounted."""
    separator = data.draw(st.sampled_from([b"\n", b"", b",", b" "]))
    text = separator.join(values)
    if data.draw(st.booleans()):
        text = b"[" + text + b"]"
    if data.draw(st.booleans()):
        text = gz(text)
    items, _ = decoded(text)
    judged(items)
