"""Security controls removed, and what the same principal does next: admission webhooks and policies deleted or
emptied, NetworkPolicies deleted, a namespace's Pod Security admission relaxed, log-shipping configuration
removed (EKS-404); then an exec, an ephemeral container or a privileged workload by that principal within
FOLLOW_SECONDS (EKS-405, HIGH): the order an intruder needs to work unseen.

Both rules keep bounded memory per engine instance (an engine lives per archive object in the Lambda and per
run in `eksight replay`): the last Pod Security level seen per namespace, and the last removal per actor (the
principal and its session: people sharing one SSO role are different actors).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from eksight.core.rules import defaults
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import (
    EXEC_SUBRESOURCES,
    HIGH,
    HUMAN_KINDS,
    LOW,
    MEDIUM,
    actor,
    clip,
    dry_run,
    object_name,
    origin,
    past,
    who,
)
from eksight.core.untrusted import as_dict

FOLLOW_SECONDS = 30 * 60.0
_KEPT = 4096

WEBHOOKS = frozenset({"validatingwebhookconfigurations", "mutatingwebhookconfigurations"})
# resource -> how a person calls one
POLICIES = {
    "validatingadmissionpolicies": "ValidatingAdmissionPolicy",
    "validatingadmissionpolicybindings": "ValidatingAdmissionPolicyBinding",
    "clusterpolicies": "ClusterPolicy",
    "networkpolicies": "NetworkPolicy",
}
_LOG_SHIPPING_NAMESPACES = frozenset({"amazon-cloudwatch", "aws-observability"})
_PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
_DELETE = frozenset({"delete", "deletecollection"})
_WRITE = frozenset({"update", "patch"})
_WORKLOADS = frozenset({"pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs"})


def _remember(state: dict[Any, Any], table: str, key: str, value: Any) -> Any:
    """Store `value` under `key` (least recently written dropped past _KEPT) and return the previous value."""
    kept: OrderedDict[str, Any] = state.setdefault(table, OrderedDict())
    previous = kept.pop(key, None)
    kept[key] = value
    while len(kept) > _KEPT:
        kept.popitem(last=False)
    return previous


def _psa_change(ctx: RuleContext) -> str | None:
    """How a namespace write weakens its Pod Security `enforce` level, or None."""
    event, body = ctx.event, ctx.request
    namespace = event.name or object_name(ctx)
    if isinstance(body, list):  # JSON patch
        for op in body:
            op = as_dict(op)
            if "pod-security.kubernetes.io~1enforce" in str(op.get("path", "")):
                if op.get("op") == "remove":
                    return f"label {_PSA_ENFORCE} removed"
                if op.get("op") in ("replace", "add") and op.get("value") == "privileged":
                    return f"label {_PSA_ENFORCE} set to privileged"
        return None
    labels = as_dict(as_dict(as_dict(body).get("metadata")).get("labels"))
    if _PSA_ENFORCE in labels:
        level = labels[_PSA_ENFORCE]
        previous = _remember(ctx.state, "psa", namespace, level)
        if level is None:
            return f"label {_PSA_ENFORCE} removed" + (f" (was {previous})" if previous else "")
        if level == "privileged" and previous != "privileged":
            return f"label {_PSA_ENFORCE} set to privileged" + (f" (was {previous})" if previous else "")
        return None
    if as_dict(body).get("kind") == "Namespace":  # a full object without the label: removed if it had one
        previous = _remember(ctx.state, "psa", namespace, None)
        if previous and previous != "privileged":
            return f"label {_PSA_ENFORCE} removed (was {previous})"
    return None


def removed_control(ctx: RuleContext) -> str | None:
    """What security control this request removes or weakens, in words; None for anything else."""
    event = ctx.event
    if dry_run(ctx) or not event.allowed:
        return None
    resource, verb = event.resource, event.verb
    name = object_name(ctx) or "(all)"
    if resource in WEBHOOKS:
        kind = "MutatingWebhookConfiguration" if resource.startswith("mutating") else "ValidatingWebhookConfiguration"
        if verb in _DELETE:
            return f"{kind} {name} deleted"
        body = as_dict(ctx.request)
        if verb in _WRITE and "webhooks" in body and not body.get("webhooks"):
            return f"{kind} {name} emptied (no webhooks left)"
        return None
    if resource in POLICIES and verb in _DELETE:
        where = f"{event.namespace}/" if event.namespace else ""
        return f"{POLICIES[resource]} {where}{name} deleted"
    if resource == "namespaces" and verb in _WRITE:
        change = _psa_change(ctx)
        return f"namespace {event.name or object_name(ctx)}: {change}" if change else None
    if resource == "configmaps" and verb in _DELETE and event.namespace in _LOG_SHIPPING_NAMESPACES:
        return f"log-shipping configuration {event.namespace}/{name} deleted"
    return None


def _control_removed(ctx: RuleContext) -> Hit | None:
    removed = removed_control(ctx)
    if removed is None:
        return None
    kind, ua = ctx.principal.kind, ctx.event.user_agent
    if kind not in HUMAN_KINDS:
        severity, why = LOW, "by a workload identity (GitOps pruning, an operator)"
    elif ua.startswith("Helm/") and ctx.event.resource in WEBHOOKS:
        severity, why = LOW, "by Helm (an uninstall or upgrade of the chart that owns it)"
    else:
        severity, why = MEDIUM, "by hand"
    return Hit(f"{removed} {why}: {who(ctx)} {origin(ctx)}.", severity=severity)


def _after_removal(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    removed = removed_control(ctx)
    if removed is not None:
        _remember(ctx.state, "removals", actor(ctx), (ctx.time, removed))
        return None
    kept: OrderedDict[str, tuple[float, str]] | None = ctx.state.get("removals")
    last = kept.get(actor(ctx)) if kept else None
    if last is None or not 0 <= ctx.time - last[0] <= FOLLOW_SECONDS or not event.allowed:
        return None
    minutes = max(1, round((ctx.time - last[0]) / 60))
    if event.subresource in EXEC_SUBRESOURCES | {"ephemeralcontainers"}:
        action = f"opened {event.subresource} into pod {event.namespace}/{event.name}"
    elif event.resource in _WORKLOADS and event.verb in ("create", "update", "patch"):
        risky = [
            f"{spec.owner_kind} {spec.name or object_name(ctx)}"
            for spec in ctx.pod_specs
            if spec.host_pid or spec.host_network or spec.host_paths or any(c.privileged for c in spec.containers)
        ]
        if not risky:
            return None
        action = f"{past(event.verb)} privileged or host-access workload {clip(', '.join(risky), 120)}"
    else:
        return None
    return Hit(f"{who(ctx)} {action} {minutes} min after: {last[1]} ({origin(ctx)}).", severity=HIGH)


_REMOVAL_RESOURCES = WEBHOOKS | POLICIES.keys() | {"namespaces", "configmaps"}

RULES: list[Rule] = [
    Rule(
        id="EKS-404",
        title="Security control removed",
        severity=MEDIUM,
        type="DefenseEvasion:Kubernetes/SecurityControlRemoved",
        mitre=("T1562.001",),
        catalog=(27,),
        description="An admission webhook configuration was deleted or emptied, an admission policy, Kyverno "
        "ClusterPolicy or NetworkPolicy was deleted, a namespace's Pod Security admission `enforce` label "
        "was removed or set to privileged, or log-shipping configuration (amazon-cloudwatch, "
        "aws-observability) was deleted. MEDIUM by hand; LOW by workload identities (GitOps pruning) and for "
        "webhook configurations removed by Helm.",
        remediation="Confirm the change was planned (a chart uninstall, a policy migration); if not, restore the "
        "control from Git and review what the principal did right after (see EKS-405).",
        verbs=_DELETE | _WRITE,
        resources=_REMOVAL_RESOURCES,
        predicate=_control_removed,
        allow=defaults.SYSTEM,
    ),
    Rule(
        id="EKS-405",
        title="Exec or privileged workload right after a security control was removed",
        severity=HIGH,
        type="DefenseEvasion:Kubernetes/ActionAfterSecurityControlRemoved",
        mitre=("T1562.001", "T1609", "T1610"),
        catalog=(9, 15),
        description="The principal that removed a security control (EKS-404) opened an exec/attach session, added "
        "an ephemeral container or wrote a privileged or host-access workload within 30 minutes: first "
        "the guard, then the break-in.",
        remediation="Treat as an incident: restore the control, end the sessions, and review the principal's "
        "credentials and everything it ran.",
        verbs=frozenset({"create", "update", "patch", "delete", "deletecollection", "get"}),
        resources=_REMOVAL_RESOURCES | _WORKLOADS,
        subresources=frozenset({"", "exec", "attach", "ephemeralcontainers"}),
        predicate=_after_removal,
        allow=defaults.SYSTEM,
    ),
]
