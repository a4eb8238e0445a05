"""Findings from the deployed findings table (Glue `findings` over the archive bucket's findings/ prefix), read
with Athena through eksight.adapters.athena in the detection stack's workgroup.

Thinner than a findings file: the table's columns (eksight.queries.sources.FINDINGS_COLUMNS) carry no
description and no anomaly details. The detector may store a finding again as it grows, so only the newest
version of each id is kept. Only the last `days` of partitions are read, to bound the scan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from eksight.adapters import athena
from eksight.queries.sources import FINDINGS_TABLE, GLUE_NAME
from eksight.tools.console.source import MAX_FINDINGS, FindingsSource, finding_or_none

COLUMNS = (
    "id", "type", "severity", "title", "detector", "rule_id", "cluster", "account", "region",
    "principal_name", "principal_kind", "principal_key", "evidence", "first_seen", "last_seen", "event_count",
    "source_ips", "user_agents", "suppressed_by",
)  # fmt: skip
_SQL = """
SELECT {columns}
FROM (
  SELECT
    id, type, severity, title, detector, rule_id, cluster, account, region,
    principal.name AS principal_name, principal.kind AS principal_kind, principal."key" AS principal_key,
    array_join(evidence, ',') AS evidence, first_seen, last_seen, "count" AS event_count,
    array_join(source_ips, ',') AS source_ips, array_join(user_agents, ' | ') AS user_agents,
    suppressed_by,
    row_number() OVER (PARTITION BY id ORDER BY last_seen DESC, "count" DESC) AS version_rank
  FROM "{database}"."{table}"
  WHERE year * 1000000 + month * 10000 + day * 100 + hour >= ?
)
WHERE version_rank = 1
ORDER BY first_seen DESC
LIMIT {limit}
"""


def findings_sql(database: str, max_findings: int) -> str:
    """The statement; its one parameter is the first partition hour (YYYYMMDDHH)."""
    if not GLUE_NAME.fullmatch(database):
        raise athena.AthenaError(f"not a Glue database name: {database!r}")
    return _SQL.format(columns=", ".join(COLUMNS), database=database, table=FINDINGS_TABLE, limit=int(max_findings))


def from_athena(
    client: Any,
    target: athena.Target,
    *,
    days: int,
    now: datetime | None = None,
    max_findings: int = MAX_FINDINGS,
    **run_options: Any,
) -> tuple[FindingsSource, athena.QueryRun]:
    """The newest `max_findings` findings of the last `days` (by the hour they were stored)."""
    start = (now or datetime.now(UTC)) - timedelta(days=days)
    run = athena.run_query(
        client, target, findings_sql(target.database, max_findings), [start.strftime("%Y%m%d%H")], **run_options
    )
    name = f"Athena {target.database}.{FINDINGS_TABLE} (last {days} days)"
    return FindingsSource(_findings(run.columns, run.rows), kind="athena", name=name, max_findings=max_findings), run


def _findings(columns: Sequence[str], rows: Sequence[Sequence[str | None]]) -> Iterator[dict[str, Any] | None]:
    for row in rows:
        value = {c: v or "" for c, v in zip(columns, row, strict=True)}
        yield finding_or_none(
            {
                **{k: value.get(k, "") for k in ("id", "type", "severity", "title", "detector", "rule_id")},
                **{k: value.get(k, "") for k in ("cluster", "account", "region", "first_seen", "last_seen")},
                "description": "",
                "principal": {
                    "name": value.get("principal_name", ""),
                    "kind": value.get("principal_kind", ""),
                    "key": value.get("principal_key", ""),
                },
                "evidence": _split(value.get("evidence", ""), ","),
                "count": int(value.get("event_count") or 1),
                "source_ips": _split(value.get("source_ips", ""), ","),
                "user_agents": _split(value.get("user_agents", ""), " | "),
                "suppressed_by": value.get("suppressed_by", ""),
            }
        )


def _split(text: str, separator: str) -> list[str]:
    return [part for part in text.split(separator) if part]
