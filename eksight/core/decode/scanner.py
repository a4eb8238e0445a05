"""The text layer: finds records in decompressed text and routes each shape; the pipeline that drives it."""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import BinaryIO

import msgspec

from eksight.core.decode.formats import (
    _AUDIT_STREAM_PREFIX,
    _B64_CHARS,
    _B64_PAYLOAD_STARTS,
    _B64_TEXT,
    _B64_TOKEN,
    _DECODE_ERRORS,
    _EKS_LOG_GROUP,
    _ENVELOPE,
    _EXPORT_EVENT,
    _EXPORT_EVENTS,
    _FIREHOSE_RECORD,
    _KINESIS_RECORD,
    _LAMBDA_LOGS,
    _LOG_EVENT,
    _LOOSE_ENVELOPE,
    _NUMBER_START,
    _PROBE,
    _RAW,
    _RAW_EVENTLIST,
    _RAW_LIST,
    _RESYNC,
    _RESYNC_IN_ARRAY,
    _SCALAR_END,
    _STR,
    _STRING_BODY,
    _STRIP,
    _STRUCTURE,
    _TRAILING,
    _WS,
    _WS_BYTES,
    _Envelope,
    _Probe,
)
from eksight.core.decode.inflate import _BREAK, _TEXT, _Inflater
from eksight.core.decode.model import (
    _BOM,
    _MAX_NESTING,
    READ_CHUNK,
    SAMPLE_BYTES,
    DecodeStats,
    Quarantined,
    RawEvent,
    SourceContext,
)

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

    def event(
        self, data: bytes, offset: int, context: SourceContext, log_time: int | float | None, utf8_checked: bool = False
    ) -> RawEvent | Quarantined:
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

    def finish(
        self,
        reason: str = "truncated_json",
        detail: str = "the input ends inside a JSON value",
        sample: bytes = b"",
        always: bool = False,
    ) -> Iterator[RawEvent | Quarantined]:
        """End of the text (or a break in it): flush what is complete; what is not is quarantined with
        ``reason``. With ``always``, one record with ``reason`` is yielded even if nothing was pending."""
        reported = yield from self._scan(final=True, reason=reason, detail=detail, incident=always)
        if self.array_depth:
            if not reported:
                yield self.run.quarantine(
                    self.base + self.pos,
                    reason,
                    f"{detail}; the JSON array opened at byte {self.array_offset} is not closed",
                    b"",
                )
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
        rest = self.buf[self.pos :] if self.pos else self.buf
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
                        resume = yield from self._damaged(
                            buf, pos, n, final, "base64 payload runs into other text", "invalid_base64"
                        )
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
                        pos = yield from self._damaged(
                            buf, pos, n, True, detail or "the input ends inside a JSON value", reason
                        )
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
                    resume = yield from self._damaged(
                        buf, pos, n, final, "a JSON string that runs into the next record"
                    )
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
                if not kind or probe.messageType or kind == _RAW_EVENTLIST or len(unit) > limit or not unit.isascii():
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

    def _damaged(
        self, buf: bytes, pos: int, n: int, final: bool, message: str, reason: str = "invalid_json"
    ) -> Iterator:
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
            skip.sample += buf[pos : min(i, pos + SAMPLE_BYTES - len(skip.sample))]
        skip.length += i - pos
        self._account("quarantined", i - pos)
        if done or final:
            ending = "" if done else "; the input ends inside it"
            yield self.run.quarantine(
                skip.offset,
                "document_too_large",
                f"top-level JSON value of "
                f"{skip.length} bytes exceeds the limit of {self.run.max_document} bytes"
                f"{ending}",
                skip.sample,
            )
            self.skip = None
            self._after_value()
        return i

    # -- what a value holds

    def _unit(self, unit: bytes, offset: int, probe: _Probe | None, envelope: _Envelope | None = None) -> Iterator:
        if len(unit) > self.run.max_document:  # also when it happened to arrive whole: same result either way
            yield self.run.quarantine(
                offset,
                "document_too_large",
                f"top-level JSON value of {len(unit)} bytes exceeds the limit of {self.run.max_document} bytes",
                unit,
            )
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
                yield self.run.quarantine(
                    offset,
                    "invalid_utf8" if isinstance(error, UnicodeDecodeError) else "invalid_json",
                    str(error),
                    unit,
                )
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
            yield self.run.quarantine(
                offset, "nesting_too_deep", f"payload nested more than {_MAX_NESTING} levels deep", payload
            )
            return
        stats = self.run.stats
        before = stats.events + stats.skipped.total() + stats.quarantined.total()
        for index, item in enumerate(_pipeline(_slices(payload), self.run, context, self.depth + 1, accounting=False)):
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
                yield self._message(
                    log_event.message, offset, self._stream_context(log_event.log_stream_name), log_event.timestamp
                )
                return "container"
        yield self.run.event(unit, offset, self.context, None)
        return "event"

    def _message(
        self, message: str, offset: int, context: SourceContext, log_time: int | float | None
    ) -> RawEvent | Quarantined:
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
            context = replace(
                self.context,
                account=owner or self.context.account,
                cluster=match.group(1) if match else self.context.cluster,
                log_group=log_group or self.context.log_group,
                log_stream=log_stream or self.context.log_stream,
            )
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
                header = tuple(
                    _STR.decode(value) if value else ""
                    for value in (loose.message_type, loose.owner, loose.log_group, loose.log_stream)  # type: ignore[assignment]
                )
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
                    yield run.quarantine(
                        offset + index,
                        "invalid_utf8" if utf8 else "invalid_log_event",
                        f"logEvents[{index}]: {error}",
                        bytes(log_event),
                    )
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
                    yield self.run.quarantine(
                        offset + index,
                        "invalid_utf8" if utf8 else "invalid_log_event",
                        f"events[{index}]: {error}",
                        bytes(event),
                    )
                    continue
            yield self._message(
                event.message, offset + index, self._stream_context(event.log_stream_name), event.timestamp
            )
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
                yield self.run.quarantine(
                    offset + index, "unknown_shape", f"{field_name}[{index}] has no base64 data: {error}", bytes(record)
                )
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
        yield bytes(view[start : start + size])


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


def _pipeline(
    chunks: Iterable[bytes],
    run: _Run,
    context: SourceContext,
    depth: int,
    accounting: bool,
    failed: _ReadFailed | None = None,
) -> Iterator[RawEvent | Quarantined]:
    scanner = _Scanner(run, context, depth, accounting)
    try:
        yield from _drive(chunks, run, scanner, accounting, failed)
    except Exception as error:  # a bug must not take the caller's batch down; it is reported, not hidden
        yield run.quarantine(
            scanner.base + scanner.pos, "internal_error", f"decoding stopped here: {type(error).__name__}: {error}", b""
        )


def _drive(
    chunks: Iterable[bytes], run: _Run, scanner: _Scanner, accounting: bool, failed: _ReadFailed | None
) -> Iterator[RawEvent | Quarantined]:
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
        yield from scanner.finish("unreadable", f"read failed after {failed.read} bytes: {failed.error}", always=True)
        return
    for signal in inflater.finish():
        yield from route(signal)
    yield from scanner.finish()
