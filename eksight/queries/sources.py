"""Where the views come from, per engine, and the table contract the stack's Glue tables follow.

The library's queries see two views. Both are written once (``sql/_audit_events.sql``, ``sql/_findings.sql``)
over two engine-specific relations:

* ``audit_messages(message, account, region, cluster)``: one audit event JSON string per row. Athena: the Glue
  table ``audit_raw`` (CloudWatch Logs envelopes, one per line) unnested here. DuckDB: ``read_json`` over
  local files (eksight/tools/hunt/local.py).
* ``findings_raw``: the finding JSON lines (eksight.core.findings.Finding.to_dict). Athena: the Glue table
  ``findings``. DuckDB: ``read_json`` of a replay's findings file with ``FINDINGS_COLUMNS``.
"""

from __future__ import annotations

import re
from importlib import resources

import sqlglot
from sqlglot import exp

AUDIT_RAW_TABLE = "audit_raw"
FINDINGS_TABLE = "findings"
GLUE_NAME = re.compile(r"[a-z0-9_]{1,255}")
DATABASE_PLACEHOLDER = "eksight_glue_database"  # replaced by the database name once rendered

# Glue columns (Hive types) of `audit_raw`: the envelope as the OpenX JSON SerDe lowercases its keys.
AUDIT_RAW_COLUMNS = (
    ("messagetype", "string"),
    ("owner", "string"),
    ("loggroup", "string"),
    ("logstream", "string"),
    ("subscriptionfilters", "array<string>"),
    ("logevents", "array<struct<id:string,timestamp:bigint,message:string>>"),
)
# Partition keys of the archive (eksight.core.archive_layout): account/region/cluster, then arrival time.
AUDIT_RAW_PARTITIONS = (
    ("account", "string"),
    ("region", "string"),
    ("cluster", "string"),
    ("year", "int"),
    ("month", "int"),
    ("day", "int"),
    ("hour", "int"),
)
# Columns of the findings JSON lines the queries read: (name, Glue/Hive type, DuckDB type). Other keys of
# the finding JSON are ignored by both readers.
FINDINGS_COLUMNS = (
    ("id", "string", "VARCHAR"),
    ("type", "string", "VARCHAR"),
    ("severity", "string", "VARCHAR"),
    ("title", "string", "VARCHAR"),
    ("detector", "string", "VARCHAR"),
    ("rule_id", "string", "VARCHAR"),
    ("cluster", "string", "VARCHAR"),
    ("account", "string", "VARCHAR"),
    ("region", "string", "VARCHAR"),
    ("principal", "struct<name:string,kind:string,key:string>", "STRUCT(name VARCHAR, kind VARCHAR, key VARCHAR)"),
    ("evidence", "array<string>", "VARCHAR[]"),
    ("first_seen", "string", "VARCHAR"),
    ("last_seen", "string", "VARCHAR"),
    ("count", "int", "INTEGER"),
    ("source_ips", "array<string>", "VARCHAR[]"),
    ("user_agents", "array<string>", "VARCHAR[]"),
    ("suppressed_by", "string", "VARCHAR"),  # written only on suppressed findings: null on the others
)
FINDINGS_PARTITIONS = (("year", "int"), ("month", "int"), ("day", "int"), ("hour", "int"))

# Athena-only placeholders bound from the query's time window (YYYYMMDDHH of the arrival partitions).
PARTITION_WINDOW = ("partition_from", "partition_to")

_ATHENA_AUDIT_MESSAGES = f"""
SELECT e.message AS message, account, region, cluster
FROM {DATABASE_PLACEHOLDER}.{AUDIT_RAW_TABLE}
CROSS JOIN UNNEST(logevents) AS t(e)
WHERE messagetype = 'DATA_MESSAGE'
  AND year * 1000000 + month * 10000 + day * 100 + hour BETWEEN :{PARTITION_WINDOW[0]} AND :{PARTITION_WINDOW[1]}
"""
_ATHENA_FINDINGS_RAW = f"SELECT * FROM {DATABASE_PLACEHOLDER}.{FINDINGS_TABLE}"


def view_sql(name: str) -> str:
    """The shared definition (DuckDB dialect) of the view `audit_events` or `findings`."""
    return (resources.files("eksight.queries") / "sql" / f"_{name}.sql").read_text("utf-8")


def athena_views(referenced: set[str]) -> list[tuple[str, exp.Expr]]:
    """The CTEs (name, body) that define the views a query references, over the Glue tables, in order."""
    views: list[tuple[str, exp.Expr]] = []
    if "audit_events" in referenced:
        views.append(("audit_messages", sqlglot.parse_one(_ATHENA_AUDIT_MESSAGES, read="athena")))
        views.append(("audit_events", sqlglot.parse_one(view_sql("audit_events"), read="duckdb")))
    if "findings" in referenced:
        views.append(("findings_raw", sqlglot.parse_one(_ATHENA_FINDINGS_RAW, read="athena")))
        views.append(("findings", sqlglot.parse_one(view_sql("findings"), read="duckdb")))
    return views
