"""Exposure rules (EKS-500..505): admission webhooks, exposed Services and dashboards, Ingresses without TLS,
new ServiceAccounts in system namespaces and new namespaces; then the real labelled fixtures."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_rbac_rules import (
    ALICE,
    audit_event,
    check_falco,
    check_falco_negative,
    check_panther,
    detect,
    falco_cases,
    falco_negatives,
    needs_datasets,
    of_rule,
    one,
    sa,
)
from test_rbac_rules import panther_cases as _panther_cases

from eksight.core.findings import Severity
from eksight.core.rules import exposure, rbac, workloads

RULES = exposure.RULES
ALL_RULES = rbac.RULES + workloads.RULES + exposure.RULES
ADMISSION = "admissionregistration.k8s.io"


def webhook(
    name: str,
    hooks: list[dict[str, Any]] | None,
    *,
    kind: str = "Mutating",
    verb: str = "create",
    user: Any = "alice@example.com",
) -> dict[str, Any]:
    resource = f"{kind.lower()}webhookconfigurations"
    body = (
        None
        if hooks is None
        else {"kind": f"{kind}WebhookConfiguration", "metadata": {"name": name}, "webhooks": hooks}
    )
    return audit_event(
        verb, resource, name="" if verb == "create" and body else name, request=body, api_group=ADMISSION, user=user
    )


def hook(groups: list[str], resources: list[str], *, url: str = "", name: str = "h.example.com") -> dict[str, Any]:
    client = {"url": url} if url else {"service": {"name": "svc", "namespace": "hooks", "path": "/mutate"}}
    return {
        "name": name,
        "clientConfig": client,
        "rules": [{"apiGroups": groups, "apiVersions": ["*"], "operations": ["CREATE"], "resources": resources}],
    }


def service(
    name: str,
    spec: dict[str, Any],
    *,
    namespace: str = "web",
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    verb: str = "create",
) -> dict[str, Any]:
    body = {
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}, "labels": labels or {}},
        "spec": spec,
    }
    return audit_event(verb, "services", namespace=namespace, name="" if verb == "create" else name, request=body)


def ingress(
    name: str,
    spec: dict[str, Any],
    *,
    annotations: dict[str, str] | None = None,
    verb: str = "create",
    request: Any = "full",
) -> dict[str, Any]:
    body = {
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": "web", "annotations": annotations or {}},
        "spec": spec,
    }
    return audit_event(
        verb,
        "ingresses",
        namespace="web",
        name=name,
        api_group="networking.k8s.io",
        request=body if request == "full" else request,
    )


HTTP_RULES = {"rules": [{"host": "shop.example.com", "http": {"paths": [{"path": "/", "pathType": "Prefix"}]}}]}


# --- EKS-500 admission webhooks ----------------------------------------------------------------------------------


def test_webhook_on_core_resources_calling_out_of_the_cluster_is_medium() -> None:
    finding = one(detect(RULES, webhook("grab", [hook(["*"], ["*"], url="https://203.0.113.9/m")])), "EKS-500")
    assert finding.severity == Severity.MEDIUM
    assert "outside the cluster" in finding.description and "https://203.0.113.9/m" in finding.description
    assert finding.resources[0].name == "grab"


def test_webhook_scope_decides_severity() -> None:
    findings = detect(
        RULES,
        webhook("pods", [hook([""], ["pods"])], kind="Validating"),
        webhook("crd-only", [hook(["cert-manager.io", "acme.cert-manager.io"], ["*/*"])]),
        webhook("unseen", None),
    )
    found = {f.resources[0].name: f.severity for f in of_rule(findings, "EKS-500")}
    assert found == {"pods": Severity.MEDIUM, "crd-only": Severity.LOW, "unseen": Severity.MEDIUM}


def test_aws_managed_webhooks_are_skipped_unless_they_call_out() -> None:
    findings = detect(
        RULES,
        webhook("pod-identity-webhook", [hook([""], ["pods"])]),
        webhook("vpc-resource-mutating-webhook", [hook([""], ["pods"])], verb="update"),
        webhook("eks-backdoor", [hook([""], ["pods"], url="https://evil.example/x")]),
        webhook("x", [hook([""], ["pods"])], user="eks:addon-manager"),
    )
    assert [f.resources[0].name for f in of_rule(findings, "EKS-500")] == ["eks-backdoor"]


def test_failed_and_malformed_webhooks() -> None:
    failed = webhook("w", [hook([""], ["pods"])])
    failed["responseStatus"] = {"code": 403}
    failed["annotations"] = {"authorization.k8s.io/decision": "forbid"}
    malformed = audit_event(
        "create",
        "mutatingwebhookconfigurations",
        name="m",
        api_group=ADMISSION,
        request={"kind": "MutatingWebhookConfiguration", "webhooks": [7, {"rules": "x", "clientConfig": []}]},
    )
    findings = detect(RULES, failed, malformed)
    assert [(f.resources[0].name, f.severity) for f in of_rule(findings, "EKS-500")] == [("m", Severity.MEDIUM)]


# --- EKS-501 / 502 exposed services and dashboards ------------------------------------------------------------------


def test_nodeport_and_load_balancer_services_are_low_with_reach() -> None:
    findings = detect(
        RULES,
        service("np", {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}),
        service("lb", {"type": "LoadBalancer", "ports": [{"port": 443, "targetPort": 8443}]}),
        service(
            "nlb",
            {"type": "LoadBalancer"},
            annotations={"service.beta.kubernetes.io/aws-load-balancer-type": "external"},
        ),
        service("cip", {"type": "ClusterIP"}),
    )
    found = {f.resources[0].name: f for f in of_rule(findings, "EKS-501")}
    assert set(found) == {"np", "lb", "nlb"} and all(f.severity == Severity.LOW for f in found.values())
    assert "node 30080" in found["np"].description
    assert found["lb"].details["internet_facing"] is True and found["nlb"].details["internet_facing"] is False


@pytest.mark.parametrize(
    ("event", "severity"),
    [
        (
            service(
                "kubernetes-dashboard",
                {"type": "LoadBalancer", "selector": {"k8s-app": "kubernetes-dashboard"}},
                namespace="kubernetes-dashboard",
            ),
            Severity.HIGH,
        ),
        (
            service("web", {"type": "LoadBalancer", "selector": {"app": "centraldashboard"}}, namespace="kubeflow"),
            Severity.HIGH,
        ),
        (
            service("dash", {"type": "NodePort"}, labels={"app.kubernetes.io/name": "kubernetes-dashboard"}),
            Severity.MEDIUM,
        ),
        (
            service("kubernetes-dashboard", {"type": "LoadBalancer", "loadBalancerSourceRanges": ["10.0.0.0/8"]}),
            Severity.MEDIUM,
        ),
        (
            service(
                "kubernetes-dashboard",
                {"type": "LoadBalancer"},
                annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
            ),
            Severity.MEDIUM,
        ),
    ],
    ids=["k8s-dashboard-internet", "kubeflow-internet", "nodeport", "source-ranges", "internal"],
)
def test_exposed_dashboard(event: dict[str, Any], severity: Severity) -> None:
    finding = one(detect(RULES, event), "EKS-502")
    assert finding.severity == severity and "dashboard" in finding.description.lower()


def test_dashboard_behind_cluster_ip_or_ordinary_load_balancer_is_not_exposed_dashboard() -> None:
    findings = detect(
        RULES,
        service("kubernetes-dashboard", {"type": "ClusterIP"}),
        service("shop", {"type": "LoadBalancer", "selector": {"app": "shop"}}),
    )
    assert not of_rule(findings, "EKS-502")


def test_patch_switching_a_service_to_load_balancer() -> None:
    patch = audit_event("patch", "services", namespace="web", name="api", request={"spec": {"type": "LoadBalancer"}})
    assert one(detect(RULES, patch), "EKS-501").severity == Severity.LOW
    unrelated = audit_event("patch", "services", namespace="web", name="api", request={"metadata": {"labels": {}}})
    assert not detect(RULES, unrelated)


# --- EKS-503 ingress without TLS ------------------------------------------------------------------------------------


def test_ingress_without_tls() -> None:
    finding = one(detect(RULES, ingress("shop", HTTP_RULES)), "EKS-503")
    assert finding.severity == Severity.LOW and "shop.example.com" in finding.description


def test_ingress_with_tls_alb_certificate_or_partial_patch_is_not_reported() -> None:
    findings = detect(
        RULES,
        ingress("a", {**HTTP_RULES, "tls": [{"hosts": ["shop.example.com"]}]}),
        ingress("b", HTTP_RULES, annotations={"alb.ingress.kubernetes.io/certificate-arn": "arn:x"}),
        ingress("c", HTTP_RULES, annotations={"alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS":443}]'}),
        ingress("d", {}, verb="patch", request={"spec": HTTP_RULES}),
        ingress("e", {}),
    )
    assert not of_rule(findings, "EKS-503")


# --- EKS-504 ServiceAccount in a system namespace, EKS-505 namespace --------------------------------------------------


def test_service_account_in_kube_system() -> None:
    findings = detect(
        RULES,
        audit_event("create", "serviceaccounts", namespace="kube-system", name="cluster-ops"),
        audit_event("create", "serviceaccounts", namespace="kube-public", name="x"),
        audit_event("create", "serviceaccounts", namespace="kube-system", name="aws-load-balancer-controller"),
        audit_event("create", "serviceaccounts", namespace="shop", name="api"),
        audit_event(
            "create",
            "serviceaccounts",
            namespace="kube-system",
            name="y",
            user=sa("kube-system", "service-account-controller"),
        ),
    )
    found = {f.resources[0].name: f.severity for f in of_rule(findings, "EKS-504")}
    assert found == {"cluster-ops": Severity.MEDIUM, "x": Severity.MEDIUM, "aws-load-balancer-controller": Severity.LOW}


def test_a_service_account_created_without_a_logged_name_is_described_plainly() -> None:
    """Creates are logged without objectRef.name; at Metadata level there is no body to read it from either."""
    unnamed = one(detect(RULES, audit_event("create", "serviceaccounts", namespace="kube-system")), "EKS-504")
    assert "created a ServiceAccount in kube-system; the audit record does not carry its name" in unnamed.description
    generated = audit_event(
        "create", "serviceaccounts", namespace="kube-system", request={"metadata": {"generateName": "builder-"}}
    )
    finding = one(detect(RULES, generated), "EKS-504")
    assert "ServiceAccount kube-system/builder-… (generated) created by" in finding.description
    assert "(unnamed)" not in unnamed.description + finding.description


def test_namespace_created_by_a_person_is_inventory() -> None:
    findings = detect(
        RULES,
        audit_event("create", "namespaces", name="billing"),
        audit_event("create", "namespaces", name="op", user=sa("argocd", "argocd-server")),
        audit_event("delete", "namespaces", name="old"),
    )
    finding = one(findings, "EKS-505")
    assert finding.severity == Severity.INFORMATIONAL and finding.resources[0].name == "billing"


# --- real fixtures -------------------------------------------------------------------------------------------------

FALCO = {
    "Create NodePort Service": ("EKS-501", Severity.LOW),
    "Service Account Created in Kube Namespace": ("EKS-504", Severity.MEDIUM),
    "Ingress Object without TLS Certificate Created": ("EKS-503", Severity.LOW),
}
PANTHER = {
    "Kubernetes.AdmissionController.Created": {"EKS-500"},
    "Kubernetes.Service.NodePort.Deployed": {"EKS-501"},
    "Kubernetes.Ingress.NoTLS": {"EKS-503"},
}


def panther_cases() -> list[Any]:
    return _panther_cases(PANTHER)


@needs_datasets
@pytest.mark.parametrize(("file", "falco_rule", "rule_id", "minimum"), falco_cases(FALCO))
def test_falco_traces(file: str, falco_rule: str, rule_id: str, minimum: Severity) -> None:
    check_falco(RULES, file, rule_id, minimum)


@needs_datasets
@pytest.mark.parametrize("file", [*falco_negatives(), "create_service.json", "create_serviceaccount.json"])
def test_falco_quiet_traces_raise_nothing_medium(file: str) -> None:
    check_falco_negative(RULES, file)


@needs_datasets
@pytest.mark.parametrize(("audit_id", "panther_rule", "test_name", "expected", "ours"), panther_cases())
def test_panther_rule_tests(
    audit_id: str, panther_rule: str, test_name: str, expected: str, ours: frozenset[str]
) -> None:
    check_panther(RULES, audit_id, expected, ours)


@needs_datasets
def test_fixture_coverage_is_not_vacuous() -> None:
    assert len(falco_cases(FALCO)) >= 2
    assert len([c for c in panther_cases() if c.values[3] == "true"]) >= 1


# --- untrusted bodies: no predicate of this area ever raises ---------------------------------------------------------

_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_KEYS = st.sampled_from(
    [
        "spec",
        "rules",
        "webhooks",
        "subjects",
        "roleRef",
        "metadata",
        "containers",
        "template",
        "volumes",
        "ephemeralContainers",
        "tls",
        "type",
        "securityContext",
        "hostPath",
        "path",
    ]
)
_SHAPED = st.recursive(_JSON, lambda inner: st.dictionaries(_KEYS, inner, max_size=4), max_leaves=20)
_TARGETS = st.sampled_from(
    [
        ("pods", ""),
        ("pods", "ephemeralcontainers"),
        ("deployments", ""),
        ("daemonsets", ""),
        ("cronjobs", ""),
        ("jobs", ""),
        ("clusterroles", ""),
        ("roles", ""),
        ("rolebindings", ""),
        ("clusterrolebindings", ""),
        ("services", ""),
        ("ingresses", ""),
        ("mutatingwebhookconfigurations", ""),
        ("serviceaccounts", ""),
        ("namespaces", ""),
    ]
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    target=_TARGETS,
    verb=st.sampled_from(["create", "update", "patch", "delete"]),
    request=_SHAPED,
    response=_SHAPED,
    namespace=st.sampled_from(["", "kube-system", "shop"]),
)
def test_predicates_never_raise_on_arbitrary_bodies(
    target: tuple[str, str], verb: str, request: Any, response: Any, namespace: str
) -> None:
    resource, subresource = target
    event = audit_event(
        verb,
        resource,
        namespace=namespace,
        name="x",
        subresource=subresource,
        request=request,
        response=response,
        user=sa("kube-system", "replicaset-controller") if namespace else ALICE,
    )
    detect(ALL_RULES, event)  # asserts that no predicate raised
