"""The demo's path end to end on a small simulated cluster: CloudWatch Logs → subscription → Firehose → S3 → SQS
→ the detector handler → DynamoDB Local → EventBridge → the Security Hub forwarder → Security Hub (moto).

Expectations come from the simulator's labels (which attacks happened, on which audit events) and from the
stack's own routing contract (HIGH and above reach Security Hub), not from eksight's output."""

from __future__ import annotations

from functools import cache

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


@cache
def result() -> demo.DemoResult:
    return demo.run(days=8.5, scale=0.15, seed=3, attacks=",".join(ATTACKS.values()), say=lambda _line: None)


def test_every_record_is_processed_or_quarantined() -> None:
    outcome = result()
    assert outcome.events_in > 10_000 and outcome.objects > 1
    assert outcome.lost == 0 and outcome.events_in == outcome.processed + outcome.quarantined
    assert outcome.quarantined == len(demo.MALFORMED)


def test_every_simulated_attack_reaches_eventbridge_at_medium_or_above() -> None:
    outcome = result()
    medium_plus = [f for f in outcome.findings if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")]
    cited = {audit_id for f in medium_plus for audit_id in f["evidence"]}
    scenarios = {s["id"]: set(s["auditIDs"]) for s in outcome.labels["scenarios"]}
    assert set(scenarios) == set(ATTACKS)
    assert {s for s, ids in scenarios.items() if ids & cited} == set(scenarios)


def test_security_hub_holds_exactly_the_high_and_critical_findings_of_the_bus() -> None:
    outcome = result()
    high = {f["id"] for f in outcome.findings if f["severity"] in ("HIGH", "CRITICAL")}
    imported = [f for f in outcome.securityhub if f["ProductArn"].endswith(f"product/{demo.ACCOUNT}/default")]
    assert high and {f["ProductFields"]["eksight/finding_id"] for f in imported} == high
    assert all(f["Severity"]["Label"] in ("HIGH", "CRITICAL") for f in imported)
    assert all(r["Type"] == "AwsEksCluster" for f in imported for r in f["Resources"][:1])


def test_summary_line_has_the_documented_form() -> None:
    line = result().summary_line()
    assert line.startswith("demo: events=") and line.split()[1:] == [
        f"{key}={value}"
        for key, value in (
            ("events", result().events_in),
            ("processed", result().processed),
            ("quarantined", result().quarantined),
            ("findings", len(result().findings)),
            ("securityhub", len(result().securityhub)),
            ("lost", result().lost),
        )
    ]
