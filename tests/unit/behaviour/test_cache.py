"""The container's profile cache: same scores as writing every profile back after every object, far fewer
writes and reads, and learning that a lost cache, a redelivery or a concurrent writer can under-count but never
count twice."""

from __future__ import annotations

import gzip
import json
from datetime import timedelta
from pathlib import Path

import pytest

from eksight.core.behaviour.analyzer import BehaviourAnalyzer
from eksight.core.behaviour.cache import ProfileCache
from eksight.core.behaviour.profile import Profile, loads
from eksight.core.detector import Detector
from eksight.core.state import MemoryStateStore
from tests.unit.behaviour.factory import START, event, raw
from tests.unit.behaviour.test_analyzer import API, api_routine, stolen_token_use

KEY = ("prod|sa:shop/api", "profile")
EXPIRES = 2_000_000_000


def objects(events: list[dict], minutes: int = 60) -> list[list[dict]]:
    """The events cut into archive objects of `minutes` of event time each."""
    out: dict[int, list[dict]] = {}
    for item in sorted(events, key=lambda e: e["stageTimestamp"]):
        when = _seconds(item["stageTimestamp"])
        out.setdefault(int(when // (minutes * 60)), []).append(item)
    return list(out.values())


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def detect(
    parts: list[list[dict]], store: MemoryStateStore, cache: ProfileCache | None, prefix: str = "object"
) -> list[tuple[str, int, int, float]]:
    """Each part as one object (its own detector, as in the Lambda); the anomaly findings of all of them."""
    found = []
    for index, part in enumerate(parts):
        detector = Detector(baselines=BehaviourAnalyzer(store, cache=cache))
        detector.run(raw(part))
        detector.flush(f"{prefix}-{index}")
        found += [
            (f.id, int(f.severity), f.count, f.details["anomaly"]["score"])
            for f in detector.findings()
            if f.detector == "anomaly"
        ]
    return found


def stored_profile(store: MemoryStateStore) -> Profile:
    return loads(store.get_many([KEY])[KEY].blob)


def history_and_attack() -> list[list[dict]]:
    return objects(api_routine(10) + stolen_token_use(9) + stolen_token_use(10, count=5), minutes=10)


def busy(hours: int, start: float = 0) -> list[dict]:
    """The API reading its configmap once a minute."""
    return [
        event(API, START + timedelta(hours=start, minutes=m), resource="configmaps", namespace="shop", ip="10.0.3.10")
        for m in range(hours * 60)
    ]


def test_scores_are_the_same_as_writing_every_profile_after_every_object() -> None:
    parts = history_and_attack()
    plain, cached = MemoryStateStore(), MemoryStateStore()
    without = detect(parts, plain, None)
    cache = ProfileCache()
    with_cache = detect(parts, cached, cache)
    assert without and with_cache == without
    # the stored profile lags (writes were deferred), the cached one is exact
    cache.write_back(cached, EXPIRES)
    assert stored_profile(cached) == stored_profile(plain)
    assert cached.writes < plain.writes and cached.reads < plain.reads / 10


def test_a_busy_routine_is_written_back_about_once_an_hour_of_event_time_not_once_an_object() -> None:
    hours = 3
    parts = objects(busy(hours), minutes=1)
    store, cache = MemoryStateStore(), ProfileCache()
    detect(parts, store, cache)
    # per profile (own, peer group): the first write, maturity thresholds crossed, then the hourly refresh
    profile_writes = store.writes - 1  # the cluster's learning-period item is written once
    assert hours * 2 <= profile_writes <= (hours + 3) * 2
    assert len(parts) == hours * 60


def test_a_lost_cache_under_counts_and_a_redelivered_object_never_counts_twice() -> None:
    parts = objects(busy(2), minutes=5)
    truth = sum(len(part) for part in parts)
    store = MemoryStateStore()
    cache = ProfileCache()
    detect(parts[:-1], store, cache)
    before_loss = stored_profile(store).events
    assert before_loss < truth - len(parts[-1])  # some learning was only in the cache
    # the container is replaced: its cache is gone; the last object, then the one before it, are delivered again
    fresh = ProfileCache()
    for index in (len(parts) - 1, len(parts) - 2, len(parts) - 1):
        detector = Detector(baselines=BehaviourAnalyzer(store, cache=fresh))
        detector.run(raw(parts[index]))
        detector.flush(f"object-{index}")
    fresh.write_back(store, EXPIRES)
    counted = stored_profile(store).events
    assert before_loss < counted <= truth


def test_an_object_redelivered_to_a_warm_cache_is_scored_again_but_learned_once() -> None:
    parts = history_and_attack()
    store, cache = MemoryStateStore(), ProfileCache()
    per_object = [detect([part], store, cache, prefix=f"object-{i}") for i, part in enumerate(parts)]
    attack = max(i for i, found in enumerate(per_object) if found)  # the last object with an anomaly
    again = detect([parts[attack]], store, cache, prefix=f"object-{attack}")  # same id: a redelivery
    assert again and [f[:2] for f in again] == [f[:2] for f in per_object[attack]]  # scored again: same findings
    cache.write_back(store, EXPIRES)
    assert stored_profile(store).events == sum(len(part) for part in parts)  # learned once


def test_a_concurrent_writer_is_merged_and_this_objects_events_are_kept() -> None:
    parts = objects(busy(2), minutes=5)
    store, cache = MemoryStateStore(), ProfileCache()
    detect(parts[:-2], store, cache)
    # another container learns an extra object and writes the profile
    other_events = [
        event(API, START + timedelta(hours=1, minutes=i, seconds=30), resource="configmaps", namespace="shop")
        for i in range(7)
    ]
    detect([other_events], store, ProfileCache(), prefix="elsewhere")
    seen_elsewhere = stored_profile(store).events
    # this container's next write is conditional on the version it cached: it fails, re-reads and re-merges
    last = Detector(baselines=BehaviourAnalyzer(store, cache=cache))
    last.run(raw(parts[-2] + [_with_new_namespace(parts[-2][-1])]))  # a new value: written at once
    last.flush("object-last")
    assert store.conflicts >= 1
    merged = stored_profile(store)
    assert merged.events == seen_elsewhere + len(parts[-2]) + 1
    assert "elsewhere-0" in merged.applied and "object-last" in merged.applied
    assert cache.get(KEY) is not None and cache.get(KEY).state == merged  # type: ignore[union-attr]


def _with_new_namespace(template: dict) -> dict:
    return {**template, "auditID": template["auditID"] + "-x", "objectRef": {**template["objectRef"], "namespace": "x"}}


def test_a_batch_that_fails_half_way_leaves_nothing_of_it_in_the_cache() -> None:
    parts = objects(busy(1), minutes=5)
    store, cache = MemoryStateStore(), ProfileCache()
    detect(parts[:3], store, cache)
    assert cache.get(KEY) is not None

    class Broken(MemoryStateStore):
        def put_if(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            raise OSError("network")

    broken = Broken()
    broken._items = store._items  # same data, failing writes
    detector = Detector(baselines=BehaviourAnalyzer(broken, cache=cache))
    detector.run(raw(parts[3] + [_with_new_namespace(parts[3][-1])]))
    with pytest.raises(OSError):
        detector.flush("object-3")
    assert cache.get(KEY) is None


DEV_SET = Path(__file__).resolve().parents[4] / "shared" / "datasets" / "dev-scenarios"


@pytest.mark.skipif(not DEV_SET.is_dir(), reason="the shared dev dataset is not present")
def test_the_dev_set_per_object_finds_the_same_with_the_cache_as_without() -> None:
    """The Lambda's path (one object per minute of events, one container): the full set is compared by
    `python -m bench.per_object` (docs/baselines.md); here its first 6,000 events, every severity."""
    from bench.per_object import detect as per_object
    from eksight.core.findings import to_json_line

    labels = json.loads((DEV_SET / "labels.json").read_text())
    lines = gzip.decompress((DEV_SET / "audit.jsonl.gz").read_bytes()).splitlines()[:6000]
    context = {name: labels[name] for name in ("cluster", "account", "region")}
    cached, cached_store = per_object(lines, **context, cache=True)
    plain, plain_store = per_object(lines, **context, cache=False)
    assert len(plain) > 5
    assert [to_json_line(f) for f in cached] == [to_json_line(f) for f in plain]
    assert cached_store.writes < plain_store.writes / 3 and cached_store.reads < plain_store.reads / 10
