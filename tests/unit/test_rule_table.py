"""The rule engine's candidate table: which predicates an event reaches is decided once per kind of event, from
the rules' definitions (index keys, allowed/denied filter, source address and impersonation, principal kinds,
allow-lists). Checked against a plain reading of those definitions, written here independently of the engine: a
predicate sees exactly the events its rule admits, so an event no rule admits reaches no predicate, and no rule
that fires is ever left out."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eksight.core.events import AuditEvent, parse_event
from eksight.core.findings import Severity
from eksight.core.identity import Principal, resolve_principal
from eksight.core.rules import all_rules
from eksight.core.rules.base import AllowList, Rule, RuleContext
from eksight.core.rules.common import is_public_ip
from eksight.core.rules.engine import RuleEngine
from eksight.core.rules.networks import OperatorNetworks

DEV = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "dev-scenarios"


def _covers(values: frozenset[str], value: str) -> bool:
    return "*" in values or value in values


def admits(rule: Rule, event: AuditEvent, principal: Principal, allow: AllowList | None = None) -> bool:
    """Whether `rule`'s definition lets `event` reach its predicate (`allow`: its effective allow-list)."""
    allow = rule.allow if allow is None else allow
    return (
        _covers(rule.verbs, event.verb)
        and _covers(rule.resources, event.resource)
        and _covers(rule.subresources, event.subresource)
        and rule.allowed in (None, event.allowed)
        and _covers(rule.principal_kinds, principal.kind)
        and (is_public_ip(event.source_ip) or not rule.public_source)
        and (event.impersonated_user is not None or not rule.impersonating)
        and not allow.allows_principal(principal)
        and not allow.allows_namespace(event.namespace)
        and not rule.needs_threat_networks  # (these tests' engines have no threat list)
    )


def recorded(rules: list[Rule]) -> tuple[list[Rule], list[tuple[str, str]]]:
    """`rules` with predicates that note (rule id, audit id) of every event they see, then answer as before."""
    seen: list[tuple[str, str]] = []

    def recording(rule: Rule) -> Rule:
        predicate = rule.predicate

        def noting(ctx: RuleContext) -> Any:
            seen.append((rule.id, ctx.event.audit_id))
            return predicate(ctx)

        return replace(rule, predicate=noting)

    return [recording(rule) for rule in rules], seen


def event(audit_id: str, *, verb: str, resource: str, user: str, code: int = 200, **fields: Any) -> AuditEvent:
    body: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": audit_id,
        "stage": "ResponseComplete",
        "verb": verb,
        "requestURI": f"/apis/example.com/v1/namespaces/team/{resource}",
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.3.7"],
        "objectRef": {"resource": resource, "namespace": "team", "name": "x"},
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": "2024-09-10T10:00:00.000000Z",
        "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid"},
        **fields,
    }
    return parse_event(json.dumps(body))


def evaluate(engine: RuleEngine, events: list[AuditEvent]) -> list[Any]:
    found = []
    for item in events:
        found += engine.evaluate(item, resolve_principal(item), cluster="c", account="1", region="r", time=item.time)
    return found


def test_a_rule_sees_only_the_events_its_discriminators_admit() -> None:
    def never(_ctx: RuleContext) -> None:
        raise AssertionError("reached a predicate it should not")

    base: dict[str, Any] = {"title": "t", "severity": Severity.LOW, "type": "T", "mitre": (), "description": "d"}
    anything: dict[str, Any] = {"catalog": (), "subresources": frozenset({"*"}), "remediation": "r"}
    rules = [
        Rule(id="T-anon", principal_kinds=frozenset({"anonymous"}), **anything, **base),
        Rule(id="T-denied", allowed=False, **anything, **base),
        Rule(id="T-imp", impersonating=True, **anything, **base),
        Rule(id="T-not-ci", allow=AllowList(principals=("user:ci",)), **anything, **base),
        Rule(id="T-public", public_source=True, **anything, **base),
    ]
    events = [
        event("anon", verb="get", resource="widgets", user="system:anonymous"),
        event("denied", verb="get", resource="widgets", user="alice", code=403),
        event("alice", verb="get", resource="widgets", user="alice"),
        event("ci", verb="get", resource="widgets", user="ci"),
        event("as-bob", verb="get", resource="widgets", user="ci", impersonatedUser={"username": "bob"}),
        event("internet", verb="get", resource="widgets", user="ci", sourceIPs=["52.94.0.10"]),
    ]
    fired = evaluate(RuleEngine(rules), events)
    assert sorted((o.rule_id, o.audit_id) for o in fired) == [
        ("T-anon", "anon"),
        ("T-denied", "denied"),
        ("T-imp", "as-bob"),
        ("T-not-ci", "alice"),
        ("T-not-ci", "anon"),
        ("T-public", "internet"),
    ]
    # Predicates that must never run, and an event none of their rules admits: it reaches none of them.
    silent = RuleEngine([replace(rule, predicate=never) for rule in rules if rule.id != "T-not-ci"])
    assert evaluate(silent, events[2:4]) == [] and not silent.errors


