"""The record layer: what one top-level JSON value holds (an event, an envelope, an EventList, an export page, a
Lambda/Firehose/Kinesis wrapper, a base64 payload) and the records it yields."""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from dataclasses import replace

import msgspec

from eksight.core.decode.formats import (
    AUDIT_STREAM_PREFIX,
    B64_PAYLOAD_STARTS,
    B64_TEXT,
    DECODE_ERRORS,
    EKS_LOG_GROUP,
    ENVELOPE,
    EXPORT_EVENT,
    EXPORT_EVENTS,
    FIREHOSE_RECORD,
    FIREHOSE_REGION,
    KINESIS_RECORD,
    LAMBDA_LOGS,
    LOG_EVENT,
    LOOSE_ENVELOPE,
    PROBE,
    RAW_EVENTLIST,
    RAW_LIST,
    STR,
    STRIP,
    Envelope,
    ExactEnvelope,
    ExactLogEvent,
    ExportEvent,
    LogEvent,
    Probe,
)
from eksight.core.decode.model import (
    MAX_PAYLOAD_NESTING,
    MAX_VALUE_DEPTH,
    TOO_DEEP,
    Quarantined,
    RawEvent,
    SourceContext,
)
from eksight.core.decode.run import Decoding, Outcome, Record, Records, Run
from eksight.core.untrusted import nests_deeper_than

PayloadDecoder = Callable[[bytes, SourceContext], Records]
"""Decodes a payload found inside a record (its records numbered from the payload's start), one level deeper."""

_Header = tuple[str, str, str, str]  # messageType, owner, logGroup, logStream


