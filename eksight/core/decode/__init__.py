"""Streaming decoder: any input shape → individual audit-event JSON records, plus an exact account of the rest.

Pure (stdlib + msgspec). The decoder finds records; it does not validate them as audit events — the caller runs
`eksight.core.events.parse_event` on each `RawEvent.data`.

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
``invalid_log_event`` (a ``logEvents``/``events`` element without a string ``message``), ``nesting_too_deep``
(payloads inside payloads over 3 levels, or JSON nested over ``MAX_VALUE_DEPTH``: see Hostile input),
``unreadable`` (I/O error; detail = the OS error). Skip reasons: ``control_message``, ``non_audit_stream``,
``empty_document`` (an empty array, EventList or export page).

Hostile input: the parser recurses once per nesting level, so no value reaches it unchecked. A top-level value
(or top-level array element) nested deeper than ``MAX_VALUE_DEPTH`` (512), and top-level arrays nested deeper,
are quarantined as ``nesting_too_deep`` after a linear check of their bytes: on a line of JSON lines, the value up
to its end or the line's; otherwise the value to its end, walked without parsing, never past a line that starts
with ``{`` (so a cut one does not take the records after it; an unclosed one run into the next record on the same
line takes that record along). Envelopes of exactly CloudWatch's shape are read in one pass, typed, hence bounded;
any other envelope is checked like any value. Records are handed on if within the limit; audit events are held
to a tighter one by `eksight.core.events.parse_event`. Work is linear in the input: about 1 s per MiB of
brackets at worst (the walk past a deep value), 5 ms per MiB for the check itself.

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

from eksight.core.decode.api import Decoder, decode_bytes, decode_path, decode_stream
from eksight.core.decode.model import (
    MAX_DOCUMENT_BYTES,
    MAX_RECORD_BYTES,
    DecodeStats,
    Quarantined,
    RawEvent,
    SourceContext,
    context_from_key,
)

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
