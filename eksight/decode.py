"""Streaming decoder: any input shape → individual audit-event JSON records, plus an exact account of the rest.

Pure (stdlib + msgspec). The decoder finds records; it does not validate them as audit events — the caller runs
`eksight.events.parse_event` on each `RawEvent.data`.

Input shapes, detected by content (never by file name):

* JSON lines, one event per line (blank lines ignored), and JSON values concatenated with or without whitespace
  (``}{`` back to back, as Firehose writes records without a delimiter processor).
* One event object; a JSON array of events (or of any shape below); a Kubernetes ``EventList``
  (``{"kind":"EventList","items":[...]}``); pretty-printed (multi-line) versions of all of these.
* CloudWatch Logs exports (``aws logs filter-log-events`` / ``get-log-events`` output ``{"events":[{"message":
  ...}]}``), pages concatenated or as JSON lines, and bare log events (``{"timestamp":..,"message":..}``).
* CloudWatch Logs subscription envelopes (``{"messageType":"DATA_MESSAGE","owner":..,"logGroup":..,"logStream":
  ..,"logEvents":[..]}``): plain, gzip, one or many concatenated gzip members, newline-delimited or back to back,
  base64 lines (``H4sI...``) and the Lambda/Firehose/Kinesis wrappers that carry them (``{"awslogs":{"data":..}}``,
  ``{"records":[{"data":..}]}``, ``{"Records":[{"kinesis":{"data":..}}]}``). CONTROL_MESSAGE envelopes are skipped
  and counted (``control_message``); log events of an EKS log group's non-audit streams (``authenticator-...``,
  ``kube-apiserver-<id>``...) are skipped and counted (``non_audit_stream``).
* gzip, by its magic bytes (never by name), for any of the above: an input or base64 payload that starts with gzip
  magic is read as one or many concatenated members (bytes before, between or after them that are not gzip are
  quarantined as ``invalid_gzip``; a damaged start is recognised when gzip magic follows within 64 KiB and the
  first bytes cannot begin JSON or base64 text). Anything else is text.
* Directories (`decode_path`): recursive, entries sorted by name, hidden entries (``.name``) skipped.

Context: envelope values (cluster from ``logGroup`` ``/aws/eks/<cluster>/cluster``, account from ``owner``, log
group and stream) win over values from the object key/path (Hive-style ``account=/region=/cluster=`` parts, see
`context_from_key`), which win over the caller's `SourceContext` defaults. The envelope has no region: it comes from
the key, the defaults, or a Firehose/Kinesis wrapper.

Offsets: `RawEvent.offset` / `Quarantined.offset` is the byte offset, in the decompressed text, where the record
starts. Records *inside* a container (envelope ``logEvents``, EventList ``items``, export ``events``, the records of
a base64/wrapped payload) get the container's offset plus their index in it — unique and ordered within a source,
not a byte position. Elements of a top-level JSON array are decoded one by one and keep exact byte offsets.

Quarantine reasons (stable keys): ``invalid_json`` (bytes that are not JSON, stray punctuation, a log message that
is not a JSON object), ``truncated_json`` (input ends inside a value), ``unknown_shape`` (valid JSON that is not an
object nor a recognised container, or a container field of the wrong type), ``invalid_utf8``, ``oversized`` (a
record over ``max_record`` bytes, default 1 MiB = the CloudWatch Logs event limit), ``document_too_large`` (a single
top-level object over ``max_document``), ``truncated_gzip``, ``corrupt_gzip``, ``invalid_gzip`` (bytes before,
between or after gzip members that are not gzip), ``invalid_base64``,
``invalid_envelope``, ``empty_envelope`` (DATA_MESSAGE without log events), ``unknown_message_type``,
``invalid_log_event`` (a ``logEvents``/``events`` element without a string ``message``), ``nesting_too_deep``,
``unreadable`` (I/O error; detail = the OS error). Skip reasons: ``control_message``, ``non_audit_stream``,
``empty_document`` (an empty array, EventList or export page).

Memory: input is read in 1 MiB chunks and gzip members are inflated incrementally (bounded output per call, any
number of concatenated members), so memory is bounded by the largest single record, not by the input. Top-level
arrays are decoded element by element (no size limit). A top-level *object* (an envelope, an EventList, an export
page) is held whole and parsed at once, up to ``max_document`` bytes (default 32 MiB); a bigger one is skipped with
a streaming tokenizer and quarantined as one ``document_too_large`` record.

Accounting: nothing is dropped silently and nothing raises out of the iterators (a bug would surface as one
``internal_error`` record ending that input). Every decoded-text byte is attributed in `DecodeStats.accounted` to
``event``, ``container``, ``skipped``, ``quarantined`` or ``blank`` (whitespace, array brackets, commas between
values), so ``sum(accounted.values()) == bytes_decoded``; raw bytes that are not gzip data are quarantined too.
Damaged input is set aside only up to the next plausible record start — a line starting ``{``, ``[`` or base64
JSON/gzip, ``}{``, the first bytes of an envelope (``{"messageType"``) or of an API server's audit event
(``{"kind":"Event","apiVersion":"audit.k8s.io/``), inside a top-level array also ``},{`` — so a damaged record does
not take its neighbours with it; a damaged gzip member is resumed at the next member's magic bytes. gzip's CRC is
checked only at a member's end: records of a member already emitted when a CRC mismatch is found are followed by a
``corrupt_gzip`` record. Results do not depend on how the input is chunked (read sizes, gzip member boundaries).
"""

from __future__ import annotations

import binascii
import codecs
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

import msgspec

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_RECORD_BYTES",
    "DecodeStats",
    "Decoder",
    "Quarantined",
    "RawEvent",
    "SourceContext",
    "context_from_key",
    "decode_bytes",
    "decode_path",
    "decode_stream",
]

MAX_RECORD_BYTES = 1 << 20
"""Largest single record (an audit event) accepted; bigger ones are quarantined as ``oversized``."""
MAX_DOCUMENT_BYTES = 32 << 20
"""Largest top-level JSON object (envelope, EventList, export page) held and parsed whole."""
SAMPLE_BYTES = 4096
READ_CHUNK = 1 << 20
_INFLATE_CHUNK = 1 << 20
_RESYNC_WINDOW = 4 << 20  # compressed bytes kept to find the next gzip member after a damaged one
_MAX_NESTING = 3  # base64/gzip payloads inside records inside payloads...
_GZIP_MAGIC = b"\x1f\x8b\x08"
# A gzip member starts with the magic, deflate (8), then flags whose reserved bits (0xE0) are clear: text never does.
_MEMBER_START = re.compile(rb"\x1f\x8b\x08[\x00-\x1f]")
_MEMBER_HEAD = len(_GZIP_MAGIC) + 1
_CONTROL_BYTES = frozenset(range(0x09)) | {0x0B, 0x0C} | frozenset(range(0x0E, 0x20)) | {0x7F}
_TEXT_START = frozenset(b' \t\r\n{["-+/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz\xef')
_SNIFF_BYTES = 64 << 10
_HEAD_BYTES = 4
_BOM = b"\xef\xbb\xbf"


