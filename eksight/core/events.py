"""Typed Kubernetes audit events (audit.k8s.io/v1 and v1beta1 `Event`), parsed with msgspec.

Attribute names are snake_case; the JSON names are Kubernetes' own (``auditID``, ``sourceIPs``, ...).
Request and response bodies stay undecoded (`msgspec.Raw`) until a rule asks for them, because most
events never need them and some (list responses) are large.

Records are untrusted: `parse_event` turns anything that is not a usable audit event into an `EventError` with a
countable reason (never another exception), and checks size and nesting before parsing (see
`eksight.core.untrusted`), so one hostile record is quarantined alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from eksight.core.decode.model import MAX_RECORD_BYTES
from eksight.core.untrusted import decode_bounded, nests_deeper_than

MAX_EVENT_BYTES = MAX_RECORD_BYTES
"""Largest audit event parsed (the decoder's record limit: CloudWatch Logs' event size); bigger: ``event_too_large``."""
MAX_EVENT_DEPTH = 128
"""Deepest an audit event may nest (bodies included); deeper: ``nesting_too_deep``. Kubernetes objects, CRD schemas
included, stay far below it (the dev set's deepest event nests 12 levels); the parser's recursion allows ~1,000
less the caller's stack."""


class UserInfo(msgspec.Struct, rename="camel", omit_defaults=True):
    username: str = ""
    uid: str = ""
    groups: list[str] = []
    extra: dict[str, list[str]] = {}

    def first_extra(self, key: str) -> str:
        values = self.extra.get(key)
        return values[0] if values else ""


class ObjectRef(msgspec.Struct, rename="camel", omit_defaults=True):
    resource: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    api_group: str = ""
    api_version: str = ""
    resource_version: str = ""
    subresource: str = ""


class Status(msgspec.Struct, rename="camel", omit_defaults=True):
    code: int = 0
    status: str = ""
    reason: str = ""
    message: str = ""


class AuditEvent(msgspec.Struct, rename="camel", omit_defaults=True):
    kind: str = ""
    api_version: str = ""
    level: str = ""
    audit_id: str = msgspec.field(default="", name="auditID")
    stage: str = ""
    request_uri: str = msgspec.field(default="", name="requestURI")
    verb: str = ""
    user: UserInfo = msgspec.field(default_factory=UserInfo)
    impersonated_user: UserInfo | None = None
    source_ips: list[str] = msgspec.field(default_factory=list, name="sourceIPs")
    user_agent: str = ""
    object_ref: ObjectRef | None = None
    response_status: Status | None = None
    request_object: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)  # empty when absent
    response_object: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    request_received_timestamp: str = ""
    stage_timestamp: str = ""
    timestamp: str = ""  # audit.k8s.io/v1beta1 (Kubernetes < 1.12) only
    annotations: dict[str, str] = {}

    # --- conveniences used by rules and baselines --------------------------------------------------------

    @property
    def resource(self) -> str:
        return self.object_ref.resource if self.object_ref else ""

    @property
    def subresource(self) -> str:
        return self.object_ref.subresource if self.object_ref else ""

    @property
    def namespace(self) -> str:
        return self.object_ref.namespace if self.object_ref else ""

    @property
    def name(self) -> str:
        return self.object_ref.name if self.object_ref else ""

    @property
    def api_group(self) -> str:
        return self.object_ref.api_group if self.object_ref else ""

    @property
    def code(self) -> int:
        return self.response_status.code if self.response_status else 0

    @property
    def source_ip(self) -> str:
        """The client's address: the first of sourceIPs (later ones are proxies)."""
        return self.source_ips[0] if self.source_ips else ""

    @property
    def decision(self) -> str:
        return self.annotations.get("authorization.k8s.io/decision", "")

    @property
    def allowed(self) -> bool:
        """Authorized and not failed. Events without an authorization annotation (old clusters) count
        as allowed when the response code is below 400."""
        decision = self.annotations.get("authorization.k8s.io/decision", "")
        if decision == "forbid":
            return False
        code = self.response_status.code if self.response_status else 0
        return code < 400 if code else decision == "allow"

    @property
    def time(self) -> float:
        """Event time as epoch seconds: when the API server received the request; 0.0 when the event
        carries no timestamp (hand-made events), so the caller can fall back to its envelope's time."""
        stamp = self.request_received_timestamp or self.stage_timestamp or self.timestamp
        return parse_time(stamp) if stamp else 0.0

    def request_body(self) -> Any:
        return _decode_body(self.request_object)

    def response_body(self) -> Any:
        return _decode_body(self.response_object)


