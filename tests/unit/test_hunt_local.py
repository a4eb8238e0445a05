"""`eksight hunt` and `eksight timeline` on DuckDB over a small simulated cluster (archive-shaped CloudWatch
envelopes), checked against the raw audit events parsed here with json."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlglot
from click.testing import CliRunner

from eksight.core.events import parse_event
from eksight.core.finding_formats import finding_from_detail
from eksight.core.findings import to_json_line
from eksight.core.identity import NODE, SERVICE_ACCOUNT, SSO_ROLE, resolve_principal
from eksight.queries import all_queries, get
from eksight.tools.cli import main
from eksight.tools.hunt import local
from eksight.tools.simulator import Config, generate

SINCE, UNTIL = "2025-03-03T06:00:00Z", "2025-03-03T20:00:00Z"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    generate(Config(out=out, days=1, seed=3))
    findings = out / "findings.jsonl"
    result = CliRunner().invoke(main, ["replay", str(out / "cwl"), "-o", str(findings)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def raw(sim: Path) -> list[dict[str, Any]]:
    """The simulator's audit events, each with its principal as eksight.core.identity resolves it."""
    with gzip.open(sim / "audit.jsonl.gz", "rb") as lines:
        events = []
        for line in lines:
            event = json.loads(line)
            event["principal"] = resolve_principal(parse_event(line))
            events.append(event)
        return events


def _principals(raw: list[dict[str, Any]]) -> dict[str, str]:
    """The busiest principal of each kind the brief names: a person (SSO), a service account and a node."""
    counts: Counter[tuple[str, str]] = Counter((e["principal"].kind, e["principal"].name) for e in raw)
    chosen: dict[str, str] = {}
    for (kind, name), _count in counts.most_common():
        if kind in (SSO_ROLE, SERVICE_ACCOUNT, NODE):
            chosen.setdefault(kind, name)
    assert len(chosen) == 3
    return chosen


def _expected(raw: list[dict[str, Any]], name: str) -> dict[str, str]:
    """auditID → final stage of the requests of `name` (resolved name) received in the window."""
    low, high = (datetime.fromisoformat(t).replace(tzinfo=None) for t in (SINCE, UNTIL))
    stages: dict[str, set[str]] = defaultdict(set)
    for event in raw:
        received = datetime.fromisoformat(event["requestReceivedTimestamp"]).replace(tzinfo=None)
        if event["stage"] == "RequestReceived" or not low <= received < high:
            continue
        if event["principal"].name == name:
            stages[event["auditID"]].add(event["stage"])
    return {audit_id: "ResponseComplete" if "ResponseComplete" in s else max(s) for audit_id, s in stages.items()}


def _hunt(*args: str) -> Any:
    return CliRunner().invoke(main, ["hunt", *args], catch_exceptions=False)


@pytest.mark.parametrize("kind", [SSO_ROLE, SERVICE_ACCOUNT, NODE])
def test_principal_activity_returns_exactly_the_principals_requests(
    sim: Path, raw: list[dict[str, Any]], kind: str
) -> None:
    name = _principals(raw)[kind]
    expected = _expected(raw, name)
    assert expected, f"{name} has no requests in the window"
    args = ["principal-activity", "--local", str(sim / "cwl"), "--principal", name, "--since", SINCE]
    result = _hunt(*args, "--until", UNTIL, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == len(expected)
    assert {r["audit_id"]: r["stage"] for r in rows} == expected
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)
    assert {r["cluster"] for r in rows} == {"prod-eks"}


def test_principal_name_is_the_name_eksight_core_identity_resolves(sim: Path, raw: list[dict[str, Any]]) -> None:
    rows = local.connect([sim / "cwl"]).execute("SELECT audit_id, stage, principal_name FROM audit_events").fetchall()
    resolved = {(e["auditID"], e["stage"]): e["principal"].name for e in raw}
    assert len(rows) == len(raw)
    assert {(audit_id, stage): name for audit_id, stage, name in rows} == resolved


def test_a_principal_is_found_by_username_and_by_iam_arn_too(sim: Path, raw: list[dict[str, Any]]) -> None:
    person = next(e for e in raw if e["principal"].kind == SSO_ROLE and e["user"]["username"].startswith("arn:"))
    by_name = person["principal"].name
    con = local.connect([sim / "cwl"])
    query = get("principal-activity")
    rows = {key: local.run(con, query, {"principal": key}).rows for key in (by_name, person["user"]["username"])}
    assert rows[by_name] and rows[by_name] == rows[person["user"]["username"]]
    by_role = local.run(con, query, {"principal": person["user"]["extra"]["canonicalArn"][0]}).rows
    assert set(rows[by_name]) <= set(by_role)


def test_injection_in_a_parameter_returns_no_rows(sim: Path) -> None:
    for evil in ("x' OR 1=1 --", "' OR ''='", 'x" OR 1=1 --'):
        result = _hunt("principal-activity", "--local", str(sim / "cwl"), "--principal", evil, "--format", "csv")
        assert result.exit_code == 0, result.output
        assert result.output.splitlines()[1:] == []


