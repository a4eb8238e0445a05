"""Bindings (catalog #2-#4): anonymous access granted, admin given to a default ServiceAccount, privileged roles
bound. A binding is judged by the role it references and the subjects it names."""

from __future__ import annotations

from typing import Any

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import dry_run, object_name
from eksight.core.rules.rbac.vocabulary import (
    ADMIN_ROLES,
    ANONYMOUS_SUBJECTS,
    BINDING_RESOURCES,
    BROAD_GROUPS,
    CONTROL_PLANE_ROLE_PREFIXES,
    CONTROL_PLANE_ROLES,
    DEFAULT_PUBLIC_ROLES,
    MODIFY_VERBS,
    WRITE_ROLES,
)
from eksight.core.workloads import Binding, Subject, binding


def _role_class(name: str) -> str:
    if name in ADMIN_ROLES or name in CONTROL_PLANE_ROLES or name.startswith(CONTROL_PLANE_ROLE_PREFIXES):
        return "admin"
    if name in WRITE_ROLES:
        return "edit"
    return ""


def _is_anonymous(subject: Subject) -> bool:
    return subject.name in ANONYMOUS_SUBJECTS and subject.kind in ("User", "Group", "")


def _is_service_account(subject: Subject) -> bool:
    return subject.kind == "ServiceAccount" or (
        subject.kind == "Group" and subject.name.startswith("system:serviceaccounts")
    )


def _is_broad(subject: Subject) -> bool:
    return subject.kind == "Group" and (
        subject.name in BROAD_GROUPS or subject.name.startswith("system:serviceaccounts:")
    )


def _subject_text(subject: Subject) -> str:
    if subject.kind == "ServiceAccount":
        return f"ServiceAccount {subject.namespace or '?'}/{subject.name}"
    return f"{subject.kind or 'subject'} {subject.name}"


def _binding_text(b: Binding) -> str:
    where = f"RoleBinding {b.namespace}/{b.name}" if b.kind == "RoleBinding" else f"ClusterRoleBinding {b.name}"
    return f"{where} → {b.role_kind or 'role'} {b.role_name or '(unknown)'}"


def _binding(ctx: RuleContext) -> Binding | None:
    if dry_run(ctx):
        return None
    found = binding(ctx.event)
    if found is not None and not found.name:
        found = found._replace(name=object_name(ctx))
    return found


def _binding_details(b: Binding) -> dict[str, Any]:
    return {
        "binding": b.name,
        "namespace": b.namespace,
        "role_kind": b.role_kind,
        "role": b.role_name,
        "subjects": [_subject_text(s) for s in b.subjects],
    }


# --- #2 anonymous access granted -------------------------------------------------------------------------


def _anonymous_binding(ctx: RuleContext) -> Hit | None:
    b = _binding(ctx)
    if b is None:
        return None
    anonymous = [s for s in b.subjects if _is_anonymous(s)]
    if not anonymous:
        return None
    if b.role_name in DEFAULT_PUBLIC_ROLES:
        severity = Severity.LOW
    elif b.role_kind != "Role" and _role_class(b.role_name):  # admin, edit or a control-plane role
        severity = Severity.CRITICAL
    else:
        severity = Severity.HIGH
    who = ", ".join(_subject_text(s) for s in anonymous)
    return Hit(
        detail=f"{_binding_text(b)} grants it to {who}: anyone who can reach the API endpoint gets it.",
        severity=severity,
        target=ResourceRef(b.namespace, ctx.event.resource, b.name),
        details=_binding_details(b),
    )


# --- #3 admin to a default ServiceAccount ------------------------------------------------------------------


def _default_sa_admin(ctx: RuleContext) -> Hit | None:
    b = _binding(ctx)
    if b is None or b.role_name not in ADMIN_ROLES or b.role_kind not in ("ClusterRole", ""):
        return None
    hits = [
        s
        for s in b.subjects
        if (s.kind == "ServiceAccount" and s.name == "default")
        or (s.kind == "Group" and s.name.startswith("system:serviceaccounts"))
    ]
    if not hits:
        return None
    who = ", ".join(_subject_text(s) for s in hits)
    return Hit(
        detail=f"{_binding_text(b)} names {who}: pods that name no ServiceAccount (or, for a group, every "
        "ServiceAccount it covers) run with it.",
        target=ResourceRef(b.namespace, ctx.event.resource, b.name),
        details=_binding_details(b),
    )


