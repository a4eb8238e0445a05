"""Baseline-aware severity on the dev cluster: a platform admin's recurring kube-system exec is lowered, with the
reason on the finding; the labelled attacks keep (or raise) their severity.

The dev set's admin bruno.weber execs into a kube-system pod on three days of the learning week; the same session
is repeated one and two weeks later (his own events, moved in time: same network, tool and hour of day). What is
expected comes from the labels and from these copies, never from eksight's output.
"""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from eksight.core.archive_object import build_detector
from eksight.core.decode import SourceContext, decode_bytes
from eksight.core.detector import BASELINE_BATCH
from eksight.core.findings import Finding, Severity
from eksight.core.state import MemoryStateStore

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "dev-scenarios"
pytestmark = pytest.mark.skipif(not DEV.is_dir(), reason="../shared/datasets is not beside the checkout")
ADMIN = "bruno.weber@example.com"
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"


def _admin_kube_system_exec(event: dict[str, Any]) -> bool:
    ref = event.get("objectRef") or {}
    return (
        event["user"]["username"].endswith(f"/{ADMIN}")
        and ref.get("subresource") == "exec"
        and ref.get("namespace") == "kube-system"
    )


def _moved(event: dict[str, Any], days: int) -> dict[str, Any]:
    copy = json.loads(json.dumps(event))
    copy["auditID"] = str(uuid.UUID(int=hash((event["auditID"], days)) & (2**128 - 1)))
    for field in ("requestReceivedTimestamp", "stageTimestamp"):
        copy[field] = (datetime.strptime(event[field], STAMP) + timedelta(days=days)).strftime(STAMP)
    return copy


@pytest.fixture(scope="module")
def replay() -> dict[str, Any]:
    labels = json.loads((DEV / "labels.json").read_text())
    events = [json.loads(line) for line in gzip.decompress((DEV / "audit.jsonl.gz").read_bytes()).splitlines()]
    first_exec = min((e for e in events if _admin_kube_system_exec(e)), key=lambda e: e["stageTimestamp"])
    weekly = [_moved(first_exec, 7), _moved(first_exec, 13)]
    events = sorted([*events, *weekly], key=lambda e: e["stageTimestamp"])
    detector = build_detector(None, MemoryStateStore(), baseline_batch=BASELINE_BATCH)
    body = b"\n".join(json.dumps(e).encode() for e in events)
    defaults = SourceContext(cluster=labels["cluster"], account=labels["account"], region=labels["region"])
    detector.run(decode_bytes(body, source="dev", defaults=defaults))
    return {"labels": labels, "weekly": {e["auditID"] for e in weekly}, "findings": detector.findings()}


def _citing(findings: list[Finding], audit_ids: set[str]) -> list[Finding]:
    return [f for f in findings if audit_ids & set(f.evidence)]


def test_a_weekly_kube_system_exec_by_the_admin_is_lowered_and_says_why(replay: dict[str, Any]) -> None:
    for audit_id in replay["weekly"]:
        (finding,) = _citing(replay["findings"], {audit_id})
        assert finding.rule_id == "EKS-111"
        assert finding.severity == Severity.LOW
        context = finding.details["severity_context"]
        assert (context["original"], context["severity"], context["direction"]) == ("MEDIUM", "LOW", "lowered")
        assert f"routine for {ADMIN}" in context["reason"]
        assert (
            "kube-system" in context["reason"]
            and "same network (3.198.185.0/24) and tool (kubectl)" in (context["reason"])
        )
        assert "Severity lowered from MEDIUM to LOW: routine for" in finding.description


def test_the_first_week_has_no_baseline_yet(replay: dict[str, Any]) -> None:
    firsts = [
        f
        for f in replay["findings"]
        if f.rule_id == "EKS-111" and f.principal["name"].endswith(ADMIN) and not set(f.evidence) & replay["weekly"]
    ]
    assert len(firsts) == 3
    for finding in firsts:
        assert finding.severity == Severity.MEDIUM
        assert finding.details["severity_context"]["direction"] == "unchanged"
        assert finding.details["severity_context"]["reason"].startswith("no baseline yet")


def test_labelled_attacks_are_never_lowered(replay: dict[str, Any]) -> None:
    for scenario in replay["labels"]["scenarios"]:
        cited = _citing(replay["findings"], set(scenario["auditIDs"]))
        if scenario["kind"] == "signature":
            assert max(f.severity for f in cited) >= Severity.MEDIUM, scenario["name"]
        lowered = [f.rule_id for f in cited if f.details.get("severity_context", {}).get("direction") == "lowered"]
        assert not lowered, f"{scenario['name']}: {lowered}"


def test_the_ci_exec_into_kube_system_of_s05_keeps_its_severity(replay: dict[str, Any]) -> None:
    s05 = next(s for s in replay["labels"]["scenarios"] if s["id"] == "S05")
    execs = [f for f in _citing(replay["findings"], set(s05["auditIDs"])) if f.type.startswith("Execution:")]
    assert execs and all(f.severity >= Severity.MEDIUM for f in execs)
