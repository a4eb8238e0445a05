"""parse_event and the untrusted-JSON bounds: every record that is not a usable audit event becomes an EventError
with a countable reason (never another exception), size and nesting are judged before parsing, and bodies of
events made any other way are bounded too."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eksight.core import events
from eksight.core.events import (
    MAX_EVENT_BYTES,
    MAX_EVENT_DEPTH,
    AuditEvent,
    EventError,
    event_time,
    parse_event,
)
from eksight.core.untrusted import decode_bounded, nests_deeper_than

EVENT = {
    "kind": "Event",
    "apiVersion": "audit.k8s.io/v1",
    "level": "Request",
    "auditID": "a1",
    "stage": "ResponseComplete",
    "verb": "create",
    "user": {"username": "alice"},
    "objectRef": {"resource": "configmaps", "namespace": "default", "name": "c"},
    "requestReceivedTimestamp": "2024-09-03T10:00:00.000000Z",
}


def with_body(body_text: str) -> bytes:
    return json.dumps({**EVENT, "requestObject": "BODY"}).replace('"BODY"', body_text).encode()


def nested(depth: int) -> str:
    """A value whose own depth is ``depth`` (objects and lists alternating, strings full of brackets)."""
    text = '"[{]}\\\\"'
    for level in range(depth):
        text = f'{{"k[":{text}}}' if level % 2 else f'["{{", {text}]'
    return text


def reason(data: bytes | str) -> str:
    try:
        parse_event(data)
    except EventError as error:
        return error.reason
    return "ok"


# ---- nesting and size -------------------------------------------------------------------------------------


def test_nesting_is_judged_on_structure_not_on_brackets_inside_strings() -> None:
    assert json.loads(nested(3)) == ["{", {"k[": ["{", "[{]}\\"]}]
    for depth in (1, 5, 40):
        text = nested(depth).encode()
        assert not nests_deeper_than(text, depth) and nests_deeper_than(text, depth - 1)
    assert not nests_deeper_than(b'"' + b"[" * 1000 + b'"', 0)  # all inside one string
    assert not nests_deeper_than(b'["\\"' + b"[" * 1000 + b'"]', 1)  # an escaped quote does not end the string
    assert nests_deeper_than(b'["\\\\"' + b"[" * 3 + b"]]]]", 3)  # an escaped backslash does
    assert not nests_deeper_than(b'"' + b'\\"[' * 50_000, 0)  # unclosed string with escapes: one linear pass


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab\n\u00e9'),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\k'), inner, max_size=3),
        max_leaves=40,
    )
)
def test_nesting_matches_the_parsed_depth(value: Any) -> None:
    def depth(item: Any) -> int:
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        return 0 if children is None else 1 + max(map(depth, children), default=0)

    text = json.dumps(value, ensure_ascii=False).encode()
    assert not nests_deeper_than(text, depth(value))
    assert depth(value) == 0 or nests_deeper_than(text, depth(value) - 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b":", b",", b"1", b'"a":']), max_size=2000))
def test_text_judged_shallow_never_makes_the_parser_recurse_deeper(tokens: list[bytes]) -> None:
    """Malformed text too: what the check lets through at 200 levels never exhausts the parser's recursion."""
    text = b"".join(tokens) * 3
    if nests_deeper_than(text, 200):
        return
    with contextlib.suppress(msgspec.DecodeError):
        msgspec.json.decode(text)


def test_events_at_the_nesting_limit_parse_and_deeper_ones_are_quarantined() -> None:
    assert parse_event(with_body(nested(MAX_EVENT_DEPTH - 1))).request_body() is not None  # event adds a level
    assert reason(with_body(nested(MAX_EVENT_DEPTH))) == "nesting_too_deep"
    for hostile in ("[" * 5000 + "]" * 5000, '{"a":' * 5000 + "1" + "}" * 5000, "[" * 100_000):
        assert reason(with_body(hostile)) == "nesting_too_deep"


def test_events_over_the_size_limit_are_quarantined() -> None:
    padding = MAX_EVENT_BYTES - len(with_body('""'))
    assert reason(with_body(json.dumps("x" * padding))) == "ok"
    assert reason(with_body(json.dumps("x" * (padding + 1)))) == "event_too_large"


def test_bodies_of_events_made_without_parse_event_are_bounded_too() -> None:
    deep = AuditEvent(request_object=msgspec.Raw(b"[" * 5000 + b"]" * 5000), response_object=msgspec.Raw(b"[1]"))
    assert deep.request_body() is None and deep.response_body() == [1]
    assert decode_bounded(b'{"a": 1}', max_bytes=8, max_depth=1) == {"a": 1}
    assert decode_bounded(b'{"a": 1} ', max_bytes=8, max_depth=1) is None  # size
    assert decode_bounded(b'{"a": []}', max_bytes=99, max_depth=1) is None  # depth
    assert decode_bounded(b'{"a": ', max_bytes=99, max_depth=9) is None  # not JSON


def test_the_null_stripping_walk_is_bounded_on_its_own() -> None:
    """The lenient path's recursive walk stops at the limit even if handed text that skipped the check."""
    deep = '{"kind": null, "x": ' + "[" * (MAX_EVENT_DEPTH + 5) + "]" * (MAX_EVENT_DEPTH + 5) + "}"
    with pytest.raises(EventError) as caught:
        events._decode_leniently(deep.encode())
    assert caught.value.reason == "nesting_too_deep"


# ---- shapes and types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"null", "invalid_event_shape"),
        (b"[1, 2]", "invalid_event_shape"),
        (b'"Event"', "invalid_event_shape"),
        (b"12", "invalid_event_shape"),
        (b'{"kind": 5,', "invalid_json"),  # a wrong type before a syntax error
        (b'{"kind": "Event", "auditID": 7}', "invalid_event_shape"),
        (b'{"kind": "Event", "auditID": "a", "user": "alice"}', "invalid_event_shape"),
        (b'{"kind": "Event", "auditID": "a", "sourceIPs": {"0": "1.2.3.4"}}', "invalid_event_shape"),
        (b'{"kind": "Event", "auditID": "a", "responseStatus": {"code": 1e400}}', "invalid_event_shape"),
        (b'{"kind": "Pod", "auditID": "a"}', "not_audit_event"),
        (b'{"kind": "Event"}', "missing_audit_id"),
        (b"\xff\xfe{}", "invalid_json"),
        ("\ud800", "invalid_json"),  # a str that is not even UTF-8
    ],
)
def test_records_that_are_not_events_raise_only_event_error(data: bytes | str, expected: str) -> None:
    assert reason(data) == expected


@pytest.mark.parametrize("stamp", ["2024-09-03T10:00:00.", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59-23:59x"])
def test_unreadable_timestamps_are_event_errors(stamp: str) -> None:
    event = parse_event(json.dumps({**EVENT, "requestReceivedTimestamp": stamp}))
    with pytest.raises(EventError) as caught:
        event_time(event)
    assert caught.value.reason == "invalid_timestamp"


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "kind",
                "apiVersion",
                "auditID",
                "user",
                "objectRef",
                "responseStatus",
                "sourceIPs",
                "requestObject",
                "annotations",
                "requestReceivedTimestamp",
                "stage",
                "impersonatedUser",
            ]
        ),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
            max_leaves=10,
        ),
    ),
    st.booleans(),
)
def test_any_json_object_parses_or_raises_event_error(fields: dict[str, Any], as_event: bool) -> None:
    record = {**EVENT, **fields} if as_event else fields
    try:
        event = parse_event(json.dumps(record))
    except EventError:
        return
    with contextlib.suppress(EventError):
        event_time(event)
    event.request_body()