# --- public data types --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceContext:
    cluster: str | None = None
    account: str | None = None
    region: str | None = None
    log_group: str | None = None
    log_stream: str | None = None


@dataclass(slots=True)
class RawEvent:
    data: bytes
    """The audit event's JSON (for envelopes and exports, the log event's ``message`` as UTF-8)."""
    context: SourceContext
    source: str
    offset: int
    log_time_ms: int | None
    """CloudWatch Logs ingestion timestamp of the log event, when the input carried one."""


@dataclass(slots=True)
class Quarantined:
    source: str
    offset: int
    reason: str
    detail: str
    sample: bytes
    """At most 4 KiB of the offending bytes (the record's start)."""


@dataclass
class DecodeStats:
    events: int = 0
    bytes_in: int = 0
    """Bytes read from the inputs, as stored (compressed)."""
    skipped: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    bytes_decoded: int = 0
    """Bytes of text the inputs decompressed to (equal to ``bytes_in`` for plain input)."""
    accounted: Counter[str] = field(default_factory=Counter)
    """``bytes_decoded`` split by what each byte was part of: event, container, skipped, quarantined, blank."""

    def merge(self, other: DecodeStats) -> DecodeStats:
        """Add ``other`` into this one (in place) and return it."""
        self.events += other.events
        self.bytes_in += other.bytes_in
        self.bytes_decoded += other.bytes_decoded
        self.skipped.update(other.skipped)
        self.quarantined.update(other.quarantined)
        self.accounted.update(other.accounted)
        return self


def context_from_key(key: str, base: SourceContext = SourceContext()) -> SourceContext:
    """Context from Hive-style ``name=value`` parts of an object key or path (``audit/account=1/region=r/
    cluster=c/...``); recognised names: account (account_id), region, cluster (cluster_name), log_group,
    log_stream (values URL-decoded). Missing names keep ``base``'s values."""
    values: dict[str, str] = {}
    for part in key.replace("\\", "/").split("/"):
        name, sep, value = part.partition("=")
        target = _KEY_NAMES.get(name.lower()) if sep else None
        if target and value:
            values[target] = unquote(value)
    return replace(base, **values) if values else base


_KEY_NAMES = {
    "account": "account", "account_id": "account", "accountid": "account",
    "region": "region", "aws_region": "region",
    "cluster": "cluster", "cluster_name": "cluster",
    "log_group": "log_group", "loggroup": "log_group",
    "log_stream": "log_stream", "logstream": "log_stream",
}


# --- msgspec shapes --------------------------------------------------------------------------------------------

_NO_RAW = msgspec.Raw()


class _Probe(msgspec.Struct):
    """Just enough of any object to tell its shape; every field stays raw, so this never fails on an object."""

    messageType: msgspec.Raw = _NO_RAW
    kind: msgspec.Raw = _NO_RAW
    items: msgspec.Raw = _NO_RAW
    events: msgspec.Raw = _NO_RAW
    message: msgspec.Raw = _NO_RAW
    awslogs: msgspec.Raw = _NO_RAW
    records: msgspec.Raw = _NO_RAW
    Records: msgspec.Raw = _NO_RAW


class _LogEvent(msgspec.Struct):
    message: str
    timestamp: int | float | None = None


class _Envelope(msgspec.Struct, rename="camel"):
    message_type: str
    owner: str = ""
    log_group: str = ""
    log_stream: str = ""
    log_events: list[_LogEvent] | None = None


class _LooseEnvelope(msgspec.Struct, rename="camel"):
    message_type: msgspec.Raw = _NO_RAW
    owner: msgspec.Raw = _NO_RAW
    log_group: msgspec.Raw = _NO_RAW
    log_stream: msgspec.Raw = _NO_RAW
    log_events: msgspec.Raw = _NO_RAW


class _ExportEvent(msgspec.Struct, rename="camel"):
    message: str
    timestamp: int | float | None = None
    log_stream_name: str | None = None


class _Payload(msgspec.Struct):
    data: str


class _LambdaLogs(msgspec.Struct):
    awslogs: _Payload


class _KinesisRecord(msgspec.Struct, rename="camel"):
    kinesis: _Payload
    aws_region: str | None = None


_RAW = msgspec.json.Decoder(msgspec.Raw)
_PROBE = msgspec.json.Decoder(_Probe)
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_STR = msgspec.json.Decoder(str)
_ENVELOPE = msgspec.json.Decoder(_Envelope)
_LOOSE_ENVELOPE = msgspec.json.Decoder(_LooseEnvelope)
_LOG_EVENT = msgspec.json.Decoder(_LogEvent)
_EXPORT_EVENTS = msgspec.json.Decoder(list[_ExportEvent])
_EXPORT_EVENT = msgspec.json.Decoder(_ExportEvent)
_LAMBDA_LOGS = msgspec.json.Decoder(_LambdaLogs)
_FIREHOSE_RECORD = msgspec.json.Decoder(_Payload)
_KINESIS_RECORD = msgspec.json.Decoder(_KinesisRecord)
_RAW_EVENTLIST = msgspec.Raw(b'"EventList"')

_DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)  # ValidationError is a DecodeError

_WS = re.compile(rb"[ \t\r\n]+")
_WS_BYTES = frozenset(b" \t\r\n")
_STRIP = b" \t\r\n"
# Where a record plausibly starts after damaged bytes: a line starting like JSON or base64 JSON/gzip, "}{", or
# the first bytes of an envelope or of an API server's audit event (escaped, hence absent, inside envelopes).
_RECORD_START = rb'(?=\{"(?:messageType"|kind":"Event","apiVersion":"audit\.k8s\.io/))'
_RESYNC = re.compile(rb"\n[ \t\r]*(?=[{\[]|H4sI|eyJ|W3)|\}[ \t\r\n]*(?=\{)|" + _RECORD_START)
_RESYNC_IN_ARRAY = re.compile(rb"\n[ \t\r]*(?=[{\[]|H4sI|eyJ|W3)|\}[ \t\r\n]*,?[ \t\r\n]*(?=\{)|" + _RECORD_START)
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_B64_TEXT = re.compile(rb"[A-Za-z0-9+/]{8,}={0,2}")
_B64_TOKEN = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_B64_PAYLOAD_STARTS = (b"H4sI", b"eyJ", b"W3s")  # base64 of gzip magic, '{"', '[{': meant as a payload
_NUMBER_START = frozenset(b"-0123456789")
_EKS_LOG_GROUP = re.compile(r"/aws/eks/([^/]+)/cluster")
_AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
# Skipping an oversized document: strings, then structure.
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_STRUCTURE = re.compile(rb'["{}\[\]]')
_SCALAR_END = re.compile(rb"[ \t\r\n,\[\]{}]")


# --- gzip layer ---------------------------------------------------------------------------------------------

_TEXT, _BREAK, _GARBAGE = 0, 1, 2
_START, _PLAIN, _MEMBER, _BETWEEN, _SEEK = 0, 1, 2, 3, 4


