"""Untrusted JSON (audit records, request and response bodies): bounded reading, and type-checked views in which
a wrong type reads as empty.

Anyone who can reach the API server chooses the bodies it logs, and anyone who can write to the archive chooses
everything. The parser recurses once per nesting level, so text is checked for depth (a linear scan of its raw
bytes) before it is parsed; recursive walks of parsed bodies carry their own bound.
"""

from __future__ import annotations

import re
from itertools import accumulate
from typing import Any

import msgspec

# A string, closed or running to the end of the text (so an unclosed one costs one pass, never a rescan).
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_NOT_OPENING = bytes(sorted(set(range(256)) - set(b"[{")))
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")  # +1 / -1 as signed bytes
_ANY = msgspec.json.Decoder()


def nests_deeper_than(text: bytes, limit: int) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``limit`` levels deep; brackets inside strings do
    not count. Linear, and cheap when the text holds at most ``limit`` brackets (the usual case). Malformed text is
    judged by its brackets: the parser stops at the first error, so it never goes deeper than this says. Depth is
    measured from the lowest point before it (stray closing brackets do not make room), so what holds for a text
    holds for every part of it that begins where a value may."""
    # (A level takes an opening bracket at least; deleting all other bytes counts them in one pass.)
    if len(text) <= limit or len(text.translate(None, _NOT_OPENING)) <= limit:
        return False
    steps = _STRING.sub(b"", text).translate(_STEPS, _NOT_BRACKETS)
    depths = list(accumulate(memoryview(steps).cast("b"), initial=0))
    return max(map(int.__sub__, depths, accumulate(depths, min))) > limit


def decode_bounded(raw: bytes | msgspec.Raw, *, max_bytes: int, max_depth: int) -> Any:
    """``raw`` parsed, or None when it is empty, not JSON, over ``max_bytes`` or nested over ``max_depth``."""
    if not raw or len(raw) > max_bytes:
        return None
    text = raw if isinstance(raw, bytes) else bytes(raw)
    if nests_deeper_than(text, max_depth):
        return None
    try:
        return _ANY.decode(text)
    except msgspec.DecodeError:
        return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    return value if isinstance(value, str) else ""
