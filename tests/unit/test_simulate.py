"""The cluster simulator: determinism, label consistency, CloudWatch parts, event validity, realism statistics,
and the signature/behaviour split of its scenarios checked against eksight's own rule engine."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from eksight.core.decode import DecodeStats, decode_path
from eksight.core.detector import Detector
from eksight.core.events import parse_event
from eksight.core.findings import Severity
from eksight.core.identity import resolve_principal
from eksight.core.rules import default_engine
from eksight.tools.cli import main
from eksight.tools.simulator import CATALOGUE, HARD_NEGATIVES, Config, generate

SCORE_TOOL = Path(__file__).resolve().parents[3] / "shared" / "tools" / "score_findings.py"
LABEL_KEYS = {
    "cluster",
    "account",
    "region",
    "seed",
    "scenario_set",
    "scale",
    "drift",
    "start",
    "end",
    "learning_end",
    "event_count",
    "benign_event_count",
    "test_window_benign_event_count",
    "scenarios",
    "hard_negatives",
}


def _small(out: Path, seed: int = 5, **overrides: object) -> Path:
    args = {"days": 0.5, "learning_days": 0.25, "scale": 0.4, "seed": seed, **overrides}
    if args.pop("no_cwl", False):
        args["cwl"] = False
    generate(Config(out=out, **args))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two days (the second one a test window) of a full-size cluster, every scenario, benign novelty and drift."""
    out = tmp_path_factory.mktemp("sim") / "cluster"
    generate(Config(out=out, days=2, learning_days=1, seed=11, drift=True))
    lines = gzip.decompress((out / "audit.jsonl.gz").read_bytes()).splitlines()
    events = [json.loads(line) for line in lines]
    return {"out": out, "lines": lines, "events": events, "labels": json.loads((out / "labels.json").read_text())}


@pytest.fixture(scope="module")
def findings(cluster: dict[str, object]) -> list:
    detector = Detector(default_engine())
    for record in decode_path(Path(cluster["out"]) / "audit.jsonl.gz"):  # type: ignore[arg-type]
        detector.process(record)
    return [f for f in detector.findings() if f.detector == "rule" and f.severity >= Severity.MEDIUM]


# --- determinism ------------------------------------------------------------------------------------------------


def _files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first, second = _files(_small(tmp_path / "a")), _files(_small(tmp_path / "b"))
    assert set(first) >= {"audit.jsonl.gz", "labels.json", "cwl/part-00000.gz"}
    assert first == second


def test_another_seed_gives_another_cluster(tmp_path: Path) -> None:
    one, other = _small(tmp_path / "a"), _small(tmp_path / "b", seed=6)
    assert (one / "audit.jsonl.gz").read_bytes() != (other / "audit.jsonl.gz").read_bytes()
    assert (
        json.loads((one / "labels.json").read_text())["account"]
        != json.loads((other / "labels.json").read_text())["account"]
    )


# --- labels -----------------------------------------------------------------------------------------------------


def test_labels_follow_the_dev_scenarios_schema(cluster: dict) -> None:
    labels = cluster["labels"]
    assert set(labels) == LABEL_KEYS
    assert {s["name"] for s in labels["scenarios"]} == {s.name for s in CATALOGUE}
    for scenario in labels["scenarios"]:
        assert set(scenario) == {"id", "name", "kind", "mitre", "auditIDs", "start"}
        assert scenario["kind"] in ("signature", "behavior") and scenario["mitre"].startswith("T")
        assert scenario["auditIDs"]
    for negative in labels["hard_negatives"]:
        assert set(negative) == {"name", "auditIDs"} and negative["name"] in HARD_NEGATIVES and negative["auditIDs"]
    # dst_shift needs a DST date in the run; the egress change shows only if someone uses the VPN after it
    assert {h["name"] for h in labels["hard_negatives"]} >= set(HARD_NEGATIVES) - {"dst_shift", "egress_nat_change"}


