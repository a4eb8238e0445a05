"""The query library on its own: headers, parameter validation, and the Athena rendering (parsed by sqlglot)."""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import exp

from eksight.queries import QueryError, all_queries, get
from eksight.queries.sources import PARTITION_WINDOW

REQUIRED = {"principal-activity", "resource-history", "exec-sessions", "secret-access", "rbac-changes"}
REQUIRED |= {"access-denied", "anonymous-access", "new-principals", "external-sources", "finding-context"}
SAMPLE = {
    "principal": "alice@example.com",
    "resource": "secrets/payments/db-password",
    "since": "2025-03-03T06:00:00Z",
    "until": "2025-03-03T18:00:00+02:00",
    "finding": "824952f4058670a8f447baae47f3779c",
    "cluster": "prod",
}


def sample_values(query_name: str) -> dict[str, object]:
    return {p.name: SAMPLE[p.name] for p in get(query_name).parameters if p.name in SAMPLE}


def test_the_library_has_the_promised_queries_each_described() -> None:
    queries = all_queries()
    assert set(queries) >= REQUIRED
    for query in queries.values():
        assert query.description and query.parameters is not None


@pytest.mark.parametrize("name", sorted(all_queries()))
def test_athena_rendering_parses_and_binds_only_in_where(name: str) -> None:
    query = get(name)
    sql = query.athena_sql("eksight_hunting")
    tree = sqlglot.parse_one(sql, dialect="athena")
    placeholders = list(tree.find_all(exp.Placeholder))
    assert placeholders and all(p.find_ancestor(exp.Where) is not None for p in placeholders)
    assert all(not p.name or p.name == "?" for p in placeholders), "named placeholders left in the SQL"
    assert not re.search(r"(?<![:\w])[:$](" + "|".join(p.name for p in query.parameters) + r")\b", sql)
    assert {t.name for t in tree.find_all(exp.Table) if t.db} <= {"audit_raw", "findings"}
    assert all(t.db == "eksight_hunting" for t in tree.find_all(exp.Table) if t.db)
    parameters = query.athena_parameters(sample_values(name))
    assert len(parameters) == len(placeholders)
    for value in SAMPLE.values():
        assert value not in sql


@pytest.mark.parametrize("name", sorted(all_queries()))
def test_duckdb_rendering_has_one_value_per_placeholder(name: str) -> None:
    query = get(name)
    placeholders = list(sqlglot.parse_one(query.duckdb_sql(), read="duckdb").find_all(exp.Placeholder))
    assert len(query.duckdb_parameters(sample_values(name))) == len(placeholders)
    assert "audit_raw" not in query.duckdb_sql()


def test_athena_string_parameters_are_quoted_literals_with_quotes_doubled() -> None:
    query = get("principal-activity")
    values = query.athena_parameters({"principal": "x' OR 1=1 --"})
    assert "'x'' OR 1=1 --'" in values
    assert "x' OR 1=1 --" not in query.athena_sql("db")


def test_times_are_validated_and_normalised_to_utc() -> None:
    bound = get("principal-activity").bind({"principal": "p", "since": "2025-03-03T18:00:00+02:00"})
    assert bound["since"] == "2025-03-03 16:00:00.000"
    assert bound["partition_from"] == 2025030316
    assert bound["partition_to"] == 2100010101  # default until plus the arrival-lag hour
    with pytest.raises(QueryError, match="not an ISO 8601 time"):
        get("principal-activity").bind({"principal": "p", "since": "yesterday'; DROP TABLE x"})


def test_partition_window_widens_by_the_lookback() -> None:
    bound = get("new-principals").bind({"since": "2025-03-10T05:30:00Z", "lookback_days": 7})
    assert bound[PARTITION_WINDOW[0]] == 2025030305


def test_resource_is_split_and_pluralised() -> None:
    bound = get("resource-history").bind({"resource": "NetworkPolicy/payments/deny-all"})
    assert (bound["resource_kind"], bound["resource_kind_plural"]) == ("networkpolicy", "networkpolicies")
    assert (bound["resource_namespace"], bound["resource_name"]) == ("payments", "deny-all")
    cluster_scoped = get("resource-history").bind({"resource": "clusterrolebindings/system:admin"})
    assert cluster_scoped["resource_namespace"] == "" and cluster_scoped["resource_name"] == "system:admin"
    with pytest.raises(QueryError, match="KIND/NAMESPACE/NAME"):
        get("resource-history").bind({"resource": "secrets/a/b/c"})
    with pytest.raises(QueryError, match="not a Kubernetes"):
        get("resource-history").bind({"resource": "secrets/Bad NS/x"})


def test_unknown_names_list_the_valid_ones() -> None:
    with pytest.raises(QueryError, match=r"unknown query 'nope'; valid: .*principal-activity"):
        get("nope")
    with pytest.raises(QueryError, match=r"takes no parameter principal; valid: since, until, cluster"):
        get("rbac-changes").bind({"principal": "alice"})
    with pytest.raises(QueryError, match="needs --principal"):
        get("principal-activity").bind({})


def test_strings_and_numbers_are_bounded() -> None:
    with pytest.raises(QueryError, match="control characters"):
        get("principal-activity").bind({"principal": "a\nb"})
    with pytest.raises(QueryError, match="at most 1000"):
        get("principal-activity").bind({"principal": "a" * 1001})
    with pytest.raises(QueryError, match="between 0 and"):
        get("access-denied").bind({"min_count": -1})
    with pytest.raises(QueryError, match="whole number"):
        get("access-denied").bind({"min_count": "1 OR 1=1"})


def test_database_names_are_validated() -> None:
    with pytest.raises(QueryError, match="not a Glue database name"):
        get("rbac-changes").athena_sql("db; DROP")
