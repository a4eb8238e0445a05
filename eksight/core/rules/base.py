"""Rules are data plus a small predicate, indexed by (verb, resource, subresource).

A rule sees a `RuleContext` (the event, its principal, lazily decoded bodies and workload specs) and
returns None (no match), True (match with the rule's own text) or a `Hit` (match with specifics:
what exactly was risky, an adjusted severity, a different target). Allow-lists, the allowed/denied filter and
the principal kinds are checked by the engine before the predicate runs, so predicates stay about the risky shape,
not about exceptions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from eksight.core.events import AuditEvent
from eksight.core.findings import ResourceRef, Severity
from eksight.core.identity import Principal
from eksight.core.rules.networks import NO_NETWORKS, OperatorNetworks

if TYPE_CHECKING:
    from eksight.core.workloads import PodSpecView

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
ANY = frozenset({"*"})


@dataclass(frozen=True)
class Hit:
    detail: str = ""  # appended to the rule's description: *why* this event
    severity: Severity | None = None  # overrides the rule's severity for this event
    target: ResourceRef | None = None  # overrides the event's objectRef as the dedup target
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class AllowList:
    """Glob patterns. Principals match `Principal.key` or `Principal.name`; images match whole references."""

    principals: tuple[str, ...] = ()
    principal_kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    images: tuple[str, ...] = ()

    def allows_principal(self, principal: Principal) -> bool:
        return principal.kind in self.principal_kinds or _any_match((principal.key, principal.name), self.principals)

    def allows_namespace(self, namespace: str) -> bool:
        return bool(namespace) and _any_match((namespace,), self.namespaces)

    def allows_image(self, image: str) -> bool:
        return _any_match((image,), self.images)

    def extend(self, other: AllowList) -> AllowList:
        return AllowList(
            self.principals + other.principals,
            self.principal_kinds + other.principal_kinds,
            self.namespaces + other.namespaces,
            self.images + other.images,
        )


def _any_match(values: Iterable[str], patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(value, pattern) for value in values if value for pattern in patterns)


class RuleContext:
    """Everything a predicate may look at; expensive views are computed once per event."""

    __slots__ = ("__dict__", "allow", "event", "networks", "principal", "state", "time")

    def __init__(
        self,
        event: AuditEvent,
        principal: Principal,
        allow: AllowList,
        state: dict[Any, Any] | None = None,
        time: float = 0.0,
        networks: OperatorNetworks = NO_NETWORKS,
    ) -> None:
        self.event = event
        self.time = time  # event time (epoch seconds), as the engine judged it
        self.principal = principal
        self.allow = allow  # the rule's effective allow-list (for image/namespace checks inside predicates)
        # Memory a rule keeps between events (e.g. the last aws-auth it saw), owned by the engine instance
        # so two detectors never share it and a replay is deterministic.
        self.state = state if state is not None else {}
        self.networks = networks  # the deployment's threat and trusted network lists

    @cached_property
    def request(self) -> Any:
        return self.event.request_body()

    @cached_property
    def response(self) -> Any:
        return self.event.response_body()

    @cached_property
    def body(self) -> Any:
        """The object as written: the request body, or the response for patches logged without one."""
        request = self.request
        return request if isinstance(request, dict) and request.get("kind") else (self.response or request)

    @cached_property
    def pod_specs(self) -> list[PodSpecView]:
        from eksight.core.workloads import workload_specs

        return workload_specs(self.event)

    @cached_property
    def exec_request(self) -> Any:
        from eksight.core.workloads import parse_exec

        return parse_exec(self.event)


Predicate = Callable[[RuleContext], "Hit | bool | None"]


@dataclass(frozen=True)
class Threshold:
    """Fire only when one principal matches `count` times (or on `count` distinct values of `distinct`)
    within `window_seconds` of event time; then every matching event in the window becomes evidence."""

    count: int
    window_seconds: float
    distinct: Callable[[RuleContext], str] | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    severity: Severity
    type: str  # GuardDuty-style Tactic:Kubernetes/Name
    mitre: tuple[str, ...]
    description: str
    remediation: str
    catalog: tuple[int, ...]  # ideas of ../shared/reference/detection-catalog.md covered
    verbs: frozenset[str] = ANY
    resources: frozenset[str] = ANY  # objectRef.resource; "" = non-resource URL requests
    subresources: frozenset[str] = frozenset({""})  # "" = the object itself; "*" = any
    predicate: Predicate = lambda _ctx: True
    allowed: bool | None = True  # True: only allowed requests; False: only denied; None: both
    # Identity kinds (eksight.core.identity) the predicate can match; the engine sends it no other.
    principal_kinds: frozenset[str] = ANY
    public_source: bool = False  # only requests from a public address (common.is_public_ip of the source IP)
    impersonating: bool = False  # only requests made with impersonation headers (impersonatedUser present)
    # The predicate matches nothing while the deployment's threat list is empty: the engine then leaves it out.
    needs_threat_networks: bool = False
    allow: AllowList = field(default_factory=AllowList)
    threshold: Threshold | None = None
    # Fold a principal's sweep into one finding per window: the Hit's target is the fold key, and the objects
    # each event touched are listed on the finding (bounded) instead of one finding per object.
    fold: bool = False
    # Why this rule may be lowered one step when the principal routinely does the same thing from the same network
    # and tool (eksight.core.behaviour.context). Empty: the rule stands on its own and is never lowered.
    routine: str = ""
    # This rule's findings group a principal's matches per window of this length (event time, aligned to the epoch)
    # instead of the detector's clock hour: one finding a UTC day for background noise such as internet scanners.
    window_seconds: float | None = None

    def index_keys(self) -> Iterable[tuple[str, str, str]]:
        for verb in self.verbs:
            for resource in self.resources:
                for subresource in self.subresources:
                    yield verb, resource, subresource
