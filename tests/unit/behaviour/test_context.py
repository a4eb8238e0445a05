"""Signature-rule severity against hand-built profiles: routine → lowered (and said), stand-alone rules → never
lowered, a context new to the principal → raised, a young profile → unchanged ("no baseline yet")."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import pytest

from eksight.core.behaviour.context import in_context
from eksight.core.behaviour.features import EventFeatures, extract
from eksight.core.behaviour.profile import DAY, Profile
from eksight.core.behaviour.scoring import HUMAN, MATURE_DAYS, MATURE_EVENTS
from eksight.core.events import parse_event
from eksight.core.findings import FindingAggregator, Observation, Severity
from eksight.core.identity import resolve_principal
from eksight.core.rules import all_rules, default_engine
from tests.unit.behaviour.factory import START, event, sso_user

ALICE = sso_user("alice@example.com", "PlatformAdmin")
WHO = "alice@example.com"
WHEN = START + timedelta(days=30, hours=10)  # a Wednesday, 10:00 UTC
OFFICE, KUBECTL = "198.51.100.7", "kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625"
SUSPICIOUS = "?command=cat&command=%2Fvar%2Frun%2Fsecrets%2Fkubernetes.io%2Fserviceaccount%2Ftoken&container=c"


def _exec(when: datetime = WHEN, ip: str = OFFICE, agent: str = KUBECTL, query: str = "") -> dict[str, Any]:
    payload = event(
        ALICE, when, verb="create", namespace="kube-system", name="aws-node-x1", subresource="exec", ip=ip, agent=agent
    )
    payload["requestURI"] += query or "?command=sh&container=aws-node&stdin=true&tty=true"
    payload["responseStatus"] = {"code": 101}
    return payload


def _judged(payload: dict[str, Any]) -> tuple[list[Observation], EventFeatures]:
    """The default rules' observations on the event, and what baselines see of it."""
    parsed = parse_event(json.dumps(payload).encode())
    principal = resolve_principal(parsed)
    time = datetime.fromisoformat(payload["stageTimestamp"].replace("Z", "+00:00")).timestamp()
    observations = list(default_engine().evaluate(parsed, principal, cluster="prod", account="", region="", time=time))
    return observations, extract(parsed, principal, time)


def _rule(observations: list[Observation], rule_id: str) -> Observation:
    (found,) = [o for o in observations if o.rule_id == rule_id]
    return found


def _profile(now: float, *, habit_days: float = 30, execs: float = 14, network_days: float = 60) -> Profile:
    """Alice's baseline: kube-system execs for `habit_days` (decayed count `execs`), from the office site with
    kubectl (its /24 for `network_days`), on weekdays 08-18 UTC."""

    def entry(count: float, days: float) -> list[float]:
        return [count, now - days * DAY, now - DAY]

    hours = [0.0] * 168
    for day in range(5):
        for hour in range(8, 18):
            hours[day * 24 + hour] = 20.0
    return Profile(
        kind="sso_role",
        name=WHO,
        first_seen=now - 60 * DAY,
        last_seen=now - DAY,
        events=2400,
        active_days=30.0,
        days_seen=40,
        values={
            "action": {"create pods/exec": entry(execs, habit_days), "get pods": entry(400, 60)},
            "action_class": {"exec": entry(execs, habit_days)},
            "class_namespace": {"exec@kube-system": entry(execs, habit_days)},
            "namespace": {"kube-system": entry(300, 60)},
            "network": {"198.51.100.0/24": entry(900, network_days)},
            "site": {"198.51.0.0/16": entry(900, 60)},
            "zone": {"outside": entry(900, 60)},
            "tool": {"kubectl": entry(900, 60)},
            "tool_version": {"kubectl 1.29": entry(900, 60)},
        },
        hours=hours,
        hours_at=now - DAY,
    )


def _in_context(payload: dict[str, Any], rule_id: str = "EKS-111", **profile: float) -> Observation:
    observations, features = _judged(payload)
    return in_context(_rule(observations, rule_id), _profile(features.time, **profile), features, HUMAN, WHO)


def test_a_routine_kube_system_exec_is_lowered_and_says_why() -> None:
    adjusted = _in_context(_exec())
    assert adjusted.severity == Severity.LOW
    context = adjusted.details["severity_context"]  # type: ignore[index]
    assert context == {
        "original": "MEDIUM",
        "severity": "LOW",
        "direction": "lowered",
        "reason": f"routine for {WHO}: at least 14 exec, attach or port-forward sessions to pods in kube-system over "
        "30 days, from the same network (198.51.100.0/24) and tool (kubectl)",
    }
    assert adjusted.description.endswith(f"Severity lowered from MEDIUM to LOW: {context['reason']}.")


def test_stand_alone_rules_are_never_lowered() -> None:
    observations, features = _judged(_exec(query=SUSPICIOUS))
    suspicious = _rule(observations, "EKS-112")
    assert not suspicious.routine
    adjusted = in_context(suspicious, _profile(features.time), features, HUMAN, WHO)
    assert adjusted == suspicious


