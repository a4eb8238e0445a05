"""Roles (catalog #5): what a role grants, judged line by line; the detail names the riskiest lines."""

from __future__ import annotations

from collections.abc import Callable

from eksight.core.findings import Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import WRITE_VERBS, Hit, Rule, RuleContext
from eksight.core.rules.common import dry_run, object_name
from eksight.core.rules.rbac.vocabulary import (
    MODIFY_VERBS,
    RBAC_GROUP,
    RBAC_RESOURCES,
    READ_VERBS,
    ROLE_RESOURCES,
    SENSITIVE_RESOURCES,
    WORKLOAD_RESOURCES,
    addon_service_account,
    lower,
    target,
)
from eksight.core.workloads import RbacRule, rbac_rules

# --- #5 over-permissive role ----------------------------------------------------------------------------------


def _builtin_group(group: str) -> bool:
    """Core and built-in API groups (`apps`, `*.k8s.io`), as opposed to CRD groups like `cert-manager.io`."""
    return group in ("", "*") or "." not in group or (group.endswith(".k8s.io") and not group.endswith("x-k8s.io"))


def _covers(rule: RbacRule, resource: str, group: str) -> bool:
    """Does the rule line grant on `resource` (``name`` or ``name/sub``) of API group `group`?"""
    groups = rule.api_groups or ("*",)  # a line without apiGroups is malformed: judge it generously
    if "*" not in groups and group not in groups:
        return False
    base, _, sub = resource.partition("/")
    resources = rule.resources
    return (
        "*" in resources
        or resource in resources
        or (bool(sub) and (f"{base}/*" in resources or f"*/{sub}" in resources))
    )


def _verbs(rule: RbacRule) -> frozenset[str]:
    return frozenset(v.lower() for v in rule.verbs)


def _line_risks(rule: RbacRule) -> list[tuple[Severity, str]]:
    """What one rule line grants that matters, most severe first is not guaranteed (callers sort)."""
    verbs = _verbs(rule)
    every_verb = "*" in verbs

    def grants(*wanted: str) -> bool:
        return every_verb or any(w in verbs for w in wanted)

    if rule.non_resource_urls and not rule.resources:
        return [(Severity.LOW, "write verbs on non-resource URLs")] if grants(*WRITE_VERBS) else []
    groups = rule.api_groups or ("*",)
    builtin = any(_builtin_group(g) for g in groups)
    all_resources = "*" in rule.resources
    if every_verb and all_resources:
        if builtin:
            return [(Severity.HIGH, "every verb on every resource (cluster-admin equivalent)")]
        return [(Severity.LOW, f"every verb on every resource of {', '.join(groups)}")]
    risks: list[tuple[Severity, str, bool]] = []  # (severity, reason, about secrets)
    if grants("escalate", "bind") and (_covers(rule, "clusterroles", RBAC_GROUP) or _covers(rule, "roles", RBAC_GROUP)):
        risks.append((Severity.HIGH, "escalate/bind on roles: can grant permissions it does not hold", False))
    if grants("impersonate") and any(
        _covers(rule, r, g)
        for r, g in (
            ("users", ""),
            ("groups", ""),
            ("serviceaccounts", ""),
            ("uids", "authentication.k8s.io"),
            ("userextras/*", "authentication.k8s.io"),
        )
    ):
        risks.append((Severity.HIGH, "impersonate users/groups/ServiceAccounts", False))
    if every_verb:
        sensitive = builtin and any(r.partition("/")[0] in SENSITIVE_RESOURCES for r in rule.resources)
        risks.append(
            (
                Severity.MEDIUM if sensitive else Severity.LOW,
                f"wildcard verbs on {', '.join(rule.resources) or '(no resources)'}",
                False,
            )
        )
    elif all_resources:
        risks.append(
            (
                Severity.MEDIUM,
                "wildcard resources in a built-in API group (secrets, pods/exec and nodes/proxy included)",
                False,
            )
            if builtin
            else (Severity.LOW, f"wildcard resources in {', '.join(groups)}", False)
        )
    if not all_resources:  # otherwise the wildcard says it all
        risks.extend(_specific_risks(rule, grants, every_verb))
    if not rule.resource_names:
        return [(severity, reason) for severity, reason, _ in risks]
    # Restricted to named objects: narrower than it looks (and reading a named secret is the normal case).
    names = ", ".join(rule.resource_names)
    return [
        (lower(severity), f"{reason} (only resourceNames {names})")
        for severity, reason, secrets in risks
        if not secrets
    ]


