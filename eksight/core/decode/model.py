"""Public data types of the decoder: what it yields and how it counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from urllib.parse import unquote

from eksight.core.eks import cluster_from_path

MAX_RECORD_BYTES = 1 << 20
"""Largest single record (an audit event) accepted; bigger ones are quarantined as ``oversized``."""
MAX_DOCUMENT_BYTES = 32 << 20
"""Largest top-level JSON object (envelope, EventList, export page) held and parsed whole."""
MAX_VALUE_DEPTH = 512
"""Deepest a top-level JSON value (or top-level array element) may nest, and how deep top-level arrays may nest;
deeper ones are quarantined as ``nesting_too_deep`` before they are parsed. Looser than the audit event limit
(`eksight.core.events.MAX_EVENT_DEPTH`), so that a record too deep to be an event is handed on and quarantined
alone rather than with its container; well within what the parser's recursion allows."""
TOO_DEEP = f"JSON value nested more than {MAX_VALUE_DEPTH} levels deep"
MAX_PAYLOAD_NESTING = 3
"""base64/gzip payloads inside records inside payloads...: deeper ones are quarantined as ``nesting_too_deep``."""
SAMPLE_BYTES = 4096
READ_CHUNK = 1 << 20


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


NO_CONTEXT = SourceContext()
"""The default context: nothing known beyond what the records themselves say."""


def context_from_key(key: str, base: SourceContext = NO_CONTEXT) -> SourceContext:
    """Context from Hive-style ``name=value`` parts of an object key or path (``audit/account=1/region=r/
    cluster=c/...``); recognised names: account (account_id), region, cluster (cluster_name), log_group,
    log_stream (values URL-decoded); else the cluster of a log group's path (``aws/eks/<cluster>/cluster/``).
    Missing names keep ``base``'s values."""
    values: dict[str, str] = {}
    for part in key.replace("\\", "/").split("/"):
        name, sep, value = part.partition("=")
        target = _KEY_NAMES.get(name.lower()) if sep else None
        if target and value:
            values[target] = unquote(value)
    if "cluster" not in values and (cluster := cluster_from_path(key)):
        values["cluster"] = unquote(cluster)
    return replace(base, **values) if values else base


_KEY_NAMES = {
    "account": "account",
    "account_id": "account",
    "accountid": "account",
    "region": "region",
    "aws_region": "region",
    "cluster": "cluster",
    "cluster_name": "cluster",
    "log_group": "log_group",
    "loggroup": "log_group",
    "log_stream": "log_stream",
    "logstream": "log_stream",
}