def test_labelled_events_exist_and_attacks_follow_the_learning_window(cluster: dict) -> None:
    labels, events = cluster["labels"], cluster["events"]
    received = {e["auditID"]: e["requestReceivedTimestamp"] for e in events}
    labelled = [a for s in labels["scenarios"] for a in s["auditIDs"]]
    labelled += [a for h in labels["hard_negatives"] for a in h["auditIDs"]]
    assert all(a in received for a in labelled)
    assert len(labelled) == len(set(labelled)), "an event carries one label at most"
    for scenario in labels["scenarios"]:
        times = sorted(received[a] for a in scenario["auditIDs"])
        assert times[0] >= labels["learning_end"] and scenario["start"] == times[0]
    for negative in labels["hard_negatives"]:
        assert min(received[a] for a in negative["auditIDs"]) >= labels["start"]


def test_label_counts_match_the_log(cluster: dict) -> None:
    labels, events = cluster["labels"], cluster["events"]
    attack = {a for s in labels["scenarios"] for a in s["auditIDs"]}
    benign = [e for e in events if e["auditID"] not in attack]
    assert labels["event_count"] == len(events)
    assert labels["benign_event_count"] == len(benign)
    assert labels["test_window_benign_event_count"] == sum(
        e["requestReceivedTimestamp"] >= labels["learning_end"] for e in benign
    )
    assert labels["start"] <= min(e["requestReceivedTimestamp"] for e in events)
    assert max(e["stageTimestamp"] for e in events) < labels["end"]


def test_events_are_sorted_by_stage_timestamp(cluster: dict) -> None:
    stamps = [e["stageTimestamp"] for e in cluster["events"]]
    assert stamps == sorted(stamps)


# --- formats ----------------------------------------------------------------------------------------------------


def test_cloudwatch_parts_decode_to_the_same_events(cluster: dict) -> None:
    out = Path(cluster["out"])
    stats = DecodeStats()
    records = list(decode_path(out / "cwl", stats=stats))
    assert [r.data for r in records] == cluster["lines"]
    assert stats.skipped["control_message"] >= 1 and not stats.quarantined
    assert {r.context.cluster for r in records} == {cluster["labels"]["cluster"]}
    assert {r.context.account for r in records} == {cluster["labels"]["account"]}
    assert all(r.context.log_stream.startswith("kube-apiserver-audit-") for r in records)


def test_every_event_parses_and_has_a_known_principal(cluster: dict) -> None:
    kinds: Counter[str] = Counter()
    for line in cluster["lines"]:
        event = parse_event(line)
        principal = resolve_principal(event)
        kinds[principal.kind] += 1
        assert principal.kind != "unknown", line[:300]
        if principal.kind == "anonymous":
            assert event.user.username == "system:anonymous"
    assert {"service_account", "node", "k8s_system", "eks_system", "sso_role", "iam_role", "anonymous"} <= set(kinds)


def test_eks_identity_fields(cluster: dict) -> None:
    for event in cluster["events"]:
        user = event["user"]
        if user["username"].startswith(("arn:aws:sts::", "system:node:")):
            extra = user["extra"]
            assert set(extra) == {"accessKeyId", "arn", "canonicalArn", "principalId", "sessionName"}
            assert user["uid"].startswith(f"aws-iam-authenticator:{cluster['labels']['account']}:AROA")
            assert extra["accessKeyId"][0].startswith("ASIA") and extra["principalId"][0].startswith("AROA")
            assert extra["principalId"][0].endswith(":" + extra["sessionName"][0])
        if user["username"].startswith("system:node:"):
            assert user["username"].endswith(".ec2.internal")  # us-east-1's private DNS domain
            assert extra["sessionName"][0].startswith("i-0")