class _Inflater:
    """Raw bytes → text. An input that starts with gzip magic is a sequence of gzip members; any other input is
    text as it is. Yields ``(_TEXT, bytes)``; ``(_BREAK, reason, detail, sample)`` where a member is damaged or
    truncated (the text is discontinuous there); ``(_GARBAGE, reason, detail, sample)`` for bytes between or after
    members that are not gzip (the text is not affected). Output per call is bounded, so a small member that
    inflates to gigabytes streams through in slices."""

    def __init__(self) -> None:
        self.mode = _START
        self.carry = b""
        self.raw_pos = 0  # raw offset of the next byte after `carry`
        self.d: zlib._Decompress | None = None
        self.member_start = 0
        self.member_raw = bytearray()
        self.member_raw_start = 0
        self.member_text = 0
        self.failure: tuple[int, str, str, bytes] | None = None
        self.seek_start = 0

    def feed(self, chunk: bytes) -> Iterator[tuple]:
        if self.mode == _PLAIN:
            self.raw_pos += len(chunk)
            if chunk:
                yield (_TEXT, chunk)
            return
        data = self.carry + chunk if self.carry else chunk
        self.raw_pos -= len(self.carry)
        self.carry = b""
        yield from self._process(data, final=False)

    def finish(self) -> Iterator[tuple]:
        data, self.carry = self.carry, b""
        self.raw_pos -= len(data)
        yield from self._process(data, final=True)

    def _start_member(self) -> None:
        self.mode = _MEMBER
        self.d = zlib.decompressobj(31)
        self.member_start = self.raw_pos
        self.member_raw = bytearray()
        self.member_raw_start = self.raw_pos
        self.member_text = 0

    def _process(self, data: bytes, final: bool) -> Iterator[tuple]:
        while True:
            if self.mode == _START:
                # gzip, or text; or something that cannot start JSON or base64 text, where gzip magic within the
                # first 64 KiB says it is a gzip stream with a damaged start
                if not final and len(data) < _HEAD_BYTES:
                    self.carry = data  # too short to tell yet
                    self.raw_pos += len(data)
                    return
                binary = _looks_binary(data[:_HEAD_BYTES])
                if not final and binary and len(data) < _SNIFF_BYTES:
                    self.carry = data  # too short to tell yet
                    self.raw_pos += len(data)
                    return
                match = _MEMBER_START.search(data, 0, _SNIFF_BYTES + _MEMBER_HEAD) if binary else None
                k = match.start() if match else -1
                if _MEMBER_START.match(data):
                    self._start_member()
                elif k == -1:
                    self.mode = _PLAIN
                else:
                    yield (_GARBAGE, "invalid_gzip", f"{k} bytes before the first gzip member (at byte {k}) are not "
                                                     "gzip data", data[:min(k, SAMPLE_BYTES)])
                    self.raw_pos += k
                    data = data[k:]
                    self._start_member()
            elif self.mode == _BETWEEN:
                if len(data) < _MEMBER_HEAD and not final and _GZIP_MAGIC.startswith(data[:len(_GZIP_MAGIC)]):
                    self.carry = data  # too short to tell yet
                    self.raw_pos += len(data)
                    return
                if _MEMBER_START.match(data):
                    self._start_member()
                elif not data:
                    return
                else:
                    self.failure = (_GARBAGE, "invalid_gzip", "", b"")
                    self.seek_start = self.raw_pos
                    self.mode = _SEEK
            elif self.mode == _PLAIN:
                self.raw_pos += len(data)
                if data:
                    yield (_TEXT, data)
                return
            elif self.mode == _SEEK:
                match = _MEMBER_START.search(data)
                k = match.start() if match else -1
                if k == -1:
                    hold = 0 if final else _magic_suffix(data)
                    self._sample_seek(data[:len(data) - hold])
                    self.carry = data[len(data) - hold:] if hold else b""
                    self.raw_pos += len(data)
                    if final:
                        yield self._end_seek(self.raw_pos, "no gzip member follows")
                        self.mode = _BETWEEN
                    return
                self._sample_seek(data[:k])
                self.raw_pos += k
                yield self._end_seek(self.raw_pos, f"resuming at the next gzip member at byte {self.raw_pos}")
                data = data[k:]
                self._start_member()
            else:
                data = yield from self._inflate(data, final)
                if data is None:
                    return

    def _sample_seek(self, skipped: bytes) -> None:
        signal, reason, detail, sample = self.failure  # type: ignore[misc]
        if signal == _GARBAGE and len(sample) < SAMPLE_BYTES:
            self.failure = (signal, reason, detail, sample + skipped[:SAMPLE_BYTES - len(sample)])

    def _end_seek(self, end: int, where: str) -> tuple:
        signal, reason, detail, sample = self.failure  # type: ignore[misc]
        self.failure = None
        if signal == _GARBAGE:
            detail = f"{end - self.seek_start} bytes after the gzip member ending at byte {self.seek_start} are " \
                     "not gzip data"
        return (signal, reason, f"{detail}; {where}", sample)

    def _inflate(self, data: bytes, final: bool) -> Iterator[tuple]:
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
            except zlib.error as error:
                texts, used = _salvage(snapshot, data)
                for text in texts:
                    self.member_text += len(text)
                    yield (_TEXT, text)
                self.raw_pos += used
                return (yield from self._fail("corrupt_gzip", f"corrupt gzip member at byte {self.member_start} "
                                                              f"of the compressed input: {error}"))
            if out:
                self.member_text += len(out)
                yield (_TEXT, out)
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
        return (yield from self._fail("truncated_gzip", f"gzip member at byte {self.member_start} of the "
                                                        "compressed input is truncated"))

    def _fail(self, reason: str, detail: str) -> Iterator[tuple]:
        """A damaged member: resume at the next gzip magic after its start (searching what was kept of it),
        else skip compressed bytes until one appears. Returns the data to continue with, or None."""
        detail += f" (after {self.member_text} decompressed bytes)"
        raw = bytes(self.member_raw)
        first = max(0, self.member_start - self.member_raw_start)  # the member's bytes up to the damage
        sample = raw[first:min(self.raw_pos - self.member_raw_start, first + SAMPLE_BYTES)]
        self.d = None
        match = _MEMBER_START.search(raw, max(0, self.member_start + 1 - self.member_raw_start))
        k = match.start() if match else -1
        if k != -1:
            resume = self.member_raw_start + k
            yield (_BREAK, reason, f"{detail}; resuming at the next gzip member at byte {resume}", sample)
            self.raw_pos = resume
            self.mode = _BETWEEN
            return raw[k:]
        # Seek on from the end of what was kept, with its last bytes (they may begin the next magic).
        tail = raw[max(len(raw) - _MEMBER_HEAD + 1, self.member_start + 1 - self.member_raw_start, 0):]
        self.raw_pos = self.member_raw_start + len(raw) - len(tail)
        self.failure = (_BREAK, reason, detail, sample)
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


def _salvage(snapshot: zlib._Decompress, data: bytes) -> tuple[list[bytes], int]:
    """Re-inflate ``data`` from the state before the failing call, in small steps, to keep every byte of output
    that precedes the damage. Returns the outputs and how many input bytes were used before the error."""
    outputs: list[bytes] = []
    used, step = 0, 256
    while used < len(data):
        piece = data[used:used + step]
        before = snapshot.copy()
        try:
            out = snapshot.decompress(piece)
        except zlib.error:
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


