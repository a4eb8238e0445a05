"""The findings console's server side (no browser): filters and their refusals, the in-memory cap, evidence and
timeline lookup over a hand-written audit file, and the wizard server's protections on the console routes."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from eksight.tools.console import source as findings_source
from eksight.tools.console.api import Console
from eksight.tools.console.archive import ArchiveIndex
from eksight.tools.console.source import Filters
from eksight.tools.setup import wizard

HOSTILE = "<img src=x onerror=alert(1)>"


def finding(
    id_: str, severity: str, type_: str, principal: str, cluster: str, first: str, last: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "id": id_,
        "type": type_,
        "severity": severity,
        "title": f"title of {id_}",
        "description": "",
        "detector": "rule",
        "rule_id": "EKS-1",
        "cluster": cluster,
        "account": "111122223333",
        "region": "us-east-1",
        "principal": {"name": principal, "kind": "user", "key": f"user:{principal}"},
        "evidence": [],
        "first_seen": first,
        "last_seen": last or first,
        "count": 1,
        "source_ips": [],
        "user_agents": [],
        **extra,
    }


ANOMALY = {
    "score": 70,
    "baseline": "alice normally gets configmaps in payments from 10.0.1.0/24 with kubectl 1.29 (30 requests over 6 days).",
    "deviation": "action exec pods UNSEEN (0 of 30 before)",
    "signals": ["first_use_of_sensitive_action"],
    "training_period": {"start": "2025-02-25T00:00:00.000000Z", "end": "2025-03-03T00:00:00.000000Z", "days": 6.0},
    "profile": {
        "tool": {"value": "kubectl 1.29", "profile": "FREQUENT", "observed": 30, "total": 30},
        "action": {"value": "exec pods", "profile": "UNSEEN", "observed": 0, "total": 30},
        "network": {"value": "10.0.9.0/24", "profile": "RARE", "observed": 1, "total": 30},
    },
}

FINDINGS = [
    finding(
        "f-high",
        "HIGH",
        "Execution:Kubernetes/SuspiciousExecCommand",
        "alice@example.com",
        "prod",
        "2025-03-04T10:00:00.000000Z",
        "2025-03-04T10:00:05.000000Z",
        evidence=["a1", "a2", "not-archived"],
        source_ips=["203.0.113.7"],
    ),
    finding(
        "f-crit", "CRITICAL", "PrivilegeEscalation:Kubernetes/ClusterAdminBound", "Bob", "prod", "2025-03-05T12:00:00Z"
    ),
    finding(
        "f-med",
        "MEDIUM",
        "Execution:Kubernetes/AnomalousBehavior.ExecInPod",
        "alice@example.com",
        "staging",
        "2025-03-03T08:00:00.000000Z",
        details={"anomaly": ANOMALY},
    ),
    finding(
        "f-low",
        "LOW",
        "Discovery:Kubernetes/PermissionChecked",
        "system:serviceaccount:ci:runner",
        "prod",
        "2025-03-06T00:00:00.000000Z",
        suppressed_by="EKS-1 principal=system:serviceaccount:ci:runner: CI checks its own permissions",
    ),
    finding(
        "f-info",
        "INFORMATIONAL",
        "Persistence:Kubernetes/RBACObjectChanged",
        HOSTILE,
        "prod",
        "2025-03-02T00:00:00.000000Z",
    ),
]


def audit(
    audit_id: str,
    when: str,
    user: str,
    verb: str,
    resource: str,
    ip: str,
    *,
    code: int = 200,
    stage: str = "ResponseComplete",
    namespace: str = "payments",
    name: str = "",
) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "requestURI": f"/api/v1/namespaces/{namespace}/{resource}",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": [ip],
        "userAgent": "kubectl/v1.29.2 (linux/amd64)",
        "objectRef": {"resource": resource, "namespace": namespace, "name": name, "apiVersion": "v1"},
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": when,
        "stageTimestamp": when,
        "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid"},
    }


ALICE, MALLORY = "alice@example.com", "mallory"
EVENTS = [
    # Monday 08:00, 26 h before the HIGH finding: outside its context and timeline windows
    audit("a4", "2025-03-03T08:00:00.000000Z", ALICE, "get", "configmaps", "10.0.1.5", name="app-config"),
    # Tuesday 09:50, within ±30 min: context, not evidence
    audit("a3", "2025-03-04T09:50:00.000000Z", ALICE, "list", "pods", "10.0.1.5"),
    # the evidence, a1 at two stages (one row expected)
    audit(
        "a1", "2025-03-04T10:00:00.000000Z", ALICE, "get", "secrets", "203.0.113.7", stage="RequestReceived", name="db"
    ),
    audit("a1", "2025-03-04T10:00:00.000000Z", ALICE, "get", "secrets", "203.0.113.7", name="db"),
    audit("a2", "2025-03-04T10:00:05.000000Z", ALICE, "create", "pods", "203.0.113.7", code=403, name="web-1"),
    # another principal from the finding's source IP (context) and from elsewhere (not)
    audit("m1", "2025-03-04T10:10:00.000000Z", MALLORY, "get", "secrets", "203.0.113.7", name="db"),
    audit("m2", "2025-03-04T10:10:00.000000Z", MALLORY, "get", "secrets", "198.51.100.1", name="db"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("console")
    findings = folder / "findings.jsonl"
    lines = [json.dumps(f) for f in FINDINGS]
    findings.write_text("\n".join([lines[0], "", "not json", '{"id": 1}', *lines[1:]]) + "\n")
    events = folder / "audit.jsonl"
    events.write_text("".join(json.dumps(e) + "\n" for e in EVENTS))
    return findings, events


@pytest.fixture(scope="module")
def console(files: tuple[Path, Path]) -> Console:
    findings, events = files
    running = Console(findings_source.from_file(findings), ArchiveIndex([events], cluster="prod"))
    running.start()
    return running


def get(console: Console, path: str) -> tuple[int, dict[str, Any]]:
    route, _, query = path.partition("?")
    status, payload = console.handle("/api/console/" + route, query)
    return int(status), payload


def ids(console: Console, query: str) -> list[str]:
    status, payload = get(console, f"findings?{query}")
    assert status == 200, payload
    return [f["id"] for f in payload["findings"]]


# --- the source and its filters ------------------------------------------------------------------------------


def test_the_source_reports_what_it_read_and_skipped(console: Console) -> None:
    status, payload = get(console, "source")
    assert status == 200
    source = payload["source"]
    assert (source["read"], source["held"], source["capped"], source["skipped_lines"]) == (5, 5, False, 2)
    assert source["severities"] == {"HIGH": 1, "CRITICAL": 1, "MEDIUM": 1, "LOW": 1, "INFORMATIONAL": 1}
    assert source["clusters"] == {"prod": 4, "staging": 1}


def test_findings_are_listed_newest_first(console: Console) -> None:
    assert ids(console, "") == ["f-low", "f-crit", "f-high", "f-med", "f-info"]


def test_suppressed_findings_are_listed_and_say_what_suppressed_them(console: Console) -> None:
    listed = {f["id"]: f["suppressed_by"] for f in get(console, "findings?")[1]["findings"]}
    assert listed.pop("f-low") == "EKS-1 principal=system:serviceaccount:ci:runner: CI checks its own permissions"
    assert set(listed.values()) == {""}
    assert get(console, "finding/f-low")[1]["finding"]["suppressed_by"].startswith("EKS-1 principal=")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("severity=HIGH", ["f-high"]),
        ("severity=critical,HIGH", ["f-crit", "f-high"]),
        ("type=anomalousbehavior", ["f-med"]),
        ("principal=ALICE", ["f-high", "f-med"]),
        ("principal=user%3Abob", ["f-crit"]),  # the principal's key
        ("cluster=staging", ["f-med"]),
        ("cluster=prod&severity=LOW", ["f-low"]),
        # a window keeps findings that overlap it: f-high ends at 10:00:05
        ("since=2025-03-04T10:00:03Z&until=2025-03-05T12:00:00Z", ["f-high"]),
        ("since=2025-03-04T12:00:00%2B02:00", ["f-low", "f-crit", "f-high"]),
        ("principal=nobody", []),
    ],
)
def test_filters(console: Console, query: str, expected: list[str]) -> None:
    assert ids(console, query) == expected


def test_a_page_is_bounded_and_says_so(console: Console) -> None:
    status, payload = get(console, "findings?limit=2")
    assert status == 200
    assert [f["id"] for f in payload["findings"]] == ["f-low", "f-crit"]
    assert (payload["matched"], payload["truncated"]) == (5, True)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("severity=SEVERE", "unknown severity SEVERE"),
        ("colour=red", "unknown filter colour"),
        ("since=yesterday", "not an ISO 8601 time"),
        ("since=2025-03-05T00:00:00Z&until=2025-03-04T00:00:00Z", "since must be before until"),
        ("limit=0", "limit must be"),
        ("limit=100000", "limit must be"),
        ("limit=%C2%B2", "limit must be"),
        ("type=a&type=b", "give type once"),
        ("principal=" + "x" * 5000, "query string longer"),
    ],
)
def test_bad_filters_are_refused(console: Console, query: str, message: str) -> None:
    status, payload = get(console, f"findings?{query}")
    assert status == 400
    assert message in payload["error"]


def test_the_newest_findings_are_kept_when_the_file_is_larger_than_the_cap(files: tuple[Path, Path]) -> None:
    source = findings_source.from_file(files[0], max_findings=3)
    assert source.capped
    assert (source.describe()["read"], source.describe()["held"]) == (5, 3)
    assert [f["id"] for f in source.page(Filters()).findings] == ["f-low", "f-crit", "f-high"]
    assert source.get("f-info") is None


# --- one finding ---------------------------------------------------------------------------------------------


def test_unknown_or_malformed_finding_ids(console: Console) -> None:
    status, payload = get(console, "finding/no-such-finding")
    assert status == 404
    assert "no finding no-such-finding" in payload["error"]
    status, _ = get(console, "finding/" + quote("bad id'"))
    assert status == 400


def test_evidence_context_timeline_and_plots_of_a_finding(console: Console) -> None:
    status, detail = get(console, "finding/f-high")
    assert status == 200, detail
    assert detail["problem"] == ""
    assert [e["audit_id"] for e in detail["evidence"]] == ["a1", "a2"]  # one row per event, in time order
    assert detail["missing_evidence"] == ["not-archived"]
    assert {e["audit_id"] for e in detail["context"]} == {"a3", "m1"}
    assert detail["evidence"][1]["response_code"] == 403
    assert detail["requests"] == 4  # alice's a1..a4

    activity = detail["activity"]
    assert (sum(activity["requests"]), sum(activity["failed"])) == (4, 1)
    assert activity["bucket_seconds"] == 3600
    epoch = [int((datetime(2025, 3, 4, 10, 0, s) - datetime(1970, 1, 1)).total_seconds()) for s in (0, 5)]
    assert activity["marks"] == epoch
    assert activity["times"][0] == int((datetime(2025, 3, 3, 8) - datetime(1970, 1, 1)).total_seconds())

    cells = detail["heatmap"]["cells"]  # Monday is row 0; 2025-03-04 is a Tuesday
    assert (cells[0][8], cells[1][9], cells[1][10], detail["heatmap"]["max"]) == (1, 1, 2, 2)
    assert sum(map(sum, cells)) == 4

    bursts = detail["timeline"]["bursts"]  # a4 is 26 h earlier: outside ±12 h
    assert [(b["verb"], b["resource"], b["during_finding"]) for b in bursts] == [
        ("list", "pods", False),
        ("get", "secrets", True),
        ("create", "pods", True),
    ]
    assert "first IP 203.0.113.7" in bursts[1]["firsts"]
    assert bursts[2]["failed"] == 1
    assert [f["id"] for f in detail["timeline"]["findings"]] == ["f-high"]  # f-med is 26 h earlier


def test_an_anomaly_finding_carries_its_baseline_and_feature_profile(console: Console) -> None:
    status, detail = get(console, "finding/f-med")
    assert status == 200
    anomaly = detail["anomaly"]
    assert anomaly["baseline"] == ANOMALY["baseline"]
    assert [(f["feature"], f["profile"]) for f in anomaly["features"]] == [
        ("action", "UNSEEN"),
        ("network", "RARE"),
        ("tool", "FREQUENT"),
    ]
    assert detail["evidence"] == []  # no evidence ids: nothing cited, nothing invented


def test_without_an_archive_the_finding_opens_and_says_what_is_missing(files: tuple[Path, Path]) -> None:
    status, detail = get(Console(findings_source.from_file(files[0])), "finding/f-high")
    assert status == 200
    assert detail["evidence"] is None
    assert "--archive" in detail["problem"]


def test_an_unreadable_archive_is_reported(files: tuple[Path, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("no events here\n")
    broken = Console(findings_source.from_file(files[0]), ArchiveIndex([empty]))
    broken.start()
    status, detail = get(broken, "finding/f-high")
    assert status == 200
    assert "no audit events found" in detail["problem"]
    assert get(broken, "source")[1]["archive"]["error"].startswith("cannot read the archive")


# --- through the wizard's server -----------------------------------------------------------------------------


@pytest.fixture
def server(console: Console) -> Iterator[wizard.WizardServer]:
    running = wizard.WizardServer(0, console=console)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(timeout=5)


def request(
    server: wizard.WizardServer, path: str, *, token: str | None = "", host: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Host": host or server.host}
    if token is not None:
        headers[wizard.TOKEN_HEADER] = token or server.token
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def test_the_console_page_and_its_charting_library_are_served_under_the_strict_policy(
    server: wizard.WizardServer,
) -> None:
    status, headers, body = request(server, "/console", token=None)
    assert status == 200
    assert b'src="/static/vendor/uPlot.iife.min.js"' in body
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    status, headers, body = request(server, "/static/vendor/uPlot.iife.min.js", token=None)
    assert (status, headers["content-type"]) == (200, "text/javascript; charset=utf-8")
    assert body.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */")


@pytest.mark.parametrize(
    "path", ["/api/console/source", "/api/console/findings?severity=HIGH", "/api/console/finding/f-high"]
)
def test_console_api_needs_the_token_and_the_host(server: wizard.WizardServer, path: str) -> None:
    assert request(server, path, token=None)[0] == 403
    assert request(server, path, token="wrong")[0] == 403
    assert request(server, path, host="evil.example:80")[0] == 421
    status, _, body = request(server, path)
    assert status == 200
    assert json.loads(body)["ok"] is True


def test_hostile_strings_travel_as_json_data(server: wizard.WizardServer) -> None:
    status, headers, body = request(server, "/api/console/findings?severity=INFORMATIONAL")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body)["findings"][0]["principal"] == HOSTILE


def test_a_server_without_findings_has_no_console() -> None:
    running = wizard.WizardServer(0)
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        assert request(running, "/console")[0] == 404
        assert request(running, "/api/console/source")[0] == 404
    finally:
        running.shutdown()
        running.server_close()
        thread.join(timeout=5)


def test_cli_archive_needs_one_findings_source(files: tuple[Path, Path], tmp_path: Path) -> None:
    result = CliRunner().invoke(wizard.ui, ["--archive", str(tmp_path)])
    assert result.exit_code == 2
    assert "--archive goes with a findings source" in result.output
    result = CliRunner().invoke(wizard.ui, ["--findings", str(files[0]), "--athena"])
    assert result.exit_code == 2
    assert "choose one findings source" in result.output


# --- Security Hub as the source (moto) -----------------------------------------------------------------------


def test_security_hub_findings_open_in_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws

    from eksight.core.finding_formats import to_asff
    from eksight.core.findings import Finding, Severity
    from eksight.tools.console.securityhub import from_security_hub

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    exec_finding = Finding(
        id="f-exec",
        type="Execution:Kubernetes/SuspiciousExecCommand",
        severity=Severity.HIGH,
        title="Suspicious command executed in a pod",
        description="cat the service-account token",
        detector="rule",
        rule_id="EKS-112",
        cluster="prod",
        account="111122223333",
        region="us-east-1",
        principal={
            "name": HOSTILE,
            "kind": "sso_role",
            "key": "iam:arn:aws:iam::111122223333:role/Dev",
            "arn": "arn:aws:iam::111122223333:role/Dev",
        },
        first_seen=1741082400.0,  # 2025-03-04T10:00:00Z
        last_seen=1741082405.0,
        evidence=["a1", "a2"],
        source_ips=["203.0.113.7"],
        mitre=["T1609"],
    )
    critical = replace(
        exec_finding,
        id="f-crit",
        severity=Severity.CRITICAL,
        rule_id="EKS-200",
        first_seen=1741176000.0,
        last_seen=1741176000.0,
    )
    foreign = to_asff(critical) | {"Id": "someone-else", "GeneratorId": "guardduty", "ProductFields": {}}
    with mock_aws():
        client = boto3.client("securityhub", region_name="us-east-1")
        client.enable_security_hub()
        imported = client.batch_import_findings(Findings=[to_asff(exec_finding), to_asff(critical), foreign])
        assert imported["FailedCount"] == 0
        source = from_security_hub(client, "us-east-1")

    assert (source.read, source.skipped) == (2, 1)  # the foreign finding is not eksight's
    assert source.describe()["name"] == "Security Hub us-east-1"
    console = Console(source)
    assert ids(console, "") == ["f-crit", "f-exec"]
    assert ids(console, "severity=HIGH") == ["f-exec"]
    assert ids(console, "principal=%3Cimg") == ["f-crit", "f-exec"]
    status, detail = get(console, "finding/f-exec")
    assert status == 200
    opened = detail["finding"]
    assert (opened["principal"]["name"], opened["principal"]["arn"]) == (HOSTILE, "arn:aws:iam::111122223333:role/Dev")
    assert (opened["evidence"], opened["source_ips"], opened["mitre"]) == (["a1", "a2"], ["203.0.113.7"], ["T1609"])
    assert (opened["first_seen"][:19], opened["last_seen"][:19]) == ("2025-03-04T10:00:00", "2025-03-04T10:00:05")
    assert (opened["cluster"], opened["rule_id"], opened["detector"]) == ("prod", "EKS-112", "rule")


# --- the deployed findings table through Athena (moto: the statement is checked, the rows are canned) ---------


def test_athena_findings_open_in_the_console(monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3
    from moto import mock_aws
    from moto.athena.models import QueryResults, athena_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from eksight.adapters import athena
    from eksight.tools.console.athena import COLUMNS, from_athena

    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    rows: list[list[str | None]] = [
        ["f-exec", "Execution:Kubernetes/SuspiciousExecCommand", "HIGH", "Suspicious command", "rule", "EKS-112",
         "prod", "111122223333", "us-east-1", HOSTILE, "sso_role", "iam:role/Dev", "a1,a2",
         "2025-03-04T10:00:00.000000Z", "2025-03-04T10:00:05.000000Z", "2", "203.0.113.7",
         "kubectl/v1.29.2 (linux/amd64) | curl/8.5, patched", None],
        ["f-low", "Discovery:Kubernetes/PermissionChecked", "LOW", "Permission checked", "rule", "EKS-30",
         "prod", "111122223333", "us-east-1", "bob", "user", "user:bob", None,
         "2025-03-04T09:00:00.000000Z", "2025-03-04T09:00:00.000000Z", "1", None, None, "EKS-30 (all principals): lab"],
        ["", "", "", "", "", "", "", "", "", "", "", "", None, "", "", "", None, None, None],  # not a finding
    ]  # fmt: skip
    with mock_aws():
        client = boto3.client("athena", region_name="us-east-1")
        client.create_work_group(Name="eksight-hunting")
        header: list[str | None] = list(COLUMNS)
        results = [{"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in [header, *rows]]
        info = [{"Name": c, "Type": "varchar"} for c in COLUMNS]
        athena_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].query_results_queue.append(QueryResults(results, info))
        target = athena.Target("eksight-detection-us-east-1", "eksight-hunting", "eksight_audit")
        source, run = from_athena(client, target, days=3, now=datetime(2025, 3, 5, 7), sleep=lambda _s: None)
        sent = client.get_query_execution(QueryExecutionId=run.execution_id)["QueryExecution"]

    assert sent["ExecutionParameters"] == ["2025030207"]  # 3 days before, as the hour partitions count
    assert sent["WorkGroup"] == "eksight-hunting"
    assert 'FROM "eksight_audit"."findings"' in sent["Query"] and "version_rank = 1" in sent["Query"]
    assert (source.read, source.skipped) == (2, 1)
    console = Console(source)
    assert ids(console, "") == ["f-exec", "f-low"]
    assert ids(console, "principal=%3Cimg") == ["f-exec"]
    opened = get(console, "finding/f-exec")[1]["finding"]
    assert opened["principal"] == {"name": HOSTILE, "kind": "sso_role", "key": "iam:role/Dev"}
    assert (opened["evidence"], opened["count"], opened["source_ips"]) == (["a1", "a2"], 2, ["203.0.113.7"])
    assert opened["user_agents"] == ["kubectl/v1.29.2 (linux/amd64)", "curl/8.5, patched"]
    assert get(console, "finding/f-low")[1]["finding"]["evidence"] == []
    assert {f["id"]: f["suppressed_by"] for f in get(console, "findings?")[1]["findings"]} == {
        "f-exec": "",
        "f-low": "EKS-30 (all principals): lab",
    }


def test_athena_source_refuses_a_database_name_it_would_paste_into_sql() -> None:
    from eksight.adapters import athena
    from eksight.tools.console.athena import findings_sql

    with pytest.raises(athena.AthenaError, match="not a Glue database name"):
        findings_sql('x"; DROP TABLE findings; --', 10)


def test_athena_statement_is_valid_trino() -> None:
    import sqlglot

    from eksight.tools.console.athena import findings_sql

    parsed = sqlglot.parse_one(findings_sql("eksight_audit", 10), read="trino")
    assert parsed.args["limit"].expression.this == "10"
