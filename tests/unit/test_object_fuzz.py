"""Property tests for the detector handler's per-object step (`process_object`, what the Lambda runs for each archive
object), fed hostile records (hypothesis): values nested past every limit, events with huge or deep bodies, broken
encodings, next to two privileged pod creations, in every layout the archive holds (Firehose-shaped gzip envelopes,
JSON lines, gzipped or not). The object never raises, every record is accounted for, and both pods are flagged.

Short by default (it runs in ``make test``); ``make fuzz`` runs it long (``EKSIGHT_FUZZ_EXAMPLES``, as
tests/unit/test_decode_fuzz.py, whose generators it uses).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import BinaryIO

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from eksight.core.archive_object import JsonLinesPublisher, process_object
from eksight.core.decode import Quarantined
from eksight.core.state import MemoryStateStore
from tests.lambdas.test_hostile_objects import KEY, LAYOUTS, pod_create, pods_flagged_privileged
from tests.unit.test_decode_fuzz import EXAMPLES, FUZZ, SEED, broken_encoding, deep_value, hostile_event

FIRST = pod_create("22222222-0000-4000-8000-000000000001", "first")
LAST = pod_create("22222222-0000-4000-8000-000000000003", "last")
ENVELOPE_LAYOUTS = {"one_envelope", "envelope_each"}  # a log event's message is text: hostile bytes become U+FFFD


class BytesReader:
    """An `ObjectReader` over one object's bytes."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    @contextmanager
    def open(self, key: str, version_id: str | None = None) -> Iterator[BinaryIO]:
        yield io.BytesIO(self.body)


class QuarantineList:
    def __init__(self) -> None:
        self.records: list[Quarantined] = []
        self.counts: dict[str, int] = {}

    def write(self, source_key: str, records: Sequence[Quarantined], counts: Mapping[str, int]) -> str | None:
        self.records, self.counts = list(records), dict(counts)
        return "quarantine/" + source_key


@seed(SEED)
@settings(FUZZ, max_examples=max(20, EXAMPLES // 5))  # an object is slower than one decode: fewer examples
@given(
    st.lists(deep_value() | hostile_event() | broken_encoding(), min_size=1, max_size=4),
    st.sampled_from(sorted(LAYOUTS)),
    st.data(),
)
def test_hostile_records_between_privileged_pods(hostile: list[bytes], layout: str, data: st.DataObject) -> None:
    hostile = [record.replace(b"\n", b" ") for record in hostile]  # each on its own line
    if layout in ENVELOPE_LAYOUTS:
        hostile = [record.decode("utf-8", "replace").encode() for record in hostile]
    middle = data.draw(st.permutations(hostile))
    body = LAYOUTS[layout]([FIRST, *middle, LAST])
    published, quarantine = io.BytesIO(), QuarantineList()

    result = process_object(
        BytesReader(body),
        KEY,
        publisher=JsonLinesPublisher(published),
        quarantine=quarantine,
        baselines=MemoryStateStore(),
    )

    findings = [json.loads(line) for line in published.getvalue().splitlines()]
    assert {"first", "last"} <= pods_flagged_privileged(findings)
    assert result.events >= 2
    assert sum(quarantine.counts.values()) == result.records_quarantined
    # every record the decoder handed on: an event, a repeat of one, quarantined, or an unfinished stage
    unfinished = sum(n for reason, n in result.skipped.items() if reason.startswith("stage_"))
    assert result.records == result.events + result.duplicates + result.records_quarantined + unfinished
