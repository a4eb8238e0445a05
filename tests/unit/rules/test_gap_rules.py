"""The gaps real and harder data exposed (issue 14, item 3): image provenance (EKS-311), control-plane namespace
workloads (EKS-312), security-control removal and what follows it (EKS-404/405), people from hosting providers
(EKS-136), refused anonymous requests from the internet (EKS-102), sweeps folded into one finding, Helm installs
of webhooks by the cluster creator (EKS-500), impersonation severity (EKS-135).

Hand-made events through the real pipeline (Detector + RuleEngine with every rule), as in test_access_rules.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_access_rules import ADMIN_MASTERS, BASE_TIME, SSO, detect, exec_event, make_event, of, sa

from eksight.core.cloud_ranges import provider_of
from eksight.core.findings import Severity
from eksight.core.rules import all_rules
from eksight.core.rules.workloads.provenance import registry_of

LOW, MEDIUM, HIGH = Severity.LOW, Severity.MEDIUM, Severity.HIGH
DAY = 86_400.0
RULES = all_rules()
REPLICASET_CONTROLLER = sa("kube-system", "replicaset-controller")
HELM = "Helm/3.14.4"


def run(*events: dict[str, Any]) -> list[Any]:
    return detect(*events, rules=RULES)


def deployment(namespace: str, name: str, image: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}},
    }


def pod(namespace: str, name: str, image: str, *, privileged: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": image}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
            "spec": {"containers": [container]}}  # fmt: skip


def write(verb: str, resource: str, namespace: str, body: dict[str, Any], at: float, **kw: Any) -> dict[str, Any]:
    api_group = "" if resource == "pods" else "apps"
    name = body["metadata"]["name"] if verb != "create" else ""
    return make_event(verb=verb, resource=resource, namespace=namespace, name=name, api_group=api_group,
                      request=body, at=at, **kw)  # fmt: skip


# --- image provenance (EKS-311) ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("nginx:1.25", "docker.io"),
        ("library/nginx", "docker.io"),
        ("index.docker.io/library/nginx", "docker.io"),
        ("quay.io/jetstack/cert-manager:v1", "quay.io"),
        ("localhost:5000/app", "localhost:5000"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:1", "ECR account 123456789012"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/other:2", "ECR account 123456789012"),
    ],
)
def test_registry_of(image: str, registry: str) -> None:
    assert registry_of(image) == registry


ECR_OWN = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/shop/web:1"


def test_ci_patching_to_a_registry_never_used_after_the_first_day_is_medium() -> None:
    ci = {"username": "arn:aws:sts::111122223333:assumed-role/github-deploy/GitHubActions", "groups": []}
    known = write("create", "pods", "shop", pod("shop", "web-1", ECR_OWN), BASE_TIME, user=REPLICASET_CONTROLLER)
    same = write("patch", "deployments", "shop", deployment("shop", "web", ECR_OWN.replace(":1", ":2")),
                 BASE_TIME + 2 * DAY, user=ci)  # fmt: skip
    foreign = write("patch", "deployments", "shop", deployment("shop", "web", "ghcr.io/evil/web:1"),
                    BASE_TIME + 2 * DAY + 60, user=ci)  # fmt: skip
    again = write("patch", "deployments", "shop", deployment("shop", "api", "ghcr.io/evil/api:1"),
                  BASE_TIME + 2 * DAY + 120, user=ci)  # fmt: skip
    found = of(run(known, same, foreign, again), "EKS-311")
    assert [f.severity for f in found] == [MEDIUM]  # the second use of ghcr.io is known by then
    assert "ghcr.io" in found[0].description and found[0].evidence == [foreign["auditID"]]


def test_new_registry_during_the_first_day_is_learning_and_controllers_only_teach() -> None:
    controller = write("create", "pods", "shop", pod("shop", "web-1", "quay.io/x/y:1"), BASE_TIME,
                       user=REPLICASET_CONTROLLER)  # fmt: skip
    person = write("create", "deployments", "shop", deployment("shop", "web", "docker.io/x/y:1"), BASE_TIME + 60)
    found = of(run(controller, person), "EKS-311")
    assert [f.severity for f in found] == [LOW]
    assert found[0].evidence == [person["auditID"]]


def test_helm_release_with_a_new_registry_is_low() -> None:
    first = write("create", "pods", "shop", pod("shop", "a", ECR_OWN), BASE_TIME, user=REPLICASET_CONTROLLER)
    chart = write("create", "deployments", "cert-manager",
                  deployment("cert-manager", "cert-manager", "quay.io/jetstack/cert-manager-controller:v1.14.4",
                             **{"app.kubernetes.io/managed-by": "Helm"}),
                  BASE_TIME + 3 * DAY)  # fmt: skip
    assert [f.severity for f in of(run(first, chart), "EKS-311")] == [LOW]


# --- control-plane namespaces (EKS-312) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "user", "ua", "image", "expected"),
    [
        ("kube-system", SSO, "kubectl/v1.30.2", "docker.io/library/alpine:3", LOW),
        ("kube-public", ADMIN_MASTERS, "kubectl/v1.30.2", "docker.io/library/alpine:3", LOW),
        ("kube-system", ADMIN_MASTERS, HELM, "public.ecr.aws/eks/aws-load-balancer-controller:v2", None),  # add-on
        ("kube-system", ADMIN_MASTERS, HELM, "registry.k8s.io/metrics-server:v0.7", LOW),
        ("kube-system", sa("kube-system", "helm-operator"), "helm-operator", "docker.io/x:1", None),  # own namespace
        ("kube-system", {"username": "eks:addon-manager", "groups": []}, "eks", "docker.io/x:1", None),
        ("shop", SSO, "kubectl/v1.30.2", "docker.io/library/alpine:3", None),
    ],
)
def test_workload_in_control_plane_namespace(
    namespace: str, user: dict[str, Any], ua: str, image: str, expected: Severity | None
) -> None:
    event = write("create", "daemonsets", namespace, deployment(namespace, "agent", image), BASE_TIME, user=user, ua=ua)
    found = of(run(event), "EKS-312")
    assert (found[0].severity if found else None) == expected


# --- security controls removed, and what follows (EKS-404, EKS-405) ----------------------------------------


def webhook_delete(at: float, user: dict[str, Any] = SSO, ua: str = "kubectl/v1.30.2") -> dict[str, Any]:
    return make_event(verb="delete", resource="validatingwebhookconfigurations", name="kyverno-resource-validating",
                      api_group="admissionregistration.k8s.io", at=at, user=user, ua=ua)  # fmt: skip


def netpol_delete(at: float) -> dict[str, Any]:
    return make_event(verb="delete", resource="networkpolicies", namespace="payments", name="default-deny",
                      api_group="networking.k8s.io", at=at)  # fmt: skip


def namespace_patch(labels: dict[str, Any], at: float) -> dict[str, Any]:
    return make_event(verb="patch", resource="namespaces", name="payments", at=at,
                      request={"metadata": {"labels": labels}})  # fmt: skip


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (webhook_delete(BASE_TIME), MEDIUM),
        (webhook_delete(BASE_TIME, ua=HELM), LOW),  # helm uninstall
        (webhook_delete(BASE_TIME, user=sa("argocd", "argocd-application-controller")), LOW),
        (netpol_delete(BASE_TIME), MEDIUM),
        (namespace_patch({"pod-security.kubernetes.io/enforce": "privileged"}, BASE_TIME), MEDIUM),
        (namespace_patch({"pod-security.kubernetes.io/enforce": None}, BASE_TIME), MEDIUM),
        (namespace_patch({"pod-security.kubernetes.io/enforce": "restricted"}, BASE_TIME), None),
        (namespace_patch({"team": "payments"}, BASE_TIME), None),
        (
            make_event(
                verb="delete",
                resource="configmaps",
                namespace="amazon-cloudwatch",
                name="fluent-bit-config",
                at=BASE_TIME,
            ),
            MEDIUM,
        ),
        (make_event(verb="delete", resource="configmaps", namespace="shop", name="web", at=BASE_TIME), None),
        (
            make_event(
                verb="delete",
                resource="networkpolicies",
                namespace="payments",
                name="x",
                code=403,
                api_group="networking.k8s.io",
                at=BASE_TIME,
            ),
            None,
        ),  # refused: nothing removed
    ],
)
def test_security_control_removed(event: dict[str, Any], expected: Severity | None) -> None:
    found = of(run(event), "EKS-404")
    assert (found[0].severity if found else None) == expected


def test_psa_label_dropped_by_a_full_update_is_seen_against_the_last_known_level() -> None:
    before = make_event(verb="update", resource="namespaces", name="payments", at=BASE_TIME,
                        request={"kind": "Namespace", "metadata": {"name": "payments", "labels": {
                            "pod-security.kubernetes.io/enforce": "restricted"}}})  # fmt: skip
    after = make_event(verb="update", resource="namespaces", name="payments", at=BASE_TIME + 60,
                       request={"kind": "Namespace", "metadata": {"name": "payments", "labels": {}}})  # fmt: skip
    found = of(run(before, after), "EKS-404")
    assert len(found) == 1 and found[0].evidence == [after["auditID"]] and "was restricted" in found[0].description


def test_exec_after_removing_a_control_is_high_only_for_the_same_principal_within_30_minutes() -> None:
    removal = netpol_delete(BASE_TIME)
    soon = exec_event(["sh"], namespace="payments", pod="api-1", at=BASE_TIME + 600)
    other = exec_event(["sh"], namespace="payments", pod="api-2", at=BASE_TIME + 700, user=ADMIN_MASTERS)
    late = exec_event(["sh"], namespace="payments", pod="api-3", at=BASE_TIME + 3 * 3600)
    found = of(run(removal, soon, other, late), "EKS-405")
    assert [f.severity for f in found] == [HIGH]
    assert (
        found[0].evidence == [soon["auditID"]] and "NetworkPolicy payments/default-deny deleted" in found[0].description
    )


def test_privileged_pod_after_removing_a_webhook_is_high_but_an_ordinary_one_is_not() -> None:
    removal = webhook_delete(BASE_TIME)
    plain = write("create", "pods", "shop", pod("shop", "a", "nginx:1"), BASE_TIME + 60)
    privileged = write("create", "pods", "shop", pod("shop", "b", "nginx:1", privileged=True), BASE_TIME + 120)
    found = of(run(removal, plain, privileged), "EKS-405")
    assert [f.evidence for f in found] == [[privileged["auditID"]]]


# --- a person from a hosting provider (EKS-136) ---------------------------------------------------------------


def test_cloud_range_table_lookup() -> None:
    assert provider_of("5.161.20.30") is not None and provider_of("5.161.20.30").provider == "hetzner"
    assert provider_of("::ffff:159.89.1.1") is not None and provider_of("::ffff:159.89.1.1").provider == "digitalocean"
    assert provider_of("52.94.76.1") is not None and provider_of("52.94.76.1").provider == "aws"
    assert provider_of("10.0.0.1") is None and provider_of("192.0.2.1") is None and provider_of("nonsense") is None


def test_person_from_a_rented_server_after_the_first_day_is_medium_once() -> None:
    usual = make_event(ip="203.0.113.10", at=BASE_TIME)  # documentation range: not a provider
    vps = make_event(ip="5.161.20.30", at=BASE_TIME + 2 * DAY, verb="create", resource="pods", namespace="prod",
                     name="web-1", subresource="exec")  # fmt: skip
    again = make_event(ip="5.161.20.31", at=BASE_TIME + 2 * DAY + 4000)  # same range, next hour: known now
    found = of(run(usual, vps, again), "EKS-136")
    assert [f.severity for f in found] == [MEDIUM]
    assert "hetzner" in found[0].description and found[0].evidence == [vps["auditID"]]


@pytest.mark.parametrize(
    ("ip", "offset", "user", "expected"),
    [
        ("5.161.20.30", 60.0, SSO, LOW),  # the identity's first day: learning
        ("52.94.76.1", 2 * DAY, SSO, LOW),  # AWS: corporate egress lives there too
        ("5.161.20.30", 2 * DAY, sa("shop", "web"), None),  # workloads: EKS-131's
        ("10.0.3.7", 2 * DAY, SSO, None),
    ],
)
def test_hosting_address_severity(ip: str, offset: float, user: dict[str, Any], expected: Severity | None) -> None:
    first = make_event(ip="203.0.113.10", at=BASE_TIME, user=user)
    event = make_event(ip=ip, at=BASE_TIME + offset, user=user)
    found = of(run(first, event), "EKS-136")
    assert (found[0].severity if found else None) == expected


# --- refused anonymous requests from the internet (EKS-102) -------------------------------------------------


def test_refused_anonymous_requests_from_the_internet_are_one_low_finding_listing_the_probes() -> None:
    anon = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    probes = [
        make_event(user=anon, resource="secrets", verb="list", code=403, ip="45.155.205.7", at=BASE_TIME),
        make_event(user=anon, resource="pods", verb="list", code=403, ip="45.155.205.8", at=BASE_TIME + 1),
        make_event(
            user={"username": "", "groups": []},
            resource="",
            uri="/api/v1/nodes",
            code=401,
            ip="8.8.8.8",
            at=BASE_TIME + 2,
        ),
        make_event(user=anon, resource="", uri="/version", code=403, ip="45.155.205.9", at=BASE_TIME + 3),
        make_event(user=anon, resource="pods", verb="list", code=403, ip="10.0.0.9", at=BASE_TIME + 4),  # in VPC
    ]
    found = of(run(*probes), "EKS-102")
    assert sum(len(f.evidence) for f in found) == 3 and all(f.severity == LOW for f in found)
    assert {r.kind for f in found for r in f.resources} >= {"secrets", "pods"}


# --- sweeps fold; impersonation; Helm webhooks by the cluster creator ------------------------------------------


def test_an_impersonated_discovery_sweep_is_one_finding_naming_the_objects() -> None:
    sweep = [
        make_event(verb="list", resource=kind, namespace="shop", impersonated={"username": "bob"}, at=BASE_TIME + i)
        for i, kind in enumerate(("pods", "secrets", "configmaps", "services", "deployments", "roles"))
    ]
    found = of(run(*sweep), "EKS-135")
    assert len(found) == 1 and found[0].count == 6 and found[0].severity == LOW
    assert [r.kind for r in found[0].resources] == ["pods", "secrets", "configmaps", "services", "deployments", "roles"]


def test_admin_impersonating_an_ordinary_service_account_is_low() -> None:
    event = make_event(verb="get", resource="pods", namespace="shop", user=ADMIN_MASTERS,
                       impersonated={"username": "system:serviceaccount:shop:web"})  # fmt: skip
    assert [f.severity for f in of(run(event), "EKS-135")] == [LOW]


def webhook(ua: str, user: dict[str, Any], url: str = "", **labels: str) -> dict[str, Any]:
    config = {"url": url} if url else {"service": {"name": "cert-manager-webhook", "namespace": "cert-manager"}}
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "cert-manager-webhook", "labels": labels},
        "webhooks": [{"name": "webhook.cert-manager.io", "clientConfig": config,
                      "rules": [{"apiGroups": ["cert-manager.io", ""], "resources": ["*"], "operations": ["CREATE"]}]}],
    }  # fmt: skip
    return make_event(verb="create", resource="validatingwebhookconfigurations", user=user, ua=ua, request=body,
                      api_group="admissionregistration.k8s.io")  # fmt: skip


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (webhook(HELM, ADMIN_MASTERS), LOW),
        (webhook("kubectl/v1.30.2", ADMIN_MASTERS, **{"app.kubernetes.io/managed-by": "Helm"}), LOW),
        (webhook("kubectl/v1.30.2", ADMIN_MASTERS), MEDIUM),  # by hand
        (webhook(HELM, SSO), MEDIUM),  # someone else
        (webhook(HELM, ADMIN_MASTERS, url="https://x.ngrok-free.app/validate"), MEDIUM),  # calls out
    ],
)
def test_webhooks_installed_with_helm_by_the_cluster_creator(event: dict[str, Any], expected: Severity) -> None:
    assert [f.severity for f in of(run(event), "EKS-500")] == [expected]


def test_people_sharing_one_sso_role_are_different_actors_after_a_removal() -> None:
    """Both sessions map to the same role (one principal key); only the remover's own exec follows its removal."""
    other = {**SSO, "username": SSO["username"].replace("alice", "carol"),
             "extra": {**SSO["extra"], "sessionName": ["carol@example.com"]}}  # fmt: skip
    removal = netpol_delete(BASE_TIME)
    colleague = exec_event(["sh"], namespace="payments", pod="api-1", at=BASE_TIME + 60, user=other)
    remover = exec_event(["sh"], namespace="payments", pod="api-2", at=BASE_TIME + 120)
    found = of(run(removal, colleague, remover), "EKS-405")
    assert [f.evidence for f in found] == [[remover["auditID"]]]
