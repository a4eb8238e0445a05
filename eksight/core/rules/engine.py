"""Evaluates the rule set on events. Which rules an event meets is decided by a table, computed once per kind of
event (see PlanKey: its request, its outcome, whether it came from a public address or with impersonation, and its
principal). A table entry holds only the rules whose index keys, allowed/denied filter, discriminators, principal
kinds and principal allow-lists let the event through, so an event no rule can match costs one look-up and an
allow-listed principal never reaches a predicate. The table depends only on the rules and their allow-lists, so
every engine of the same rule set shares it (the Lambda builds one engine per object). Rules that need the threat
list are not in the table of an engine without one."""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable

from eksight.core.events import AuditEvent
from eksight.core.findings import Observation, ResourceRef, when_and_where
from eksight.core.identity import Principal
from eksight.core.rules.base import AllowList, Hit, Rule, RuleContext, Threshold
from eksight.core.rules.common import is_public_ip
from eksight.core.rules.networks import NO_NETWORKS, OperatorNetworks

logger = logging.getLogger(__name__)

EVIDENCE_CAP = 1000  # matches one principal's threshold window holds while below the threshold
# Memo tables keyed by request fields (resource, namespace: chosen by the client, even on refused requests) start
# over past this size, so a scanner's made-up paths cannot grow them without bound.
MEMO_LIMIT = 65_536

PlanKey = tuple[str, str, str, bool, bool, bool, str, str, str]
"""(verb, resource, subresource, allowed, from a public address, impersonating, principal kind, key, name)."""


class Step:
    """One rule an event goes on to, with its effective allow-list; `by_namespace` when that names namespaces
    (the only part of it left to check per event)."""

    __slots__ = ("allow", "by_namespace", "rule")

    def __init__(self, rule: Rule, allow: AllowList) -> None:
        self.rule, self.allow = rule, allow
        self.by_namespace = bool(allow.namespaces)