def test_workload_writes_carry_real_pod_specs(cluster: dict) -> None:
    creates = [
        e
        for e in cluster["events"]
        if e["verb"] == "create"
        and e.get("objectRef", {}).get("resource") == "pods"
        and "subresource" not in e["objectRef"]
    ]
    assert creates and all(
        e["level"] == "RequestResponse" for e in creates if e["user"]["username"].endswith("replicaset-controller")
    )
    images = {c["image"] for e in creates for c in e["requestObject"]["spec"]["containers"]}
    assert any(".dkr.ecr.us-east-1.amazonaws.com/" in image for image in images)
    streams = [e for e in cluster["events"] if e.get("objectRef", {}).get("subresource") in ("exec", "portforward")]
    assert {e["stage"] for e in streams} == {"ResponseStarted", "ResponseComplete"}
    assert all(e["responseStatus"]["code"] == 101 for e in streams)


# --- realism ----------------------------------------------------------------------------------------------------


def test_share_of_denied_requests_is_plausible(cluster: dict) -> None:
    denied = sum(e["responseStatus"]["code"] == 403 for e in cluster["events"])
    assert 0.001 < denied / len(cluster["events"]) < 0.03
    people = {
        e["user"]["username"]
        for e in cluster["events"]
        if e["responseStatus"]["code"] == 403 and "AWSReservedSSO" in e["user"]["username"]
    }
    assert people, "people run into RBAC now and then"


def test_node_count_follows_the_day(cluster: dict) -> None:
    per_hour: dict[str, set[str]] = defaultdict(set)
    for event in cluster["events"]:
        if event["user"]["username"].startswith("system:node:"):
            per_hour[event["requestReceivedTimestamp"][:13]].add(event["user"]["username"])
    counts = [len(nodes) for nodes in per_hour.values()]
    assert max(counts) - min(counts) >= 3


def test_people_keep_their_working_hours(cluster: dict) -> None:
    labels = cluster["labels"]
    unusual = {a for s in labels["scenarios"] for a in s["auditIDs"]} | {
        a
        for h in labels["hard_negatives"]
        for a in h["auditIDs"]
        if h["name"] in ("human_travel_timezone_shift", "dst_shift")
    }
    hours: dict[str, Counter[int]] = defaultdict(Counter)
    for event in cluster["events"]:
        username = event["user"]["username"]
        if "AWSReservedSSO" in username and "OnCall" not in username and event["auditID"] not in unusual:
            hours[event["user"]["extra"]["sessionName"][0]][int(event["requestReceivedTimestamp"][11:13])] += 1
    busy = {who: c for who, c in hours.items() if sum(c.values()) >= 30}
    assert len(busy) >= 4
    for who, counts in busy.items():
        best = max(sum(counts[(start + i) % 24] for i in range(12)) for start in range(24))
        assert best / sum(counts.values()) >= 0.75, who


def test_ci_runs_come_from_fresh_runner_addresses(cluster: dict) -> None:
    ci = [e for e in cluster["events"] if e["user"]["username"].endswith("/GitHubActions")]
    assert len({e["sourceIPs"][0] for e in ci}) >= 3
    assert len({e["user"]["extra"]["accessKeyId"][0] for e in ci}) >= 3


# --- the rule engine ----------------------------------------------------------------------------------------------


def test_signature_scenarios_are_detected_and_behaviour_ones_are_not(cluster: dict, findings: list) -> None:
    cited: dict[str, set[str]] = defaultdict(set)
    for finding in findings:
        for audit_id in finding.evidence:
            cited[audit_id].add(finding.rule_id)
    for scenario in cluster["labels"]["scenarios"]:
        rules = set().union(*(cited.get(a, set()) for a in scenario["auditIDs"]))
        if scenario["kind"] == "signature":
            assert rules, f"{scenario['name']} should raise a MEDIUM+ rule finding"
        else:
            assert not rules, f"{scenario['name']} is labelled behaviour-only but {sorted(rules)} fired"


