"""The demo's path end to end on a small simulated cluster: CloudWatch Logs → subscription → Firehose → S3 → SQS
→ the detector handler → DynamoDB Local → EventBridge → the Security Hub forwarder → Security Hub (moto).

Expectations come from the simulator's labels (which attacks happened, on which audit events) and from the
stack's own routing contract (HIGH and above reach Security Hub), not from eksight's output."""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from eksight.tools.emulator import demo

pytestmark = pytest.mark.slow
# Signature (S01, S05, S09) and behaviour-only (S14, S15) scenarios of the simulator's catalogue.
ATTACKS = {
    "S01": "anonymous_api_access",
    "S05": "exec_into_kube_system_pod",
    "S09": "sa_token_used_from_internet",
    "S14": "node_credentials_from_external_ip",
    "S15": "exec_by_principal_that_never_execs",
}


@dataclass
class Run:
    result: demo.DemoResult
    stderr: str  # what the run printed on stderr (logging errors land there)
    report: str  # what `make demo` prints after the run
    workdir: Path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    workdir = tmp_path_factory.mktemp("demo")
    stderr, report = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr):
        outcome = demo.run(
            days=8.5, scale=0.15, seed=3, attacks=",".join(ATTACKS.values()), workdir=workdir, say=lambda _line: None
        )
    demo.report(outcome, out=report)
    yield Run(outcome, stderr.getvalue(), report.getvalue(), workdir)


@pytest.fixture(scope="module")
def result(run: Run) -> demo.DemoResult:
    return run.result


def test_every_record_is_processed_or_quarantined(result: demo.DemoResult) -> None:
    outcome = result
    assert outcome.events_in > 10_000 and outcome.objects > 1
    assert outcome.lost == 0 and outcome.events_in == outcome.processed + outcome.quarantined
    assert outcome.quarantined == len(demo.MALFORMED)


def test_every_simulated_attack_reaches_eventbridge_at_medium_or_above(result: demo.DemoResult) -> None:
    outcome = result
    medium_plus = [f for f in outcome.findings if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")]
    cited = {audit_id for f in medium_plus for audit_id in f["evidence"]}
    scenarios = {s["id"]: set(s["auditIDs"]) for s in outcome.labels["scenarios"]}
    assert set(scenarios) == set(ATTACKS)
    assert {s for s, ids in scenarios.items() if ids & cited} == set(scenarios)


def test_security_hub_holds_exactly_the_high_and_critical_findings_of_the_bus(result: demo.DemoResult) -> None:
    outcome = result
    high = {f["id"] for f in outcome.findings if f["severity"] in ("HIGH", "CRITICAL")}
    imported = [f for f in outcome.securityhub if f["ProductArn"].endswith(f"product/{demo.ACCOUNT}/default")]
    assert high and {f["ProductFields"]["eksight/finding_id"] for f in imported} == high
    assert all(f["Severity"]["Label"] in ("HIGH", "CRITICAL") for f in imported)
    assert all(r["Type"] == "AwsEksCluster" for f in imported for r in f["Resources"][:1])


def test_summary_line_has_the_documented_form(result: demo.DemoResult) -> None:
    line = result.summary_line()
    assert line.startswith("demo: events=") and line.split()[1:] == [
        f"{key}={value}"
        for key, value in (
            ("events", result.events_in),
            ("processed", result.processed),
            ("quarantined", result.quarantined),
            ("findings", len(result.findings)),
            ("securityhub", len(result.securityhub)),
            ("lost", result.lost),
        )
    ]


def test_the_lambdas_log_into_their_file_without_logging_errors(run: Run) -> None:
    assert "Logging error" not in run.stderr and "Traceback" not in run.stderr, run.stderr[-3000:]
    log = (run.workdir / demo.LAMBDA_LOG).read_text()
    assert '"service":"eksight-detector"' in log.replace(" ", "")
    # the forwarder's line per batch (findings imported), in its own service
    batches = [json.loads(line) for line in log.splitlines() if '"batch forwarded"' in line]
    assert batches and {b["service"] for b in batches} == {"eksight-securityhub-forwarder"}
    assert sum(b["imported"] for b in batches) >= len(run.result.securityhub)


def test_report_groups_findings_by_severity_with_what_happened_first(run: Run) -> None:
    medium_plus = [f for f in run.result.findings if f["severity"] in demo.LISTED]
    headers = re.findall(r"^(CRITICAL|HIGH|MEDIUM) \((\d+)\)$", run.report, re.MULTILINE)
    expected = [s for s in demo.LISTED if any(f["severity"] == s for f in medium_plus)]
    assert [h for h, _ in headers] == expected
    assert all(int(n) == sum(1 for f in run.result.findings if f["severity"] == h) for h, n in headers)
    listed = sorted(medium_plus, key=lambda f: (demo.SEVERITY_ORDER.index(f["severity"]), f["first_seen"]))
    rule_finding = next(f for f in listed[: demo.MAX_LISTED] if f["detector"] == "rule")
    what, why = demo.split_description(rule_finding["rule_id"], rule_finding["description"])
    assert what and why and rule_finding["description"] == f"{why} {what}"
    block = run.report[run.report.index(f"  {rule_finding['title']}\n") :]
    assert block.index("what: ") < block.index("why: ")
    assert " ".join(what.split()[:6]) in " ".join(block.split())  # the event's own words, unclipped start


def test_report_has_the_attack_table_and_where_to_look_next(run: Run) -> None:
    for scenario in run.result.labels["scenarios"]:
        assert re.search(rf"^  {scenario['id']} {scenario['name']} +yes ", run.report, re.MULTILINE)
    assert f"{len(ATTACKS)}/{len(ATTACKS)} detected at MEDIUM or above." in run.report
    hunt = re.search(r"eksight hunt principal-activity --local (\S+) --principal (\S+)", run.report)
    assert hunt and Path(hunt[1]).resolve() == (run.workdir / "archive" / "audit").resolve()
    assert any(path.is_file() for path in (run.workdir / "archive" / "audit").rglob("*"))
    attackers = {f["principal"]["name"] for f in run.result.findings if f["severity"] in demo.LISTED}
    attacker = hunt[2].strip("'")
    assert attacker in attackers
    # The printed hunt works on what the demo left behind: the attacker's requests, from the archive copy.
    from click.testing import CliRunner

    from eksight.tools.cli import main

    rows = CliRunner().invoke(
        main, ["hunt", "principal-activity", "--local", hunt[1], "--principal", attacker, "--format", "json"]
    )
    assert rows.exit_code == 0, rows.output
    assert len([line for line in rows.output.splitlines() if line.startswith("{")]) > 0
    console = re.search(r"eksight ui --findings (\S+) --archive (\S+)", run.report)
    assert console and Path(console[2]).resolve() == (run.workdir / "archive" / "audit").resolve()
    saved = Path(console[1]).read_text().splitlines()
    assert len(saved) == len(run.result.findings) and {json.loads(s)["id"] for s in saved} == {
        f["id"] for f in run.result.findings
    }
