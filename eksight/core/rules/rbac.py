"""RBAC rules: who is granted what (bindings), what a role grants (rule lines), and who changes RBAC.

Severity follows what the event proves, not what it might mean:

* A binding is judged by the role it references and the subjects it names. Admin-class roles bound
  cluster-wide to workload identities (ServiceAccounts) or to everyone (`system:authenticated`) are HIGH;
  to a named person MEDIUM; namespaced delegation to a person (the normal way teams get access) LOW.
* A role is judged line by line; the detail names the riskiest lines. A `create` (or a patch that rewrites
  `rules`) proves the grant is new; an `update` re-sends the whole object (Helm, `kubectl replace`), so
  the line may have been there before: one level lower.
* ServiceAccounts of `kube-system` that are not the control plane's own controllers are add-ons an
  operator installed; their RBAC writes are reported at LOW (the allow-lists drop the controllers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import AllowList, Hit, Rule, RuleContext
from eksight.core.rules.common import dry_run, object_name
from eksight.core.workloads import Binding, RbacRule, Subject, binding, rbac_rules

RBAC_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
ROLE_RESOURCES = frozenset({"roles", "clusterroles"})
BINDING_RESOURCES = frozenset({"rolebindings", "clusterrolebindings"})
MODIFY_VERBS = frozenset({"create", "update", "patch"})

ANONYMOUS_SUBJECTS = frozenset({"system:anonymous", "system:unauthenticated"})
BROAD_GROUPS = frozenset({"system:authenticated", "system:serviceaccounts", "system:nodes", *ANONYMOUS_SUBJECTS})

# Built-in ClusterRoles that amount to full control (of the cluster, or of a namespace when bound there).
ADMIN_ROLES = frozenset({"cluster-admin", "admin"})
# Control-plane roles: never bound to anything but the component they are named after.
CONTROL_PLANE_ROLES = frozenset(
    {
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:node",
        "system:kubelet-api-admin",
        "system:kube-aggregator",
        "system:persistent-volume-provisioner",
        "system:node-bootstrapper",
    }
)
CONTROL_PLANE_ROLE_PREFIXES = ("system:controller:", "eks:")
WRITE_ROLES = frozenset({"edit"})
# The default grant to unauthenticated users (version, health): re-binding it is not an exposure.
DEFAULT_PUBLIC_ROLES = frozenset({"system:public-info-viewer"})

# Kubernetes' bootstrap RBAC (reconciled by the API server) and EKS's own objects.
BOOTSTRAP_NAMES = frozenset(
    {
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-admin",
        "system:aggregate-to-edit",
        "system:aggregate-to-view",
        "system:auth-delegator",
        "system:basic-user",
        "system:discovery",
        "system:heapster",
        "system:kube-aggregator",
        "system:kube-controller-manager",
        "system:kube-dns",
        "system:kube-scheduler",
        "system:kubelet-api-admin",
        "system:monitoring",
        "system:node",
        "system:node-bootstrapper",
        "system:node-problem-detector",
        "system:node-proxier",
        "system:persistent-volume-provisioner",
        "system:public-info-viewer",
        "system:service-account-issuer-discovery",
        "system:volume-scheduler",
        "extension-apiserver-authentication-reader",
    }
)
BOOTSTRAP_PREFIXES = ("system:controller:", "system:certificates.k8s.io:", "system::", "eks:")

# Operators that apply RBAC from a reviewed source (GitOps) or install software for a living.
KNOWN_RBAC_OPERATORS = AllowList(
    principals=(
        "sa:*/argocd-application-controller",
        "sa:*/argocd-server",
        "sa:flux-system/kustomize-controller",
        "sa:flux-system/helm-controller",
        "sa:olm/olm-operator",
        "sa:olm/catalog-operator",
    )
)

RBAC_GROUP = "rbac.authorization.k8s.io"
READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# Resources where "every verb" means credentials, code execution or control over who may do what.
SENSITIVE_RESOURCES = frozenset(
    {
        "secrets",
        "pods",
        "serviceaccounts",
        "nodes",
        "configmaps",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "replicationcontrollers",
        "roles",
        "clusterroles",
        "rolebindings",
        "clusterrolebindings",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "customresourcedefinitions",
        "persistentvolumes",
        "namespaces",
        "certificatesigningrequests",
    }
)
WORKLOAD_RESOURCES = frozenset(
    {
        "pods",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "replicationcontrollers",
    }
)


# --- shared helpers --------------------------------------------------------------------------------------


def addon_service_account(ctx: RuleContext) -> bool:
    """A kube-system ServiceAccount that is not one of the control plane's (those are allow-listed)."""
    principal = ctx.principal
    return principal.kind == "service_account" and principal.namespace == "kube-system"


def target(ctx: RuleContext) -> ResourceRef:
    return ResourceRef(ctx.event.namespace, ctx.event.resource, object_name(ctx))


def lower(severity: Severity, floor: Severity = Severity.LOW) -> Severity:
    return Severity(max(int(floor), int(severity) - 1))


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
    if rule.non_resource_urls and not rule.resources:
        return f"rules[{index}] nonResourceURLs={list(rule.non_resource_urls)} verbs={list(rule.verbs)}"
    return f"rules[{index}] apiGroups={list(rule.api_groups)} resources={list(rule.resources)} verbs={list(rule.verbs)}"


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
    return Hit(detail=f"{ctx.event.resource[:-1]} {object_name(ctx) or '(unnamed)'}{ns} {verb}.", target=target(ctx))


# --- rules --------------------------------------------------------------------------------------------------------

_BINDINGS = frozenset(BINDING_RESOURCES)
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
        resources=_BINDINGS,
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
        resources=_BINDINGS,
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
        resources=_BINDINGS,
        predicate=_privileged_binding,
        allow=_SYSTEM,
    ),
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