def test_no_medium_finding_rests_on_hard_negatives_alone(cluster: dict, findings: list) -> None:
    negative = {a: h["name"] for h in cluster["labels"]["hard_negatives"] for a in h["auditIDs"]}
    only = [
        (f.rule_id, sorted({negative[a] for a in f.evidence}))
        for f in findings
        if f.evidence and all(a in negative for a in f.evidence)
    ]
    assert not only, f"rules firing on benign novelty alone: {only}"


def test_score_findings_tool_accepts_the_output(cluster: dict, findings: list, tmp_path: Path) -> None:
    if not SCORE_TOOL.exists():
        pytest.skip("shared scoring tool not available")
    out = Path(cluster["out"])
    (tmp_path / "findings.jsonl").write_text("".join(json.dumps(f.to_dict()) + "\n" for f in findings))
    (tmp_path / "audit.jsonl").write_bytes(b"\n".join(cluster["lines"]) + b"\n")
    result = subprocess.run(
        [
            sys.executable,
            str(SCORE_TOOL),
            "--labels",
            str(out / "labels.json"),
            "--audit",
            str(tmp_path / "audit.jsonl"),
            "--findings",
            str(tmp_path / "findings.jsonl"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = result.stdout.strip().splitlines()[-1]
    assert "signature_recall=1.00" in summary and "behavior_recall=0.00" in summary, result.stdout


# --- the command line ---------------------------------------------------------------------------------------------


def test_catalogue_has_enough_scenarios_of_each_kind() -> None:
    kinds = Counter(s.kind for s in CATALOGUE)
    assert sum(kinds.values()) >= 10 and kinds["behavior"] >= 4
    assert len({s.name for s in CATALOGUE}) == len(CATALOGUE)


def test_cli_lists_attacks_and_generates(tmp_path: Path) -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["simulate", "--list-attacks"])
    assert listed.exit_code == 0 and len(listed.output.splitlines()) == len(CATALOGUE)
    assert "behavior" in listed.output and "T1609" in listed.output
    out = tmp_path / "cli"
    made = runner.invoke(
        main,
        [
            "simulate",
            "--days",
            "0.3",
            "--learning-days",
            "0.1",
            "--scale",
            "0.3",
            "--attacks",
            "anonymous_api_access,ci_role_mass_reads",
            "--no-cwl",
            "--out",
            str(out),
        ],
    )
    assert made.exit_code == 0, made.output
    labels = json.loads((out / "labels.json").read_text())
    assert [s["name"] for s in labels["scenarios"]] == ["anonymous_api_access", "ci_role_mass_reads"]
    assert not (out / "cwl").exists()
    bad = runner.invoke(main, ["simulate", "--days", "0.1", "--attacks", "nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "unknown attack" in bad.output


def test_template_fast_path_writes_what_the_plain_path_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eksight.tools.simulator import emit

    fast = gzip.decompress((_small(tmp_path / "fast", no_cwl=True) / "audit.jsonl.gz").read_bytes())
    monkeypatch.setattr(emit, "_FAST", False)
    plain = gzip.decompress((_small(tmp_path / "plain", no_cwl=True) / "audit.jsonl.gz").read_bytes())
    assert fast == plain and fast.count(b"\n") > 1000


def test_the_cloud_vms_an_attacker_rents_have_addresses_their_provider_announces() -> None:
    """Every /24 the simulator draws a droplet's address from is in the provider's published ranges (a droplet
    cannot have an address its provider does not announce)."""
    from eksight.core.cloud_ranges import provider_of
    from eksight.tools.simulator.subtle import CLOUD_VM_RANGES

    for first, low, high in CLOUD_VM_RANGES:
        for second in range(low, high + 1):
            for third in range(256):
                provider = provider_of(f"{first}.{second}.{third}.1")
                assert provider is not None and provider.provider == "digitalocean", f"{first}.{second}.{third}.0/24"
