"""Finding deduplication on event time, deterministic ids, capped evidence."""

from __future__ import annotations

from dataclasses import replace

from eksight.core.findings import FindingAggregator, Observation, ResourceRef, Severity, iso, to_json_line

WEB_0 = ResourceRef("default", "pods/exec", "web-0")


def observation(
    time: float,
    audit_id: str,
    *,
    principal: str = "iam:arn:aws:iam::1:role/dev",
    target: ResourceRef | None = WEB_0,
    severity: Severity = Severity.MEDIUM,
    ip: str = "198.51.100.7",
) -> Observation:
    return Observation(
        detector="rule",
        rule_id="EKS-101",
        type="Execution:Kubernetes/ExecInPod",
        severity=severity,
        title="Exec into pod",
        description="d",
        cluster="prod",
        account="1",
        region="eu-west-1",
        principal_key=principal,
        principal={"name": "dev", "kind": "iam_role"},
        target=target,
        time=time,
        audit_id=audit_id,
        source_ip=ip,
        user_agent="kubectl/v1.31",
        mitre=("T1609",),
    )


def test_repeats_within_the_window_update_one_finding() -> None:
    aggregator = FindingAggregator(window_seconds=3600)
    for i, t in enumerate([3700.0, 4500.0, 7100.0]):
        aggregator.add(observation(t, f"a{i}", ip=f"198.51.100.{i}"))
    (finding,) = aggregator.findings()
    assert (finding.count, finding.first_seen, finding.last_seen) == (3, 3700.0, 7100.0)
    assert finding.evidence == ["a0", "a1", "a2"]
    assert finding.source_ips == ["198.51.100.0", "198.51.100.1", "198.51.100.2"]


def test_a_repeat_in_the_next_window_opens_a_new_finding() -> None:
    aggregator = FindingAggregator(window_seconds=3600)
    aggregator.add(observation(3599.0, "a"))
    aggregator.add(observation(3601.0, "b"))
    first, second = aggregator.findings()
    assert (first.evidence, second.evidence) == (["a"], ["b"])
    assert first.id != second.id


def test_activity_split_across_archive_objects_keeps_its_finding_id() -> None:
    whole, part_one, part_two = FindingAggregator(), FindingAggregator(), FindingAggregator()
    for i, t in enumerate([7300.0, 7900.0, 9000.0]):
        whole.add(observation(t, f"e{i}"))
        (part_one if i < 2 else part_two).add(observation(t, f"e{i}"))
    ids = {f.id for f in [*whole.findings(), *part_one.findings(), *part_two.findings()]}
    assert len(ids) == 1


def test_different_principal_or_target_is_a_different_finding() -> None:
    aggregator = FindingAggregator()
    aggregator.add(observation(1.0, "a"))
    aggregator.add(observation(2.0, "b", principal="sa:ci/deployer"))
    aggregator.add(observation(3.0, "c", target=ResourceRef("default", "pods/exec", "web-1")))
    assert len(aggregator.findings()) == 3


def test_ids_are_deterministic_for_the_same_input() -> None:
    def run() -> list[str]:
        aggregator = FindingAggregator()
        for i in range(5):
            aggregator.add(observation(100.0 * i, f"x{i}", principal=f"p{i % 2}"))
        return [f.id for f in aggregator.findings()]

    assert run() == run()
    assert len(set(run())) == 2


def test_evidence_is_capped_but_never_empty_and_count_stays_exact() -> None:
    aggregator = FindingAggregator(max_evidence=3)
    for i in range(10):
        aggregator.add(observation(float(i), f"e{i}"))
    (finding,) = aggregator.findings()
    assert finding.count == 10 and finding.evidence == ["e0", "e1", "e2"]


def test_a_duplicate_audit_id_is_cited_once() -> None:
    aggregator = FindingAggregator()
    aggregator.add(observation(1.0, "same"))
    aggregator.add(observation(2.0, "same"))
    assert aggregator.findings()[0].evidence == ["same"]


def test_severity_rises_to_the_strongest_observation() -> None:
    aggregator = FindingAggregator()
    aggregator.add(observation(1.0, "a", severity=Severity.LOW))
    aggregator.add(observation(2.0, "b", severity=Severity.HIGH))
    assert aggregator.findings()[0].severity is Severity.HIGH


def test_drain_closed_releases_only_windows_that_ended() -> None:
    aggregator = FindingAggregator(window_seconds=60)
    aggregator.add(observation(0.0, "old"))
    aggregator.add(observation(100.0, "new", principal="other"))
    assert [f.evidence for f in aggregator.drain_closed(before=120.0)] == [["old"]]
    assert [f.evidence for f in aggregator.findings()] == [["new"]]


def test_json_line_has_the_contract_fields() -> None:
    import json

    aggregator = FindingAggregator()
    aggregator.add(observation(1726000000.25, "a"))
    record = json.loads(to_json_line(aggregator.findings()[0]))
    assert set(record) >= {
        "id",
        "type",
        "severity",
        "title",
        "description",
        "detector",
        "rule_id",
        "cluster",
        "account",
        "region",
        "principal",
        "evidence",
        "first_seen",
        "last_seen",
        "count",
        "mitre",
        "resources",
        "source_ips",
        "user_agents",
    }
    assert record["severity"] == "MEDIUM"
    assert record["first_seen"] == iso(1726000000.25) == "2024-09-10T20:26:40.250000Z"
    assert record["resources"] == [{"namespace": "default", "kind": "pods/exec", "name": "web-0"}]


def test_severity_parse_names_the_choices() -> None:
    assert Severity.parse("high") is Severity.HIGH
    try:
        Severity.parse("urgent")
    except ValueError as error:
        assert "CRITICAL" in str(error)
    else:
        raise AssertionError("no error")


def test_a_rule_with_a_day_long_window_keeps_one_finding_all_day() -> None:
    """A rule's own window (EKS-102: a UTC day) groups its matches across hours, while hour-long findings of other
    rules still close and start over each hour; the same activity split anywhere gets the same id."""
    day, hour = 86400.0, 3600.0
    aggregator = FindingAggregator(window_seconds=hour)
    scanner = ResourceRef("", "internet", "scanners")
    times = [day + 600, day + 5 * hour, day + 23 * hour]
    for i, t in enumerate(times):
        aggregator.add(replace(observation(t, f"s{i}", target=scanner), window_seconds=day))
        aggregator.add(observation(t, f"e{i}"))  # hourly: one finding each
    aggregator.add(replace(observation(2 * day + 60, "next-day", target=scanner), window_seconds=day))
    scans = [f for f in aggregator.findings() if f.resources == [scanner]]
    assert [(f.count, f.evidence) for f in scans] == [(3, ["s0", "s1", "s2"]), (1, ["next-day"])]
    assert len([f for f in aggregator.findings() if f.resources == [WEB_0]]) == 3
    alone = FindingAggregator(window_seconds=hour)
    alone.add(replace(observation(times[1], "s1", target=scanner), window_seconds=day))
    assert alone.findings()[0].id == scans[0].id


def test_a_stronger_observation_brings_its_severity_context() -> None:
    aggregator = FindingAggregator()
    lowered = {"original": "MEDIUM", "severity": "LOW", "direction": "lowered", "reason": "routine for dev: ..."}
    aggregator.add(replace(observation(100.0, "a", severity=Severity.LOW), details={"severity_context": lowered}))
    aggregator.add(observation(200.0, "b"))  # MEDIUM, not lowered (say, from a network new to it)
    (finding,) = aggregator.findings()
    assert finding.severity == Severity.MEDIUM and "severity_context" not in finding.details
