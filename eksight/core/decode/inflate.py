"""The gzip layer: incremental inflation across concatenated members, resuming after damaged ones."""

from __future__ import annotations

import codecs
import re
from collections.abc import Generator, Iterator
from typing import NamedTuple, Protocol, cast

# zlib-ng inflates these objects in 60 % of stdlib zlib's CPU time, with zlib's API (decompressor copies included)
# and its error messages.
from zlib_ng import zlib_ng

from eksight.core.decode.model import SAMPLE_BYTES

_INFLATE_CHUNK = 1 << 20
_RESYNC_WINDOW = 4 << 20  # compressed bytes kept to find the next gzip member after a damaged one
_GZIP_MAGIC = b"\x1f\x8b\x08"
# A gzip member starts with the magic, deflate (8), then flags whose reserved bits (0xE0) are clear: text never does.
_MEMBER_START = re.compile(rb"\x1f\x8b\x08[\x00-\x1f]")
_MEMBER_HEAD = len(_GZIP_MAGIC) + 1
_CONTROL_BYTES = frozenset(range(0x09)) | {0x0B, 0x0C} | frozenset(range(0x0E, 0x20)) | {0x7F}
_TEXT_START = frozenset(b' \t\r\n{["-+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\xef')
_SNIFF_BYTES = 64 << 10
_HEAD_BYTES = 4


class GzipMember(Protocol):
    """zlib's decompressor object (zlib-ng's stub leaves out `copy`)."""

    unused_data: bytes
    unconsumed_tail: bytes
    eof: bool

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...
    def copy(self) -> GzipMember: ...


GzipError = cast("type[Exception]", zlib_ng.error)  # (the stub declares it an instance)


def gzip_member() -> GzipMember:
    """A decompressor for one gzip member (`unused_data` holds what follows it)."""
    return cast(GzipMember, zlib_ng.decompressobj(31))


class Text(NamedTuple):
    """Decompressed (or plain) text, continuing the text before it."""

    data: bytes


class Break(NamedTuple):
    """A damaged or truncated member: the text is discontinuous here."""

    reason: str
    detail: str
    sample: bytes


class Garbage(NamedTuple):
    """Bytes between or after members that are not gzip: the text is not affected."""

    reason: str
    detail: str
    sample: bytes


Signal = Text | Break | Garbage
_START, _PLAIN, _MEMBER, _BETWEEN, _SEEK = 0, 1, 2, 3, 4