@pytest.mark.parametrize("name", sorted(all_queries()))
def test_every_library_query_runs_on_duckdb(sim: Path, raw: list[dict[str, Any]], name: str) -> None:
    findings = [json.loads(line) for line in (sim / "findings.jsonl").read_text().splitlines()]
    values = {
        "principal": _principals(raw)[SSO_ROLE],
        "resource": "configmaps/kube-system/aws-auth",
        "since": "2025-03-03T03:00:00Z",
        # a finding inside the window the other values ask for (since 03:00)
        "finding": next(f["id"] for f in findings if f["first_seen"] >= "2025-03-03T03:30:00"),
    }
    query = get(name)
    con = local.connect([sim / "cwl"], sim / "findings.jsonl")
    result = local.run(con, query, {p.name: values.get(p.name) for p in query.parameters})
    assert result.columns
    if name in ("anonymous-access", "access-denied", "external-sources", "new-principals", "finding-context"):
        assert result.rows, f"{name} found nothing in a simulated day"


def test_finding_context_marks_the_evidence(sim: Path) -> None:
    finding = json.loads((sim / "findings.jsonl").read_text().splitlines()[0])
    args = ["finding-context", "--local", str(sim / "cwl"), "--findings", str(sim / "findings.jsonl")]
    result = _hunt(*args, "--finding", finding["id"], "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert {r["audit_id"] for r in rows if r["is_evidence"]} == set(finding["evidence"])


def test_findings_view_shows_suppressed_by_and_null_for_the_others(sim: Path, tmp_path: Path) -> None:
    stored = [finding_from_detail(json.loads(line)) for line in (sim / "findings.jsonl").read_text().splitlines()]
    assert len(stored) >= 2
    stored[0].suppressed_by = "EKS-100 (all principals): lab cluster"
    findings = tmp_path / "findings.jsonl"
    findings.write_bytes(b"".join(to_json_line(f) for f in stored))  # as the detector archives them
    con = local.connect([sim / "cwl"], findings)
    rows = dict(con.execute("SELECT id, suppressed_by FROM findings").fetchall())
    assert rows == {f.id: (f.suppressed_by or None) for f in stored}
    unsuppressed = con.execute("SELECT count(*) FROM findings WHERE suppressed_by IS NULL").fetchone()
    assert unsuppressed == (len(stored) - 1,)


def test_queries_read_plain_json_lines_and_archive_directories_alike(sim: Path, tmp_path: Path) -> None:
    archive = (
        tmp_path / "audit/account=012345678901/region=us-east-1/cluster=prod-eks/year=2025/month=03/day=03/hour=00"
    )
    archive.mkdir(parents=True)
    for part in (sim / "cwl").iterdir():
        shutil.copy(part, archive / part.name)
    con = local.connect([tmp_path / "audit"])
    accounts = con.execute("SELECT DISTINCT account, region, cluster FROM audit_events").fetchall()
    assert accounts == [("012345678901", "us-east-1", "prod-eks")]  # the leading zero survives
    query, values = get("anonymous-access"), {"since": "2025-03-03T00:00:00Z"}
    from_archive = local.run(con, query, values).rows
    from_lines = local.run(local.connect([sim / "audit.jsonl.gz"], cluster="prod-eks"), query, values).rows
    assert from_archive and [r[2:] for r in from_archive] == [r[2:] for r in from_lines]


def test_unknown_query_or_parameter_exits_2(sim: Path) -> None:
    unknown = _hunt("no-such-query", "--local", str(sim / "cwl"))
    assert unknown.exit_code == 2 and "valid: access-denied" in unknown.output
    wrong = _hunt("rbac-changes", "--local", str(sim / "cwl"), "--principal", "alice")
    assert wrong.exit_code == 2 and "valid: since, until, cluster" in wrong.output
    bad_time = _hunt("rbac-changes", "--local", str(sim / "cwl"), "--since", "last tuesday")
    assert bad_time.exit_code == 2 and "ISO 8601" in bad_time.output


def test_list_prints_name_tab_description() -> None:
    result = _hunt("--list")
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert [name for name, _ in lines] == sorted(all_queries())
    assert all(description for _, description in lines)


def test_timeline_folds_bursts_marks_firsts_and_shows_findings(sim: Path, raw: list[dict[str, Any]]) -> None:
    findings = [json.loads(line) for line in (sim / "findings.jsonl").read_text().splitlines()]
    principal = findings[0]["principal"]["name"]
    args = ["timeline", principal, "--local", str(sim / "cwl"), "--findings", str(sim / "findings.jsonl")]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    requests = len(_expected_all(raw, principal))
    assert lines[0].startswith(f"{principal}: {requests} requests in ")
    counts = [int(line.split("×")[1].split()[0].rstrip(",")) for line in lines[1:] if "×" in line]
    assert sum(counts) == requests
    assert "★ first" in lines[1]
    assert any(f"(finding {findings[0]['id']})" in line for line in lines)


def _expected_all(raw: list[dict[str, Any]], name: str) -> set[str]:
    return {e["auditID"] for e in raw if e["stage"] != "RequestReceived" and e["principal"].name == name}


def test_timeline_around_shows_only_the_window(sim: Path, raw: list[dict[str, Any]]) -> None:
    person = _principals(raw)[SSO_ROLE]
    args = ["timeline", person, "--local", str(sim / "cwl")]
    everything = CliRunner().invoke(main, args, catch_exceptions=False).output.splitlines()[1:]
    middle = everything[len(everything) // 2][:19]
    around = CliRunner().invoke(main, [*args, "--around", middle, "--hours", "0.25"], catch_exceptions=False)
    shown = around.output.splitlines()[1:]
    low, high = (
        datetime.fromisoformat(middle) - timedelta(minutes=15),
        datetime.fromisoformat(middle) + timedelta(minutes=15),
    )
    assert shown and len(shown) < len(everything)
    assert set(shown) <= set(everything)  # the same lines, fewer of them
    assert [line for line in everything if low <= datetime.fromisoformat(line[:19]) <= high] == [
        line for line in shown if low <= datetime.fromisoformat(line[:19])
    ]


def test_athena_statements_give_the_local_answers_on_a_glue_shaped_table(sim: Path, raw: list[dict[str, Any]]) -> None:
    """Each Athena statement, with its execution parameters substituted as Athena does and translated back to
    DuckDB, over a DuckDB table shaped like the Glue table `audit_raw` (lowercased envelope columns plus the
    partition columns), returns what the local run returns. This checks the CTEs, the parameter order and the
    partition predicate; Trino's own functions need an AWS run."""
    con = local.connect([sim / "cwl"], sim / "findings.jsonl")
    con.execute("CREATE SCHEMA eksight_audit")
    con.execute(
        "CREATE TABLE eksight_audit.audit_raw AS SELECT messageType AS messagetype, owner, logGroup AS loggroup, "
        "logEvents AS logevents, owner AS account, 'us-east-1' AS region, 'prod-eks' AS cluster, "
        "2025 AS year, 3 AS month, 3 AS day, 12 AS hour FROM read_json(?, format = 'auto', columns = "
        """{'messageType': 'VARCHAR', 'owner': 'VARCHAR', 'logGroup': 'VARCHAR', """
        """'logEvents': 'STRUCT(id VARCHAR, "timestamp" BIGINT, message VARCHAR)[]'})""",
        [[str(p) for p in (sim / "cwl").iterdir()]],
    )
    con.execute("CREATE TABLE eksight_audit.findings AS SELECT * FROM findings_raw")
    findings = [json.loads(line) for line in (sim / "findings.jsonl").read_text().splitlines()]
    values = {
        "principal": _principals(raw)[SSO_ROLE],
        "resource": "configmaps/kube-system/aws-auth",
        "since": "2025-03-03T00:00:00Z",
        # a finding inside the window the other values ask for (since 03:00)
        "finding": next(f["id"] for f in findings if f["first_seen"] >= "2025-03-03T03:30:00"),
    }
    for query in all_queries().values():
        given = {p.name: values.get(p.name) for p in query.parameters}
        literals = iter(query.athena_parameters(given))
        statement = re.sub(
            r"'(?:[^']|'')*'|\?",
            lambda m, literals=literals: next(literals) if m.group(0) == "?" else m.group(0),
            query.athena_sql("eksight_audit"),
        )
        on_glue_shape = con.execute(sqlglot.transpile(statement, read="athena", write="duckdb")[0]).fetchall()
        assert on_glue_shape == local.run(con, query, given).rows, query.name


def test_hostile_records_skip_themselves_in_both_input_shapes(sim: Path, tmp_path: Path) -> None:
    """A truncated event, a non-JSON line and an event with a nonsense time or response code are written by
    whoever reaches the API server: the good events are still answered, the bad ones don't stop the query."""
    with gzip.open(sim / "audit.jsonl.gz", "rb") as source:
        good = [json.loads(line) for line, _ in zip(source, range(50), strict=False)]
    bad_time = dict(good[0], auditID="bad-time", requestReceivedTimestamp="yesterday", responseStatus={"code": "x"})
    lines = [json.dumps(e) for e in good] + [
        '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"truncated-',
        "not json at all",
        json.dumps(bad_time),
    ]
    jsonl = tmp_path / "hostile.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    envelope = {
        "messageType": "DATA_MESSAGE",
        "owner": "111122223333",
        "logGroup": "/aws/eks/prod-eks/cluster",
        "logStream": "kube-apiserver-audit-1",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 0, "message": line} for i, line in enumerate(lines)],
    }
    archive = tmp_path / "objects" / "part-1.gz"
    archive.parent.mkdir()
    archive.write_bytes(gzip.compress(json.dumps(envelope).encode() + b"\n"))
    for source in (jsonl, archive.parent):
        con = local.connect([source], cluster="prod-eks")
        ids = {row[0] for row in con.execute("SELECT audit_id FROM audit_events").fetchall()}
        assert {e["auditID"] for e in good} <= ids and "bad-time" in ids
        assert con.execute("SELECT time, response_code FROM audit_events WHERE audit_id = 'bad-time'").fetchall() == [
            (None, None)
        ]