class EventError(ValueError):
    """A record that is not a usable audit event; `reason` is a stable, countable key."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


_DECODER = msgspec.json.Decoder(AuditEvent)
_ANY = msgspec.json.Decoder()


def parse_event(data: bytes | str) -> AuditEvent:
    """``data`` as an audit event; `EventError` when it is not one (the only exception it raises)."""
    text = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data  # (lone surrogates: invalid JSON)
    if len(text) > MAX_EVENT_BYTES:
        raise EventError("event_too_large", f"{len(text)} bytes, over the limit of {MAX_EVENT_BYTES} bytes")
    if nests_deeper_than(text, MAX_EVENT_DEPTH):
        raise EventError("nesting_too_deep", f"JSON nested more than {MAX_EVENT_DEPTH} levels deep")
    try:
        event = _DECODER.decode(text)
    except msgspec.ValidationError:
        event = _decode_leniently(text)
    except msgspec.DecodeError as error:
        raise EventError("invalid_json", str(error)) from None
    # v1beta1 events inside an EventList carry apiVersion only on the list, so a missing one is accepted.
    if event.kind != "Event" or (event.api_version and not event.api_version.startswith("audit.k8s.io/")):
        raise EventError("not_audit_event", f"kind={event.kind!r} apiVersion={event.api_version!r}")
    if not event.audit_id:
        raise EventError("missing_audit_id", "audit event without auditID")
    return event  # timestamps are parsed (and judged) once, by whoever needs the time: see `event_time`


def event_time(event: AuditEvent) -> float:
    """`event.time`, with an unparseable timestamp turned into an `EventError` (reason invalid_timestamp)."""
    try:
        return event.time
    except (ValueError, OverflowError) as error:
        raise EventError("invalid_timestamp", f"audit event {event.audit_id}: {error}") from None


def _decode_leniently(data: bytes) -> AuditEvent:
    """Slow path for hand-made or older events: explicit nulls mean "absent"."""
    try:
        return _DECODER.decode(msgspec.json.encode(_without_nulls(_ANY.decode(data))))
    except msgspec.ValidationError as error:
        raise EventError("invalid_event_shape", str(error)) from None
    except msgspec.DecodeError as error:  # the typed decoder stopped at a wrong type before a syntax error
        raise EventError("invalid_json", str(error)) from None


def _without_nulls(value: Any, depth: int = 1) -> Any:
    if depth > MAX_EVENT_DEPTH:  # (checked on the text already: this bounds the recursion on its own too)
        raise EventError("nesting_too_deep", f"JSON nested more than {MAX_EVENT_DEPTH} levels deep")
    if isinstance(value, dict):
        return {k: _without_nulls(v, depth + 1) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v, depth + 1) for v in value]
    return value


def parse_time(value: str) -> float:
    try:  # the common case: microseconds and "Z", which fromisoformat reads directly (Python 3.11+)
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        pass
    # RFC 3339 with up to nanoseconds: fromisoformat takes at most microseconds.
    text = value.strip()
    if "." in text:
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[: min(digits, 6)]}{tail[digits:]}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _decode_body(raw: msgspec.Raw) -> Any:
    """The body, or None when absent or unreadable (an event built without `parse_event` is bounded here too)."""
    return decode_bounded(raw, max_bytes=MAX_EVENT_BYTES, max_depth=MAX_EVENT_DEPTH)
