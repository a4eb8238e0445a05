"""Who changes RBAC (catalog #6, #7, #49): built-in roles and bindings rewritten, ServiceAccounts writing RBAC,
and the inventory of RBAC objects created and deleted."""

from __future__ import annotations

from eksight.core.findings import Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import dry_run, object_name, shown_name
from eksight.core.rules.rbac.vocabulary import (
    BOOTSTRAP_NAMES,
    BOOTSTRAP_PREFIXES,
    KNOWN_RBAC_OPERATORS,
    RBAC_RESOURCES,
    addon_service_account,
    target,
)

# --- #6 built-in roles and bindings changed -------------------------------------------------------------------


def _bootstrap(name: str) -> bool:
    return name in BOOTSTRAP_NAMES or name.startswith(BOOTSTRAP_PREFIXES)


def _system_rbac_changed(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    name = object_name(ctx)
    if not (name.startswith(("system:", "eks:")) or name in BOOTSTRAP_NAMES):
        return None
    action = {"delete": "deleted", "deletecollection": "deleted"}.get(ctx.event.verb, "modified")
    kind = {
        "clusterroles": "ClusterRole",
        "clusterrolebindings": "ClusterRoleBinding",
        "roles": "Role",
        "rolebindings": "RoleBinding",
    }[ctx.event.resource]
    if _bootstrap(name):
        severity = Severity.MEDIUM
        why = "part of Kubernetes'/EKS's own RBAC, which only the control plane maintains"
    else:
        severity = Severity.LOW
        why = "a system: name not in the bootstrap set (usually an add-on's own role)"
    body = ctx.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if isinstance(annotations, dict) and annotations.get("rbac.authorization.kubernetes.io/autoupdate") == "false":
        why += "; autoupdate disabled, so the API server will no longer restore it"
    if addon_service_account(ctx):
        severity = Severity.LOW
        why += f"; by kube-system add-on {ctx.principal.name}"
    return Hit(detail=f"{kind} {name} {action}: {why}.", severity=severity, target=target(ctx))


# --- #7 ServiceAccount writes RBAC ------------------------------------------------------------------------------


def _service_account_writes_rbac(ctx: RuleContext) -> Hit | None:
    principal = ctx.principal
    if principal.kind != "service_account" or dry_run(ctx):
        return None
    where = f" from pod {principal.pod}" if principal.pod else ""
    severity = Severity.LOW if addon_service_account(ctx) else None
    kind = ctx.event.resource[:-1]
    name = object_name(ctx)
    ns = f"{ctx.event.namespace}/" if ctx.event.namespace else ""
    return Hit(
        detail=f"ServiceAccount {principal.namespace}/{principal.service_account}{where} ran "
        f"{ctx.event.verb} on {kind} {ns}{name}.",
        severity=severity,
        target=target(ctx),
    )


# --- #49 inventory ----------------------------------------------------------------------------------------------


def _rbac_inventory(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    verb = "deleted" if ctx.event.verb.startswith("delete") else "created"
    ns = f" in {ctx.event.namespace}" if ctx.event.namespace else ""
    return Hit(detail=f"{ctx.event.resource[:-1]} {shown_name(ctx)}{ns} {verb}.", target=target(ctx))


_SYSTEM = defaults.SYSTEM

RULES: list[Rule] = [
    Rule(
        id="EKS-204",
        title="Built-in system role or binding modified or deleted",
        severity=Severity.MEDIUM,
        type="Persistence:Kubernetes/SystemRoleModified",
        mitre=("T1098.006", "T1562.001"),
        catalog=(6,),
        description="A system:/eks: or default (cluster-admin, admin, edit, view) Role, ClusterRole or binding was "
        "changed by an identity that is not the control plane.",
        remediation="Compare the object with the bootstrap default (kubectl auth reconcile, or delete it and let "
        "the API server recreate it) and find out why it was changed.",
        verbs=frozenset({"update", "patch", "delete"}),
        resources=RBAC_RESOURCES,
        predicate=_system_rbac_changed,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-205",
        title="ServiceAccount changed RBAC",
        severity=Severity.MEDIUM,
        type="PrivilegeEscalation:Kubernetes/ServiceAccountModifiedRBAC",
        mitre=("T1098.006", "T1078.001"),
        catalog=(7,),
        description="A ServiceAccount token was used to create, change or delete RBAC objects; workloads rarely "
        "do this, and a stolen token that can is a path to cluster admin.",
        remediation="Check which pod holds the token (user.extra pod-name) and whether that software manages RBAC; "
        "add known operators to this rule's allow-list.",
        verbs=frozenset({"create", "update", "patch", "delete", "deletecollection"}),
        resources=RBAC_RESOURCES,
        predicate=_service_account_writes_rbac,
        allow=_SYSTEM.extend(KNOWN_RBAC_OPERATORS),
    ),
    Rule(
        id="EKS-206",
        title="RBAC object created or deleted",
        severity=Severity.INFORMATIONAL,
        type="Persistence:Kubernetes/RBACObjectChanged",
        mitre=("T1098.006",),
        catalog=(49,),
        description="Inventory: a Role, ClusterRole or binding was created or deleted.",
        remediation="None needed; use as the audit trail when investigating a related finding.",
        verbs=frozenset({"create", "delete", "deletecollection"}),
        resources=RBAC_RESOURCES,
        predicate=_rbac_inventory,
        allow=_SYSTEM,
    ),
]
