"""What every layer of one input shares: where it came from, the limits, the running stats; and the types of
what the layers hand up."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Literal, TypeAlias, TypeVar

from eksight.core.decode.model import SAMPLE_BYTES, DecodeStats, Quarantined, RawEvent, SourceContext

Record: TypeAlias = RawEvent | Quarantined
Records: TypeAlias = Iterator[Record]
Outcome: TypeAlias = Literal["event", "container", "skipped", "quarantined"]
"""What a top-level value turned out to be, for `DecodeStats.accounted`."""
T = TypeVar("T")
Decoding: TypeAlias = Generator[Record, None, T]
"""Yields records; returns what the caller needs to go on (an outcome, a position...)."""


class Run:
    __slots__ = ("max_document", "max_record", "source", "stats")

    def __init__(self, source: str, stats: DecodeStats, max_record: int, max_document: int) -> None:
        self.source = source
        self.stats = stats
        self.max_record = max_record
        self.max_document = max_document

    def quarantine(self, offset: int, reason: str, detail: str, sample: bytes | memoryview) -> Quarantined:
        self.stats.quarantined[reason] += 1
        return Quarantined(self.source, offset, reason, detail, bytes(sample[:SAMPLE_BYTES]))

    def event(
        self, data: bytes, offset: int, context: SourceContext, log_time: int | float | None, utf8_checked: bool = False
    ) -> Record:
        if len(data) > self.max_record:
            return self.quarantine(
                offset, "oversized", f"record of {len(data)} bytes exceeds the limit of {self.max_record} bytes", data
            )
        if not utf8_checked and not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError as error:
                return self.quarantine(offset, "invalid_utf8", str(error), data)
        self.stats.events += 1
        return RawEvent(data, context, self.source, offset, None if log_time is None else int(log_time))
