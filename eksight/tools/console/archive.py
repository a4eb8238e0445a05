"""The audit events behind findings: the hunting library's queries on DuckDB over `--archive` paths (archive
objects, `eksight simulate`'s cwl/ parts, JSON lines audit files, directories of them).

Parsing the audit JSON is the slow part (seconds per 100k events), so the `audit_events` view is materialized
once, in the background from server start, as a table without the raw message; each finding opened then costs
a fraction of a second. The finding being looked at is put in the (otherwise empty) `findings` table so the
library's `finding-context` query finds it, whatever source the finding came from.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from eksight.queries import get, parse_time
from eksight.queries.sources import FINDINGS_COLUMNS
from eksight.tools.hunt import local

Row = dict[str, Any]
LOAD_THREADS = 2


class ArchiveUnavailable(RuntimeError):
    """The archive paths hold no audit events or could not be read (the message says which)."""


class ArchiveIndex:
    def __init__(self, paths: Sequence[Path], cluster: str = "") -> None:
        self.paths = list(paths)
        self.cluster = cluster
        self.events = 0
        self._ready = threading.Event()
        self._lock = threading.Lock()  # one DuckDB connection, used by one request at a time
        self._con: duckdb.DuckDBPyConnection | None = None
        self._error = ""

    def start(self) -> None:
        """Load in the background; requests wait for it."""
        threading.Thread(target=self._load, name="archive-index", daemon=True).start()

    def _load(self) -> None:
        try:
            con = local.connect(self.paths, cluster=self.cluster)
            # the JSON reader's memory grows with its threads (measured: 0.8 GB with 1, 1.4 GB with 2 for 100k
            # events); two keep a laptop with many cores from needing several GB for a few seconds' gain
            con.execute(f"SET threads = {LOAD_THREADS}")
            con.execute("ALTER VIEW audit_events RENAME TO audit_events_source")
            con.execute("CREATE TABLE audit_events AS SELECT * EXCLUDE (message) FROM audit_events_source")
            row = con.execute("SELECT count(*) FROM audit_events").fetchone()
            self.events = int(row[0]) if row else 0
            self._con = con
        except (local.InputError, duckdb.Error) as error:
            self._error = f"cannot read the archive: {error}"
        finally:
            self._ready.set()

    def status(self) -> dict[str, Any]:
        loading = not self._ready.is_set()
        return {"paths": [str(p) for p in self.paths], "loading": loading, "events": self.events, "error": self._error}

    def _connection(self, timeout: float) -> duckdb.DuckDBPyConnection:
        if not self._ready.wait(timeout):
            raise ArchiveUnavailable("the archive is still being read; try again in a moment")
        if self._con is None:
            raise ArchiveUnavailable(self._error)
        return self._con

    def finding_context(self, finding: Mapping[str, Any], window_minutes: int, timeout: float = 120) -> list[Row]:
        """The `finding-context` rows of one finding: its principal's and source IPs' requests within
        ± `window_minutes`, with `is_evidence` set on the events the finding cites."""
        con = self._connection(timeout)
        with self._lock:
            con.execute("DELETE FROM findings_raw")
            con.execute(
                f"INSERT INTO findings_raw VALUES ({', '.join('?' for _ in FINDINGS_COLUMNS)})",
                [_column(finding, name) for name, _hive, _type in FINDINGS_COLUMNS],
            )
            result = local.run(
                con, get("finding-context"), {"finding": finding["id"], "window_minutes": window_minutes}
            )
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]

    def activity(self, principal: str, cluster: str = "", timeout: float = 120) -> list[Row]:
        """The `principal-activity` rows of one principal (every request, final stage, in time order)."""
        con = self._connection(timeout)
        with self._lock:
            result = local.run(con, get("principal-activity"), {"principal": principal, "cluster": cluster or None})
        return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _column(finding: Mapping[str, Any], name: str) -> object:
    value = finding.get(name)
    if name == "principal":
        who = value or {}
        return {"name": who.get("name"), "kind": who.get("kind"), "key": who.get("key")}
    if name in ("first_seen", "last_seen") and isinstance(value, str):
        # the findings view parses '%Y-%m-%dT%H:%M:%S.%fZ'; normalize other ISO forms to it
        return _iso(parse_time(value))
    return value


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
