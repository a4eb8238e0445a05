"""The pipeline that drives one input: chunks of raw bytes → gzip layer → text layer → records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

from eksight.core.decode.inflate import Break, Inflater, Signal, Text
from eksight.core.decode.model import READ_CHUNK, SourceContext
from eksight.core.decode.run import Records, Run
from eksight.core.decode.text import TextScanner


def slices(data: bytes | bytearray | memoryview, size: int = READ_CHUNK) -> Iterator[bytes]:
    view = memoryview(data).cast("B")
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


class ReadFailed:
    """Set by `read` when the stream fails: the error and how much was read before it."""

    __slots__ = ("error", "read")

    def __init__(self) -> None:
        self.error: OSError | None = None
        self.read = 0


def read(stream: BinaryIO, failed: ReadFailed, size: int = READ_CHUNK) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(size)
        except OSError as error:
            failed.error = error
            return
        if not chunk:
            return
        failed.read += len(chunk)
        yield chunk


def pipeline(
    chunks: Iterable[bytes],
    run: Run,
    context: SourceContext,
    depth: int,
    accounting: bool,
    failed: ReadFailed | None = None,
) -> Records:
    """Every record of the input in ``chunks``; ``depth``: how many payloads it is nested in."""

    def decode_payload(payload: bytes, payload_context: SourceContext) -> Records:
        return pipeline(slices(payload), run, payload_context, depth + 1, accounting=False)

    scanner = TextScanner(run, context, depth, accounting, decode_payload)
    try:
        yield from _drive(chunks, run, scanner, accounting, failed)
    except Exception as error:  # a bug must not take the caller's batch down; it is reported, not hidden
        yield run.quarantine(
            scanner.base + scanner.pos, "internal_error", f"decoding stopped here: {type(error).__name__}: {error}", b""
        )


def _drive(
    chunks: Iterable[bytes], run: Run, scanner: TextScanner, accounting: bool, failed: ReadFailed | None
) -> Records:
    inflater = Inflater()

    def route(signal: Signal) -> Records:
        if isinstance(signal, Text):
            yield from scanner.feed(signal.data)
        elif isinstance(signal, Break):
            yield from scanner.flush()  # decide what the text so far decides first: the same however it was chunked
            yield from scanner.finish(signal.reason, signal.detail, signal.sample, always=True)
        else:  # Garbage: first what the text so far holds, so the order does not depend on chunking
            yield from scanner.flush()
            yield run.quarantine(scanner.text_end(), signal.reason, signal.detail, signal.sample)

    for chunk in chunks:
        if accounting:
            run.stats.bytes_in += len(chunk)
        for signal in inflater.feed(chunk):
            yield from route(signal)
    if failed is not None and failed.error is not None:
        yield from scanner.finish("unreadable", f"read failed after {failed.read} bytes: {failed.error}", always=True)
        return
    for signal in inflater.finish():
        yield from route(signal)
    yield from scanner.finish()
