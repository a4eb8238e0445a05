"""The RBAC vocabulary the rules judge by (role classes, bootstrap objects, resource sets) and the helpers
the binding, role and change rules share."""

from __future__ import annotations

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules.base import AllowList, RuleContext
from eksight.core.rules.common import object_name

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
