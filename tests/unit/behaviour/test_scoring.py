"""Scoring: Poisson novelty, peers, maturity, and the floors and caps that keep benign novelty quiet."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eksight.core.behaviour import scoring as S
from eksight.core.behaviour.features import (
    ACTION,
    CLASS,
    EXEC,
    NAMESPACE,
    NETWORK,
    OUTSIDE,
    RBAC,
    TOOL,
    ZONE,
    EventFeatures,
)
from eksight.core.behaviour.profile import DAY, Profile

T0 = 1_725_235_200.0


def feats(time: float, action_class: str = "", **values: str) -> EventFeatures:
    base = {
        ACTION: "get pods",
        NAMESPACE: "team-a",
        NETWORK: "10.0.1.0/24",
        ZONE: "inside",
        TOOL: "kubectl",
        CLASS: action_class,
    }
    base.update(values)
    return EventFeatures(
        time=time,
        day=int(time // DAY),
        hour_of_week=10,
        values=base,
        action_class=action_class,
        failed=False,
        audit_id="x",
        source_ip="",
        user_agent="",
        target=("", "", ""),
    )


def trained(days: int = 10, per_day: int = 20, **values: str) -> Profile:
    profile = Profile()
    for day in range(days):
        for i in range(per_day):
            profile.learn(feats(T0 + day * DAY + i * 60, **values))
    return profile


@pytest.mark.parametrize(("k", "lam"), [(1, 0.05), (2, 0.05), (3, 0.5), (5, 2.0), (10, 3.0), (1, 0.9)])
def test_poisson_tail_bits_match_the_exact_tail(k: int, lam: float) -> None:
    exact = 1.0 - sum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(k))
    assert S.poisson_tail_bits(k, lam) == pytest.approx(-math.log2(exact), rel=1e-6)


def test_poisson_tail_bits_stay_finite_and_capped_for_tiny_tails() -> None:
    assert S.poisson_tail_bits(40, 0.01) == S.MAX_BITS
    assert S.poisson_tail_bits(2, 5.0) == 0.0


def test_each_further_new_namespace_in_a_day_is_more_surprising_for_a_stable_principal() -> None:
    profile = trained()
    now = T0 + 10 * DAY
    bits = []
    for i in range(4):
        result = S.score_event(feats(now + i, action_class="secrets", namespace=f"other-{i}"), profile, None, S.HUMAN)
        bits.append(next(a.bits for a in result.assessments if a.feature == NAMESPACE))
        profile.learn(feats(now + i, namespace=f"other-{i}"))
    assert bits == sorted(bits) and bits[-1] > bits[0] + 6


def test_a_ci_identity_that_touches_new_namespaces_daily_is_not_surprised_by_one_more() -> None:
    profile = Profile()
    for day in range(10):
        for j in range(4):
            profile.learn(feats(T0 + day * DAY + j, namespace=f"pr-{day}-{j}"))
    result = S.score_event(
        feats(T0 + 10 * DAY, action_class="secrets", namespace="pr-new"), profile, None, S.AUTOMATION
    )
    assert next(a for a in result.assessments if a.feature == NAMESPACE).bits == 0.0


def test_immature_principals_are_compared_with_their_peers_or_not_at_all() -> None:
    newcomer = trained(days=1, per_day=5)
    assert S.score_event(feats(T0 + DAY, action_class="secrets"), newcomer, None, S.HUMAN) is S.NOT_SCORED
    peers = trained(days=10, per_day=30, namespace="team-b")
    result = S.score_event(feats(T0 + 10 * DAY, action_class="secrets", namespace="team-b"), newcomer, peers, S.HUMAN)
    assert result.reference == "peer"
    assert next(a for a in result.assessments if a.feature == NAMESPACE).label == S.FREQUENT


def test_values_common_among_peers_count_half_and_values_new_to_them_too_count_fully() -> None:
    own = trained()
    knowing = trained(days=10, per_day=30, namespace="shared")
    unaware = trained(days=10, per_day=30, namespace="elsewhere")  # same history, same novelty rate
    event = feats(T0 + 10 * DAY, action_class="secrets", namespace="shared")
    known, unknown = (S.score_event(event, own, peers, S.HUMAN) for peers in (knowing, unaware))
    bits = [next(a.bits for a in r.assessments if a.feature == NAMESPACE) for r in (known, unknown)]
    assert bits[0] == pytest.approx(bits[1] / 2)


def test_a_service_account_token_used_from_outside_the_cluster_is_at_least_medium() -> None:
    own = trained()  # always from inside the VPC, with the same client
    result = S.score_event(feats(T0 + 10 * DAY, network="203.0.113.0/24", zone=OUTSIDE), own, None, S.WORKLOAD_IDENTITY)
    assert result.candidate and "credential_outside_cluster" in result.signals
    assert result.score >= S.IDENTITY_FLOOR
    with_secrets = S.score_event(
        feats(T0 + 10 * DAY, action_class="secrets", network="203.0.113.0/24", zone=OUTSIDE, tool="curl"),
        own,
        None,
        S.WORKLOAD_IDENTITY,
    )
    assert with_secrets.score >= 80


def test_routine_requests_are_not_candidates() -> None:
    own = trained()
    result = S.score_event(feats(T0 + 10 * DAY), own, None, S.HUMAN)
    assert not result.candidate and result.score == 0.0


def test_new_changes_from_the_usual_network_tool_and_hours_are_at_most_low() -> None:
    own = trained()
    for i in range(6):  # a burst of kinds of change it never made: an operator install, say
        result = S.score_event(
            feats(T0 + 10 * DAY + i, action_class=RBAC, action=f"create kind{i}", namespace=f"new-{i}"),
            own,
            None,
            S.HUMAN,
        )
        own.learn(feats(T0 + 10 * DAY + i, action=f"create kind{i}", namespace=f"new-{i}"))
    assert result.excess > 10 and result.score <= S.CONTENT_ONLY_MAX


def test_the_same_changes_from_a_new_network_and_tool_are_medium_then_high() -> None:
    own = trained()
    scores = []
    for i in range(3):
        event = feats(
            T0 + 10 * DAY + i,
            action_class=RBAC,
            action=f"create kind{i}",
            namespace=f"new-{i}",
            network="203.0.113.0/24",
            tool="curl",
        )
        result = S.score_event(event, own, None, S.HUMAN)
        scores.append(result.score)
        own.learn(event, hold=result.anomalous())  # flagged: held, not learned, but still today's novelty
    assert 60 <= scores[0] < 80 <= scores[2]


def test_first_exec_by_a_principal_with_history_is_medium_and_the_second_kind_of_first_is_not() -> None:
    own = trained()
    first = S.score_event(feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec"), own, None, S.HUMAN)
    assert "first_use_of_sensitive_action" in first.signals and first.score >= S.FIRST_USE_FLOOR
    own.learn(feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec"))
    again = S.score_event(feats(T0 + 10 * DAY + 60, action_class=EXEC, action="create pods/exec"), own, None, S.HUMAN)
    assert "first_use_of_sensitive_action" not in again.signals and again.score < 40


def test_writing_a_secret_is_not_a_first_use_of_credential_access() -> None:
    own = trained()
    result = S.score_event(feats(T0 + 10 * DAY, action_class="secrets", action="update secrets"), own, None, S.HUMAN)
    assert "first_use_of_sensitive_action" not in result.signals


# --- drift: first uses that are not evidence, networks that moved for everyone (issue 14) ---------------------------


def test_a_first_exec_is_no_evidence_before_the_principal_had_enough_chances_to_exec() -> None:
    paged_now_and_then = trained(days=10, per_day=3)  # an on-call engineer: 30 requests over ten nights
    new_teammate = trained(days=3, per_day=40)  # 120 requests, but on three days only
    for own in (paged_now_and_then, new_teammate):
        result = S.score_event(feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec"), own, None, S.HUMAN)
        assert "first_use_of_sensitive_action" not in result.signals and result.score < S.FIRST_USE_FLOOR


def test_a_first_shell_counts_even_for_someone_who_port_forwards_every_day() -> None:
    own = trained()
    for day in range(10):
        own.learn(feats(T0 + day * DAY + 3000, action_class=EXEC, action="create pods/portforward"))
    shell = S.score_event(feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec"), own, None, S.HUMAN)
    forward = S.score_event(
        feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/portforward"), own, None, S.HUMAN
    )
    assert "first_use_of_sensitive_action" in shell.signals and shell.score >= S.FIRST_USE_FLOOR
    assert "first_use_of_sensitive_action" not in forward.signals


def test_a_first_shell_is_routine_when_others_of_the_same_role_open_shells() -> None:
    own = trained()
    role = trained()
    for day in range(8):  # teammates open shells on most days
        for minute in range(2):
            role.learn(feats(T0 + day * DAY + 3000 + 60 * minute, action_class=EXEC, action="create pods/exec"))
    one_session = trained()
    for minute in range(4):  # one teammate's single sitting, the day before
        one_session.learn(feats(T0 + 9 * DAY + 60 * minute, action_class=EXEC, action="create pods/exec"))
    shell = feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec")
    assert "first_use_of_sensitive_action" in S.score_event(shell, own, trained(), S.HUMAN).signals
    assert "first_use_of_sensitive_action" not in S.score_event(shell, own, role, S.HUMAN).signals
    assert "first_use_of_sensitive_action" in S.score_event(shell, own, one_session, S.HUMAN).signals


def _crowd_with(network: str, people_days: int) -> Profile:
    crowd = Profile()
    for day in range(people_days):
        crowd.learn(feats(T0 + 10 * DAY - 3600 + day, network=network))
    return crowd


def test_a_network_several_other_people_already_use_is_drift_not_this_persons_anomaly() -> None:
    own = trained()
    event = feats(T0 + 10 * DAY, action_class=RBAC, network="3.100.138.0/24")
    alone = S.score_event(event, own, None, S.HUMAN, crowd=_crowd_with("3.100.138.0/24", 1))
    shared = S.score_event(event, own, None, S.HUMAN, crowd=_crowd_with("3.100.138.0/24", 4))
    assert next(a for a in alone.assessments if a.feature == NETWORK).bits > 0
    assert next(a for a in shared.assessments if a.feature == NETWORK).bits == 0


def test_a_never_made_request_counts_its_action_class_namespace_and_permission_novelty_once() -> None:
    def assess(feature: str, label: str, bits: float) -> S.FeatureAssessment:
        return S.FeatureAssessment(feature, "v", label, 0.0, 10.0, 0.0, bits)

    new_request = [
        assess(ACTION, S.UNSEEN, 2.0),
        assess(S.CLASS_NAMESPACE, S.UNSEEN, 4.2),
        assess(S.PERMISSION, S.UNSEEN, 3.8),
        assess(NETWORK, S.UNSEEN, 1.1),
    ]
    folded = S._one_new_request_one_surprise(new_request, np.array([a.bits for a in new_request]))
    assert folded.tolist() == [4.2, 0.0, 0.0, 1.1]
    known_request = [assess(ACTION, S.RARE, 2.0), *new_request[1:]]  # a known request somewhere new: all count
    weighted = np.array([a.bits for a in known_request])
    assert S._one_new_request_one_surprise(known_request, weighted).tolist() == weighted.tolist()


def test_a_shell_already_reported_is_not_a_first_again_the_next_day() -> None:
    own = trained()
    flagged = feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec", class_namespace="exec@team-a")
    own.learn(flagged, hold=frozenset({ACTION, CLASS, S.CLASS_NAMESPACE}))  # reported: held, not learned
    later = feats(T0 + 12 * DAY, action_class=EXEC, action="create pods/exec", class_namespace="exec@team-b")
    assert "first_use_of_sensitive_action" not in S.score_event(later, own, None, S.HUMAN).signals


# --- a new network is not evidence on its own; another team's secrets from one is (issue 14) ---------------------

NEW_NETWORK = "73.15.207.0/24"  # a consumer ISP: a hotel, a new home line, or a residential proxy


def _secrets_read(namespace: str, **values: str) -> EventFeatures:
    return feats(T0 + 10 * DAY, action_class="secrets", action="get secrets", namespace=namespace, **values)


def test_the_peer_groups_count_leaves_out_the_principals_own_requests() -> None:
    own, peers = trained(), trained(days=10, per_day=30)
    for minute in range(3):  # its own first minutes in another team's namespace, learned by both profiles
        browsing = feats(T0 + 10 * DAY - 600 + 60 * minute, namespace="team-b")
        own.learn(browsing)
        peers.learn(browsing)
    result = S.score_event(_secrets_read("team-b"), own, peers, S.HUMAN)
    namespace = next(a for a in result.assessments if a.feature == NAMESPACE)
    assert namespace.peer_observed == pytest.approx(0.0, abs=0.01)


def test_another_teams_secrets_read_from_a_network_never_used_is_medium() -> None:
    own, peers = trained(), trained(days=10, per_day=30)
    stolen = S.score_event(_secrets_read("team-b", network=NEW_NETWORK), own, peers, S.HUMAN)
    reorganised = S.score_event(_secrets_read("team-b"), own, peers, S.HUMAN)  # from the usual network
    travelling = S.score_event(_secrets_read("team-a", network=NEW_NETWORK), own, peers, S.HUMAN)  # own namespace
    assert "other_teams_secrets_from_new_network" in stolen.signals and stolen.score >= 60
    assert "other_teams_secrets_from_new_network" not in reorganised.signals + travelling.signals
    assert reorganised.score < stolen.score


def test_a_first_secret_read_in_ones_own_namespace_from_a_new_network_alone_is_at_most_low() -> None:
    own = trained()
    travelling = S.score_event(_secrets_read("team-a", network=NEW_NETWORK), own, None, S.HUMAN)
    with_a_new_client = S.score_event(_secrets_read("team-a", network=NEW_NETWORK, tool="curl"), own, None, S.HUMAN)
    assert travelling.excess > 0 and travelling.score <= S.CONTENT_ONLY_MAX
    assert with_a_new_client.score > travelling.score  # a new network and a new client: somewhere else


def test_only_a_new_network_with_nothing_else_unusual_is_network_only() -> None:
    def assess(feature: str, bits: float) -> S.FeatureAssessment:
        return S.FeatureAssessment(feature, "v", S.UNSEEN if bits else S.FREQUENT, 0.0, 10.0, 0.0, bits)

    moved = [assess(ACTION, 0.0), assess(NAMESPACE, 0.0), assess(NETWORK, 11.6), assess(S.SITE, 11.6)]
    assert S._network_only(moved, [], S.HUMAN)
    assert not S._network_only([*moved, assess(TOOL, 3.0)], [], S.HUMAN)  # and a new client
    assert not S._network_only([*moved[:1], assess(NAMESPACE, 5.0), *moved[2:]], [], S.HUMAN)  # and somewhere new
    assert not S._network_only(moved, ["request_rate_spike"], S.HUMAN)
    assert not S._network_only(moved, [], S.WORKLOAD_IDENTITY)  # a pod's credential elsewhere is another matter


def test_a_kubelet_reading_secrets_of_a_namespace_new_to_its_node_is_not_collecting_them() -> None:
    mounted = feats(
        T0 + 10 * DAY, action_class="secrets", action="watch secrets", namespace="gift-cards", tool="kubelet"
    )
    assert not S._collection(mounted, [], usual_place=False, principal_class=S.NODE_CLASS)
    assert S._collection(mounted, [], usual_place=False, principal_class=S.HUMAN)  # a person's would be
    everything = feats(T0 + 10 * DAY, action_class=S.CLUSTER_LIST, action="list secrets", namespace="(cluster)")
    assert S._collection(everything, [], usual_place=False, principal_class=S.NODE_CLASS)


def test_an_operators_first_shell_is_not_a_first_use_but_a_developers_is() -> None:
    developer = trained()  # works in team-a only
    operator = trained()
    for day in range(10):  # and looks after the cluster's own namespace every day
        for minute in range(3):
            operator.learn(feats(T0 + day * DAY + 7200 + 60 * minute, namespace="kube-system"))
    shell = feats(T0 + 10 * DAY, action_class=EXEC, action="create pods/exec")
    assert "first_use_of_sensitive_action" in S.score_event(shell, developer, None, S.HUMAN).signals
    from_usual_place = S.score_event(shell, operator, None, S.HUMAN)
    assert "first_use_of_sensitive_action" not in from_usual_place.signals
    assert from_usual_place.score <= S.CONTENT_ONLY_MAX
