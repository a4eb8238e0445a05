"""Exposure rules: admission webhooks (code that sees or rewrites every matching request), Services and
Ingresses that open the cluster to the network, and new identities or namespaces.

Severity follows reach. A webhook scoped to its own CRD group (cert-manager's) sees only its own objects:
LOW. One that intercepts core or built-in API groups, or sends admission requests to a URL outside the
cluster, sees pods and secrets as they are written: MEDIUM. A dashboard behind an internet-facing load
balancer is the classic cluster takeover: HIGH.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import (
    HUMAN_KINDS,
    NAME_NOT_LOGGED,
    SYSTEM_NAMESPACES,
    dry_run,
    helm_managed,
    object_name,
    shown_name,
)
from eksight.core.untrusted import as_dict, as_list

WRITE = frozenset({"create", "update", "patch"})
WEBHOOK_RESOURCES = frozenset({"mutatingwebhookconfigurations", "validatingwebhookconfigurations"})

# Webhooks of AWS-managed components (Pod Identity / IRSA, VPC resource controller, AWS Load Balancer
# Controller). Matched by name, so a known name that calls out of the cluster is still reported.
KNOWN_WEBHOOKS = (
    "eks-*",
    "pod-identity-webhook",
    "vpc-resource-*",
    "aws-load-balancer-webhook*",
    "elbv2.k8s.aws*",
    "amazon-eks-*",
)

# The identity that created the cluster: kubeadm's admin kubeconfig, and EKS's cluster-creator mapping.
CLUSTER_CREATORS = frozenset({"kubernetes-admin"})

DASHBOARD = re.compile(r"kubernetes-dashboard|k8s-dashboard|kube-dashboard|centraldashboard|headlamp", re.IGNORECASE)
KUBEFLOW = re.compile(r"centraldashboard|kubeflow", re.IGNORECASE)

# ServiceAccounts the usual EKS add-ons create in kube-system when installed with Helm or eksctl.
KNOWN_ADDON_SERVICE_ACCOUNTS = (
    "aws-load-balancer-controller",
    "cluster-autoscaler",
    "ebs-csi-controller-sa",
    "ebs-csi-node-sa",
    "efs-csi-controller-sa",
    "efs-csi-node-sa",
    "external-dns",
    "karpenter",
    "metrics-server",
    "aws-node",
    "coredns",
    "kube-proxy",
    "aws-cloudwatch-metrics",
    "fluent-bit",
    "cloudwatch-agent",
    "aws-node-termination-handler",
    "secrets-store-csi-driver",
    "csi-secrets-store-provider-aws",
)

# AWS Load Balancer Controller: TLS is configured by annotations, not spec.tls.
ALB_TLS_ANNOTATIONS = ("alb.ingress.kubernetes.io/certificate-arn", "alb.ingress.kubernetes.io/ssl-policy")


# --- helpers ---------------------------------------------------------------------------------------------


def _strs(value: Any) -> list[str]:
    return [v for v in as_list(value) if isinstance(v, str)]


def _object(ctx: RuleContext) -> dict[str, Any]:
    """The object as written (the request; a patch's response when logged, else the patch itself)."""
    body = ctx.body
    return body if isinstance(body, dict) else {}


def _annotations(obj: dict[str, Any]) -> dict[str, Any]:
    return as_dict(as_dict(obj.get("metadata")).get("annotations"))


def _target(ctx: RuleContext) -> ResourceRef:
    return ResourceRef(ctx.event.namespace, ctx.event.resource, object_name(ctx))


def _builtin_group(group: str) -> bool:
    return group in ("", "*") or "." not in group or (group.endswith(".k8s.io") and not group.endswith("x-k8s.io"))


# --- #27 admission webhooks ----------------------------------------------------------------------------------


def _webhook(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    obj = _object(ctx)
    name = object_name(ctx)
    kind = (
        "MutatingWebhookConfiguration"
        if ctx.event.resource.startswith("mutating")
        else "ValidatingWebhookConfiguration"
    )
    webhooks = [w for w in as_list(obj.get("webhooks")) if isinstance(w, dict)]
    external: list[str] = []
    broad: list[str] = []
    for hook in webhooks:
        hook_name = hook.get("name") if isinstance(hook.get("name"), str) else "?"
        url = as_dict(hook.get("clientConfig")).get("url")
        if isinstance(url, str) and url:
            external.append(f"{hook_name} → {url}")
        for rule in as_list(hook.get("rules")):
            rule = as_dict(rule)
            groups = _strs(rule.get("apiGroups"))
            if any(_builtin_group(g) for g in groups):
                resources = ", ".join(_strs(rule.get("resources"))) or "?"
                operations = ", ".join(_strs(rule.get("operations"))) or "?"
                shown = ", ".join(repr(g) for g in groups)
                broad.append(f"{hook_name} intercepts {operations} on {resources} in API groups {shown}")
    if not external and any(fnmatch.fnmatchcase(name, pattern) for pattern in KNOWN_WEBHOOKS):
        return None
    scope_known = any(as_list(hook.get("rules")) for hook in webhooks)
    if external or broad:
        severity = Severity.MEDIUM
    elif not scope_known and ctx.event.verb == "create":
        severity = Severity.MEDIUM  # created without a visible scope (body not logged): assume the worst
    else:
        severity = Severity.LOW
    # The cluster creator installing a chart that ships its own webhooks (cert-manager, ingress-nginx, Kyverno):
    # how clusters are built. A webhook calling out of the cluster stays MEDIUM whoever installs it.
    helm_by_creator = ctx.principal.name in CLUSTER_CREATORS and helm_managed(ctx) and not external
    if helm_by_creator:
        severity = Severity.LOW
    parts = []
    if external:
        parts.append(f"sends admission requests outside the cluster ({'; '.join(external)})")
    if broad:
        parts.append("; ".join(broad[:3]) + (f"; and {len(broad) - 3} more" if len(broad) > 3 else ""))
    if not parts:
        parts.append("scope limited to custom API groups" if scope_known else "scope not shown in the log")
    if helm_by_creator:
        parts.append(f"installed with Helm by the cluster creator {ctx.principal.name}")
    action = {"create": "created", "update": "updated", "patch": "patched"}.get(ctx.event.verb, ctx.event.verb)
    return Hit(
        detail=f"{kind} {name} {action}: {'; '.join(parts)}.",
        severity=severity,
        target=_target(ctx),
        details={"external_urls": external, "built_in_scope": broad},
    )


# --- #28 exposed services -------------------------------------------------------------------------------------


def _service_exposure(ctx: RuleContext) -> tuple[str, bool, dict[str, Any]] | None:
    """(type, internet-facing, spec) of a NodePort/LoadBalancer Service being written, else None."""
    if dry_run(ctx):
        return None
    obj = _object(ctx)
    spec = as_dict(obj.get("spec"))
    kind = spec.get("type")
    if kind not in ("NodePort", "LoadBalancer"):
        return None
    if kind == "NodePort":
        return kind, False, spec
    annotations = _annotations(obj)
    scheme = str(annotations.get("service.beta.kubernetes.io/aws-load-balancer-scheme", "")).lower()
    internal_flag = str(annotations.get("service.beta.kubernetes.io/aws-load-balancer-internal", "")).lower()
    lb_type = str(annotations.get("service.beta.kubernetes.io/aws-load-balancer-type", "")).lower()
    controller_managed = lb_type in ("external", "nlb-ip") or spec.get("loadBalancerClass") == "service.k8s.aws/nlb"
    if scheme:
        internet = scheme == "internet-facing"
    elif internal_flag in ("true", "0.0.0.0/0"):
        internet = False
    else:
        internet = not controller_managed  # the in-tree provider defaults to internet-facing, the AWS LBC not
    ranges = _strs(spec.get("loadBalancerSourceRanges"))
    if ranges and "0.0.0.0/0" not in ranges and "::/0" not in ranges:
        internet = False
    return kind, internet, spec


def _ports(spec: dict[str, Any]) -> str:
    shown = []
    for port in as_list(spec.get("ports")):
        port = as_dict(port)
        text = f"{port.get('port', '?')}→{port.get('targetPort', port.get('port', '?'))}"
        if port.get("nodePort"):
            text += f" (node {port['nodePort']})"
        shown.append(text)
    return ", ".join(shown) or "no ports shown"


def _exposed_service(ctx: RuleContext) -> Hit | None:
    found = _service_exposure(ctx)
    if found is None:
        return None
    kind, internet, spec = found
    reach = (
        "internet-facing load balancer"
        if internet
        else ("internal load balancer" if kind == "LoadBalancer" else "a port on every node")
    )
    selector = ", ".join(f"{k}={v}" for k, v in as_dict(spec.get("selector")).items()) or "none"
    return Hit(
        detail=f"Service {ctx.event.namespace}/{object_name(ctx)} of type {kind} ({reach}); ports "
        f"{_ports(spec)}; selector {selector}.",
        target=_target(ctx),
        details={"type": kind, "internet_facing": internet},
    )


def _exposed_dashboard(ctx: RuleContext) -> Hit | None:
    found = _service_exposure(ctx)
    if found is None:
        return None
    kind, internet, spec = found
    obj = _object(ctx)
    metadata = as_dict(obj.get("metadata"))
    texts = [object_name(ctx), ctx.event.namespace, str(metadata.get("namespace", ""))]
    texts += [str(v) for v in as_dict(spec.get("selector")).values()]
    texts += [str(v) for v in as_dict(metadata.get("labels")).values()]
    matched = next((t for t in texts if t and DASHBOARD.search(t)), None)
    if matched is None:
        return None
    product = "Kubeflow central dashboard" if KUBEFLOW.search(matched) else "Kubernetes dashboard"
    reach = (
        "an internet-facing load balancer"
        if internet
        else ("an internal load balancer" if kind == "LoadBalancer" else "a NodePort on every node")
    )
    return Hit(
        detail=f"Service {ctx.event.namespace}/{object_name(ctx)} exposes the {product} ({matched!r}) "
        f"through {reach}; ports {_ports(spec)}.",
        severity=Severity.HIGH if internet else Severity.MEDIUM,
        target=_target(ctx),
        details={"dashboard": product, "type": kind, "internet_facing": internet},
    )


# --- #29 ingress without TLS ----------------------------------------------------------------------------------


def _ingress_without_tls(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    obj = _object(ctx)
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return None
    if ctx.event.verb == "patch" and obj.get("kind") != "Ingress":
        return None  # a partial patch does not show whether TLS is configured
    rules = as_list(spec.get("rules"))
    if not rules and not spec.get("defaultBackend") and not spec.get("backend"):
        return None
    if as_list(spec.get("tls")):
        return None
    annotations = _annotations(obj)
    if any(annotations.get(key) for key in ALB_TLS_ANNOTATIONS) or "HTTPS" in str(
        annotations.get("alb.ingress.kubernetes.io/listen-ports", "")
    ):
        return None  # TLS terminated at the ALB
    hosts = [str(as_dict(r).get("host")) for r in rules if as_dict(r).get("host")]
    scheme = annotations.get("alb.ingress.kubernetes.io/scheme")
    where = f" (ALB scheme {scheme})" if isinstance(scheme, str) else ""
    return Hit(
        detail=f"Ingress {ctx.event.namespace}/{object_name(ctx)} serves "
        f"{', '.join(hosts) or 'all hosts'} over plain HTTP{where}: no spec.tls and no ALB "
        "certificate.",
        target=_target(ctx),
    )


# --- #46 new identities and namespaces --------------------------------------------------------------------------


def _service_account_in_system_namespace(ctx: RuleContext) -> Hit | None:
    namespace = ctx.event.namespace
    if namespace not in SYSTEM_NAMESPACES or dry_run(ctx):
        return None
    name = object_name(ctx)
    known = name in KNOWN_ADDON_SERVICE_ACCOUNTS
    why = "the usual name of an add-on's account" if known else "an identity there blends in with add-ons"
    detail = (
        f"ServiceAccount {namespace}/{shown_name(ctx)} created by {ctx.principal.display}: {why}."
        if name
        else f"{ctx.principal.display} created a ServiceAccount in {namespace}; the audit record does not carry its "
        f"name (the request body was not logged): list the service accounts of {namespace} by creation time to "
        "find it."
    )
    return Hit(
        detail=detail,
        severity=Severity.LOW if known else None,
        target=_target(ctx),
    )


def _namespace_by_person(ctx: RuleContext) -> Hit | None:
    if ctx.principal.kind not in HUMAN_KINDS or dry_run(ctx):
        return None
    name = object_name(ctx) or ctx.event.namespace
    return Hit(
        detail=f"Namespace {name or NAME_NOT_LOGGED} created by {ctx.principal.display}.",
        target=ResourceRef("", "namespaces", name),
    )


# --- rules -------------------------------------------------------------------------------------------------------

_SYSTEM = defaults.SYSTEM

RULES: list[Rule] = [
    Rule(
        id="EKS-500",
        title="Admission webhook created or modified",
        severity=Severity.MEDIUM,
        type="Persistence:Kubernetes/AdmissionWebhookChanged",
        mitre=("T1546", "T1557"),
        catalog=(27,),
        description="A mutating or validating webhook configuration was written. A webhook on core or built-in "
        "API groups, or calling a URL outside the cluster, sees (and can rewrite) pods, secrets and "
        "RBAC objects as they are created. The cluster creator (kubernetes-admin) installing a chart's "
        "webhooks with Helm is LOW unless a webhook calls outside the cluster.",
        remediation="Check the webhook's owner, its service or URL and its rules; remove it if unknown, and list "
        "what it may have mutated since.",
        verbs=WRITE,
        resources=WEBHOOK_RESOURCES,
        predicate=_webhook,
        allow=_SYSTEM,
        routine=(
            "Add-on upgrades re-apply their webhook configurations; an admin who routinely does so "
            "from the same network and tool is upgrading, not implanting."
        ),
    ),
    Rule(
        id="EKS-501",
        title="Service exposed outside the cluster",
        severity=Severity.LOW,
        type="Policy:Kubernetes/ServiceExposed",
        mitre=("T1133",),
        catalog=(28,),
        description="A Service of type NodePort or LoadBalancer was created or changed.",
        remediation="Confirm the exposure is intended; prefer internal load balancers, loadBalancerSourceRanges "
        "and an Ingress with TLS.",
        verbs=WRITE,
        resources=frozenset({"services"}),
        predicate=_exposed_service,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-502",
        title="Dashboard exposed outside the cluster",
        severity=Severity.HIGH,
        type="Policy:Kubernetes/ExposedDashboard",
        mitre=("T1133", "T1190"),
        catalog=(28,),
        description="A NodePort or LoadBalancer Service fronts the Kubernetes or Kubeflow dashboard (HIGH when "
        "the load balancer is internet-facing).",
        remediation="Make the Service ClusterIP and reach the dashboard through kubectl port-forward or an "
        "authenticated proxy; check the dashboard's ServiceAccount permissions.",
        verbs=WRITE,
        resources=frozenset({"services"}),
        predicate=_exposed_dashboard,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-503",
        title="Ingress without TLS",
        severity=Severity.LOW,
        type="Policy:Kubernetes/IngressWithoutTLS",
        mitre=("T1040", "T1133"),
        catalog=(29,),
        description="An Ingress was written without spec.tls or an ALB certificate: its traffic is plain HTTP.",
        remediation="Add spec.tls or the alb.ingress.kubernetes.io/certificate-arn annotation.",
        verbs=WRITE,
        resources=frozenset({"ingresses"}),
        predicate=_ingress_without_tls,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-504",
        title="ServiceAccount created in a system namespace",
        severity=Severity.MEDIUM,
        type="Persistence:Kubernetes/ServiceAccountCreatedInSystemNamespace",
        mitre=("T1136", "T1036.005"),
        catalog=(46,),
        description="An identity other than the control plane created a ServiceAccount in kube-system, kube-public "
        "or kube-node-lease.",
        remediation="Confirm which add-on the ServiceAccount belongs to and what it is bound to.",
        verbs=frozenset({"create"}),
        resources=frozenset({"serviceaccounts"}),
        predicate=_service_account_in_system_namespace,
        allow=_SYSTEM,
    ),
    Rule(
        id="EKS-505",
        title="Namespace created by a person or pipeline",
        severity=Severity.INFORMATIONAL,
        type="Policy:Kubernetes/NamespaceCreated",
        mitre=("T1578",),
        catalog=(46,),
        description="Inventory: a namespace was created by an identity that is not a controller.",
        remediation="None needed; useful context when investigating related findings.",
        verbs=frozenset({"create"}),
        resources=frozenset({"namespaces"}),
        predicate=_namespace_by_person,
        allow=_SYSTEM,
    ),
]
