"""Public entry points: bytes, streams, paths and the Decoder facade."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from eksight.core.decode.model import (
    MAX_DOCUMENT_BYTES,
    MAX_RECORD_BYTES,
    NO_CONTEXT,
    DecodeStats,
    Quarantined,
    RawEvent,
    SourceContext,
    context_from_key,
)
from eksight.core.decode.pipeline import ReadFailed, pipeline, read, slices
from eksight.core.decode.run import Run


def decode_bytes(
    data: bytes | bytearray | memoryview,
    *,
    source: str,
    defaults: SourceContext = NO_CONTEXT,
    stats: DecodeStats | None = None,
    max_record: int = MAX_RECORD_BYTES,
    max_document: int = MAX_DOCUMENT_BYTES,
) -> Iterator[RawEvent | Quarantined]:
    """Decode an in-memory input of any shape. Skips are counted in ``stats`` (when given)."""
    run = Run(source, stats if stats is not None else DecodeStats(), max_record, max_document)
    return pipeline(slices(data), run, defaults, 0, accounting=True)


def decode_stream(
    stream: BinaryIO,
    *,
    source: str,
    defaults: SourceContext = NO_CONTEXT,
    stats: DecodeStats | None = None,
    max_record: int = MAX_RECORD_BYTES,
    max_document: int = MAX_DOCUMENT_BYTES,
) -> Iterator[RawEvent | Quarantined]:
    """Decode a binary stream (a file, an S3 body...) read in 1 MiB chunks. A read error ends the stream with
    an ``unreadable`` record."""
    run = Run(source, stats if stats is not None else DecodeStats(), max_record, max_document)
    failed = ReadFailed()
    return pipeline(read(stream, failed), run, defaults, 0, accounting=True, failed=failed)


def decode_path(
    path: str | os.PathLike[str],
    *,
    defaults: SourceContext = NO_CONTEXT,
    stats: DecodeStats | None = None,
    max_record: int = MAX_RECORD_BYTES,
    max_document: int = MAX_DOCUMENT_BYTES,
) -> Iterator[RawEvent | Quarantined]:
    """Decode a file, or every file under a directory (recursively, sorted by name, hidden entries skipped).
    Each file's context is `context_from_key` of its path over ``defaults``; its source is its path."""
    stats = stats if stats is not None else DecodeStats()
    for file in _walk(Path(path), stats, max_record, max_document):
        if isinstance(file, Quarantined):
            yield file
            continue
        context = context_from_key(str(file), defaults)
        try:
            handle = open(file, "rb")  # noqa: SIM115 - closed below, also when the consumer stops early
        except OSError as error:
            yield Run(str(file), stats, max_record, max_document).quarantine(0, "unreadable", str(error), b"")
            continue
        with handle:
            yield from decode_stream(
                handle,
                source=str(file),
                defaults=context,
                stats=stats,
                max_record=max_record,
                max_document=max_document,
            )


def _walk(path: Path, stats: DecodeStats, max_record: int, max_document: int) -> Iterator[Path | Quarantined]:
    def unreadable(where: Path, detail: str) -> Quarantined:
        return Run(str(where), stats, max_record, max_document).quarantine(0, "unreadable", detail, b"")

    try:
        mode = path.stat().st_mode
    except OSError as error:
        yield unreadable(path, str(error))
        return
    if stat.S_ISREG(mode):
        yield path
        return
    if not stat.S_ISDIR(mode):
        yield unreadable(path, "not a regular file or directory")
        return
    try:
        entries = sorted(os.scandir(path), key=lambda entry: entry.name)
    except OSError as error:
        yield unreadable(path, str(error))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError as error:
            yield unreadable(Path(entry.path), str(error))
            continue
        if is_dir:
            yield from _walk(Path(entry.path), stats, max_record, max_document)
        else:
            file = Path(entry.path)
            try:
                mode = file.stat().st_mode  # follows a symlink to its file
            except OSError as error:
                yield unreadable(file, str(error))
                continue
            if stat.S_ISREG(mode):
                yield file
            elif not stat.S_ISDIR(mode):  # sockets, FIFOs, devices: reading could block or never end
                yield unreadable(file, "not a regular file")


class Decoder:
    """Decodes inputs while keeping one `DecodeStats`; `events` yields only events and keeps the quarantined
    records in `quarantined` (take them with `take_quarantined` to write them out)."""

    def __init__(
        self,
        *,
        defaults: SourceContext = NO_CONTEXT,
        max_record: int = MAX_RECORD_BYTES,
        max_document: int = MAX_DOCUMENT_BYTES,
    ) -> None:
        self.defaults = defaults
        self.max_record = max_record
        self.max_document = max_document
        self.stats = DecodeStats()
        self.quarantined: list[Quarantined] = []

    def decode(
        self,
        source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO,
        *,
        name: str | None = None,
        defaults: SourceContext | None = None,
    ) -> Iterator[RawEvent | Quarantined]:
        """Everything, in input order. ``source``: bytes, a path (file or directory) or a binary stream;
        ``name`` names bytes and streams in the records (default ``<bytes>`` / the stream's name)."""
        context = defaults if defaults is not None else self.defaults
        stats, max_record, max_document = self.stats, self.max_record, self.max_document
        if isinstance(source, bytes | bytearray | memoryview):
            return decode_bytes(
                source,
                source=name or "<bytes>",
                defaults=context,
                stats=stats,
                max_record=max_record,
                max_document=max_document,
            )
        if isinstance(source, str | os.PathLike):
            return decode_path(source, defaults=context, stats=stats, max_record=max_record, max_document=max_document)
        return decode_stream(
            source,
            source=name or str(getattr(source, "name", "<stream>")),
            defaults=context,
            stats=stats,
            max_record=max_record,
            max_document=max_document,
        )

    def events(
        self,
        source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO,
        *,
        name: str | None = None,
        defaults: SourceContext | None = None,
    ) -> Iterator[RawEvent]:
        """Only the events; quarantined records are appended to `quarantined`."""
        for item in self.decode(source, name=name, defaults=defaults):
            if isinstance(item, RawEvent):
                yield item
            else:
                self.quarantined.append(item)

    def take_quarantined(self) -> list[Quarantined]:
        taken, self.quarantined = self.quarantined, []
        return taken