class RecordShapes:
    def __init__(self, run: Run, context: SourceContext, depth: int, decode_payload: PayloadDecoder) -> None:
        self.run = run
        self.context = context
        self.depth = depth
        self.decode_payload = decode_payload
        self.contexts: dict[tuple[str, str, str], SourceContext] = {}

    def unit(
        self, unit: bytes, offset: int, probe: Probe | None, envelope: Envelope | ExactEnvelope | None = None
    ) -> Decoding[Outcome]:
        """One top-level value (``probe``: already probed; ``envelope``: already read as one)."""
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

    def base64_line(self, line: bytes, offset: int) -> Decoding[Outcome | None]:
        """A base64 payload (as Kinesis/Lambda deliver CloudWatch Logs data): decode what it holds. Returns the
        outcome, or None when ``line`` is not base64 of gzip or JSON (the caller then treats it as JSON)."""
        meant = line.startswith(B64_PAYLOAD_STARTS)
        try:
            if not B64_TEXT.fullmatch(line):
                raise ValueError("not base64 text")
            payload = binascii.a2b_base64(line, strict_mode=True)
        except (binascii.Error, ValueError) as error:
            if meant:
                yield self.run.quarantine(offset, "invalid_base64", str(error), line)
                return "quarantined"
            return None
        if not (payload.startswith(b"\x1f\x8b") or payload.lstrip(STRIP)[:1] in (b"{", b"[")):
            return None
        yield from self._nested(payload, offset, self.context)
        return "container"

    # -- values and objects

    def _value(self, unit: bytes, offset: int) -> Decoding[Outcome]:
        """Any JSON value found at the top level (or as a top-level array element)."""
        first = unit[0]
        if first == 0x7B:  # "{"
            if nests_deeper_than(unit, MAX_VALUE_DEPTH):
                yield self.run.quarantine(offset, "nesting_too_deep", TOO_DEEP, unit)
                return "quarantined"
            try:
                probe = PROBE.decode(unit)
            except DECODE_ERRORS as error:  # not expected: the value was just delimited as JSON
                yield self.run.quarantine(offset, "invalid_json", str(error), unit)
                return "quarantined"
            return (yield from self._object(unit, offset, probe))
        if first == 0x22:  # a string: maybe a base64 payload
            try:
                text = STR.decode(unit)
            except DECODE_ERRORS as error:
                reason = "invalid_utf8" if isinstance(error, UnicodeDecodeError) else "invalid_json"
                yield self.run.quarantine(offset, reason, str(error), unit)
                return "quarantined"
            handled = yield from self.base64_line(text.encode(), offset)
            if handled:
                return handled
        kind = {0x22: "string", 0x74: "boolean", 0x66: "boolean", 0x6E: "null"}.get(first, "number")
        yield self.run.quarantine(offset, "unknown_shape", f"a JSON {kind} where a record was expected", unit)
        return "quarantined"

    def _object(self, unit: bytes, offset: int, probe: Probe) -> Decoding[Outcome]:
        """A JSON object: an event, or a container of events."""
        if probe.messageType:
            return (yield from self._envelope(unit, offset))
        if probe.kind:
            if probe.kind == RAW_EVENTLIST and probe.items:
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
                log_event = EXPORT_EVENT.decode(unit)
            except DECODE_ERRORS:
                log_event = None
            if log_event is not None:
                context = self._stream_context(log_event.log_stream_name)
                yield self._message(log_event.message, offset, context, log_event.timestamp)
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

    def _items(self, raw: msgspec.Raw, offset: int, what: str) -> Decoding[Outcome]:
        try:
            items = RAW_LIST.decode(raw)
        except DECODE_ERRORS as error:
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

    # -- CloudWatch Logs

    def _envelope(
        self, unit: bytes, offset: int, envelope: Envelope | ExactEnvelope | None = None
    ) -> Decoding[Outcome]:
        run = self.run
        if envelope is None:
            try:
                envelope = ENVELOPE.decode(unit)
            except DECODE_ERRORS:
                envelope = None
        log_events: Sequence[LogEvent | ExactLogEvent | msgspec.Raw] | None
        if envelope is not None:
            header = (envelope.message_type, envelope.owner, envelope.log_group, envelope.log_stream)
            log_events = envelope.log_events
        else:
            loose = yield from self._loose_envelope(unit, offset)
            if loose is None:
                return "quarantined"
            header, log_events = loose
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
        if log_stream and EKS_LOG_GROUP.fullmatch(log_group) and not log_stream.startswith(AUDIT_STREAM_PREFIX):
            run.stats.skipped["non_audit_stream"] += len(log_events)
            return "skipped"
        yield from self._log_events(log_events, offset, self._envelope_context(owner, log_group, log_stream))
        return "container"

    def _loose_envelope(self, unit: bytes, offset: int) -> Decoding[tuple[_Header, list[msgspec.Raw] | None] | None]:
        """An envelope whose fields are not all of the expected types: its header, if that is strings, and its
        log events (still to be read one by one). None when it was quarantined."""
        try:
            loose = LOOSE_ENVELOPE.decode(unit)
            fields = (loose.message_type, loose.owner, loose.log_group, loose.log_stream)
            message_type, owner, log_group, log_stream = (STR.decode(value) if value else "" for value in fields)
        except DECODE_ERRORS as error:
            yield self.run.quarantine(offset, "invalid_envelope", f"envelope header is not strings: {error}", unit)
            return None
        log_events = None
        if loose.log_events:
            try:
                log_events = RAW_LIST.decode(loose.log_events)
            except DECODE_ERRORS:
                yield self.run.quarantine(offset, "invalid_envelope", "logEvents is not a list", unit)
                return None
        return (message_type, owner, log_group, log_stream), log_events

    def _log_events(
        self, log_events: Sequence[LogEvent | ExactLogEvent | msgspec.Raw], offset: int, context: SourceContext
    ) -> Decoding[None]:
        run = self.run
        stats, source, limit = run.stats, run.source, run.max_record
        for index, item in enumerate(log_events):
            if isinstance(item, msgspec.Raw):  # from an envelope of unexpected types: each is read on its own
                try:
                    log_event: LogEvent | ExactLogEvent = LOG_EVENT.decode(item)
                except DECODE_ERRORS as error:
                    utf8 = isinstance(error, UnicodeDecodeError)
                    yield run.quarantine(
                        offset + index,
                        "invalid_utf8" if utf8 else "invalid_log_event",
                        f"logEvents[{index}]: {error}",
                        bytes(item),
                    )
                    continue
            else:
                log_event = item
            message, timestamp = log_event.message, log_event.timestamp
            data = message.encode()
            if message[:1] == "{" and len(data) <= limit and type(timestamp) is int:  # the usual case, inline
                stats.events += 1
                yield RawEvent(data, context, source, offset + index, timestamp)
            else:
                yield self._message(message, offset + index, context, timestamp)

    def _envelope_context(self, owner: str, log_group: str, log_stream: str) -> SourceContext:
        key = (owner, log_group, log_stream)
        context = self.contexts.get(key)
        if context is None:
            match = EKS_LOG_GROUP.fullmatch(log_group)
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

    def _export(self, raw: msgspec.Raw, offset: int) -> Decoding[Outcome]:
        """``aws logs filter-log-events`` / ``get-log-events`` output."""
        events = _export_events(raw)
        if not events:
            self.run.stats.skipped["empty_document"] += 1
            return "skipped"
        for index, item in enumerate(events):
            if isinstance(item, msgspec.Raw):
                try:
                    event = EXPORT_EVENT.decode(item)
                except DECODE_ERRORS as error:
                    utf8 = isinstance(error, UnicodeDecodeError)
                    yield self.run.quarantine(
                        offset + index,
                        "invalid_utf8" if utf8 else "invalid_log_event",
                        f"events[{index}]: {error}",
                        bytes(item),
                    )
                    continue
            else:
                event = item
            context = self._stream_context(event.log_stream_name)
            yield self._message(event.message, offset + index, context, event.timestamp)
        return "container"

    # -- wrappers and payloads

    def _lambda_logs(self, unit: bytes, offset: int) -> Decoding[Outcome]:
        """A Lambda CloudWatch Logs subscription event: ``{"awslogs":{"data":"<base64 gzip envelope>"}}``."""
        try:
            data = LAMBDA_LOGS.decode(unit).awslogs.data
        except DECODE_ERRORS:
            yield self.run.event(unit, offset, self.context, None)  # not the wrapper after all
            return "event"
        return (yield from self._payload(data, offset, self.context, "awslogs.data"))

    def _wrapped(self, unit: bytes, raw: msgspec.Raw, offset: int, field_name: str) -> Decoding[Outcome]:
        """Firehose transformation (``records[].data``) or Kinesis (``Records[].kinesis.data``) events."""
        records = RAW_LIST.decode(raw)
        kinesis = field_name == "Records"
        region = None
        if not kinesis:
            try:
                region = FIREHOSE_REGION.decode(unit).region
            except DECODE_ERRORS:
                region = None
        if not records:
            self.run.stats.skipped["empty_document"] += 1
            return "skipped"
        for index, record in enumerate(records):
            try:
                if kinesis:
                    parsed = KINESIS_RECORD.decode(record)
                    data, record_region = parsed.kinesis.data, parsed.aws_region
                else:
                    data, record_region = FIREHOSE_RECORD.decode(record).data, region
            except DECODE_ERRORS as error:
                yield self.run.quarantine(
                    offset + index, "unknown_shape", f"{field_name}[{index}] has no base64 data: {error}", bytes(record)
                )
                continue
            context = replace(self.context, region=record_region) if record_region else self.context
            yield from self._payload(data, offset + index, context, f"{field_name}[{index}].data")
        return "container"

    def _payload(self, data: str, offset: int, context: SourceContext, what: str) -> Decoding[Outcome]:
        try:
            payload = binascii.a2b_base64(data.encode(), strict_mode=True)
        except (binascii.Error, ValueError, UnicodeEncodeError) as error:
            yield self.run.quarantine(offset, "invalid_base64", f"{what}: {error}", data.encode("utf-8", "replace"))
            return "quarantined"
        yield from self._nested(payload, offset, context)
        return "container"

    def _nested(self, payload: bytes, offset: int, context: SourceContext) -> Decoding[None]:
        """Decode a payload carried inside a record; its records are numbered from the carrier's offset."""
        if self.depth >= MAX_PAYLOAD_NESTING:
            yield self.run.quarantine(
                offset, "nesting_too_deep", f"payload nested more than {MAX_PAYLOAD_NESTING} levels deep", payload
            )
            return
        stats = self.run.stats
        before = stats.events + stats.skipped.total() + stats.quarantined.total()
        item: Record
        for index, item in enumerate(self.decode_payload(payload, context)):
            if isinstance(item, Quarantined):
                item.detail = f"in the payload at byte {item.offset}: {item.detail}"
            item.offset = offset + index
            yield item
        if stats.events + stats.skipped.total() + stats.quarantined.total() == before:
            stats.skipped["empty_document"] += 1  # a payload with nothing in it is still accounted for


def _export_events(raw: msgspec.Raw) -> Sequence[ExportEvent | msgspec.Raw]:
    try:
        return EXPORT_EVENTS.decode(raw)
    except DECODE_ERRORS:
        return RAW_LIST.decode(raw)  # read one by one


def _is_list(raw: msgspec.Raw) -> bool:
    with memoryview(raw) as view:
        return bytes(view[:1]) == b"["