def _specific_risks(rule: RbacRule, grants: Callable[..., bool], every_verb: bool) -> list[tuple[Severity, str, bool]]:
    risks: list[tuple[Severity, str, bool]] = []
    if grants("create", "get") and (_covers(rule, "pods/exec", "") or _covers(rule, "pods/attach", "")):
        risks.append((Severity.MEDIUM, "pods/exec or pods/attach: run commands in any pod in scope", False))
    if rule.verbs and _covers(rule, "nodes/proxy", ""):
        risks.append((Severity.MEDIUM, "nodes/proxy: direct kubelet API (exec in any pod on a node)", False))
    if grants("create") and _covers(rule, "serviceaccounts/token", ""):
        risks.append((Severity.MEDIUM, "serviceaccounts/token create: mints ServiceAccount tokens", False))
    if grants("update", "patch") and _covers(rule, "certificatesigningrequests/approval", "certificates.k8s.io"):
        risks.append((Severity.MEDIUM, "approves certificate signing requests (client certificates)", False))
    if every_verb:
        return risks  # "wildcard verbs on ..." already names the resources
    writes = grants("create", "update", "patch")
    if grants(*READ_VERBS) and _covers(rule, "secrets", ""):
        risks.append((Severity.LOW, "reads secrets", True))
    if grants(*WRITE_VERBS) and _covers(rule, "secrets", ""):
        risks.append((Severity.LOW, "writes secrets", True))
    if writes and any(_covers(rule, r, RBAC_GROUP) for r in RBAC_RESOURCES):
        risks.append((Severity.LOW, "writes RBAC objects", False))
    if writes and any(_covers(rule, r, g) for r in WORKLOAD_RESOURCES for g in ("", "apps", "batch")):
        risks.append((Severity.LOW, "creates or changes workloads (can run as any ServiceAccount in scope)", False))
    if writes and any(
        _covers(rule, r, "admissionregistration.k8s.io")
        for r in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations")
    ):
        risks.append((Severity.LOW, "writes admission webhooks", False))
    if writes and (_covers(rule, "nodes", "") or _covers(rule, "persistentvolumes", "")):
        risks.append((Severity.LOW, "writes nodes or persistent volumes", False))
    return risks


def _line_text(index: int, rule: RbacRule) -> str:
    """'rules[1] (get, list, watch on secrets of the core API group)': the role's line as people read it."""
    verbs = _listed(rule.verbs, "every verb")
    if rule.non_resource_urls and not rule.resources:
        return f"rules[{index}] ({verbs} on URL paths {_listed(rule.non_resource_urls, 'every path')})"
    groups = rule.api_groups
    named = ", ".join("the core" if group == "" else group for group in groups)
    scope = (
        " of every API group"
        if "*" in groups
        else f" of {named} API group{'s' if len(groups) > 1 else ''}"
        if groups
        else ""
    )
    return f"rules[{index}] ({verbs} on {_listed(rule.resources, 'every resource')}{scope})"


def _listed(items: tuple[str, ...] | list[str], wildcard: str) -> str:
    return wildcard if "*" in items else ", ".join(items) or "nothing"


def _rules_changed(ctx: RuleContext) -> bool | None:
    """True when the event proves the rules were written as shown, False when it re-sends them
    (update), None when this event did not touch them."""
    verb = ctx.event.verb
    if verb == "create":
        return True
    if verb == "update":
        return False
    request = ctx.request
    if isinstance(request, dict):
        return True if "rules" in request else None
    if isinstance(request, list):  # JSON Patch
        touched = any(isinstance(op, dict) and str(op.get("path", "")).startswith("/rules") for op in request)
        return True if touched else None
    return False  # patch logged without its body: the response shows the result only


def _overpermissive_role(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    changed = _rules_changed(ctx)
    if changed is None:
        return None
    found: list[tuple[Severity, str]] = []
    for index, line in enumerate(rbac_rules(ctx.event)):
        risks = sorted(_line_risks(line), key=lambda item: -item[0])
        if risks:
            found.append((risks[0][0], f"{_line_text(index, line)}: {'; '.join(reason for _, reason in risks)}"))
    if not found:
        return None
    found.sort(key=lambda item: -item[0])
    severity = found[0][0]
    notes = []
    if not changed:
        severity = lower(severity)
        notes.append("update re-sends the whole role, so these lines may predate it")
    if ctx.event.resource == "roles" and ctx.event.namespace != "kube-system" and severity > Severity.MEDIUM:
        severity = Severity.MEDIUM
        notes.append(f"limited to namespace {ctx.event.namespace}")
    if addon_service_account(ctx):
        severity = min(severity, Severity.LOW)
        notes.append(f"written by kube-system add-on {ctx.principal.name}")
    kind = "ClusterRole" if ctx.event.resource == "clusterroles" else f"Role {ctx.event.namespace}/"
    name = object_name(ctx)
    shown = "; ".join(text for _, text in found[:3]) + (f"; and {len(found) - 3} more" if len(found) > 3 else "")
    detail = f"{kind}{' ' if kind == 'ClusterRole' else ''}{name} grants {shown}." + (
        f" ({'; '.join(notes)})" if notes else ""
    )
    return Hit(
        detail=detail, severity=severity, target=target(ctx), details={"risky_rules": [text for _, text in found]}
    )


_SYSTEM = defaults.SYSTEM

RULES: list[Rule] = [
    Rule(
        id="EKS-203",
        title="Over-permissive role created or changed",
        severity=Severity.MEDIUM,
        type="PrivilegeEscalation:Kubernetes/RoleCreated",
        mitre=("T1098.006",),
        catalog=(5, 45),
        description="A Role or ClusterRole grants wildcards or sensitive permissions (escalate/bind/impersonate, "
        "pods/exec, nodes/proxy, token minting, secrets, workloads, RBAC).",
        remediation="Narrow the role to the verbs, resources and resourceNames the workload needs; check who is "
        "bound to it (kubectl get rolebindings,clusterrolebindings -A -o wide).",
        verbs=MODIFY_VERBS,
        resources=ROLE_RESOURCES,
        predicate=_overpermissive_role,
        allow=_SYSTEM,
    ),
]
