"""Reconnaissance (catalog #37-#39): permission self-checks, discovery bursts, and refused requests."""

from __future__ import annotations

import re

from eksight.core.findings import ResourceRef
from eksight.core.rules.base import Hit, Rule, RuleContext, Threshold
from eksight.core.rules.common import (
    ALL,
    ANONYMOUS_ONLY,
    EXEC_SUBRESOURCES,
    LOW,
    MEDIUM,
    NODE,
    NODES,
    SERVICE_ACCOUNT,
    SYSTEM,
    UNAUTHENTICATED,
    clip,
    described_object,
    informer_read,
    offensive_ua,
    origin,
    refused,
    request_path,
    scripted_ua,
    tool_ua,
    who,
)


def _self_check(ctx: RuleContext) -> Hit | None:
    event, kind, ua = ctx.event, ctx.principal.kind, ctx.event.user_agent
    what = (
        "rules review (kubectl auth can-i --list)"
        if event.resource == "selfsubjectrulesreviews"
        else "access review (kubectl auth can-i)"
    )
    head = f"Permission self-check: {what} by {who(ctx)} {origin(ctx)}"
    if offensive_ua(ua):
        return Hit(f"{head} with an attack tool.", severity=MEDIUM)
    if kind == SERVICE_ACCOUNT:
        if tool_ua(ua, kind):
            return Hit(f"{head}: a service-account token used with a person's tool.", severity=MEDIUM)
        if event.resource == "selfsubjectrulesreviews":
            return Hit(f"{head}: a workload listing everything it may do.", severity=MEDIUM)
        return Hit(f"{head}.", severity=LOW)
    if kind == NODE:
        return Hit(f"{head}: kubelets do not check their own permissions.", severity=MEDIUM)
    if scripted_ua(ua, kind):
        return Hit(f"{head} with a scripted HTTP client.", severity=MEDIUM)
    return Hit(f"{head}.", severity=LOW)


def _discovery_list(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if not event.resource or informer_read(ctx):
        return None
    scope = f"in {event.namespace}" if event.namespace else "across all namespaces"
    outcome = "" if event.allowed else f" (denied, HTTP {event.code})"
    return Hit(
        f"Many resource types listed within a minute, among them {event.resource} {scope}{outcome}, {origin(ctx)}.",
        target=ResourceRef("", "resource-types", "*"),
    )


def _resource_kind(ctx: RuleContext) -> str:
    return f"{ctx.event.api_group}/{ctx.event.resource}"


def _denied_request(ctx: RuleContext) -> Hit | None:
    if not refused(ctx):
        return None
    event = ctx.event
    return Hit(
        f"Requests refused, among them (HTTP {event.code or 403}) {event.verb} {described_object(ctx)}, {origin(ctx)}.",
        target=ResourceRef("", "denied-requests", "*"),
    )


def _request_shape(ctx: RuleContext) -> str:
    event = ctx.event
    if not event.resource:
        return f"{event.verb} {request_path(ctx)}"
    return f"{event.verb} {event.api_group}/{event.resource}/{event.subresource} {event.namespace}/{event.name}"


_RBAC_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
_WORKLOAD_RESOURCES = frozenset(
    {"pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "replicationcontrollers"}
)


# The API server's refusal names the requester again (User "arn:…/session"): the finding already says who.
_REQUESTER = re.compile(r'User "[^"]*"')


def _forbidden_write(ctx: RuleContext) -> Hit | None:
    event, kind = ctx.event, ctx.principal.kind
    if not refused(ctx) or (event.verb == "get" and event.subresource not in EXEC_SUBRESOURCES):
        return None
    message = event.response_status.message if event.response_status else ""
    why = f" ({clip(_REQUESTER.sub('the caller', message), 160)})" if message else ""
    head = f"Forbidden {event.verb} of {described_object(ctx)} by {who(ctx)} {origin(ctx)}{why}"
    if "not currently held" in message or "escalat" in message.lower():
        return Hit(f"{head}: an attempt to grant permissions the caller does not hold.", severity=MEDIUM)
    if kind == SERVICE_ACCOUNT:
        return Hit(f"{head}: a workload's token trying to run or change workloads.", severity=MEDIUM)
    return Hit(f"{head}.", severity=LOW)


RULES: list[Rule] = [
    Rule(
        id="EKS-140",
        title="Permission self-check",
        severity=LOW,
        type="Discovery:Kubernetes/PermissionChecked",
        mitre=("T1069", "T1613"),
        catalog=(37,),
        description="An identity asked what it may do (SelfSubjectAccessReview/RulesReview, kubectl auth can-i). "
        "Normal for people and some tools (k9s); MEDIUM when a workload enumerates its rules or the "
        "client is a script or attack tool — the first step after stealing a token.",
        remediation="Confirm who holds the identity's credentials when the client or identity is unusual.",
        verbs=frozenset({"create"}),
        resources=frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
        predicate=_self_check,
        allow=SYSTEM,
        routine=(
            "kubectl auth can-i and k9s check permissions as people work; repeated from the same "
            "network and tool it is not reconnaissance."
        ),
    ),
    Rule(
        id="EKS-141",
        title="Resource discovery burst",
        severity=MEDIUM,
        type="Discovery:Kubernetes/ResourceEnumeration",
        mitre=("T1613",),
        catalog=(38,),
        description="One identity listed 15 or more different resource types within a minute (ad-hoc lists, not "
        "controller informers): enumeration of what the cluster runs and what the identity can see.",
        remediation="Confirm the activity (some inventory and backup tools do this; allow-list them).",
        verbs=frozenset({"list"}),
        resources=ALL,
        predicate=_discovery_list,
        allowed=None,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
        threshold=Threshold(count=15, window_seconds=60, distinct=_resource_kind),
    ),
    Rule(
        id="EKS-142",
        title="Repeated access denied",
        severity=MEDIUM,
        type="Discovery:Kubernetes/RepeatedAccessDenied",
        mitre=("T1613", "T1078"),
        catalog=(39,),
        description="One identity was refused 10 different requests within 30 minutes (Panther's Multiple403 "
        "threshold, counted over distinct requests so a controller retrying one missing permission "
        "does not count): an identity testing what it may do. Anonymous and failed-authentication "
        "requests (internet background noise) and kubelets (NodeRestriction) are not counted.",
        remediation="Find out who uses the identity and what it was looking for.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_denied_request,
        allowed=False,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
        threshold=Threshold(count=10, window_seconds=1800, distinct=_request_shape),
    ),
    Rule(
        id="EKS-143",
        title="Forbidden workload or RBAC change",
        severity=MEDIUM,
        type="PrivilegeEscalation:Kubernetes/ForbiddenWorkloadOrRbacWrite",
        mitre=("T1610", "T1098"),
        catalog=(39,),
        description="A request to create or change workloads, exec into pods, or change RBAC was refused. MEDIUM "
        "for service-account tokens and for attempts to grant permissions the caller does not hold "
        "(RBAC escalation prevention); LOW for people otherwise (missing rights are common).",
        remediation="Find out why the identity attempted it; a workload token doing this is likely stolen.",
        verbs=frozenset({"create", "update", "patch", "get"}),
        resources=_WORKLOAD_RESOURCES | _RBAC_RESOURCES,
        subresources=frozenset({"", "exec", "attach", "ephemeralcontainers"}),
        predicate=_forbidden_write,
        allowed=False,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
    ),
]
