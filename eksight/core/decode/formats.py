"""The JSON shapes the decoder recognises (msgspec structs and decoders) and the byte patterns it scans for."""

from __future__ import annotations

import re

import msgspec

from eksight.core.eks import CLUSTER_LOG_GROUP

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
_EKS_LOG_GROUP = CLUSTER_LOG_GROUP
_AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
# Skipping an oversized document: strings, then structure.
_STRING_BODY = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_STRUCTURE = re.compile(rb'["{}\[\]]')
_SCALAR_END = re.compile(rb"[ \t\r\n,\[\]{}]")
