"""The simulator's issue-14 additions: a team reorganisation and a first on-call week (benign drift, labelled as
hard negatives), and two behaviour-only attacks (a stolen developer session replayed through a residential proxy,
a service-account token replayed from another team's pod)."""

from __future__ import annotations

import gzip
import json

import pytest

from eksight.tools.simulator import CATALOGUE, HARD_NEGATIVES, Config, generate
from eksight.tools.simulator.subtle import RESIDENTIAL_PROXY_RANGES

NEW_ATTACKS = ("stolen_dev_token_reads_other_team_secrets", "sa_token_replayed_from_another_pod")
NEW_DRIFTS = ("team_reorg_second_namespace", "dev_joins_oncall_rotation")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("sim") / "drift"
    generate(Config(out=out, days=8, learning_days=3, scale=0.6, seed=3, drift=True, attacks="all", cwl=False))
    events = [json.loads(line) for line in gzip.decompress((out / "audit.jsonl.gz").read_bytes()).splitlines()]
    labels = json.loads((out / "labels.json").read_text())
    tagged = {a: s["name"] for s in labels["scenarios"] for a in s["auditIDs"]}
    tagged |= {a: h["name"] for h in labels["hard_negatives"] for a in h["auditIDs"]}
    by_tag: dict[str, list[dict]] = {}
    for e in events:
        if e["auditID"] in tagged:
            by_tag.setdefault(tagged[e["auditID"]], []).append(e)
    return {"events": events, "labels": labels, "by_tag": by_tag}


def _session(e: dict) -> str:
    return e["user"].get("extra", {}).get("sessionName", [e["user"]["username"]])[0]


def test_the_new_attacks_are_behaviour_scenarios_and_the_drifts_hard_negatives() -> None:
    kinds = {s.name: s.kind for s in CATALOGUE}
    assert all(kinds[name] == "behavior" for name in NEW_ATTACKS)
    assert set(NEW_DRIFTS) <= set(HARD_NEGATIVES)


def test_all_new_sets_are_labelled_after_the_learning_window(run: dict) -> None:
    learning_end = run["labels"]["learning_end"]
    for name in (*NEW_ATTACKS, *NEW_DRIFTS):
        events = run["by_tag"].get(name)
        assert events, f"{name} produced no events"
        assert min(e["requestReceivedTimestamp"] for e in events) >= learning_end


def test_the_stolen_session_is_the_developers_own_client_from_a_new_residential_address(run: dict) -> None:
    events = run["by_tag"]["stolen_dev_token_reads_other_team_secrets"]
    victim = {_session(e) for e in events}
    assert len(victim) == 1
    (name,) = victim
    own = [e for e in run["events"] if _session(e) == name and e["auditID"] not in {x["auditID"] for x in events}]
    assert {e["userAgent"] for e in events} <= {e["userAgent"] for e in own}  # the victim's exact kubectl
    ips = {e["sourceIPs"][0] for e in events}
    assert len(ips) == 1 and not ips & {e["sourceIPs"][0] for e in own}
    first, second = (int(x) for x in next(iter(ips)).split(".")[:2])
    assert any(first == a and lo <= second <= hi for a, lo, hi in RESIDENTIAL_PROXY_RANGES)
    secrets = {e["objectRef"]["namespace"] for e in events if e["objectRef"].get("resource") == "secrets"}
    team_namespace = next(e["objectRef"]["namespace"] for e in events if e["objectRef"].get("resource") == "pods")
    assert len(secrets) == 2 and team_namespace not in secrets
    assert all(e["responseStatus"]["code"] == 200 for e in events)


def test_the_replayed_token_comes_from_another_namespaces_pod_and_is_refused_beyond_its_own(run: dict) -> None:
    events = run["by_tag"]["sa_token_replayed_from_another_pod"]
    (username,) = {e["user"]["username"] for e in events}
    namespace = username.split(":")[2]
    ip = events[0]["sourceIPs"][0]
    # the address is a pod of another namespace: the kubelet reported it as that pod's podIP
    pod_ips = {
        (e["requestObject"]["status"]["podIP"], e["objectRef"]["namespace"])
        for e in run["events"]
        if isinstance(e.get("requestObject"), dict) and "podIP" in (e["requestObject"].get("status") or {})
    }
    assert any(pod_ip == ip and ns != namespace for pod_ip, ns in pod_ips)
    attacks = {a for s in run["labels"]["scenarios"] for a in s["auditIDs"]}
    app_agents = {
        e["userAgent"] for e in run["events"] if e["user"]["username"] == username and e["auditID"] not in attacks
    }
    assert {e["userAgent"] for e in events} <= app_agents  # the application's own client
    codes = [e["responseStatus"]["code"] for e in events]
    assert codes.count(403) >= 4 and 200 in codes
    assert any(e["objectRef"].get("resource") == "pods" and not e["objectRef"].get("namespace") for e in events)


def test_the_reorganised_developer_works_in_the_new_namespace_with_a_binding_that_names_them(run: dict) -> None:
    events = run["by_tag"]["team_reorg_second_namespace"]
    (name,) = {_session(e) for e in events}
    (namespace,) = {e["objectRef"]["namespace"] for e in events}
    role = events[0]["user"]["username"].split("/")[1]
    assert namespace.replace("-", "") not in role.lower()  # not the namespace of their own team's role
    reasons = {e["annotations"].get("authorization.k8s.io/reason", "") for e in events}
    assert all(e["responseStatus"]["code"] < 400 for e in events)
    assert any(name in reason and "RoleBinding" in reason for reason in reasons)
    assert len({e["requestReceivedTimestamp"][:10] for e in events}) >= 2  # every working day from then on


def test_the_first_on_call_week_is_night_work_in_the_developers_own_namespace(run: dict) -> None:
    events = run["by_tag"]["dev_joins_oncall_rotation"]
    (name,) = {_session(e) for e in events}
    usual_hours = {
        int(e["requestReceivedTimestamp"][11:13])
        for e in run["events"]
        if _session(e) == name and e["requestReceivedTimestamp"] < run["labels"]["learning_end"]
    }
    paged_hours = {int(e["requestReceivedTimestamp"][11:13]) for e in events}
    assert paged_hours - usual_hours  # hours they never worked while the baseline learned
    assert len({e["objectRef"].get("namespace") for e in events}) == 1