# --- #4 privileged role bound --------------------------------------------------------------------------------


def _privileged_binding(ctx: RuleContext) -> Hit | None:
    b = _binding(ctx)
    if b is None or b.role_kind == "Role":
        return None  # a namespaced Role is custom: its content is judged when it is written
    role_class = _role_class(b.role_name)
    if not role_class:
        return None
    subjects = [s for s in b.subjects if s.name]
    ref = ResourceRef(b.namespace, ctx.event.resource, b.name)
    if not subjects:
        return Hit(
            detail=f"{_binding_text(b)} (no subjects yet).",
            severity=Severity.LOW,
            target=ref,
            details=_binding_details(b),
        )
    workload = any(_is_service_account(s) for s in subjects)
    broad = any(_is_broad(s) for s in subjects)
    cluster_wide = b.kind == "ClusterRoleBinding" or b.namespace == "kube-system"
    if role_class == "admin":
        if cluster_wide:
            severity = Severity.HIGH if workload or broad else Severity.MEDIUM
        else:
            severity = Severity.HIGH if broad else Severity.MEDIUM if workload else Severity.LOW
    else:  # edit: read every secret and run any pod in scope
        if cluster_wide:
            severity = Severity.HIGH if broad else Severity.MEDIUM
        else:
            severity = Severity.MEDIUM if broad else Severity.LOW
    scope = "cluster-wide" if b.kind == "ClusterRoleBinding" else f"in namespace {b.namespace}"
    why = []
    if workload:
        why.append("a workload identity (its token is readable by anyone who can run or exec a pod as it)")
    if broad:
        why.append("a group that covers many identities")
    detail = f"{_binding_text(b)} {scope} to {', '.join(_subject_text(s) for s in subjects)}" + (
        f"; subjects include {' and '.join(why)}." if why else "."
    )
    return Hit(detail=detail, severity=severity, target=ref, details=_binding_details(b))


_SYSTEM = defaults.SYSTEM

RULES: list[Rule] = [
    Rule(
        id="EKS-200",
        title="RBAC binding grants access to anonymous users",
        severity=Severity.HIGH,
        type="Policy:Kubernetes/AnonymousAccessGranted",
        mitre=("T1098.006", "T1078.001"),
        catalog=(2,),
        description="A RoleBinding or ClusterRoleBinding names system:anonymous or system:unauthenticated as a "
        "subject, so unauthenticated requests get the role's permissions.",
        remediation="Remove the anonymous subject from the binding (kubectl edit), find who added it and why, and "
        "review what anonymous requests did since (audit log, user system:anonymous).",
        verbs=MODIFY_VERBS,
        resources=BINDING_RESOURCES,
        predicate=_anonymous_binding,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-201",
        title="Admin role granted to a default ServiceAccount",
        severity=Severity.HIGH,
        type="Policy:Kubernetes/AdminAccessToDefaultServiceAccount",
        mitre=("T1098.006",),
        catalog=(3,),
        description="cluster-admin or admin is bound to a namespace's default ServiceAccount (or to all "
        "ServiceAccounts), which every pod that names no ServiceAccount uses.",
        remediation="Bind the role to a dedicated ServiceAccount used only by the workload that needs it, or "
        "drop the binding; check which pods ran as the default ServiceAccount since.",
        verbs=MODIFY_VERBS,
        resources=BINDING_RESOURCES,
        predicate=_default_sa_admin,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-202",
        title="Privileged role bound",
        severity=Severity.MEDIUM,
        type="PrivilegeEscalation:Kubernetes/RoleBindingCreated",
        mitre=("T1098.006",),
        catalog=(4,),
        description="A binding grants cluster-admin, admin, edit or a control-plane role.",
        remediation="Confirm the grant with its owner; prefer namespaced, least-privilege roles and bind people "
        "through groups managed in EKS access entries. Remove the binding if unexpected.",
        verbs=MODIFY_VERBS,
        resources=BINDING_RESOURCES,
        predicate=_privileged_binding,
        allow=_SYSTEM,
    ),
]
