"""The rule engine: index lookup, allow-lists before predicates, allowed/denied filters, thresholds, and a
failing predicate never taking the batch down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from eksight.core.events import parse_event
from eksight.core.findings import Severity
from eksight.core.identity import resolve_principal
from eksight.core.rules.base import AllowList, Hit, Rule, Threshold


def make_event(
    audit_id: str = "a1",
    *,
    verb: str = "get",
    resource: str = "secrets",
    subresource: str = "",
    namespace: str = "default",
    name: str = "db",
    user: str = "alice",
    code: int = 200,
    time: str = "2024-09-10T10:00:00.000000Z",
    groups: tuple[str, ...] = (),
) -> Any:
    body: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "verb": verb,
        "requestURI": f"/api/v1/namespaces/{namespace}/{resource}/{name}",
        "user": {"username": user, "groups": list(groups)},
        "sourceIPs": ["198.51.100.9"],
        "objectRef": {"resource": resource, "namespace": namespace, "name": name, "subresource": subresource},
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid"},
    }
    return parse_event(json.dumps(body))


def rule(rule_id: str = "T-1", **kwargs: Any) -> Rule:
    base = {
        "title": "t",
        "severity": Severity.MEDIUM,
        "type": "Test:Kubernetes/T",
        "mitre": ("T0000",),
        "description": "desc.",
        "remediation": "fix",
        "catalog": (0,),
    }
    return Rule(id=rule_id, **{**base, **kwargs})


def run(rules: list[Rule], events: list[Any], **engine_kwargs: Any) -> list[Any]:
    from eksight.core.rules.engine import RuleEngine

    engine = RuleEngine(rules, **engine_kwargs)
    out = []
    for event in events:
        out.extend(
            engine.evaluate(event, resolve_principal(event), cluster="c", account="1", region="r", time=event.time)
        )
    return out


def test_rules_only_see_events_of_their_index_keys() -> None:
    secrets = rule("T-1", verbs=frozenset({"get"}), resources=frozenset({"secrets"}))
    any_verb_pods = rule("T-2", resources=frozenset({"pods"}), subresources=frozenset({"exec"}))
    anything = rule("T-3", resources=frozenset({"*"}), subresources=frozenset({"*"}))
    hits = run(
        [secrets, any_verb_pods, anything],
        [
            make_event("s"),
            make_event("e", verb="create", resource="pods", subresource="exec"),
            make_event("p", verb="get", resource="pods"),
        ],
    )
    assert sorted((o.rule_id, o.audit_id) for o in hits) == [
        ("T-1", "s"),
        ("T-2", "e"),
        ("T-3", "e"),
        ("T-3", "p"),
        ("T-3", "s"),
    ]


def test_allow_lists_by_principal_kind_glob_and_namespace() -> None:
    watched = rule(
        resources=frozenset({"secrets"}),
        verbs=frozenset({"get"}),
        allow=AllowList(principals=("sa:ci/*",), principal_kinds=("node",), namespaces=("kube-*",)),
    )
    hits = run(
        [watched],
        [
            make_event("sa", user="system:serviceaccount:ci:deployer"),
            make_event("node", user="system:node:ip-10-0-0-1.ec2.internal"),
            make_event("ns", namespace="kube-system"),
            make_event("human"),
        ],
    )
    assert [o.audit_id for o in hits] == ["human"]


def test_config_can_extend_one_rules_allow_list() -> None:
    watched = rule("T-9", resources=frozenset({"secrets"}), verbs=frozenset({"get"}))
    hits = run(
        [watched],
        [make_event("a", user="alice"), make_event("b", user="bob")],
        extra_allow={"T-9": AllowList(principals=("bob",))},
    )
    assert [o.audit_id for o in hits] == ["a"]


def test_allowed_and_denied_filters() -> None:
    on_allowed = rule("T-1", resources=frozenset({"secrets"}), verbs=frozenset({"get"}))
    on_denied = rule("T-2", resources=frozenset({"secrets"}), verbs=frozenset({"get"}), allowed=False)
    hits = run([on_allowed, on_denied], [make_event("ok"), make_event("no", code=403)])
    assert sorted((o.rule_id, o.audit_id) for o in hits) == [("T-1", "ok"), ("T-2", "no")]


def test_hit_specifics_override_severity_and_extend_the_description() -> None:
    specific = rule(
        resources=frozenset({"secrets"}),
        verbs=frozenset({"get"}),
        predicate=lambda ctx: Hit(detail=f"secret {ctx.event.name}", severity=Severity.HIGH),
    )
    (hit,) = run([specific], [make_event()])
    assert (
        hit.severity is Severity.HIGH and hit.description == "desc. At 2024-09-10 10:00:00 UTC in cluster c: secret db"
    )
    assert hit.target is not None and (hit.target.kind, hit.target.name) == ("secrets", "db")


def test_threshold_fires_at_the_count_and_cites_the_whole_window() -> None:
    burst = rule(
        resources=frozenset({"secrets"}),
        verbs=frozenset({"get"}),
        threshold=Threshold(count=3, window_seconds=60, distinct=lambda ctx: ctx.event.name),
    )
    events = [
        make_event("a", name="s1", time="2024-09-10T10:00:00Z"),
        make_event("b", name="s1", time="2024-09-10T10:00:10Z"),  # same secret: not distinct
        make_event("c", name="s2", time="2024-09-10T10:00:20Z"),
        make_event("d", name="s3", time="2024-09-10T10:00:30Z"),  # third distinct: fire
        make_event("e", name="s4", time="2024-09-10T10:00:40Z"),  # still above: cite
        make_event("f", name="s5", time="2024-09-10T10:10:00Z"),
    ]  # window expired: quiet
    assert [o.audit_id for o in run([burst], events)] == ["a", "b", "c", "d", "e"]


def test_a_failing_predicate_is_counted_and_the_other_rules_still_run() -> None:
    from eksight.core.rules.engine import RuleEngine

    def broken(_ctx: Any) -> None:
        raise KeyError("boom")

    engine = RuleEngine(
        [
            rule("T-1", resources=frozenset({"secrets"}), verbs=frozenset({"get"}), predicate=broken),
            rule("T-2", resources=frozenset({"secrets"}), verbs=frozenset({"get"})),
        ]
    )
    event = make_event()
    hits = list(engine.evaluate(event, resolve_principal(event), cluster="c", account="1", region="r", time=1.0))
    assert [o.rule_id for o in hits] == ["T-2"] and engine.errors == {"T-1": 1}


def test_duplicate_rule_ids_are_refused() -> None:
    from eksight.core.rules.engine import RuleEngine

    with pytest.raises(ValueError, match="duplicate rule ids"):
        RuleEngine([rule("T-1"), rule("T-1")])


def test_threshold_forgets_matches_that_left_the_window() -> None:
    pair = rule(
        resources=frozenset({"secrets"}),
        verbs=frozenset({"get"}),
        threshold=Threshold(count=2, window_seconds=60, distinct=lambda ctx: ctx.event.name),
    )
    events = [
        make_event("a", name="s1", time="2024-09-10T10:00:00Z"),
        make_event("b", name="s2", time="2024-09-10T10:01:40Z"),  # s1 is 100 s old: one value in the window
        make_event("c", name="s2", time="2024-09-10T10:01:50Z"),  # same value again: still one
        make_event("d", name="s3", time="2024-09-10T10:02:00Z"),  # second distinct value: fire, cite b, c, d
    ]
    assert [o.audit_id for o in run([pair], events)] == ["b", "c", "d"]


def _flood_observation() -> Any:
    only = rule(resources=frozenset({"secrets"}), verbs=frozenset({"get"}))
    (observation,) = run([only], [make_event("x")])
    return observation


def test_one_principals_flood_keeps_its_threshold_window_bounded_and_its_counts_exact() -> None:
    """100k matches of one value, then the distinct values that reach the threshold: the window never holds more
    than `count` values and EVIDENCE_CAP observations; what it drops is counted, and the newest evidence is kept."""
    from dataclasses import replace

    from eksight.core.rules.engine import EVIDENCE_CAP, ThresholdWindow

    template = _flood_observation()
    window = ThresholdWindow(Threshold(count=3, window_seconds=900))
    flood = 100_000
    for index in range(flood):  # 100 s at 1,000 per second: all inside the 900 s window
        assert window.push(replace(template, audit_id=f"a{index}", time=index / 1000), "same") == []
        assert len(window.last_seen) == 1 and len(window.evidence) <= EVIDENCE_CAP
    second = replace(template, audit_id="b", time=flood / 1000)
    assert window.push(second, "other") == []
    third = replace(template, audit_id="c", time=flood / 1000)
    ready = window.push(third, "third")
    assert len(ready) == EVIDENCE_CAP
    assert [o.audit_id for o in ready[-3:]] == [f"a{flood - 1}", "b", "c"]
    assert ready[0].audit_id == f"a{flood + 2 - EVIDENCE_CAP}"
    assert window.dropped == flood + 2 - EVIDENCE_CAP
    assert len(window.evidence) == 0 and len(window.last_seen) == 3


def test_threshold_window_work_per_event_does_not_grow_with_the_window() -> None:
    """Structural, not timed: how many times the window reads an observation's time, per event, while 50k matches
    of distinct values (all within the window, all cited) pass through it."""
    from eksight.core.rules.engine import ThresholdWindow

    reads = 0

    class Counted:
        __slots__ = ("_time", "audit_id")

        def __init__(self, audit_id: str, time: float) -> None:
            self.audit_id, self._time = audit_id, time

        @property
        def time(self) -> float:
            nonlocal reads
            reads += 1
            return self._time

    window = ThresholdWindow(Threshold(count=10, window_seconds=3600))
    cited = 0
    events = 50_000
    for index in range(events):
        cited += len(window.push(Counted(f"a{index}", index / 1000), f"value-{index}"))  # type: ignore[arg-type]
    assert cited == events  # every match cited once the threshold was met, none twice
    assert reads <= 3 * events
    assert len(window.last_seen) == 10


def test_memo_tables_keyed_by_request_fields_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resource and namespace names are the client's to choose (even refused requests are logged): a scanner's
    made-up ones must not grow the engine's memo tables without bound, and verdicts stay right after a reset."""
    from eksight.core.rules import engine as engine_module
    from eksight.core.rules.engine import RuleEngine

    monkeypatch.setattr(engine_module, "MEMO_LIMIT", 8)
    anything = rule("T-1", resources=frozenset({"*"}), allowed=None, allow=AllowList(namespaces=("kube-*",)))
    engine = RuleEngine([anything])
    fired = []
    for index in range(50):
        namespace = "kube-system" if index % 10 == 0 else f"made-up-{index}"
        event = make_event(f"e{index}", resource=f"made-up-{index}", namespace=namespace, code=404)
        observations = engine.evaluate(
            event, resolve_principal(event), cluster="c", account="1", region="r", time=event.time
        )
        fired.extend(o.audit_id for o in observations)
    assert len(engine.table.plans) <= 8 and len(engine.table.allowed_namespace) <= 8
    assert fired == [f"e{index}" for index in range(50) if index % 10]  # kube-* still allowed after every reset
