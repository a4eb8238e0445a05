"""The text layer: finds the top-level JSON values in decompressed text and hands each to the record layer."""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from eksight.core.decode.formats import (
    B64_CHARS,
    B64_PAYLOAD_STARTS,
    B64_TOKEN,
    BOM,
    DECODE_ERRORS,
    NUMBER_START,
    PROBE,
    RAW,
    RAW_EVENTLIST,
    RECORD_LINE,
    RECORD_LINE_HOLD,
    RESYNC,
    RESYNC_IN_ARRAY,
    STRIP,
    WS,
    WS_BYTES,
    ExactEnvelope,
    Probe,
    end_before_trailing_text,
    exact_envelope_at,
)
from eksight.core.decode.model import MAX_VALUE_DEPTH, TOO_DEEP, RawEvent, SourceContext
from eksight.core.decode.run import Decoding, Outcome, Run
from eksight.core.decode.shapes import PayloadDecoder, RecordShapes
from eksight.core.decode.skip import ValueSkipper
from eksight.core.untrusted import nests_deeper_than

_NOT_HANDLED = -1  # a step that leaves the value to the next way of reading it


@dataclass(slots=True)
class _Pass:
    """One pass over the buffer: the text, whether more will come, and what to call what is cut short."""

    buf: bytes
    view: memoryview
    final: bool
    reason: str
    detail: str
    incident: bool
    reported: bool = False
    next_nl: int = -2  # the next newline at or after the position: -1 none in buf, -2 not looked for yet
    # The line (by its newline) last judged for depth: each value on a line is not to cost the rest of the line.
    judged_line: int = -1
    deep_line: bool = False

    @property
    def n(self) -> int:
        return len(self.buf)

    def newline_from(self, pos: int) -> int:
        if self.next_nl < pos and self.next_nl != -1:  # (cached: one long line must not be searched per value)
            self.next_nl = self.buf.find(b"\n", pos)
        return self.next_nl