class Inflater:
    """Raw bytes → text. An input that starts with gzip magic is a sequence of gzip members; any other input is
    text as it is. Yields `Text`, and `Break` / `Garbage` where a member is damaged or truncated / for bytes between
    or after members that are not gzip. Output per call is bounded, so a small member that
    inflates to gigabytes streams through in slices."""

    def __init__(self) -> None:
        self.mode = _START
        self.carry = b""
        self.raw_pos = 0  # raw offset of the next byte after `carry`
        self.d: GzipMember | None = None
        self.member_start = 0
        self.member_raw = bytearray()
        self.member_raw_start = 0
        self.member_text = 0
        self.failure: Break | Garbage | None = None
        self.seek_start = 0

    def feed(self, chunk: bytes) -> Iterator[Signal]:
        if self.mode == _PLAIN:
            self.raw_pos += len(chunk)
            if chunk:
                yield Text(chunk)
            return
        data = self.carry + chunk if self.carry else chunk
        self.raw_pos -= len(self.carry)
        self.carry = b""
        yield from self._process(data, final=False)

    def finish(self) -> Iterator[Signal]:
        data, self.carry = self.carry, b""
        self.raw_pos -= len(data)
        yield from self._process(data, final=True)

    def _start_member(self) -> None:
        self.mode = _MEMBER
        self.d = gzip_member()
        self.member_start = self.raw_pos
        self.member_raw = bytearray()
        self.member_raw_start = self.raw_pos
        self.member_text = 0

    def _process(self, data: bytes, final: bool) -> Iterator[Signal]:
        while True:
            if self.mode == _PLAIN:
                self.raw_pos += len(data)
                if data:
                    yield Text(data)
                return
            if self.mode == _START:
                rest = yield from self._start(data, final)
            elif self.mode == _BETWEEN:
                rest = self._between(data, final)
            elif self.mode == _SEEK:
                rest = yield from self._seek(data, final)
            else:
                rest = yield from self._inflate(data, final)
            if rest is None:
                return
            data = rest

    def _hold(self, data: bytes) -> None:
        """Too short to tell yet: wait for more."""
        self.carry = data
        self.raw_pos += len(data)

    def _start(self, data: bytes, final: bool) -> Generator[Signal, None, bytes | None]:
        """gzip, or text; or something that cannot start JSON or base64 text, where gzip magic within the first
        64 KiB says it is a gzip stream with a damaged start. Returns the data to go on with, or None."""
        if not final and len(data) < _HEAD_BYTES:
            self._hold(data)
            return None
        binary = _looks_binary(data[:_HEAD_BYTES])
        if not final and binary and len(data) < _SNIFF_BYTES:
            self._hold(data)
            return None
        match = _MEMBER_START.search(data, 0, _SNIFF_BYTES + _MEMBER_HEAD) if binary else None
        k = match.start() if match else -1
        if _MEMBER_START.match(data):
            self._start_member()
        elif k == -1:
            self.mode = _PLAIN
        else:
            yield Garbage(
                "invalid_gzip",
                f"{k} bytes before the first gzip member (at byte {k}) are not gzip data",
                data[: min(k, SAMPLE_BYTES)],
            )
            self.raw_pos += k
            data = data[k:]
            self._start_member()
        return data

    def _between(self, data: bytes, final: bool) -> bytes | None:
        """After a member: the next member, or bytes that are not gzip (then seek the next member)."""
        if len(data) < _MEMBER_HEAD and not final and _GZIP_MAGIC.startswith(data[: len(_GZIP_MAGIC)]):
            self._hold(data)
            return None
        if _MEMBER_START.match(data):
            self._start_member()
        elif not data:
            return None
        else:
            self.failure = Garbage("invalid_gzip", "", b"")
            self.seek_start = self.raw_pos
            self.mode = _SEEK
        return data

    def _seek(self, data: bytes, final: bool) -> Generator[Signal, None, bytes | None]:
        """Skip bytes up to the next member's magic, then report what was skipped (`failure`)."""
        match = _MEMBER_START.search(data)
        if match is None:
            hold = 0 if final else _magic_suffix(data)
            self._sample_seek(data[: len(data) - hold])
            self.carry = data[len(data) - hold :] if hold else b""
            self.raw_pos += len(data)
            if final:
                yield self._end_seek(self.raw_pos, "no gzip member follows")
                self.mode = _BETWEEN
            return None
        k = match.start()
        self._sample_seek(data[:k])
        self.raw_pos += k
        yield self._end_seek(self.raw_pos, f"resuming at the next gzip member at byte {self.raw_pos}")
        self._start_member()
        return data[k:]

    def _sample_seek(self, skipped: bytes) -> None:
        failure = self.failure
        if isinstance(failure, Garbage) and len(failure.sample) < SAMPLE_BYTES:
            self.failure = failure._replace(sample=failure.sample + skipped[: SAMPLE_BYTES - len(failure.sample)])

    def _end_seek(self, end: int, where: str) -> Break | Garbage:
        failure = self.failure
        assert failure is not None
        self.failure = None
        detail = failure.detail
        if isinstance(failure, Garbage):
            detail = (
                f"{end - self.seek_start} bytes after the gzip member ending at byte {self.seek_start} are "
                "not gzip data"
            )
        return failure._replace(detail=f"{detail}; {where}")

    def _inflate(self, data: bytes, final: bool) -> Generator[Signal, None, bytes | None]:
        """Feed ``data`` to the current member. Returns the bytes after the member, or None when all was used."""
        d = self.d
        assert d is not None
        self.member_raw += data
        if len(self.member_raw) > 2 * _RESYNC_WINDOW:
            cut = len(self.member_raw) - _RESYNC_WINDOW
            del self.member_raw[:cut]
            self.member_raw_start += cut
        while True:
            snapshot = d.copy()
            try:
                out = d.decompress(data, _INFLATE_CHUNK)
            except GzipError as error:
                texts, used = _salvage(snapshot, data)
                for text in texts:
                    self.member_text += len(text)
                    yield Text(text)
                self.raw_pos += used
                return (
                    yield from self._fail(
                        "corrupt_gzip",
                        f"corrupt gzip member at byte {self.member_start} of the compressed input: {error}",
                    )
                )
            if out:
                self.member_text += len(out)
                yield Text(out)
            if d.eof:
                rest = d.unused_data
                self.raw_pos += len(data) - len(rest)
                self.mode = _BETWEEN
                self.d = None
                return rest
            tail = d.unconsumed_tail
            self.raw_pos += len(data) - len(tail)
            data = tail
            if not data and len(out) < _INFLATE_CHUNK:
                break
        if not final:
            return None
        return (
            yield from self._fail(
                "truncated_gzip", f"gzip member at byte {self.member_start} of the compressed input is truncated"
            )
        )

    def _fail(self, reason: str, detail: str) -> Generator[Signal, None, bytes]:
        """A damaged member: resume at the next gzip magic after its start (searching what was kept of it),
        else skip compressed bytes until one appears. Returns the data to continue with."""
        detail += f" (after {self.member_text} decompressed bytes)"
        raw = bytes(self.member_raw)
        first = max(0, self.member_start - self.member_raw_start)  # the member's bytes up to the damage
        sample = raw[first : min(self.raw_pos - self.member_raw_start, first + SAMPLE_BYTES)]
        self.d = None
        match = _MEMBER_START.search(raw, max(0, self.member_start + 1 - self.member_raw_start))
        k = match.start() if match else -1
        if k != -1:
            resume = self.member_raw_start + k
            yield Break(reason, f"{detail}; resuming at the next gzip member at byte {resume}", sample)
            self.raw_pos = resume
            self.mode = _BETWEEN
            return raw[k:]
        # Seek on from the end of what was kept, with its last bytes (they may begin the next magic).
        tail = raw[max(len(raw) - _MEMBER_HEAD + 1, self.member_start + 1 - self.member_raw_start, 0) :]
        self.raw_pos = self.member_raw_start + len(raw) - len(tail)
        self.failure = Break(reason, detail, sample)
        self.seek_start = self.raw_pos
        self.mode = _SEEK
        return tail


