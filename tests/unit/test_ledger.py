"""A finding that grows across archive objects is published as its total, once per object."""

from __future__ import annotations

from eksight.core import ledger
from eksight.core.findings import FindingAggregator, Observation, ResourceRef, Severity
from eksight.core.state import MemoryStateStore


def part(times: list[float], ids: list[str], severity: Severity = Severity.MEDIUM):  # type: ignore[no-untyped-def]
    aggregator = FindingAggregator()
    for time, audit_id in zip(times, ids, strict=True):
        aggregator.add(
            Observation(
                detector="rule",
                rule_id="EKS-111",
                type="Execution:Kubernetes/ExecInKubeSystemPod",
                severity=severity,
                title=f"Exec ({severity.name})",
                description="d",
                cluster="prod",
                account="1",
                region="eu-west-1",
                principal_key="user:alice",
                principal={"name": "alice"},
                target=ResourceRef("kube-system", "pods/exec", "coredns"),
                time=time,
                audit_id=audit_id,
                source_ip="198.51.100.1",
                user_agent="kubectl",
            )
        )
    (finding,) = aggregator.findings()
    return finding


def test_parts_of_one_finding_from_two_objects_are_published_as_the_total() -> None:
    store = MemoryStateStore()
    (first,) = ledger.fold(store, [part([7300.0, 7400.0], ["a", "b"])], "object-1")
    (second,) = ledger.fold(store, [part([9000.0], ["c"], Severity.HIGH)], "object-2")
    assert first.id == second.id
    assert (first.count, first.evidence) == (2, ["a", "b"])
    assert (second.count, second.first_seen, second.last_seen) == (3, 7300.0, 9000.0)
    assert second.evidence == ["a", "b", "c"] and second.severity is Severity.HIGH


def test_a_retried_object_is_counted_once() -> None:
    store = MemoryStateStore()
    ledger.fold(store, [part([7300.0], ["a"])], "object-1")
    (again,) = ledger.fold(store, [part([7300.0], ["a"])], "object-1")
    assert again.count == 1
    (later,) = ledger.fold(store, [part([7500.0], ["b"])], "object-2")
    assert later.count == 2 and store.writes == 2


def test_the_strongest_title_survives_a_weaker_later_part() -> None:
    store = MemoryStateStore()
    ledger.fold(store, [part([7300.0], ["a"], Severity.HIGH)], "object-1")
    (total,) = ledger.fold(store, [part([7400.0], ["b"], Severity.LOW)], "object-2")
    assert (total.severity, total.title) == (Severity.HIGH, "Exec (HIGH)")


def test_the_severity_reason_follows_the_part_that_set_the_severity() -> None:
    store = MemoryStateStore()
    raised = {"original": "MEDIUM", "severity": "HIGH", "direction": "raised", "reason": "for alice this came ..."}
    strong = part([7300.0], ["a"], Severity.HIGH)
    strong.details["severity_context"] = raised
    ledger.fold(store, [strong], "object-1")
    weaker = part([7400.0], ["b"], Severity.LOW)
    weaker.details["severity_context"] = {**raised, "severity": "LOW", "direction": "lowered"}
    (total,) = ledger.fold(store, [weaker], "object-2")
    assert total.severity is Severity.HIGH and total.details["severity_context"] == raised
