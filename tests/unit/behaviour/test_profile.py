"""Profiles: decayed counts, the novelty rate, bounded size, and held (not learned) flagged values."""

from __future__ import annotations

import math

import pytest

from eksight.core.behaviour import profile as P
from eksight.core.behaviour.features import ACTION, NAMESPACE, EventFeatures

DAY = P.DAY
T0 = 1_725_235_200.0  # Monday 2024-09-02 00:00 UTC


def features(time: float, failed: bool = False, **values: str) -> EventFeatures:
    base = {ACTION: "get pods", NAMESPACE: "team-a"}
    base.update(values)
    return EventFeatures(
        time=time,
        day=int(time // DAY),
        hour_of_week=int((time - T0) // 3600) % 168,
        values=base,
        action_class="",
        failed=failed,
        audit_id="x",
        source_ip="",
        user_agent="",
        target=("", "", ""),
    )


def test_counts_halve_every_half_life() -> None:
    profile = P.Profile()
    for i in range(8):
        profile.learn(features(T0 + i))
    assert profile.count(NAMESPACE, "team-a", T0 + 8) == pytest.approx(8, rel=1e-4)
    later = T0 + 8 + P.HALF_LIFE_DAYS * DAY
    assert profile.count(NAMESPACE, "team-a", later) == pytest.approx(4, rel=1e-3)
    assert profile.total(NAMESPACE, later) == pytest.approx(4, rel=1e-3)


def test_the_first_day_does_not_count_towards_the_novelty_rate() -> None:
    profile = P.Profile()
    for i, ns in enumerate(["a", "b", "c", "d"]):  # day 0: everything is new, as for every new principal
        profile.learn(features(T0 + i, namespace=ns))
    assert profile.new_values.get(NAMESPACE, 0.0) == 0.0
    for day in range(1, 11):  # ten quiet days, then one new namespace
        profile.learn(features(T0 + day * DAY, namespace="a"))
    quiet = profile.novelty_rate(NAMESPACE)
    profile.learn(features(T0 + 11 * DAY, namespace="e"))
    assert profile.new_values[NAMESPACE] == pytest.approx(1.0)
    assert quiet < 0.11 and profile.novelty_rate(NAMESPACE) > 1.5 * quiet


def test_a_busy_identity_has_a_high_novelty_rate() -> None:
    profile = P.Profile()
    for day in range(10):
        for j in range(5):
            profile.learn(features(T0 + day * DAY + j, namespace=f"pr-{day}-{j}"))
    assert profile.novelty_rate(NAMESPACE) > 3.0


def test_value_lists_are_bounded_and_keep_the_heaviest() -> None:
    profile = P.Profile()
    for _ in range(5):
        profile.learn(features(T0, action="get secrets"))
    for i in range(P.MAX_VALUES[ACTION] + 50):
        profile.learn(features(T0 + 1 + i, action=f"get thing{i}"))
    limit = P.MAX_VALUES[ACTION]
    assert limit < len(profile.values[ACTION]) <= limit * 1.25  # evicted in bulk between batches
    profile.compact(T0 + 10_000)
    assert len(profile.values[ACTION]) == limit
    assert "get secrets" in profile.values[ACTION]


def test_a_busy_profile_serializes_well_under_the_item_limit() -> None:
    profile = P.Profile()
    for i in range(20_000):
        profile.learn(
            features(
                T0 + i * 30,
                action=f"get r{i % 300}",
                namespace=f"ns{i % 200}",
                network=f"10.{i % 50}.0.0/24",
                tool="kubectl",
                tool_version=f"kubectl 1.{i % 30}",
                image=f"registry/app{i % 120}",
            ),
            humans=True,
        )
    profile.compact(T0 + 20_000 * 30)
    blob = P.dumps(profile)
    assert len(blob) < 40_000  # DynamoDB items: 400 KB; one write unit per KB
    assert P.loads(blob) == profile


def test_flagged_values_are_held_not_learned_until_they_recur_after_the_hold_period() -> None:
    profile = P.Profile()
    profile.learn(features(T0))
    profile.learn(features(T0 + DAY, namespace="payments"), hold=frozenset({NAMESPACE}))
    assert profile.count(NAMESPACE, "payments", T0 + DAY) == 0.0
    assert profile.is_pending(NAMESPACE, "payments")
    profile.learn(features(T0 + 2 * DAY, namespace="payments"), hold=frozenset({NAMESPACE}))
    profile.compact(T0 + 2 * DAY)
    assert profile.count(NAMESPACE, "payments", T0 + 2 * DAY) == 0.0  # recurred, but not aged yet
    profile.learn(features(T0 + (2 + P.HOLD_DAYS) * DAY, namespace="payments"), hold=frozenset({NAMESPACE}))
    profile.compact(T0 + (2 + P.HOLD_DAYS) * DAY)
    assert not profile.is_pending(NAMESPACE, "payments")
    assert profile.count(NAMESPACE, "payments", T0 + (2 + P.HOLD_DAYS) * DAY) > 2


def test_holding_never_hides_values_the_profile_already_knew() -> None:
    profile = P.Profile()
    profile.learn(features(T0))
    profile.learn(features(T0 + 1), hold=frozenset({NAMESPACE, ACTION}))
    assert profile.count(NAMESPACE, "team-a", T0 + 1) == pytest.approx(2, rel=1e-4)
    assert not profile.pending


def test_values_unseen_for_the_forget_period_are_dropped() -> None:
    profile = P.Profile()
    profile.learn(features(T0, namespace="old"))
    profile.learn(features(T0 + (P.FORGET_DAYS + 1) * DAY, namespace="new"))
    profile.compact(T0 + (P.FORGET_DAYS + 1) * DAY)
    assert set(profile.values[NAMESPACE]) == {"new"}


def test_hour_share_is_high_in_working_hours_and_low_at_night() -> None:
    profile = P.Profile()
    for day in range(10):
        if day % 7 >= 5:
            continue
        for hour in range(9, 18):
            profile.learn(features(T0 + day * DAY + hour * 3600), humans=True)
    assert profile.hour_share(2 * 24 + 11) > 3.0  # Wednesday 11:00
    assert profile.hour_share(2 * 24 + 3) < 0.1  # Wednesday 03:00
    assert profile.hour_share(6 * 24 + 11) < 0.25  # Sunday 11:00 (a weekend with no data: the prior)


def test_hourly_rate_is_an_ewma_of_active_hours() -> None:
    profile = P.Profile()
    for hour in range(30):
        for i in range(10):
            profile.learn(features(T0 + hour * 3600 + i))
    assert profile.active_hours == 29  # the current hour is still open
    assert math.isclose(profile.rate_mean, 10.0)
    assert profile.rate_count == 10


def test_an_incompatible_schema_starts_over_instead_of_failing() -> None:
    blob = P.dumps(P.Profile(schema=P.SCHEMA + 1, kind="sso_role", events=99))
    restored = P.loads(blob)
    assert restored.events == 0 and restored.kind == "sso_role"


def test_learning_through_counters_is_learning() -> None:
    """The fast path for events whose values a profile knows (counters looked up once per value set) leaves
    the profile byte-identical to learning each event: same counts, totals, hours and rates."""
    timeline = [features(T0, namespace="a"), features(T0 + 5, namespace="b")]  # learned first: both known
    timeline += [features(T0 + 60 * i + (i % 3), namespace="ab"[i % 2]) for i in range(1, 200)]
    timeline += [features(T0 + 12_005 + i, namespace="a", failed=True) for i in range(3)]  # ties and a new hour
    timeline.append(features(T0 + 12_005, namespace="b"))  # not after the last time: counted without decay
    timeline.append(features(T0 + 2 * DAY, namespace="a"))  # a new day
    plain, counted = P.Profile(), P.Profile()
    for event in timeline[:2]:
        plain.learn(event, humans=True)
        counted.learn(event, humans=True)
    for event in timeline[2:]:
        plain.learn(event, humans=True)
        counters = counted.counters(event)
        assert counters is not None
        counted.learn_counted(event, counters, humans=True)
    assert P.dumps(counted) == P.dumps(plain)
    assert counted.events == len(timeline) and counted.active_hours == plain.active_hours > 0
    assert P.Profile().counters(features(T0)) is None  # nothing learned yet
    assert plain.counters(features(T0, namespace="c")) is None  # a new value: only `learn` may add it