class RuleTable:
    """What a rule set decides before any predicate runs: the plan of each kind of event (see PlanKey) and the
    namespace allow-list verdicts, both memoized and bounded by MEMO_LIMIT."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps
        self._index: dict[tuple[str, str, str], list[Step]] = {}
        for step in steps:
            for key in step.rule.index_keys():
                self._index.setdefault(key, []).append(step)
        self.plans: dict[PlanKey, tuple[Step, ...]] = {}
        self.allowed_namespace: dict[tuple[str, str], bool] = {}

    def candidates(self, verb: str, resource: str, subresource: str) -> tuple[Step, ...]:
        """The rules indexed under (verb, resource, subresource), wildcards included, by id."""
        seen: dict[str, Step] = {}
        for v in (verb, "*"):
            for r in (resource, "*"):
                for s in (subresource, "*"):
                    for step in self._index.get((v, r, s), ()):
                        seen.setdefault(step.rule.id, step)
        return tuple(sorted(seen.values(), key=lambda step: step.rule.id))

    def plan(self, key: PlanKey, principal: Principal) -> tuple[Step, ...]:
        """The rules an event of `key` goes on to, by id: indexed under its request, of its allowed/denied
        outcome, source address, impersonation and principal kind, and not allow-listed for its principal."""
        found = self.plans.get(key)
        if found is None:
            verb, resource, subresource, allowed, public, impersonating, kind = key[:7]
            found = tuple(
                step
                for step in self.candidates(verb, resource, subresource)
                if (step.rule.allowed is None or step.rule.allowed == allowed)
                and (public or not step.rule.public_source)
                and (impersonating or not step.rule.impersonating)
                and (kind in step.rule.principal_kinds or "*" in step.rule.principal_kinds)
                and not step.allow.allows_principal(principal)
            )
            if len(self.plans) >= MEMO_LIMIT:
                self.plans.clear()
            self.plans[key] = found
        return found

    def allows_namespace(self, step: Step, namespace: str) -> bool:
        key = (step.rule.id, namespace)
        verdict = self.allowed_namespace.get(key)
        if verdict is None:
            if len(self.allowed_namespace) >= MEMO_LIMIT:
                self.allowed_namespace.clear()
            verdict = self.allowed_namespace[key] = step.allow.allows_namespace(namespace)
        return verdict


_TABLES: dict[tuple[tuple[int, AllowList], ...], RuleTable] = {}
_TABLES_KEPT = 8


def rule_table(rules: tuple[tuple[Rule, AllowList], ...]) -> RuleTable:
    """The one table of a rule set (rules with their effective allow-lists). Rules are told apart by identity (a
    kept table holds its rules, so their ids are not reused while it is kept)."""
    key = tuple((id(rule), allow) for rule, allow in rules)
    table = _TABLES.get(key)
    if table is None:
        if len(_TABLES) >= _TABLES_KEPT:
            _TABLES.clear()
        table = _TABLES[key] = RuleTable(tuple(Step(rule, allow) for rule, allow in rules))
    return table


class RuleEngine:
    def __init__(
        self,
        rules: Iterable[Rule],
        extra_allow: dict[str, AllowList] | None = None,
        global_allow: AllowList | None = None,
        networks: OperatorNetworks = NO_NETWORKS,
    ) -> None:
        """`extra_allow`: per-rule additions from the deployment config; `global_allow`: for every rule;
        `networks`: the deployment's threat and trusted network lists."""
        self.rules = list(rules)
        self.networks = networks
        duplicates = sorted(rule_id for rule_id, n in Counter(rule.id for rule in self.rules).items() if n > 1)
        if duplicates:
            raise ValueError(f"duplicate rule ids: {duplicates}")
        effective = tuple(
            (rule, rule.allow.extend(global_allow or AllowList()).extend((extra_allow or {}).get(rule.id, AllowList())))
            for rule in self.rules
            if networks.threat or not rule.needs_threat_networks
        )
        self.table = rule_table(effective)
        # Memory a rule keeps between events (see RuleContext.state): this engine's own, unlike the table.
        self._state: dict[str, dict[object, object]] = {rule.id: {} for rule in self.rules}
        self._windows: dict[tuple[str, str, str], ThresholdWindow] = {}
        self.errors: Counter[str] = Counter()
        self.evidence_dropped: Counter[str] = Counter()  # per rule: matches past ThresholdWindow's cap

    def evaluate(
        self, event: AuditEvent, principal: Principal, *, cluster: str, account: str, region: str, time: float
    ) -> list[Observation]:
        ref = event.object_ref
        resource, subresource, namespace = (ref.resource, ref.subresource, ref.namespace) if ref else ("", "", "")
        key = (
            event.verb,
            resource,
            subresource,
            event.allowed,
            is_public_ip(event.source_ip),
            event.impersonated_user is not None,
            principal.kind,
            principal.key,
            principal.name,
        )
        table = self.table
        steps = table.plans.get(key)
        if steps is None:
            steps = table.plan(key, principal)
        if not steps:
            return []
        observations: list[Observation] = []
        context: RuleContext | None = None  # one per event, so decoded bodies are shared by its rules
        for step in steps:
            rule, allow = step.rule, step.allow
            if step.by_namespace and namespace and table.allows_namespace(step, namespace):
                continue
            if context is None:
                context = RuleContext(event, principal, allow, self._state[rule.id], time, self.networks)
            else:
                context.allow, context.state = allow, self._state[rule.id]
            try:
                result = rule.predicate(context)
            except Exception:  # a predicate must never take the batch down with it
                self.errors[rule.id] += 1
                logger.exception("rule %s failed on event %s", rule.id, event.audit_id)
                continue
            if not result:
                continue
            hit = result if isinstance(result, Hit) else Hit()
            observation = _observation(rule, hit, event, principal, cluster, account, region, time)
            if rule.threshold is None:
                observations.append(observation)
            else:
                distinct = rule.threshold.distinct(context) if rule.threshold.distinct else event.audit_id
                observations.extend(self._count(rule, (rule.id, cluster, principal.key), observation, distinct))
        return observations

    def _count(self, rule: Rule, key: tuple[str, str, str], observation: Observation, value: str) -> list[Observation]:
        threshold = rule.threshold
        assert threshold is not None
        window = self._windows.get(key)
        if window is None:
            window = self._windows[key] = ThresholdWindow(threshold)
        ready = window.push(observation, value)
        if window.dropped:
            self.evidence_dropped[rule.id] += window.dropped
            window.dropped = 0
        return ready