class TextScanner:
    """Text → records. Splits the text into top-level JSON values (by line first, falling back to finding where
    a value ends), and hands each to `RecordShapes`. Waits for more text only when the value at hand is
    incomplete, so results do not depend on how the text was chunked."""

    def __init__(
        self, run: Run, context: SourceContext, depth: int, accounting: bool, decode_payload: PayloadDecoder
    ) -> None:
        self.run = run
        self.context = context
        self.shapes = RecordShapes(run, context, depth, decode_payload)
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
        self.skip: ValueSkipper | None = None
        self.bom_checked = False

    # -- driving

    def feed(self, chunk: bytes) -> Decoding[None]:
        if self.accounting:
            self.run.stats.bytes_decoded += len(chunk)
        self.pending.append(chunk)
        self.pending_len += len(chunk)
        if len(self.buf) - self.pos + self.pending_len >= self.need:
            yield from self._scan(final=False)

    def flush(self) -> Decoding[None]:
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
    ) -> Decoding[None]:
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

    def _scan(
        self, final: bool, reason: str = "truncated_json", detail: str = "", incident: bool = False
    ) -> Decoding[bool]:
        """Decode what the buffer holds. With ``final``, nothing more will come: what is incomplete is quarantined
        with ``reason``; with ``incident`` (a damaged gzip member) so is the first thing that does not parse.
        Returns whether a record with ``reason`` was yielded."""
        self._join()
        self.need = 0
        pos = self.pos
        with memoryview(self.buf) as view:
            p = _Pass(self.buf, view, final, reason, detail, incident)
            while True:
                if self.skip is not None:
                    pos = yield from self._skip_scan(p.buf, pos, final)
                    if self.skip is not None:
                        break
                    continue
                if pos < p.n and p.buf[pos] in WS_BYTES:
                    pos = self._blanks(p.buf, pos)
                if not self.bom_checked and self.base + pos == 0:
                    if p.n - pos < len(BOM) and not final and BOM.startswith(p.buf[pos:]):
                        break  # too short to tell yet
                    self.bom_checked = True
                    if p.buf.startswith(BOM, pos):
                        self._account("blank", len(BOM))
                        pos += len(BOM)
                        continue
                if pos >= p.n:
                    break
                resume = yield from self._value_at(p, pos)
                if resume is None:
                    break
                pos = resume
        self.pos = pos
        return p.reported

    def _blanks(self, buf: bytes, pos: int) -> int:
        match = WS.match(buf, pos)
        end = match.end() if match else pos
        self._account("blank", end - pos)
        return end

    def _value_at(self, p: _Pass, pos: int) -> Decoding[int | None]:
        """Read what starts at ``pos``. Returns where to go on, or None to stop this pass (more text is needed)."""
        c = p.buf[pos]
        if c == 0x2C:  # ",": separates values in arrays, and is let pass between top-level values too
            if self.expect_value:
                yield self.run.quarantine(self.base + pos, "invalid_json", "stray ','", b",")
                self._account("quarantined", 1)
            else:
                self._account("blank", 1)
            self.expect_value = True
            return pos + 1
        if c == 0x5D and self.array_depth:  # "]"
            self._account("blank", 1)
            self.array_depth -= 1
            self.expect_value = False
            if not self.array_depth and not self.array_items:
                self.run.stats.skipped["empty_document"] += 1
            return pos + 1
        if c == 0x5B:  # "[": top-level arrays are decoded element by element
            return self._open_array(pos)
        if c in B64_CHARS:
            resume = yield from self._base64_token(p, pos)
            if resume != _NOT_HANDLED:
                return resume
        nl = p.newline_from(pos)
        if c == 0x7B and p.buf.startswith(b'{"messageType"', pos):
            end = yield from self._envelope_line(p, pos, nl)
            if end != _NOT_HANDLED:
                return end
        if nl != -1:
            end = yield from self._line(p, pos, nl)
            if end != _NOT_HANDLED:
                return end
        return (yield from self._delimited(p, pos, nl))

    def _open_array(self, pos: int) -> int:
        if self.array_depth >= MAX_VALUE_DEPTH:  # walked past as one value, however deep it goes
            self.skip = ValueSkipper(self.base + pos, 0x5B, "nesting_too_deep")
            return pos
        if not self.array_depth:
            self.array_items = 0
            self.array_offset = self.base + pos
        self.array_depth += 1
        self.expect_value = True
        self._account("blank", 1)
        return pos + 1

    def _base64_token(self, p: _Pass, pos: int) -> Decoding[int | None]:
        """A base64 payload (a token up to whitespace); `_NOT_HANDLED` when it is text that is not one."""
        buf, n, run = p.buf, p.n, self.run
        match = B64_TOKEN.match(buf, pos)
        end = match.end() if match else pos
        if end == n and not p.final and n - pos <= run.max_document:
            self._wait(pos, n)
            return None
        if end == n or buf[end] in WS_BYTES:
            handled = None
            if end - pos <= run.max_document:
                handled = yield from self.shapes.base64_line(buf[pos:end], self.base + pos)
            if handled:
                self._account(handled, end - pos)
                self._after_value()
                return end
        elif buf.startswith(B64_PAYLOAD_STARTS, pos):
            return (
                yield from self._damaged(buf, pos, n, p.final, "base64 payload runs into other text", "invalid_base64")
            )
        return _NOT_HANDLED

    def _envelope_line(self, p: _Pass, pos: int, nl: int) -> Decoding[int]:
        """CloudWatch Logs envelopes as CloudWatch writes them: read in one pass instead of three."""
        envelope, end = exact_envelope_at(p.view, pos, p.n if nl == -1 else nl)
        if envelope is None:
            return _NOT_HANDLED
        return (yield from self._take(p.buf[pos:end], pos, None, envelope))

    def _line(self, p: _Pass, pos: int, nl: int) -> Decoding[int]:
        """Fast path: the line is exactly one object (JSON lines, or a one-line container)."""
        line = p.buf[pos:nl]
        if p.judged_line != nl:  # (a shallow line's every part is shallow: see nests_deeper_than)
            p.judged_line, p.deep_line = nl, nests_deeper_than(line, MAX_VALUE_DEPTH)
        if p.deep_line:
            return (yield from self._deep_line(p.buf, pos, nl))
        try:
            probe = PROBE.decode(line)
        except DECODE_ERRORS:
            return _NOT_HANDLED
        if not self.array_depth and p.buf[pos] == 0x7B:
            # JSON lines: a tight loop over consecutive one-event lines (the common case)
            return (yield from self._event_lines(p.buf, pos, nl, probe))
        return (yield from self._take(line.rstrip(STRIP), pos, probe))

    def _take(self, unit: bytes, pos: int, probe: Probe | None, envelope: ExactEnvelope | None = None) -> Decoding[int]:
        """Hand the value ``unit`` at ``pos`` to the record layer; returns the position after it."""
        outcome: Outcome = yield from self.shapes.unit(unit, self.base + pos, probe, envelope)
        self._account(outcome, len(unit))
        self._after_value()
        return pos + len(unit)

    def _deep_line(self, buf: bytes, pos: int, nl: int) -> Decoding[int]:
        """A line nested deeper than the limit. If the value at ``pos`` is the deep one, it is quarantined up to
        where it ends, or to the end of the line if it does not end there (a cut record must not take the lines
        after it); if not, it is read the slow way (`_NOT_HANDLED`), and the deep one comes after it."""
        skipper = ValueSkipper(self.base + pos, buf[pos], "nesting_too_deep")
        end, done = skipper.advance(buf, pos, nl)
        if done and skipper.deepest <= MAX_VALUE_DEPTH:
            return _NOT_HANDLED
        unit = buf[pos:end] if done else buf[pos:nl].rstrip(STRIP)
        ending = "" if done else "; the line ends inside it"
        yield self.run.quarantine(self.base + pos, "nesting_too_deep", TOO_DEEP + ending, unit)
        self._account("quarantined", len(unit))
        self._after_value()
        return pos + len(unit)

    def _event_lines(self, buf: bytes, pos: int, nl: int, probe: Probe) -> Decoding[int]:
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
                    unit = unit.rstrip(STRIP)
                kind = probe.kind
                if not kind or probe.messageType or kind == RAW_EVENTLIST or len(unit) > limit or not unit.isascii():
                    outcome = yield from self.shapes.unit(unit, base + pos, probe)
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
                line = buf[pos:nl]
                if nests_deeper_than(line, MAX_VALUE_DEPTH):
                    return pos
                try:
                    probe = PROBE.decode(line)
                except DECODE_ERRORS:
                    return pos
        finally:
            self._account("event", event_bytes)
            self._account("blank", blank_bytes)

    def _delimited(self, p: _Pass, pos: int, nl: int) -> Decoding[int | None]:
        """Slow path: find where the value starting at ``pos`` ends, then read it. Returns where to go on, or None
        when more text is needed first."""
        buf, n, c = p.buf, p.n, p.buf[pos]
        try:
            end = pos + len(RAW.decode(p.view[pos:]))
        except RecursionError:  # deeper than the parser can go: deeper than the limit, which is well within that
            if nl == -1 and not p.final and n - pos <= self.run.max_document:
                self._wait(pos, n)  # a line still arriving may yet prove to be one value (then it is read as one)
                return None
            self.skip = ValueSkipper(self.base + pos, c, "nesting_too_deep")
            return pos
        except msgspec.DecodeError as error:
            message = str(error)
            end = end_before_trailing_text(buf, pos, message)
            if end == -1:
                return (yield from self._unparsed(p, pos, message))
        else:
            if end == n and not p.final and c in NUMBER_START:
                self._wait(pos, n)  # "12" may continue as "123"
                return None
        if c == 0x22 and not p.final and n - end < 64:  # what follows must be visible to tell (below)
            self._wait(pos, n)
            return None
        if c == 0x22 and self._runs_into_record(buf, pos, end):
            # a top-level string that runs into what looks like the next record: a damaged record
            return (yield from self._damaged(buf, pos, n, p.final, "a JSON string that runs into the next record"))
        return (yield from self._take(buf[pos:end], pos, None))

    def _unparsed(self, p: _Pass, pos: int, message: str) -> Decoding[int | None]:
        """The value at ``pos`` is not (yet) JSON: wait for more text, skip it if it is too large to wait for, or
        quarantine it. Returns where to go on, or None when more text is needed first."""
        buf, n = p.buf, p.n
        if message.startswith("Input data was truncated"):
            if not p.final:
                if n - pos > self.run.max_document:
                    self.skip = ValueSkipper(self.base + pos, buf[pos], "document_too_large")
                    return pos
                self._wait(pos, n)
                return None
            # the rest may still hold records (a cut line in JSON lines before the last one)
            detail = p.detail or "the input ends inside a JSON value"
            p.reported = True
            return (yield from self._damaged(buf, pos, n, True, detail, p.reason))
        if p.incident and not p.reported:  # text cut short by the damage: one record for both
            p.reported = True
            return (yield from self._damaged(buf, pos, n, p.final, f"{p.detail}; {message}", p.reason))
        return (yield from self._damaged(buf, pos, n, p.final, message))

    def _runs_into_record(self, buf: bytes, pos: int, end: int) -> bool:
        match = (RESYNC_IN_ARRAY if self.array_depth else RESYNC).search(buf, pos + 1, end + 64)
        return match is not None and match.start() < end

    def _after_value(self) -> None:
        self.expect_value = False
        if self.array_depth:
            self.array_items += 1

    def _damaged(
        self, buf: bytes, pos: int, n: int, final: bool, message: str, reason: str = "invalid_json"
    ) -> Decoding[int | None]:
        """Bytes at ``pos`` are not (complete) JSON: quarantine them up to the next plausible record start.
        Returns the position to go on from, or None when more text is needed first."""
        pattern = RESYNC_IN_ARRAY if self.array_depth else RESYNC
        match = pattern.search(buf, pos + 1)
        if match is None:
            if not final and n - pos <= self.run.max_document:
                self._wait(pos, n)
                return None
            bad_end = resume = n
        else:
            bad_end = match.start() + (1 if buf[match.start()] == 0x7D else 0)  # a "}" belongs to the bad part
            resume = match.end()
        unit = buf[pos:bad_end].rstrip(STRIP)
        yield self.run.quarantine(self.base + pos, reason, message, unit)
        self._account("quarantined", len(unit))
        self._account("blank", resume - pos - len(unit))
        self.expect_value = False
        return resume

    def _skip_scan(self, buf: bytes, pos: int, final: bool) -> Decoding[int]:
        """Walk past a value that is not to be held (see `ValueSkipper`); quarantine it once its end is found. One
        too deep is not followed past a line that starts an object (a cut one must not take the records after it)."""
        skip = self.skip
        assert skip is not None
        stop, cut = len(buf), False
        if skip.reason == "nesting_too_deep":
            record = RECORD_LINE.search(buf, pos)
            if record is not None:
                stop, cut = record.start(), True
            elif not final:
                stop = max(pos, stop - RECORD_LINE_HOLD)
        end, done = skip.advance(buf, pos, stop)
        self._account("quarantined", end - pos)
        if done or final or cut:
            ending = (
                "" if done else ("; a line starts an object before it ends" if cut else "; the input ends inside it")
            )
            yield self.run.quarantine(skip.offset, skip.reason, skip.detail(ending, self.run.max_document), skip.sample)
            self.skip = None
            self._after_value()
        return end
