"""The JSON shapes the decoder recognises (msgspec structs and decoders) and the byte patterns it scans for."""

from __future__ import annotations

import re

import msgspec

from eksight.core.eks import CLUSTER_LOG_GROUP

# --- msgspec shapes --------------------------------------------------------------------------------------------

_NO_RAW = msgspec.Raw()


class Probe(msgspec.Struct):
    """Just enough of any object to tell its shape; every field stays raw, so this never fails on an object."""

    messageType: msgspec.Raw = _NO_RAW
    kind: msgspec.Raw = _NO_RAW
    items: msgspec.Raw = _NO_RAW
    events: msgspec.Raw = _NO_RAW
    message: msgspec.Raw = _NO_RAW
    awslogs: msgspec.Raw = _NO_RAW
    records: msgspec.Raw = _NO_RAW
    Records: msgspec.Raw = _NO_RAW


class LogEvent(msgspec.Struct):
    message: str
    timestamp: int | float | None = None


class Envelope(msgspec.Struct, rename="camel"):
    message_type: str
    owner: str = ""
    log_group: str = ""
    log_stream: str = ""
    log_events: list[LogEvent] | None = None


class ExactLogEvent(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    message: str
    timestamp: int | float | None = None
    id: str = ""
    extracted_fields: dict[str, str] | None = None


class ExactEnvelope(msgspec.Struct, forbid_unknown_fields=True, rename="camel"):
    """An envelope with exactly the fields CloudWatch Logs writes, read in one pass. Every field is typed, so
    this cannot nest deeper than its type: an envelope with anything else is read the general way, whose
    nesting is checked first."""

    message_type: str
    owner: str = ""
    log_group: str = ""
    log_stream: str = ""
    subscription_filters: list[str] | None = None
    policy_level: str = ""
    log_events: list[ExactLogEvent] | None = None


class LooseEnvelope(msgspec.Struct, rename="camel"):
    message_type: msgspec.Raw = _NO_RAW
    owner: msgspec.Raw = _NO_RAW
    log_group: msgspec.Raw = _NO_RAW
    log_stream: msgspec.Raw = _NO_RAW
    log_events: msgspec.Raw = _NO_RAW


class ExportEvent(msgspec.Struct, rename="camel"):
    message: str
    timestamp: int | float | None = None
    log_stream_name: str | None = None


class Payload(msgspec.Struct):
    data: str


class LambdaLogs(msgspec.Struct):
    awslogs: Payload


class KinesisRecord(msgspec.Struct, rename="camel"):
    kinesis: Payload
    aws_region: str | None = None


class FirehoseRegion(msgspec.Struct):
    region: str | None = None


RAW = msgspec.json.Decoder(msgspec.Raw)
PROBE = msgspec.json.Decoder(Probe)
RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
STR = msgspec.json.Decoder(str)
ENVELOPE = msgspec.json.Decoder(Envelope)
EXACT_ENVELOPE = msgspec.json.Decoder(ExactEnvelope)
LOOSE_ENVELOPE = msgspec.json.Decoder(LooseEnvelope)
LOG_EVENT = msgspec.json.Decoder(LogEvent)
EXPORT_EVENTS = msgspec.json.Decoder(list[ExportEvent])
EXPORT_EVENT = msgspec.json.Decoder(ExportEvent)
LAMBDA_LOGS = msgspec.json.Decoder(LambdaLogs)
FIREHOSE_RECORD = msgspec.json.Decoder(Payload)
FIREHOSE_REGION = msgspec.json.Decoder(FirehoseRegion)
KINESIS_RECORD = msgspec.json.Decoder(KinesisRecord)
RAW_EVENTLIST = msgspec.Raw(b'"EventList"')

DECODE_ERRORS = (msgspec.DecodeError, UnicodeDecodeError)  # ValidationError is a DecodeError

# --- byte patterns -------------------------------------------------------------------------------------------

WS = re.compile(rb"[ \t\r\n]+")
WS_BYTES = frozenset(b" \t\r\n")
STRIP = b" \t\r\n"
BOM = b"\xef\xbb\xbf"
# Where a record plausibly starts after damaged bytes: a line starting like JSON or base64 JSON/gzip, "}{", or
# the first bytes of an envelope or of an API server's audit event (escaped, hence absent, inside envelopes).
_RECORD_START = rb'(?=\{"(?:messageType"|kind":"Event","apiVersion":"audit\.k8s\.io/))'
RESYNC = re.compile(rb"\n[ \t\r]*(?=[{\[]|H4sI|eyJ|W3)|\}[ \t\r\n]*(?=\{)|" + _RECORD_START)
RESYNC_IN_ARRAY = re.compile(rb"\n[ \t\r]*(?=[{\[]|H4sI|eyJ|W3)|\}[ \t\r\n]*,?[ \t\r\n]*(?=\{)|" + _RECORD_START)
# A line that starts with an object at its first byte, as JSON-lines records do (compact JSON has no newline inside,
# pretty-printed JSON indents what it nests): a value skipped for its depth is never followed past one, so a cut
# value does not take the records after it.
RECORD_LINE = re.compile(rb"\n(?=\{)")
RECORD_LINE_HOLD = 1  # the text so far may end with the newline: what follows it is not known yet
TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
B64_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
B64_TEXT = re.compile(rb"[A-Za-z0-9+/]{8,}={0,2}")
B64_TOKEN = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
B64_PAYLOAD_STARTS = (b"H4sI", b"eyJ", b"W3s")  # base64 of gzip magic, '{"', '[{': meant as a payload
NUMBER_START = frozenset(b"-0123456789")
EKS_LOG_GROUP = CLUSTER_LOG_GROUP
AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
# Skipping a value without parsing it: strings, then structure.
STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
STRUCTURE = re.compile(rb'["{}\[\]]')
SCALAR_END = re.compile(rb"[ \t\r\n,\[\]{}]")


# --- reading a value where the text goes on after it ------------------------------------------------------


def end_before_trailing_text(buf: bytes, pos: int, message: str) -> int:
    """Where the value at ``pos`` ends when the parser stopped at text after it, else -1."""
    match = TRAILING.search(message)
    trailing = pos + int(match.group(1)) - 1 if match else -1
    if not (pos < trailing < len(buf) and buf[trailing] not in WS_BYTES):
        return -1
    end = trailing
    while buf[end - 1] in WS_BYTES:
        end -= 1
    return end


def exact_envelope_at(view: memoryview, pos: int, stop: int) -> tuple[ExactEnvelope | None, int]:
    """The envelope of exactly CloudWatch's shape starting at ``pos`` (ending before ``stop`` or where trailing
    text starts) and its end, or (None, 0) if that is not what is there."""
    end = stop
    try:
        envelope = EXACT_ENVELOPE.decode(view[pos:stop])
    except msgspec.ValidationError:
        return None, 0
    except msgspec.DecodeError as error:
        match = TRAILING.search(str(error))
        if match is None:
            return None, 0
        end = pos + int(match.group(1)) - 1
    except UnicodeDecodeError:
        return None, 0
    else:
        while view[end - 1] in WS_BYTES:
            end -= 1
        return envelope, end
    while end > pos and view[end - 1] in WS_BYTES:
        end -= 1
    try:
        return EXACT_ENVELOPE.decode(view[pos:end]), end
    except DECODE_ERRORS:
        return None, 0
