"""Run library queries with DuckDB over local files: archive objects (CloudWatch Logs envelopes, gzip, as
Firehose writes them, also in archive-shaped `account=…/…/hour=…/` directories), plain audit events (JSON lines
or JSON arrays, gzip or not), and a replay's findings file.

This module defines DuckDB's `audit_messages` and `findings_raw` (eksight.queries.sources); the views on top
are the library's. File paths go into the view definitions as SQL string literals (DuckDB binds no
parameters in DDL); the query's own parameters are always bound.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from eksight.queries import Query
from eksight.queries.sources import FINDINGS_COLUMNS, view_sql

ENVELOPES, EVENT_LINES, EVENT_ARRAY = "envelopes", "event-lines", "event-array"
_PROBE_BYTES = 64 * 1024
_MAX_OBJECT = 64 * 1024 * 1024  # a CloudWatch Logs payload is at most ~1 MB; leave room for odd inputs
_HIVE_TYPES = {
    "account": "VARCHAR",  # DuckDB would make it a BIGINT and drop leading zeros
    "region": "VARCHAR",
    "cluster": "VARCHAR",
    "year": "INTEGER",
    "month": "INTEGER",
    "day": "INTEGER",
    "hour": "INTEGER",
}
_ENVELOPE_COLUMNS = {
    "messageType": "VARCHAR",
    "owner": "VARCHAR",
    "logGroup": "VARCHAR",
    "logEvents": 'STRUCT(id VARCHAR, "timestamp" BIGINT, message VARCHAR)[]',
}


class InputError(ValueError):
    """An input path that does not exist or holds nothing readable."""


@dataclass(frozen=True)
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class _Group:
    """Files DuckDB can read in one `read_json` call: same shape, compression and partition keys."""

    shape: str
    gzip: bool
    hive_keys: tuple[str, ...]


def connect(
    inputs: Sequence[Path], findings: Path | None = None, *, cluster: str = "", progress: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the views `audit_events` and `findings` over `inputs` and `findings`.
    `cluster` labels plain audit events (which do not say which cluster they come from); `progress` shows
    DuckDB's progress bar on stderr for long queries."""
    groups: dict[_Group, list[Path]] = defaultdict(list)
    for file in _files(inputs):
        group = _classify(file)
        if group is not None:
            groups[group].append(file)
    if not groups:
        raise InputError("no audit events found in: " + ", ".join(map(str, inputs)))
    con = duckdb.connect()
    con.execute(f"SET enable_progress_bar = {'true' if progress else 'false'}")
    sources = [_source(group, files, cluster) for group, files in groups.items()]
    con.execute("CREATE VIEW audit_messages AS " + " UNION ALL ".join(sources))
    con.execute("CREATE VIEW audit_events AS " + view_sql("audit_events"))
    columns = ", ".join(f'"{name}" {type_}' for name, _hive, type_ in FINDINGS_COLUMNS)
    if findings is None:
        con.execute(f"CREATE TABLE findings_raw ({columns})")
    else:
        if not findings.is_file():
            raise InputError(f"no such findings file: {findings}")
        spec = ", ".join(f"{_literal(name)}: {_literal(type_)}" for name, _hive, type_ in FINDINGS_COLUMNS)
        con.execute(
            "CREATE VIEW findings_raw AS SELECT * FROM read_json("
            f"{_literal(str(findings))}, format = 'newline_delimited', columns = {{{spec}}})"
        )
    con.execute("CREATE VIEW findings AS " + view_sql("findings"))
    return con


def run(con: duckdb.DuckDBPyConnection, query: Query, values: Mapping[str, object | None]) -> Result:
    cursor = con.execute(query.duckdb_sql(), query.duckdb_parameters(values))
    columns = [d[0] for d in cursor.description or ()]
    return Result(columns, cursor.fetchall())


# --- inputs -------------------------------------------------------------------------------------------------


def _files(inputs: Iterable[Path]) -> Iterable[Path]:
    for path in inputs:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
        elif path.is_file():
            yield path
        else:
            raise InputError(f"no such file or directory: {path}")


def _classify(file: Path) -> _Group | None:
    """The shape of a file from its first bytes; None for files that hold no audit events."""
    with file.open("rb") as stream:
        head = stream.read(_PROBE_BYTES)
    gzip = head[:2] == b"\x1f\x8b"
    if gzip:
        try:
            head = zlib.decompressobj(zlib.MAX_WBITS | 16).decompress(head, _PROBE_BYTES)
        except zlib.error:
            return None
    text = head.lstrip()
    if text.startswith(b"["):
        shape = EVENT_ARRAY
    elif text.startswith(b"{"):
        shape = ENVELOPES if b'"logEvents"' in text[:4096] else EVENT_LINES
    else:
        return None
    keys = tuple(part.split("=", 1)[0] for part in file.parent.parts if "=" in part)
    return _Group(shape, gzip, keys)


def _source(group: _Group, files: list[Path], cluster: str) -> str:
    paths = "[" + ", ".join(_literal(str(f)) for f in files) + "]"
    # ignore_errors: a malformed record (written by whoever reaches the API server) becomes NULL and is filtered,
    # instead of failing the whole query.
    options = [f"compression = '{'gzip' if group.gzip else 'none'}'", "ignore_errors = true"]
    partitions = [k for k in group.hive_keys if k in _HIVE_TYPES]
    if partitions:
        types = ", ".join(f"{_literal(k)}: {_literal(_HIVE_TYPES[k])}" for k in partitions)
        options += ["hive_partitioning = true", f"hive_types = {{{types}}}"]
    else:
        options.append("hive_partitioning = false")

    empty = "''"

    def partition(key: str, fallback: str) -> str:
        return f'coalesce(raw."{key}", {fallback})' if key in partitions else fallback

    if group.shape == ENVELOPES:
        spec = ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in _ENVELOPE_COLUMNS.items())
        from_cluster = "regexp_extract(raw.logGroup, '^/aws/eks/(.+)/cluster$', 1)"
        return (
            f"SELECT e.message AS message, {partition('account', 'raw.owner')} AS account, "
            f"{partition('region', empty)} AS region, {partition('cluster', from_cluster)} AS cluster "
            f"FROM read_json({paths}, format = 'auto', columns = {{{spec}}}, maximum_object_size = {_MAX_OBJECT}, "
            f"{', '.join(options)}) AS raw CROSS JOIN unnest(raw.logEvents) AS u(e) "
            "WHERE raw.messageType = 'DATA_MESSAGE' AND json_valid(e.message)"
        )
    format_ = "array" if group.shape == EVENT_ARRAY else "auto"
    return (
        f"SELECT CAST(raw.json AS VARCHAR) AS message, {partition('account', empty)} AS account, "
        f"{partition('region', empty)} AS region, {partition('cluster', _literal(cluster))} AS cluster "
        f"FROM read_json_objects({paths}, format = '{format_}', maximum_object_size = {_MAX_OBJECT}, "
        f"{', '.join(options)}) AS raw WHERE json_valid(raw.json)"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