# --- text layer ---------------------------------------------------------------------------------------------


class _Run:
    """What every layer of one input shares: where it came from, the limits, and the running stats."""

    __slots__ = ("max_document", "max_record", "source", "stats")

    def __init__(self, source: str, stats: DecodeStats, max_record: int, max_document: int) -> None:
        self.source = source
        self.stats = stats
        self.max_record = max_record
        self.max_document = max_document

    def quarantine(self, offset: int, reason: str, detail: str, sample: bytes | memoryview) -> Quarantined:
        self.stats.quarantined[reason] += 1
        return Quarantined(self.source, offset, reason, detail, bytes(sample[:SAMPLE_BYTES]))

    def event(self, data: bytes, offset: int, context: SourceContext, log_time: int | float | None,
              utf8_checked: bool = False) -> RawEvent | Quarantined:
        if len(data) > self.max_record:
            return self.quarantine(offset, "oversized", f"record of {len(data)} bytes exceeds the limit of "
                                                        f"{self.max_record} bytes", data)
        if not utf8_checked and not data.isascii():
            try:
                data.decode()
            except UnicodeDecodeError as error:
                return self.quarantine(offset, "invalid_utf8", str(error), data)
        self.stats.events += 1
        return RawEvent(data, context, self.source, offset,
                        None if log_time is None else int(log_time))


class _Skip:
    """State of the tokenizer that walks past a document too large to hold."""

    __slots__ = ("depth", "escape", "in_string", "length", "offset", "sample", "scalar")

    def __init__(self, offset: int, first: int) -> None:
        self.offset = offset
        self.sample = b""
        self.length = 0
        self.depth = 0
        self.in_string = False
        self.escape = False
        self.scalar = first not in b'{["'