def _magic_suffix(data: bytes) -> int:
    """How many of the last bytes could be the start of a member split from its rest by a chunk boundary."""
    for size in range(min(len(data), _MEMBER_HEAD - 1), 0, -1):
        if _GZIP_MAGIC.startswith(data[-size:]):
            return size
    return 0


def _looks_binary(head: bytes) -> bool:
    """Whether an input's first bytes cannot be the start of JSON or base64 text: an unexpected first byte,
    a control character, or invalid UTF-8."""
    if not head or _MEMBER_START.match(head):
        return False
    if head[0] not in _TEXT_START or any(byte in _CONTROL_BYTES for byte in head):
        return True
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return True
    return False


def _salvage(snapshot: GzipMember, data: bytes) -> tuple[list[bytes], int]:
    """Re-inflate ``data`` from the state before the failing call, in small steps, to keep every byte of output
    that precedes the damage. Returns the outputs and how many input bytes were used before the error."""
    outputs: list[bytes] = []
    used, step = 0, 256
    while used < len(data):
        piece = data[used : used + step]
        before = snapshot.copy()
        try:
            out = snapshot.decompress(piece)
        except GzipError:
            if step == 1:
                break
            snapshot, step = before, 1
            continue
        if out:
            outputs.append(out)
        used += len(piece)
        if snapshot.eof:
            break
    return outputs, used
