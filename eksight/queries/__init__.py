"""Hunting queries over EKS audit events and findings, written once and run on DuckDB (local files) or Athena
(the archive). Pure: no AWS SDK and no DuckDB here; see docs/hunting.md."""

from eksight.queries.library import Parameter, Query, QueryError, all_queries, get, parse_time

__all__ = ["Parameter", "Query", "QueryError", "all_queries", "get", "parse_time"]
