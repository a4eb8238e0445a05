"""Suppressions: the config entries (validation), which findings they cover, what the detector does with covered
findings (stored and counted, never published), and `eksight suppress` writing entries into the config."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from eksight.config import ConfigError, load, parse
from eksight.core.archive_object import JsonLinesPublisher, LocalFileReader, process_object
from eksight.core.detection_options import DetectionOptions, Suppression
from eksight.core.findings import Finding, ResourceRef, Severity, to_json_line
from eksight.core.state import MemoryStateStore
from eksight.core.suppression import covering, mark_suppressed
from eksight.tools.cli import main

KEY = "iam:arn:aws:iam::111122223333:role/platform-admin"
EXEC_TIME = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def entry(**values: Any) -> Suppression:
    return Suppression.model_validate({"rule": "EKS-301", "reason": "weekly node debugging", **values})


def finding(**changes: Any) -> Finding:
    values: dict[str, Any] = dict(
        id="0" * 32,
        type="Execution:Kubernetes/ExecInKubeSystemPod",
        severity=Severity.MEDIUM,
        title="exec into a kube-system pod",
        description="exec",
        detector="rule",
        rule_id="EKS-301",
        cluster="prod",
        account="111122223333",
        region="eu-west-1",
        principal={"name": "alice", "kind": "sso_role", "key": KEY},
        first_seen=EXEC_TIME.timestamp(),
        last_seen=EXEC_TIME.timestamp(),
        resources=[ResourceRef("kube-system", "pods/exec", "coredns-1")],
    )
    values.update(changes)
    return Finding(**values)


# ---- the entries ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"rule": "EKS-30", "principal": "alice"}, "unknown rule id EKS-30 (did you mean EKS-"),
        ({"principal": "alice", "reason": "   "}, "the reason is blank"),
        ({"principal": "alice", "reason": ""}, "at least 1 character"),
        ({}, "needs all_principals: true"),
        ({"principal": "*", "namespace": "**"}, "needs all_principals: true"),
        ({"all_principals": True, "principal": "alice"}, "all_principals is for rule-wide entries"),
        ({"principal": "alice", "expires": "next week"}, "date"),
    ],
)
def test_invalid_entries_are_refused_with_the_reason(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        DetectionOptions.model_validate({"suppressions": [{"rule": "EKS-301", "reason": "r", **values}]})


def test_duplicate_entries_are_refused_whatever_their_reason() -> None:
    twice = [
        {"rule": "EKS-301", "principal": "alice", "reason": "one"},
        {"rule": "EKS-301", "principal": "alice", "reason": "two", "expires": "2027-01-01"},
    ]
    with pytest.raises(ValidationError, match="duplicate suppressions: EKS-301 principal=alice"):
        DetectionOptions.model_validate({"suppressions": twice})
    twice[1]["namespace"] = "kube-system"  # another scope: fine
    assert len(DetectionOptions.model_validate({"suppressions": twice}).suppressions) == 2


def test_anomaly_findings_can_be_suppressed_by_their_rule_id() -> None:
    assert entry(rule="UEBA-1", principal="alice").rule == "UEBA-1"


def test_the_deployment_config_reports_a_bad_entry_at_its_path() -> None:
    raw = {
        "regions": {"us-east-1": {"clusters": ["prod"]}},
        "detection": {"suppressions": [{"rule": "EKS-301", "reason": "x"}]},
    }
    with pytest.raises(ConfigError) as error:
        parse(raw)
    assert error.value.problems[0][0] == "detection.suppressions.0"


# ---- which findings an entry covers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "covered"),
    [
        ({"principal": KEY}, True),
        ({"principal": "alice"}, True),  # the principal's name
        ({"principal": "iam:arn:aws:iam::111122223333:role/platform-*"}, True),
        ({"principal": "bob"}, False),
        ({"namespace": "kube-system"}, True),
        ({"namespace": "kube-*", "principal": "alice"}, True),
        ({"namespace": "default"}, False),
        ({"all_principals": True}, True),
        ({"rule": "EKS-302", "principal": "alice"}, False),
        ({"principal": "alice", "expires": "2026-11-27"}, True),
        ({"principal": "alice", "expires": "2026-11-26"}, False),  # the finding's event is on the expiry day
    ],
)
def test_an_entry_covers_findings_of_its_rule_principal_and_namespace(values: dict[str, Any], covered: bool) -> None:
    assert (covering(finding(), [entry(**values)]) is not None) is covered


def test_a_finding_that_also_touched_another_namespace_is_not_covered() -> None:
    wider = finding(resources=[ResourceRef("kube-system", "pods/exec", "a"), ResourceRef("prod", "pods/exec", "b")])
    assert covering(wider, [entry(namespace="kube-system")]) is None
    cluster_scoped = finding(resources=[ResourceRef("", "nodes", "ip-10-0-1-5")])
    assert covering(cluster_scoped, [entry(principal="alice", namespace="*")]) is None


def test_expiry_is_judged_by_the_findings_latest_event() -> None:
    growing = finding(last_seen=datetime(2026, 12, 2, 0, 0, tzinfo=UTC).timestamp())
    assert covering(growing, [entry(principal="alice", expires="2026-12-01")]) is None
    assert covering(growing, [entry(principal="alice", expires="2026-12-03")]) is not None


def test_marking_names_the_entry_and_its_reason() -> None:
    findings = [finding(), finding(id="1" * 32, principal={"name": "bob", "key": "iam:bob"})]
    assert mark_suppressed(findings, [entry(principal="alice")]) == 1
    assert findings[0].suppressed_by == "EKS-301 principal=alice: weekly node debugging"
    assert findings[1].suppressed_by == ""
    assert json.loads(to_json_line(findings[0]))["suppressed_by"] == findings[0].suppressed_by
    assert "suppressed_by" not in json.loads(to_json_line(findings[1]))  # unsuppressed findings read as before


# ---- the detector: stored and counted, never published --------------------------------------------------------------

ARCHIVE_KEY = "audit/account=111122223333/region=eu-west-1/cluster=prod/year=2026/month=11/day=26/hour=10/d-1.gz"


def exec_event(audit_id: str, user: str) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "verb": "create",
        "requestURI": "/api/v1/namespaces/kube-system/pods/coredns/exec?command=sh",
        "objectRef": {"resource": "pods", "namespace": "kube-system", "name": "coredns", "subresource": "exec"},
        "responseStatus": {"code": 101},
        "annotations": {"authorization.k8s.io/decision": "allow"},
        "stageTimestamp": EXEC_TIME.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "user": {"username": user},
    }


class Archive:
    def __init__(self) -> None:
        self.written: list[Finding] = []

    def write(self, source_key: str, findings: Any) -> str:
        self.written = list(findings)
        return "findings/x"


def run_object(tmp_path: Path, detection: DetectionOptions | None) -> tuple[Any, list[dict[str, Any]], Archive]:
    path = tmp_path / ARCHIVE_KEY
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [exec_event("a-1", "alice"), exec_event("b-1", "bob")]
    path.write_bytes(gzip.compress(b"\n".join(json.dumps(line).encode() for line in lines)))
    sink, archive = io.BytesIO(), Archive()
    result = process_object(
        LocalFileReader(tmp_path),
        ARCHIVE_KEY,
        publisher=JsonLinesPublisher(sink),
        finding_archive=archive,
        detection=detection,
        baselines=MemoryStateStore(),
    )
    return result, [json.loads(line) for line in sink.getvalue().splitlines()], archive


def test_suppressed_findings_are_stored_and_counted_but_not_published(tmp_path: Path) -> None:
    before, published_before, archive_before = run_object(tmp_path, None)
    exec_rules = {f["rule_id"] for f in published_before if f["principal"]["name"] == "alice"}
    assert exec_rules, "the fixture must produce findings for alice"
    detection = DetectionOptions(
        suppressions=[entry(rule=rule, principal="alice", namespace="kube-system") for rule in sorted(exec_rules)]
    )

    result, published, archive = run_object(tmp_path / "again", detection)

    assert {f["principal"]["name"] for f in published} == {"bob"}
    assert [f.id for f in archive.written] == [f.id for f in archive_before.written]  # every finding stored
    suppressed = [f for f in archive.written if f.suppressed_by]
    assert {f.principal["name"] for f in suppressed} == {"alice"} and len(suppressed) == len(exec_rules)
    assert result.suppressed == len(exec_rules) and before.suppressed == 0
    assert result.published == len(published) == before.published - len(exec_rules)
    assert result.findings_by_severity == before.findings_by_severity  # counted as before


def test_an_expired_entry_no_longer_holds_findings_back(tmp_path: Path) -> None:
    _, published_before, _ = run_object(tmp_path, None)
    rules = sorted({f["rule_id"] for f in published_before})
    expired = [entry(rule=rule, all_principals=True, expires=date(2026, 11, 26)) for rule in rules]
    result, published, _ = run_object(tmp_path / "again", DetectionOptions(suppressions=expired))
    assert result.suppressed == 0 and len(published) == len(published_before)
    current = [entry(rule=rule, all_principals=True, expires=date(2026, 11, 27)) for rule in rules]
    result, published, _ = run_object(tmp_path / "third", DetectionOptions(suppressions=current))
    assert result.suppressed == len(published_before) and published == []


# ---- eksight suppress ------------------------------------------------------------------------------------------------

CONFIG = {"$schema": "./schema/eksight.config.schema.json", "regions": {"us-east-1": {"clusters": ["prod"]}}}


def suppress(config: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["suppress", "--config", str(config), "--today", "2026-12-07", *args])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "eksight.config.json"
    path.write_text(json.dumps(CONFIG, indent=2) + "\n")
    return path


def entries(config: Path) -> list[dict[str, Any]]:
    return list(json.loads(config.read_text())["detection"]["suppressions"])


def test_suppress_by_rule_and_principal_writes_a_validated_entry(config: Path) -> None:
    result = suppress(
        config, "--rule", "EKS-301", "--principal", "alice", "--reason", "node debugging", "--expires", "2027-01-31"
    )
    assert result.exit_code == 0, result.output
    assert entries(config) == [
        {"rule": "EKS-301", "principal": "alice", "reason": "node debugging", "expires": "2027-01-31"}
    ]
    written = json.loads(config.read_text())
    assert {k: v for k, v in written.items() if k != "detection"} == CONFIG  # the rest of the file is kept
    assert list(written) == [*CONFIG, "detection"]  # and its order
    assert load(config).file.detection.suppressions[0].expires == date(2027, 1, 31)
    assert "until 2027-01-31" in result.output


def test_suppress_a_finding_by_id_from_a_findings_file(config: Path, tmp_path: Path) -> None:
    findings = tmp_path / "findings.jsonl.gz"
    target = finding(id="f" * 32)
    with gzip.open(findings, "wb") as sink:
        sink.write(to_json_line(finding(id="e" * 32, principal={"name": "bob", "key": "iam:bob"})))
        sink.write(to_json_line(target))
    result = suppress(config, "f" * 32, "--findings", str(findings), "--reason", "known runbook")
    assert result.exit_code == 0, result.output
    assert entries(config) == [
        {
            "rule": "EKS-301",
            "principal": KEY,
            "namespace": "kube-system",
            "reason": "known runbook",
            "finding": "f" * 32,
        }
    ]
    missing = suppress(config, "a" * 32, "--findings", str(findings), "--reason", "x")
    assert missing.exit_code == 2 and "is in none of" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rule", "EKS-31", "--principal", "alice", "--reason", "x"], "unknown rule id EKS-31 (did you mean"),
        (["--rule", "EKS-301", "--principal", "alice", "--reason", "  "], "--reason is required"),
        (["--rule", "EKS-301", "--principal", "alice"], "--reason is required"),
        (["--rule", "EKS-301", "--reason", "x"], "give --principal or --namespace, or --all"),
        (["--rule", "EKS-301", "--principal", "*", "--reason", "x"], "give --principal or --namespace, or --all"),
        (["--rule", "EKS-301", "--principal", "a", "--reason", "x", "--expires", "2026-12-07"], "is not after today"),
        (["--rule", "EKS-301", "--principal", "a", "--reason", "x", "--expires", "2026-12-01"], "is not after today"),
        (["abc", "--rule", "EKS-301", "--reason", "x"], "not both"),
        (["abc", "--reason", "x"], "needs --findings"),
    ],
)
def test_suppress_refuses_what_would_not_be_a_valid_entry(config: Path, args: list[str], message: str) -> None:
    before = config.read_text()
    result = suppress(config, *args)
    assert result.exit_code != 0 and message in result.output, result.output
    assert config.read_text() == before


def test_rule_wide_entries_need_all_and_duplicates_need_replace(config: Path) -> None:
    assert suppress(config, "--rule", "EKS-301", "--all", "--reason", "lab cluster").exit_code == 0
    again = suppress(config, "--rule", "EKS-301", "--all", "--reason", "other")
    assert again.exit_code == 2 and "exists already" in again.output and "--replace" in again.output
    renewed = suppress(config, "--rule", "EKS-301", "--all", "--reason", "lab", "--expires", "2027-02-01", "--replace")
    assert renewed.exit_code == 0, renewed.output
    assert entries(config) == [{"rule": "EKS-301", "all_principals": True, "reason": "lab", "expires": "2027-02-01"}]
    removed = suppress(config, "--rule", "EKS-301", "--all", "--remove")
    assert removed.exit_code == 0, removed.output
    assert entries(config) == []
    assert suppress(config, "--rule", "EKS-301", "--all", "--remove").exit_code == 2  # nothing left to remove


def test_replay_with_a_config_marks_suppressed_findings_and_still_writes_them(config: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    audit.write_text("\n".join(json.dumps(exec_event(f"a-{n}", user)) for n, user in enumerate(["alice", "bob"])))
    plain = tmp_path / "plain.jsonl"
    assert CliRunner().invoke(main, ["replay", str(audit), "-o", str(plain)]).exit_code == 0
    alice_rules = {
        f["rule_id"] for f in map(json.loads, plain.read_text().splitlines()) if "alice" in f["principal"]["name"]
    }
    assert alice_rules
    for rule in sorted(alice_rules):
        assert suppress(config, "--rule", rule, "--principal", "alice", "--reason", "runbook").exit_code == 0

    marked = tmp_path / "marked.jsonl"
    result = CliRunner().invoke(main, ["replay", str(audit), "--config", str(config), "-o", str(marked)])

    assert result.exit_code == 0, result.output
    before, after = plain.read_text().splitlines(), [json.loads(line) for line in marked.read_text().splitlines()]
    assert len(after) == len(before)
    assert {f["rule_id"] for f in after if f.get("suppressed_by")} == alice_rules
    assert all(f["principal"]["name"] == "alice" for f in after if f.get("suppressed_by"))
    assert f"suppressed: {len(alice_rules)} (" in result.output
