"""Evaluates the rule set on events: each event meets only the rules indexed under its
(verb, resource, subresource), after the allow-lists."""

from __future__ import annotations

import logging
from collections import Counter, OrderedDict, deque
from collections.abc import Iterable, Iterator

from eksight.core.events import AuditEvent
from eksight.core.findings import Observation, ResourceRef, when_and_where
from eksight.core.identity import Principal
from eksight.core.rules.base import AllowList, Hit, Rule, RuleContext, Threshold
from eksight.core.rules.networks import NO_NETWORKS, OperatorNetworks

logger = logging.getLogger(__name__)

EVIDENCE_CAP = 1000  # matches one principal's threshold window holds while below the threshold
# Memo tables keyed by request fields (resource, namespace: chosen by the client, even on refused requests) start
# over past this size, so a scanner's made-up paths cannot grow them without bound.
MEMO_LIMIT = 65_536


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
        self._allow = {
            rule.id: rule.allow.extend(global_allow or AllowList()).extend(
                (extra_allow or {}).get(rule.id, AllowList())
            )
            for rule in self.rules
        }
        self._index: dict[tuple[str, str, str], list[Rule]] = {}
        for rule in self.rules:
            for key in rule.index_keys():
                self._index.setdefault(key, []).append(rule)
        self._candidates: dict[tuple[str, str, str], tuple[Rule, ...]] = {}
        self._windows: dict[tuple[str, str, str], ThresholdWindow] = {}
        self._state: dict[str, dict[object, object]] = {rule.id: {} for rule in self.rules}
        # Allow-list verdicts depend only on (rule, principal) and (rule, namespace): glob matching once each.
        self._allowed_principal: dict[tuple[str, str, str], bool] = {}
        self._allowed_namespace: dict[tuple[str, str], bool] = {}
        self.errors: Counter[str] = Counter()
        self.evidence_dropped: Counter[str] = Counter()  # per rule: matches past ThresholdWindow's cap

    def candidates(self, verb: str, resource: str, subresource: str) -> tuple[Rule, ...]:
        key = (verb, resource, subresource)
        found = self._candidates.get(key)
        if found is None:
            seen: dict[str, Rule] = {}
            for v in (verb, "*"):
                for r in (resource, "*"):
                    for s in (subresource, "*"):
                        for rule in self._index.get((v, r, s), ()):
                            seen.setdefault(rule.id, rule)
            if len(self._candidates) >= MEMO_LIMIT:
                self._candidates.clear()
            found = self._candidates[key] = tuple(sorted(seen.values(), key=lambda rule: rule.id))
        return found

    def evaluate(
        self, event: AuditEvent, principal: Principal, *, cluster: str, account: str, region: str, time: float
    ) -> Iterator[Observation]:
        allowed = event.allowed
        namespace = event.namespace
        context: RuleContext | None = None  # one per event, so decoded bodies are shared by its rules
        for rule in self.candidates(event.verb, event.resource, event.subresource):
            if rule.allowed is not None and rule.allowed != allowed:
                continue
            allow = self._allow[rule.id]
            if self._allowed(rule.id, allow, principal, namespace):
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
                yield observation
            else:
                distinct = rule.threshold.distinct(context) if rule.threshold.distinct else event.audit_id
                yield from self._count(rule, (rule.id, cluster, principal.key), observation, distinct)

    def _allowed(self, rule_id: str, allow: AllowList, principal: Principal, namespace: str) -> bool:
        key = (rule_id, principal.key, principal.name)
        verdict = self._allowed_principal.get(key)
        if verdict is None:
            if len(self._allowed_principal) >= MEMO_LIMIT:
                self._allowed_principal.clear()
            verdict = self._allowed_principal[key] = allow.allows_principal(principal)
        if verdict or not namespace:
            return verdict
        namespace_key = (rule_id, namespace)
        verdict = self._allowed_namespace.get(namespace_key)
        if verdict is None:
            if len(self._allowed_namespace) >= MEMO_LIMIT:
                self._allowed_namespace.clear()
            verdict = self._allowed_namespace[namespace_key] = allow.allows_namespace(namespace)
        return verdict

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