class ThresholdWindow:
    """One principal's matches of one threshold rule: fires once `count` distinct values were seen within
    `window_seconds` of event time, then hands over every match of the window not handed over yet.

    O(1) amortized per event and bounded per (rule, principal), whatever one principal sends: "at least `count`
    distinct values" needs only the `count` most recently seen values (with when each was last seen), and the
    evidence waiting for the threshold is capped at EVIDENCE_CAP observations (the oldest are dropped first).
    """

    __slots__ = ("dropped", "evidence", "last_seen", "threshold")

    def __init__(self, threshold: Threshold) -> None:
        self.threshold = threshold
        self.last_seen: OrderedDict[str, float] = OrderedDict()  # value -> event time, least recently seen first
        self.evidence: deque[Observation] = deque()  # matches not handed over yet, in arrival order
        self.dropped = 0  # evidence dropped at the cap since the engine last looked

    def push(self, observation: Observation, value: str) -> list[Observation]:
        now, threshold, last_seen, evidence = observation.time, self.threshold, self.last_seen, self.evidence
        last_seen[value] = now
        last_seen.move_to_end(value)
        if len(last_seen) > threshold.count:
            last_seen.popitem(last=False)
        while now - next(iter(last_seen.values())) > threshold.window_seconds:
            last_seen.popitem(last=False)
        evidence.append(observation)
        while now - evidence[0].time > threshold.window_seconds:
            evidence.popleft()
        if len(evidence) > EVIDENCE_CAP:
            evidence.popleft()
            self.dropped += 1
        if len(last_seen) < threshold.count:
            return []
        ready = list(evidence)
        evidence.clear()
        return ready


def _observation(
    rule: Rule, hit: Hit, event: AuditEvent, principal: Principal, cluster: str, account: str, region: str, time: float
) -> Observation:
    touched = _target(event) if rule.fold and hit.target else None
    target = hit.target or _target(event)
    description = f"{rule.description} {when_and_where(time, cluster)}" + (f": {hit.detail}" if hit.detail else ".")
    return Observation(
        detector="rule",
        rule_id=rule.id,
        type=rule.type,
        severity=hit.severity or rule.severity,
        title=rule.title,
        description=description,
        cluster=cluster,
        account=account,
        region=region,
        principal_key=principal.key,
        principal=principal_summary(principal),
        target=target,
        time=time,
        audit_id=event.audit_id,
        source_ip=event.source_ip,
        user_agent=event.user_agent,
        mitre=rule.mitre,
        remediation=rule.remediation,
        details=hit.details,
        touched=touched,
        routine=rule.routine,
        window_seconds=rule.window_seconds or 0.0,
    )


def _target(event: AuditEvent) -> ResourceRef | None:
    ref = event.object_ref
    if ref is None:
        return ResourceRef("", "url", event.request_uri.split("?", 1)[0]) if event.request_uri else None
    kind = ref.resource + (f"/{ref.subresource}" if ref.subresource else "")
    return ResourceRef(ref.namespace, kind, ref.name)


def principal_summary(principal: Principal) -> dict[str, str]:
    summary = {"name": principal.name, "kind": principal.kind, "key": principal.key}
    for attribute in ("arn", "session", "namespace", "node", "pod"):
        value = getattr(principal, attribute)
        if value:
            summary[attribute] = value
    return summary