def test_only_the_listed_rules_may_be_lowered_and_each_says_why() -> None:
    lowerable = {rule.id: rule.routine for rule in all_rules() if rule.routine}
    assert set(lowerable) == {"EKS-110", "EKS-111", "EKS-114", "EKS-140", "EKS-300", "EKS-308", "EKS-309", "EKS-500"}
    assert all(len(reason) > 40 for reason in lowerable.values())
    # suspicious commands, privilege escalation, credentials from outside, threat-listed IPs, anonymous access,
    # security-control removal
    for stands_alone in ("EKS-112", "EKS-202", "EKS-301", "EKS-131", "EKS-136", "EKS-150", "EKS-100", "EKS-404"):
        assert stands_alone not in lowerable


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"ip": "203.0.113.9"}, "from 203.0.0.0/16, a site new to it"),
        ({"agent": "python-requests/2.31.0"}, "with python-requests, a client new to it"),
        ({"when": START + timedelta(days=34, hours=3)}, "at Sunday 03:00 UTC, outside its usual hours"),
    ],
)
def test_a_context_new_to_the_principal_raises_the_rule(change: dict[str, Any], said: str) -> None:
    adjusted = _in_context(_exec(**change))
    assert adjusted.severity == Severity.HIGH
    context = adjusted.details["severity_context"]  # type: ignore[index]
    assert (context["original"], context["direction"]) == ("MEDIUM", "raised")
    assert context["reason"] == f"for {WHO} this came {said}"
    assert f"Severity raised from MEDIUM to HIGH: for {WHO} this came {said}." in adjusted.description


def test_a_person_switching_to_another_common_client_is_not_unusual() -> None:
    adjusted = _in_context(_exec(agent="helm/v3.14.0 (linux/amd64)"))
    assert adjusted.severity == Severity.MEDIUM  # not raised; and helm is no routine tool of hers: not lowered
    assert "severity_context" not in (adjusted.details or {})


def test_a_low_rule_in_a_new_context_stays_low() -> None:
    payload = event(ALICE, WHEN, verb="create", namespace="team-a", subresource="exec", ip="203.0.113.9")
    payload["requestURI"] += "?command=sh&container=c"
    observations, features = _judged(payload)
    plain = _rule(observations, "EKS-110")
    assert in_context(plain, _profile(features.time), features, HUMAN, WHO).severity == Severity.LOW


def test_a_young_profile_or_the_learning_period_changes_nothing() -> None:
    observations, features = _judged(_exec())
    observation = _rule(observations, "EKS-111")
    young = Profile(name=WHO, first_seen=features.time - DAY, last_seen=features.time, events=12, days_seen=2)
    cases = [
        (
            young,
            False,
            f"no baseline yet for {WHO} (fewer than {MATURE_DAYS:g} active days or {MATURE_EVENTS} requests)",
        ),
        (_profile(features.time), True, "no baseline yet: the cluster is in its learning period"),
    ]
    for profile, learning, reason in cases:
        adjusted = in_context(observation, profile, features, HUMAN, WHO, learning=learning)
        assert adjusted.severity == Severity.MEDIUM
        assert adjusted.description == observation.description
        assert adjusted.details["severity_context"]["reason"] == reason  # type: ignore[index]


@pytest.mark.parametrize(
    "profile",
    [
        {"habit_days": 3},  # a habit younger than a week
        {"execs": 1.0},  # done once before
        {"network_days": 0.01},  # a network the profile learned minutes ago (a stolen session's own requests)
    ],
)
def test_no_habit_no_lowering(profile: dict[str, float]) -> None:
    assert _in_context(_exec(), **profile).severity == Severity.MEDIUM


def test_not_lowered_right_after_flagged_activity() -> None:
    observations, features = _judged(_exec())
    profile = _profile(features.time)
    ten_minutes_ago = features.time - 600
    profile.pending = {"image\x1fdocker.io/nicolaka/netshoot": [ten_minutes_ago, 1.0, ten_minutes_ago, 0.0]}
    adjusted = in_context(_rule(observations, "EKS-111"), profile, features, HUMAN, WHO)
    assert adjusted.severity == Severity.MEDIUM
    assert adjusted.details["severity_context"]["reason"] == (  # type: ignore[index]
        f"not lowered: {WHO} did something flagged within the hour"
    )


def test_a_finding_states_the_context_of_its_strongest_event() -> None:
    routine = _in_context(_exec())
    elsewhere = _in_context(_exec(when=WHEN + timedelta(minutes=5), ip="203.0.113.9"))
    aggregator = FindingAggregator()
    aggregator.add(routine)
    aggregator.add(elsewhere)
    (finding,) = aggregator.findings()
    assert finding.severity == Severity.HIGH
    assert finding.details["severity_context"]["direction"] == "raised"
    assert "a site new to it" in finding.description


def test_a_kube_system_exec_routine_in_the_persons_role_is_lowered_from_their_usual_place_only() -> None:
    observations, features = _judged(_exec())
    first_time = _profile(features.time, execs=0.0)  # alice never opened one; her role's others do every week
    first_time.values["action"].pop("create pods/exec")
    first_time.values["action_class"].pop("exec")
    first_time.values["class_namespace"].pop("exec@kube-system")
    role = _profile(features.time, execs=26.0)  # 26 by the others (alice: 0)
    rule = _rule(observations, "EKS-111")
    lowered = in_context(rule, first_time, features, HUMAN, WHO, role=role)
    assert lowered.severity == Severity.LOW
    reason = lowered.details["severity_context"]["reason"]  # type: ignore[index]
    assert re.fullmatch(
        rf"routine for {WHO}: at least \d+ exec, attach or port-forward sessions to pods in kube-system by others "
        r"of its IAM Identity Center role over 30 days, and this came from its own usual network "
        r"\(198\.51\.100\.0/24\) and tool \(kubectl\)",
        reason,
    ), reason
    rarely = _profile(features.time, execs=4.0)  # the others did it a few times only
    assert in_context(rule, first_time, features, HUMAN, WHO, role=rarely).severity == Severity.MEDIUM
    assert in_context(rule, first_time, features, HUMAN, WHO).severity == Severity.MEDIUM  # no role
    new_laptop = _profile(features.time, execs=0.0, network_days=0.01)  # her own network is minutes old
    assert in_context(rule, new_laptop, features, HUMAN, WHO, role=role).severity == Severity.MEDIUM