class _Scanner:
    """Text → records. Splits the text into top-level JSON values (by line first, falling back to finding where
    a value ends), classifies each and yields what it holds. Waits for more text only when the value at hand is
    incomplete, so results do not depend on how the text was chunked."""

    def __init__(self, run: _Run, context: SourceContext, depth: int, accounting: bool) -> None:
        self.run = run
        self.context = context
        self.depth = depth
        self.accounting = accounting
        self.buf = b""
        self.pos = 0
        self.base = 0  # text offset of buf[0]
        self.pending: list[bytes] = []
        self.pending_len = 0
        self.need = 0
        self.array_depth = 0
        self.expect_value = True
        self.array_items = 0
        self.array_offset = 0
        self.skip: _Skip | None = None
        self.bom_checked = False
        self.contexts: dict[tuple[str, str, str], SourceContext] = {}

    # -- driving

    def feed(self, chunk: bytes) -> Iterator[RawEvent | Quarantined]:
        if self.accounting:
            self.run.stats.bytes_decoded += len(chunk)
        self.pending.append(chunk)
        self.pending_len += len(chunk)
        if len(self.buf) - self.pos + self.pending_len >= self.need:
            yield from self._scan(final=False)

    def flush(self) -> Iterator[RawEvent | Quarantined]:
        """Decode whatever is decidable from the text received so far."""
        yield from self._scan(final=False)

    def text_end(self) -> int:
        return self.base + len(self.buf) + self.pending_len

    def finish(self, reason: str = "truncated_json", detail: str = "the input ends inside a JSON value",
               sample: bytes = b"", always: bool = False) -> Iterator[RawEvent | Quarantined]:
        """End of the text (or a break in it): flush what is complete; what is not is quarantined with
        ``reason``. With ``always``, one record with ``reason`` is yielded even if nothing was pending."""
        reported = yield from self._scan(final=True, reason=reason, detail=detail, incident=always)
        if self.array_depth:
            if not reported:
                yield self.run.quarantine(self.base + self.pos, reason, f"{detail}; the JSON array opened at "
                                                                        f"byte {self.array_offset} is not closed", b"")
                reported = True
            self.array_depth = 0
        self.expect_value = True
        if always and not reported:
            yield self.run.quarantine(self.base + self.pos, reason, detail, sample)
        self.need = 0

    def _account(self, outcome: str, count: int) -> None:
        if self.accounting and count:
            self.run.stats.accounted[outcome] += count

    def _join(self) -> None:
        if not self.pending:
            return
        rest = self.buf[self.pos:] if self.pos else self.buf
        self.base += self.pos
        self.pos = 0
        if not rest and len(self.pending) == 1:
            self.buf = self.pending[0]
        else:
            self.pending.insert(0, rest)
            self.buf = b"".join(self.pending)
        self.pending = []
        self.pending_len = 0

    def _wait(self, pos: int, n: int) -> None:
        remaining = n - pos
        self.need = max(remaining + 1, min(2 * remaining, self.run.max_document + 1))

    # -- the scan loop

    def _scan(self, final: bool, reason: str = "truncated_json", detail: str = "", incident: bool = False) -> Iterator:
        """Decode what the buffer holds. With ``final``, nothing more will come: what is incomplete is quarantined
        with ``reason``; with ``incident`` (a damaged gzip member) so is the first thing that does not parse."""
        self._join()
        buf, pos = self.buf, self.pos
        n = len(buf)
        run = self.run
        reported = False
        self.need = 0
        next_nl = -2  # the next newline at or after pos: -1 none in buf, -2 not looked for yet
        with memoryview(buf) as view:
            while True:
                if self.skip is not None:
                    pos = yield from self._skip_scan(buf, pos, final)
                    if self.skip is not None:
                        break
                    continue
                if pos < n and buf[pos] in _WS_BYTES:
                    end = _WS.match(buf, pos).end()  # type: ignore[union-attr]
                    self._account("blank", end - pos)
                    pos = end
                if not self.bom_checked and self.base + pos == 0:
                    if n - pos < len(_BOM) and not final and _BOM.startswith(buf[pos:]):
                        break
                    self.bom_checked = True
                    if buf.startswith(_BOM, pos):
                        self._account("blank", len(_BOM))
                        pos += len(_BOM)
                        continue
                if pos >= n:
                    break
                c = buf[pos]
                if c == 0x2C:  # ",": separates values in arrays, and is let pass between top-level values too
                    if self.expect_value:
                        yield run.quarantine(self.base + pos, "invalid_json", "stray ','", b",")
                        self._account("quarantined", 1)
                    else:
                        self._account("blank", 1)
                    self.expect_value = True
                    pos += 1
                    continue
                if c == 0x5D and self.array_depth:  # "]"
                    self._account("blank", 1)
                    pos += 1
                    self.array_depth -= 1
                    self.expect_value = False
                    if not self.array_depth and not self.array_items:
                        run.stats.skipped["empty_document"] += 1
                    continue
                if c == 0x5B:  # "[": top-level arrays are decoded element by element
                    if not self.array_depth:
                        self.array_items = 0
                        self.array_offset = self.base + pos
                    self.array_depth += 1
                    self.expect_value = True
                    self._account("blank", 1)
                    pos += 1
                    continue
                if c in _B64_CHARS:  # a base64 payload (a token up to whitespace), or text that is not JSON
                    end = _B64_TOKEN.match(buf, pos).end()  # type: ignore[union-attr]
                    if end == n and not final and n - pos <= run.max_document:
                        self._wait(pos, n)
                        break
                    if end == n or buf[end] in _WS_BYTES:
                        handled = None
                        if end - pos <= run.max_document:
                            handled = yield from self._base64_line(buf[pos:end], self.base + pos)
                        if handled:
                            self._account(handled, end - pos)
                            pos = end
                            self._after_value()
                            continue
                    elif buf.startswith(_B64_PAYLOAD_STARTS, pos):
                        resume = yield from self._damaged(buf, pos, n, final, "base64 payload runs into other text",
                                                          "invalid_base64")
                        if resume is None:
                            break
                        pos = resume
                        continue
                if next_nl < pos and next_nl != -1:  # (cached: one long line must not be searched per value)
                    next_nl = buf.find(b"\n", pos)
                nl = next_nl
                if c == 0x7B and buf.startswith(b'{"messageType"', pos):
                    # CloudWatch Logs envelopes: decode straight away (one pass instead of three)
                    envelope, end = _envelope_at(view, pos, n if nl == -1 else nl)
                    if envelope is not None:
                        unit = buf[pos:end]
                        outcome = yield from self._unit(unit, self.base + pos, None, envelope)
                        self._account(outcome, len(unit))
                        pos = end
                        self._after_value()
                        continue
                # A JSON value. Fast path: the line is exactly one object.
                if nl != -1:
                    line = buf[pos:nl]
                    try:
                        probe = _PROBE.decode(line)
                    except _DECODE_ERRORS:
                        probe = None
                    if probe is not None:
                        if not self.array_depth and c == 0x7B:
                            # JSON lines: a tight loop over consecutive one-event lines (the common case)
                            pos = yield from self._event_lines(buf, pos, nl, probe)
                            continue
                        unit = line.rstrip(_STRIP)
                        outcome = yield from self._unit(unit, self.base + pos, probe)
                        self._account(outcome, len(unit))
                        pos += len(unit)
                        self._after_value()
                        continue
                # Slow path: where does the value starting here end?
                try:
                    end = pos + len(_RAW.decode(view[pos:]))
                except msgspec.DecodeError as error:
                    message = str(error)
                    if message.startswith("Input data was truncated"):
                        if not final:
                            if n - pos > run.max_document:
                                self.skip = _Skip(self.base + pos, c)
                                continue
                            self._wait(pos, n)
                            break
                        # the rest may still hold records (a cut line in JSON lines before the last one)
                        pos = yield from self._damaged(buf, pos, n, True, detail or "the input ends inside a JSON "
                                                       "value", reason)
                        reported = True
                        continue
                    match = _TRAILING.search(message)
                    trailing = pos + int(match.group(1)) - 1 if match else -1
                    if pos < trailing < n and buf[trailing] not in _WS_BYTES:
                        end = trailing
                        while buf[end - 1] in _WS_BYTES:
                            end -= 1
                    else:
                        if incident and not reported:  # text cut short by the damage: one record for both
                            resume = yield from self._damaged(buf, pos, n, final, f"{detail}; {message}", reason)
                            reported = True
                        else:
                            resume = yield from self._damaged(buf, pos, n, final, message)
                        if resume is None:
                            break
                        pos = resume
                        continue
                else:
                    if end == n and not final and c in _NUMBER_START:
                        self._wait(pos, n)  # "12" may continue as "123"
                        break
                if c == 0x22 and not final and n - end < 64:  # what follows must be visible to tell (below)
                    self._wait(pos, n)
                    break
                if c == 0x22 and self._runs_into_record(buf, pos, end):
                    # a top-level string that runs into what looks like the next record: a damaged record
                    resume = yield from self._damaged(buf, pos, n, final, "a JSON string that runs into the next "
                                                                          "record")
                    if resume is None:
                        break
                    pos = resume
                    continue
                unit = buf[pos:end]
                outcome = yield from self._unit(unit, self.base + pos, None)
                self._account(outcome, len(unit))
                pos = end
                self._after_value()
        self.pos = pos
        return reported

    def _event_lines(self, buf: bytes, pos: int, nl: int, probe: _Probe) -> Iterator:
        """Lines that are each one plain event object, until something else shows up (then the general loop
        takes over at that line). Same results as the general loop, fewer steps per event."""
        run, stats, context, source = self.run, self.run.stats, self.context, self.run.source
        self.expect_value = False
        limit = min(run.max_record, run.max_document)
        base = self.base
        event_bytes = blank_bytes = 0
        n = len(buf)
        try:
            while True:
                unit = buf[pos:nl]
                if unit[-1:] in (b" ", b"\t", b"\r"):
                    unit = unit.rstrip(_STRIP)
                kind = probe.kind
                if not kind or probe.messageType or kind == _RAW_EVENTLIST or len(unit) > limit \
                        or not unit.isascii():
                    outcome = yield from self._unit(unit, base + pos, probe)
                    self._account(outcome, len(unit))
                else:
                    stats.events += 1
                    event_bytes += len(unit)
                    yield RawEvent(unit, context, source, base + pos, None)
                blank_bytes += nl + 1 - pos - len(unit)
                pos = nl + 1
                if pos >= n or buf[pos] != 0x7B:
                    return pos
                nl = buf.find(b"\n", pos)
                if nl == -1:
                    return pos
                try:
                    probe = _PROBE.decode(buf[pos:nl])
                except _DECODE_ERRORS:
                    return pos
        finally:
            self._account("event", event_bytes)
            self._account("blank", blank_bytes)

    def _runs_into_record(self, buf: bytes, pos: int, end: int) -> bool:
        match = (_RESYNC_IN_ARRAY if self.array_depth else _RESYNC).search(buf, pos + 1, end + 64)
        return match is not None and match.start() < end

    def _after_value(self) -> None:
        self.expect_value = False
        if self.array_depth:
            self.array_items += 1

    def _damaged(self, buf: bytes, pos: int, n: int, final: bool, message: str,
                 reason: str = "invalid_json") -> Iterator:
        """Bytes at ``pos`` are not (complete) JSON: quarantine them up to the next plausible record start.
        Returns the position to go on from, or None when more text is needed first."""
        pattern = _RESYNC_IN_ARRAY if self.array_depth else _RESYNC
        match = pattern.search(buf, pos + 1)
        if match is None:
            if not final and n - pos <= self.run.max_document:
                self._wait(pos, n)
                return None
            bad_end = resume = n
        else:
            bad_end = match.start() + (1 if buf[match.start()] == 0x7D else 0)  # a "}" belongs to the bad part
            resume = match.end()
        unit = buf[pos:bad_end].rstrip(_STRIP)
        yield self.run.quarantine(self.base + pos, reason, message, unit)
        self._account("quarantined", len(unit))
        self._account("blank", resume - pos - len(unit))
        self.expect_value = False
        return resume

    def _skip_scan(self, buf: bytes, pos: int, final: bool) -> Iterator:
        """Walk past a document too large to hold without keeping it; quarantine it once its end is found."""
        skip = self.skip
        assert skip is not None
        n, i = len(buf), pos
        done = False
        while i < n:
            if skip.scalar:
                match = _SCALAR_END.search(buf, i)
                i, done = (match.start(), True) if match else (n, False)
                break
            if skip.escape:
                skip.escape = False
                i += 1
                continue
            if skip.in_string:
                j = _STRING_BODY.match(buf, i).end()  # type: ignore[union-attr]
                if j >= n:
                    i = n
                elif buf[j] == 0x22:
                    skip.in_string = False
                    i = j + 1
                    if not skip.depth:
                        done = True
                        break
                else:  # a backslash as the last byte
                    skip.escape = True
                    i = j + 1
                continue
            match = _STRUCTURE.search(buf, i)
            if match is None:
                i = n
                break
            i = match.end()
            ch = buf[match.start()]
            if ch == 0x22:
                skip.in_string = True
            elif ch in b"{[":
                skip.depth += 1
            else:
                skip.depth -= 1
                if skip.depth <= 0:
                    done = True
                    break
        if len(skip.sample) < SAMPLE_BYTES:
            skip.sample += buf[pos:min(i, pos + SAMPLE_BYTES - len(skip.sample))]
        skip.length += i - pos
        self._account("quarantined", i - pos)
        if done or final:
            ending = "" if done else "; the input ends inside it"
            yield self.run.quarantine(skip.offset, "document_too_large", f"top-level JSON value of "
                                      f"{skip.length} bytes exceeds the limit of {self.run.max_document} bytes"
                                      f"{ending}", skip.sample)
            self.skip = None
            self._after_value()
        return i

    # -- what a value holds

    def _unit(self, unit: bytes, offset: int, probe: _Probe | None, envelope: _Envelope | None = None) -> Iterator:
        if len(unit) > self.run.max_document:  # also when it happened to arrive whole: same result either way
            yield self.run.quarantine(offset, "document_too_large", f"top-level JSON value of {len(unit)} bytes "
                                      f"exceeds the limit of {self.run.max_document} bytes", unit)
            return "quarantined"
        if envelope is not None:
            return (yield from self._envelope(unit, offset, envelope))
        if probe is not None:
            return (yield from self._object(unit, offset, probe))
        return (yield from self._value(unit, offset))

    def _value(self, unit: bytes, offset: int) -> Iterator:
        """Any JSON value found at the top level (or as a top-level array element). Returns its outcome."""
        first = unit[0]
        if first == 0x7B:  # "{"
            try:
                probe = _PROBE.decode(unit)
            except _DECODE_ERRORS as error:  # not expected: the value was just delimited as JSON
                yield self.run.quarantine(offset, "invalid_json", str(error), unit)
                return "quarantined"
            return (yield from self._object(unit, offset, probe))
        if first == 0x22:  # a string: maybe a base64 payload
            try:
                text = _STR.decode(unit)
            except _DECODE_ERRORS as error:
                yield self.run.quarantine(offset, "invalid_utf8" if isinstance(error, UnicodeDecodeError)
                                          else "invalid_json", str(error), unit)
                return "quarantined"
            handled = yield from self._base64_line(text.encode(), offset)
            if handled:
                return handled
        kind = {0x22: "string", 0x74: "boolean", 0x66: "boolean", 0x6E: "null"}.get(first, "number")
        yield self.run.quarantine(offset, "unknown_shape", f"a JSON {kind} where a record was expected", unit)
        return "quarantined"

    def _base64_line(self, line: bytes, offset: int) -> Iterator:
        """A base64 payload (as Kinesis/Lambda deliver CloudWatch Logs data): decode what it holds. Returns the
        outcome, or None when ``line`` is not base64 of gzip or JSON (the caller then treats it as JSON)."""
        meant = line.startswith(_B64_PAYLOAD_STARTS)
        try:
            if not _B64_TEXT.fullmatch(line):
                raise ValueError("not base64 text")
            payload = binascii.a2b_base64(line, strict_mode=True)
        except (binascii.Error, ValueError) as error:
            if meant:
                yield self.run.quarantine(offset, "invalid_base64", str(error), line)
                return "quarantined"
            return None
        if not (payload.startswith(b"\x1f\x8b") or payload.lstrip(_STRIP)[:1] in (b"{", b"[")):
            return None
        yield from self._nested(payload, offset, self.context)
        return "container"

    def _nested(self, payload: bytes, offset: int, context: SourceContext) -> Iterator:
        """Decode a payload carried inside a record; its records are numbered from the carrier's offset."""
        if self.depth >= _MAX_NESTING:
            yield self.run.quarantine(offset, "nesting_too_deep", f"payload nested more than {_MAX_NESTING} "
                                                                  "levels deep", payload)
            return
        stats = self.run.stats
        before = stats.events + stats.skipped.total() + stats.quarantined.total()
        for index, item in enumerate(_pipeline(_slices(payload), self.run, context, self.depth + 1,
                                               accounting=False)):
            if isinstance(item, Quarantined):
                item.detail = f"in the payload at byte {item.offset}: {item.detail}"
            item.offset = offset + index
            yield item
        if stats.events + stats.skipped.total() + stats.quarantined.total() == before:
            stats.skipped["empty_document"] += 1  # a payload with nothing in it is still accounted for

    def _object(self, unit: bytes, offset: int, probe: _Probe) -> Iterator:
        """A JSON object: an event, or a container of events. Returns the outcome for accounting."""
        if probe.messageType:
            return (yield from self._envelope(unit, offset))
        if probe.kind:
            if probe.kind == _RAW_EVENTLIST and probe.items:
                return (yield from self._items(probe.items, offset, "EventList items"))
            yield self.run.event(unit, offset, self.context, None)
            return "event"
        if probe.awslogs:
            return (yield from self._lambda_logs(unit, offset))
        if probe.events and _is_list(probe.events):
            return (yield from self._export(probe.events, offset))
        if probe.records and _is_list(probe.records):
            return (yield from self._wrapped(unit, probe.records, offset, "records"))
        if probe.Records and _is_list(probe.Records):
            return (yield from self._wrapped(unit, probe.Records, offset, "Records"))
        if probe.message:
            try:
                log_event = _EXPORT_EVENT.decode(unit)
            except _DECODE_ERRORS:
                log_event = None
            if log_event is not None:
                yield self._message(log_event.message, offset, self._stream_context(log_event.log_stream_name),
                                    log_event.timestamp)
                return "container"
        yield self.run.event(unit, offset, self.context, None)
        return "event"

    def _message(self, message: str, offset: int, context: SourceContext,
                 log_time: int | float | None) -> RawEvent | Quarantined:
        data = message.encode()
        if not message.startswith("{"):
            return self.run.quarantine(offset, "invalid_json", "log event message is not a JSON object", data)
        return self.run.event(data, offset, context, log_time, utf8_checked=True)

    def _items(self, raw: msgspec.Raw, offset: int, what: str) -> Iterator:
        try:
            items = _RAW_LIST.decode(raw)
        except _DECODE_ERRORS as error:
            yield self.run.quarantine(offset, "unknown_shape", f"{what} is not a list: {error}", bytes(raw))
            return "quarantined"
        if not items:
            self.run.stats.skipped["empty_document"] += 1
            return "skipped"
        for index, item in enumerate(items):
            data = bytes(item)
            if data[:1] == b"{":
                yield self.run.event(data, offset + index, self.context, None)
            else:
                yield self.run.quarantine(offset + index, "unknown_shape", f"{what} element is not an object", data)
        return "container"

    def _envelope_context(self, owner: str, log_group: str, log_stream: str) -> SourceContext:
        key = (owner, log_group, log_stream)
        context = self.contexts.get(key)
        if context is None:
            match = _EKS_LOG_GROUP.fullmatch(log_group)
            context = replace(self.context, account=owner or self.context.account,
                              cluster=match.group(1) if match else self.context.cluster,
                              log_group=log_group or self.context.log_group,
                              log_stream=log_stream or self.context.log_stream)
            if len(self.contexts) > 4096:
                self.contexts.clear()
            self.contexts[key] = context
        return context

    def _stream_context(self, log_stream: str | None) -> SourceContext:
        return self._envelope_context("", "", log_stream) if log_stream else self.context

    def _envelope(self, unit: bytes, offset: int, envelope: _Envelope | None = None) -> Iterator:
        run = self.run
        try:
            if envelope is None:
                envelope = _ENVELOPE.decode(unit)
            header = (envelope.message_type, envelope.owner, envelope.log_group, envelope.log_stream)
            log_events: list | None = envelope.log_events
            loose = None
        except _DECODE_ERRORS:
            try:
                loose = _LOOSE_ENVELOPE.decode(unit)
                header = tuple(_STR.decode(value) if value else "" for value in  # type: ignore[assignment]
                               (loose.message_type, loose.owner, loose.log_group, loose.log_stream))
            except _DECODE_ERRORS as error:
                yield run.quarantine(offset, "invalid_envelope", f"envelope header is not strings: {error}", unit)
                return "quarantined"
            log_events = None
            if loose.log_events:
                try:
                    log_events = _RAW_LIST.decode(loose.log_events)
                except _DECODE_ERRORS:
                    yield run.quarantine(offset, "invalid_envelope", "logEvents is not a list", unit)
                    return "quarantined"
        message_type, owner, log_group, log_stream = header
        if message_type == "CONTROL_MESSAGE":
            run.stats.skipped["control_message"] += 1
            return "skipped"
        if message_type != "DATA_MESSAGE":
            yield run.quarantine(offset, "unknown_message_type", f"messageType {message_type!r}", unit)
            return "quarantined"
        if log_events is None:
            yield run.quarantine(offset, "invalid_envelope", "DATA_MESSAGE without logEvents", unit)
            return "quarantined"
        if not log_events:
            yield run.quarantine(offset, "empty_envelope", "DATA_MESSAGE with no log events", unit)
            return "quarantined"
        if log_stream and _EKS_LOG_GROUP.fullmatch(log_group) and not log_stream.startswith(_AUDIT_STREAM_PREFIX):
            run.stats.skipped["non_audit_stream"] += len(log_events)
            return "skipped"
        context = self._envelope_context(owner, log_group, log_stream)
        stats, source, limit = run.stats, run.source, run.max_record
        for index, log_event in enumerate(log_events):
            if loose is not None:
                try:
                    log_event = _LOG_EVENT.decode(log_event)
                except _DECODE_ERRORS as error:
                    utf8 = isinstance(error, UnicodeDecodeError)
                    yield run.quarantine(offset + index, "invalid_utf8" if utf8 else "invalid_log_event",
                                         f"logEvents[{index}]: {error}", bytes(log_event))
                    continue
            message, timestamp = log_event.message, log_event.timestamp
            data = message.encode()
            if message[:1] == "{" and len(data) <= limit and timestamp.__class__ is int:  # the usual case, inline
                stats.events += 1
                yield RawEvent(data, context, source, offset + index, timestamp)
            else:
                yield self._message(message, offset + index, context, timestamp)
        return "container"

    def _export(self, raw: msgspec.Raw, offset: int) -> Iterator:
        """``aws logs filter-log-events`` / ``get-log-events`` output."""
        try:
            events: list = _EXPORT_EVENTS.decode(raw)
            loose = False
        except _DECODE_ERRORS:
            events = _RAW_LIST.decode(raw)
            loose = True
        if not events:
            self.run.stats.skipped["empty_document"] += 1
            return "skipped"
        for index, event in enumerate(events):
            if loose:
                try:
                    event = _EXPORT_EVENT.decode(event)
                except _DECODE_ERRORS as error:
                    utf8 = isinstance(error, UnicodeDecodeError)
                    yield self.run.quarantine(offset + index, "invalid_utf8" if utf8 else "invalid_log_event",
                                              f"events[{index}]: {error}", bytes(event))
                    continue
            yield self._message(event.message, offset + index, self._stream_context(event.log_stream_name),
                                event.timestamp)
        return "container"

    def _lambda_logs(self, unit: bytes, offset: int) -> Iterator:
        """A Lambda CloudWatch Logs subscription event: ``{"awslogs":{"data":"<base64 gzip envelope>"}}``."""
        try:
            data = _LAMBDA_LOGS.decode(unit).awslogs.data
        except _DECODE_ERRORS:
            yield self.run.event(unit, offset, self.context, None)  # not the wrapper after all
            return "event"
        return (yield from self._payload(data, offset, self.context, "awslogs.data"))

    def _wrapped(self, unit: bytes, raw: msgspec.Raw, offset: int, field_name: str) -> Iterator:
        """Firehose transformation (``records[].data``) or Kinesis (``Records[].kinesis.data``) events."""
        records = _RAW_LIST.decode(raw)
        kinesis = field_name == "Records"
        region = None
        if not kinesis:
            try:
                region = _FIREHOSE_REGION.decode(unit).region
            except _DECODE_ERRORS:
                region = None
        if not records:
            self.run.stats.skipped["empty_document"] += 1
            return "skipped"
        for index, record in enumerate(records):
            try:
                if kinesis:
                    parsed = _KINESIS_RECORD.decode(record)
                    data, record_region = parsed.kinesis.data, parsed.aws_region
                else:
                    data, record_region = _FIREHOSE_RECORD.decode(record).data, region
            except _DECODE_ERRORS as error:
                yield self.run.quarantine(offset + index, "unknown_shape", f"{field_name}[{index}] has no base64 "
                                                                           f"data: {error}", bytes(record))
                continue
            context = replace(self.context, region=record_region) if record_region else self.context
            yield from self._payload(data, offset + index, context, f"{field_name}[{index}].data")
        return "container"

    def _payload(self, data: str, offset: int, context: SourceContext, what: str) -> Iterator:
        try:
            payload = binascii.a2b_base64(data.encode(), strict_mode=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as error:
            yield self.run.quarantine(offset, "invalid_base64", f"{what}: {error}", data.encode("utf-8", "replace"))
            return "quarantined"
        yield from self._nested(payload, offset, context)
        return "container"


def _envelope_at(view: memoryview, pos: int, stop: int) -> tuple[_Envelope | None, int]:
    """The well-formed envelope starting at ``pos`` (ending before ``stop`` or where trailing text starts)
    and its end, or (None, 0) if that is not what is there."""
    end = stop
    try:
        envelope = _ENVELOPE.decode(view[pos:stop])
    except msgspec.ValidationError:
        return None, 0
    except msgspec.DecodeError as error:
        match = _TRAILING.search(str(error))
        if match is None:
            return None, 0
        end = pos + int(match.group(1)) - 1
    except UnicodeDecodeError:
        return None, 0
    else:
        while view[end - 1] in _WS_BYTES:
            end -= 1
        return envelope, end
    while end > pos and view[end - 1] in _WS_BYTES:
        end -= 1
    try:
        return _ENVELOPE.decode(view[pos:end]), end
    except _DECODE_ERRORS:
        return None, 0


class _FirehoseRegion(msgspec.Struct):
    region: str | None = None


_FIREHOSE_REGION = msgspec.json.Decoder(_FirehoseRegion)


def _is_list(raw: msgspec.Raw) -> bool:
    with memoryview(raw) as view:
        return view[:1] == b"["


# --- pipelines and the public entry points ----------------------------------------------------------------------


def _slices(data: bytes | bytearray | memoryview, size: int = READ_CHUNK) -> Iterator[bytes]:
    view = memoryview(data).cast("B")
    for start in range(0, len(view), size):
        yield bytes(view[start:start + size])


class _ReadFailed:
    __slots__ = ("error", "read")

    def __init__(self) -> None:
        self.error: OSError | None = None
        self.read = 0


def _read(stream: BinaryIO, failed: _ReadFailed, size: int = READ_CHUNK) -> Iterator[bytes]:
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


def _pipeline(chunks: Iterable[bytes], run: _Run, context: SourceContext, depth: int, accounting: bool,
              failed: _ReadFailed | None = None) -> Iterator[RawEvent | Quarantined]:
    scanner = _Scanner(run, context, depth, accounting)
    try:
        yield from _drive(chunks, run, scanner, accounting, failed)
    except Exception as error:  # a bug must not take the caller's batch down; it is reported, not hidden
        yield run.quarantine(scanner.base + scanner.pos, "internal_error", f"decoding stopped here: "
                             f"{type(error).__name__}: {error}", b"")


def _drive(chunks: Iterable[bytes], run: _Run, scanner: _Scanner, accounting: bool,
           failed: _ReadFailed | None) -> Iterator[RawEvent | Quarantined]:
    inflater = _Inflater()

    def route(signal: tuple) -> Iterator[RawEvent | Quarantined]:
        if signal[0] == _TEXT:
            yield from scanner.feed(signal[1])
        elif signal[0] == _BREAK:
            yield from scanner.flush()  # decide what the text so far decides first: the same however it was chunked
            yield from scanner.finish(signal[1], signal[2], signal[3], always=True)
        else:  # _GARBAGE: first what the text so far holds, so the order does not depend on chunking
            yield from scanner.flush()
            yield run.quarantine(scanner.text_end(), signal[1], signal[2], signal[3])

    for chunk in chunks:
        if accounting:
            run.stats.bytes_in += len(chunk)
        for signal in inflater.feed(chunk):
            yield from route(signal)
    if failed is not None and failed.error is not None:
        yield from scanner.finish("unreadable", f"read failed after {failed.read} bytes: {failed.error}",
                                  always=True)
        return
    for signal in inflater.finish():
        yield from route(signal)
    yield from scanner.finish()


def decode_bytes(data: bytes | bytearray | memoryview, *, source: str, defaults: SourceContext = SourceContext(),
                 stats: DecodeStats | None = None, max_record: int = MAX_RECORD_BYTES,
                 max_document: int = MAX_DOCUMENT_BYTES) -> Iterator[RawEvent | Quarantined]:
    """Decode an in-memory input of any shape. Skips are counted in ``stats`` (when given)."""
    run = _Run(source, stats if stats is not None else DecodeStats(), max_record, max_document)
    return _pipeline(_slices(data), run, defaults, 0, accounting=True)


def decode_stream(stream: BinaryIO, *, source: str, defaults: SourceContext = SourceContext(),
                  stats: DecodeStats | None = None, max_record: int = MAX_RECORD_BYTES,
                  max_document: int = MAX_DOCUMENT_BYTES) -> Iterator[RawEvent | Quarantined]:
    """Decode a binary stream (a file, an S3 body...) read in 1 MiB chunks. A read error ends the stream with
    an ``unreadable`` record."""
    run = _Run(source, stats if stats is not None else DecodeStats(), max_record, max_document)
    failed = _ReadFailed()
    return _pipeline(_read(stream, failed), run, defaults, 0, accounting=True, failed=failed)


def decode_path(path: str | os.PathLike[str], *, defaults: SourceContext = SourceContext(),
                stats: DecodeStats | None = None, max_record: int = MAX_RECORD_BYTES,
                max_document: int = MAX_DOCUMENT_BYTES) -> Iterator[RawEvent | Quarantined]:
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
            yield _Run(str(file), stats, max_record, max_document).quarantine(0, "unreadable", str(error), b"")
            continue
        with handle:
            yield from decode_stream(handle, source=str(file), defaults=context, stats=stats,
                                     max_record=max_record, max_document=max_document)


def _walk(path: Path, stats: DecodeStats, max_record: int, max_document: int) -> Iterator[Path | Quarantined]:
    def unreadable(where: Path, detail: str) -> Quarantined:
        return _Run(str(where), stats, max_record, max_document).quarantine(0, "unreadable", detail, b"")

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

    def __init__(self, *, defaults: SourceContext = SourceContext(), max_record: int = MAX_RECORD_BYTES,
                 max_document: int = MAX_DOCUMENT_BYTES) -> None:
        self.defaults = defaults
        self.max_record = max_record
        self.max_document = max_document
        self.stats = DecodeStats()
        self.quarantined: list[Quarantined] = []

    def decode(self, source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO, *,
               name: str | None = None, defaults: SourceContext | None = None) -> Iterator[RawEvent | Quarantined]:
        """Everything, in input order. ``source``: bytes, a path (file or directory) or a binary stream;
        ``name`` names bytes and streams in the records (default ``<bytes>`` / the stream's name)."""
        context = defaults if defaults is not None else self.defaults
        limits = {"stats": self.stats, "max_record": self.max_record, "max_document": self.max_document}
        if isinstance(source, bytes | bytearray | memoryview):
            return decode_bytes(source, source=name or "<bytes>", defaults=context, **limits)  # type: ignore[arg-type]
        if isinstance(source, str | os.PathLike):
            return decode_path(source, defaults=context, **limits)  # type: ignore[arg-type]
        return decode_stream(source, source=name or str(getattr(source, "name", "<stream>")), defaults=context,
                             **limits)  # type: ignore[arg-type]

    def events(self, source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO, *,
               name: str | None = None, defaults: SourceContext | None = None) -> Iterator[RawEvent]:
        """Only the events; quarantined records are appended to `quarantined`."""
        for item in self.decode(source, name=name, defaults=defaults):
            if isinstance(item, RawEvent):
                yield item
            else:
                self.quarantined.append(item)

    def take_quarantined(self) -> list[Quarantined]:
        taken, self.quarantined = self.quarantined, []
        return taken