def test_principals_of_one_name_and_kind_are_told_apart_by_key() -> None:
    """`alice` mapped from an IAM role and a certificate `alice` share name and kind, not key: an allow-list naming
    the role's key lets only the first through, whichever comes first."""
    role = "iam:arn:aws:iam::111122223333:role/dev"
    watched = Rule(
        id="T-1",
        title="t",
        severity=Severity.LOW,
        type="T",
        mitre=(),
        description="d",
        remediation="r",
        catalog=(),
        allow=AllowList(principals=(role,)),
    )
    by_role = event("role", verb="get", resource="widgets", user="alice")
    via_role = {"arn": ["arn:aws:sts::111122223333:assumed-role/dev/alice"]}
    by_role = msgspec.structs.replace(by_role, user=msgspec.structs.replace(by_role.user, extra=via_role))
    by_cert = event("cert", verb="get", resource="widgets", user="alice")
    principals = {resolve_principal(e).key: resolve_principal(e).name for e in (by_role, by_cert)}
    assert principals == {role: "alice", "user:alice": "alice"}
    for order in ([by_role, by_cert], [by_cert, by_role]):
        assert [o.audit_id for o in evaluate(RuleEngine([watched]), order)] == ["cert"]


def test_engines_of_one_rule_set_share_the_table_but_not_their_rules_memory() -> None:
    rules = all_rules()
    first, second = RuleEngine(rules), RuleEngine(rules)
    other = RuleEngine(rules[:3])
    assert first.table is second.table and other.table is not first.table
    assert first._state is not second._state


def test_rules_that_need_the_threat_list_are_left_out_of_an_engine_without_one() -> None:
    rules, seen = recorded(all_rules())
    needing = {rule.id for rule in rules if rule.needs_threat_networks}
    assert needing == {"EKS-150"}
    outsider = event("outside", verb="get", resource="pods", user="alice", sourceIPs=["203.0.113.9"])
    evaluate(RuleEngine(rules), [outsider])
    assert not needing & {rule_id for rule_id, _ in seen}
    listed = RuleEngine(rules, networks=OperatorNetworks.of(threat=["203.0.113.0/24"]))
    assert "EKS-150" in {o.rule_id for o in evaluate(listed, [outsider])}
    assert ("EKS-150", "outside") in seen


def _dev_events() -> Iterator[AuditEvent]:
    with gzip.open(DEV / "audit.jsonl.gz") as stream:
        for line in stream:
            parsed = parse_event(line)
            if parsed.stage == "ResponseComplete" or parsed.subresource in ("exec", "attach", "portforward"):
                yield parsed


def test_on_the_dev_set_each_predicate_sees_exactly_the_events_its_rule_admits() -> None:
    if not (DEV / "audit.jsonl.gz").exists():
        pytest.skip("dev-scenarios dataset not present")
    rules, seen = recorded(all_rules())
    engine = RuleEngine(rules)
    expected: list[tuple[str, str]] = []
    fired: Counter[str] = Counter()
    admitted_by: dict[tuple[Any, ...], list[str]] = {}
    untouched = 0
    for item in _dev_events():
        principal = resolve_principal(item)
        public, impersonating = is_public_ip(item.source_ip), item.impersonated_user is not None
        shape = (item.verb, item.resource, item.subresource, item.allowed, item.namespace, public, impersonating)
        shape += (principal,)
        admitted = admitted_by.get(shape)
        if admitted is None:
            admitted = admitted_by[shape] = [rule.id for rule in rules if admits(rule, item, principal)]
        expected += [(rule_id, item.audit_id) for rule_id in admitted]
        untouched += not admitted
        fired.update(
            o.rule_id for o in engine.evaluate(item, principal, cluster="c", account="1", region="r", time=item.time)
        )
    assert Counter(seen) == Counter(expected)  # nothing missing, nothing extra
    assert untouched > 20_000  # a quarter of the events reach no predicate at all...
    assert len(fired) >= 10 and not engine.errors  # ...and the rules that fire on the dev set still do
