"""Workload rules (EKS-300..310): hand-made pods and pod templates for each rule, the real labelled fixtures
for the ideas they cover, and the dev cluster with all three of this area's rule modules (rbac, workloads,
exposure): its signature scenarios caught at MEDIUM+, and MEDIUM+ findings on benign events counted."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import pytest
from test_rbac_rules import (
    DATASETS,
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
    panther_cases,
    sa,
)

from eksight.core.decode import SourceContext, decode_path
from eksight.core.detector import Detector
from eksight.core.findings import Severity
from eksight.core.rules import exposure, rbac, workloads
from eksight.core.rules.engine import RuleEngine
from eksight.core.rules.workloads import host_path_severity

RULES = workloads.RULES
CI = {
    "username": "arn:aws:sts::111122223333:assumed-role/github-actions-deploy/GitHubActions",
    "groups": ["ci-deployers", "system:authenticated"],
    "extra": {
        "canonicalArn": ["arn:aws:iam::111122223333:role/github-actions-deploy"],
        "sessionName": ["GitHubActions"],
    },
}
ADDON_IMAGE = "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.18.3"


def container(name: str = "app", image: str = "nginx:1.27", **security: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "image": image}
    if security:
        item["securityContext"] = security
    return item


def pod_spec(*containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"containers": list(containers) or [container()], **spec}


def pod(
    spec: dict[str, Any],
    *,
    namespace: str = "shop",
    name: str = "p",
    user: Any = CI,
    verb: str = "create",
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    body = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": namespace, **(metadata or {})},
        "spec": spec,
    }
    return audit_event(
        verb, "pods", namespace=namespace, name="" if verb == "create" else name, user=user, request=body, **kwargs
    )


def workload(
    kind: str,
    spec: dict[str, Any],
    *,
    namespace: str = "shop",
    name: str = "w",
    user: Any = CI,
    verb: str = "create",
    **kwargs: Any,
) -> dict[str, Any]:
    resource = {
        "Deployment": "deployments",
        "DaemonSet": "daemonsets",
        "StatefulSet": "statefulsets",
        "Job": "jobs",
        "CronJob": "cronjobs",
    }[kind]
    template = {"template": {"metadata": {"labels": {"app": name}}, "spec": spec}}
    body_spec = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": template}} if kind == "CronJob" else template
    body = {"kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": body_spec}
    return audit_event(
        verb,
        resource,
        namespace=namespace,
        name="" if verb == "create" else name,
        user=user,
        request=body,
        api_group="batch" if kind in ("Job", "CronJob") else "apps",
        **kwargs,
    )


def volume(path: str) -> dict[str, Any]:
    return {"name": path.strip("/").replace("/", "-") or "root", "hostPath": {"path": path}}


# --- EKS-300 ephemeral containers -------------------------------------------------------------------------------------


def test_ephemeral_container_names_container_and_image() -> None:
    body = {
        "spec": {"ephemeralContainers": [{"name": "debugger-x", "image": "busybox:1.36", "targetContainerName": "app"}]}
    }
    event = audit_event(
        "patch", "pods", namespace="shop", name="web-1", subresource="ephemeralcontainers", request=body
    )
    finding = one(detect(RULES, event), "EKS-300")
    assert finding.severity == Severity.MEDIUM
    assert "debugger-x" in finding.description and "busybox:1.36" in finding.description
    assert finding.resources[0].kind == "pods/ephemeralcontainers"


def test_ephemeral_container_without_body_still_reported_but_not_a_plain_pod_patch() -> None:
    bodiless = audit_event("patch", "pods", namespace="shop", name="web-1", subresource="ephemeralcontainers")
    plain = audit_event("patch", "pods", namespace="shop", name="web-1", request={"metadata": {"labels": {"a": "b"}}})
    findings = detect(RULES, bodiless, plain)
    assert "no container in the logged body" in one(findings, "EKS-300").description


# --- EKS-301 / 302 privileged, root ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        pod_spec(container(privileged=True)),
        pod_spec(container(), initContainers=[container("init", "busybox", privileged=True)]),
    ],
    ids=["container", "init-container"],
)
def test_privileged_container_in_a_pod(spec: dict[str, Any]) -> None:
    finding = one(detect(RULES, pod(spec)), "EKS-301")
    assert finding.severity == Severity.HIGH and "privileged: true" in finding.description


@pytest.mark.parametrize("kind", ["Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob"])
def test_privileged_container_in_a_pod_template(kind: str) -> None:
    finding = one(
        detect(RULES, workload(kind, pod_spec(container("agent", "evil/agent:1", privileged=True)))), "EKS-301"
    )
    assert "agent (image evil/agent:1)" in finding.description and kind in finding.description


def test_privileged_eks_add_on_image_and_unprivileged_pods_are_ignored() -> None:
    findings = detect(
        RULES,
        pod(pod_spec(container("aws-node", ADDON_IMAGE, privileged=True))),
        pod(pod_spec(container(privileged=False))),
        pod(pod_spec(container(privileged=True)), user="eks:addon-manager"),
    )
    assert not of_rule(findings, "EKS-301")


def test_pod_made_by_a_controller_is_recorded_at_low_against_its_owner() -> None:
    owner = {"ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d9c", "controller": True}]}
    events = [
        pod(
            pod_spec(container(privileged=True)),
            name=f"web-5d9c-{i}",
            metadata=owner,
            user=sa("kube-system", "replicaset-controller"),
        )
        for i in range(3)
    ]
    finding = one(detect(RULES, *events), "EKS-301")  # three pods, one finding on the ReplicaSet
    assert finding.severity == Severity.LOW and finding.count == 3
    assert (finding.resources[0].kind, finding.resources[0].name) == ("replicasets", "web-5d9c")
    assert "template's author" in finding.description


def test_explicit_root_is_low_and_privileged_root_is_not_double_counted() -> None:
    findings = detect(
        RULES,
        pod(pod_spec(container(runAsUser=0)), name="a"),
        pod(pod_spec(container(), securityContext={"runAsNonRoot": False}), name="b"),
        pod(pod_spec(container(runAsUser=0, privileged=True)), name="c"),
        pod(pod_spec(container(runAsUser=1000)), name="d"),
    )
    found = {f.resources[0].name: f for f in of_rule(findings, "EKS-302")}
    assert set(found) == {"a", "b"} and all(f.severity == Severity.LOW for f in found.values())
    assert "runAsNonRoot: false" in found["b"].description


# --- EKS-303 host paths ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "severity"),
    [
        ("/", Severity.HIGH),
        ("/var/run/docker.sock", Severity.HIGH),
        ("/run/containerd/containerd.sock", Severity.HIGH),
        ("/var/run", Severity.HIGH),
        ("/var/run/crio/crio.sock", Severity.HIGH),
        ("//", Severity.HIGH),
        ("/var/run/../../", Severity.HIGH),
        ("/proc", Severity.MEDIUM),
        ("/etc", Severity.MEDIUM),
        ("/etc/kubernetes/pki", Severity.MEDIUM),
        ("/var/lib/kubelet/", Severity.MEDIUM),
        ("/root", Severity.MEDIUM),
        ("/home/admin", Severity.MEDIUM),
        ("/var/lib", Severity.MEDIUM),
        ("/usr/local", None),
        ("/var/log", None),
        ("/etc/ssl/certs", None),
        ("/sys/fs/cgroup", None),
        ("/data/app", None),
        ("", None),
    ],
)
def test_host_path_tiers(path: str, severity: Severity | None) -> None:
    assert host_path_severity(path) == severity


def test_docker_socket_and_privileged_in_one_pod_give_one_finding_per_rule() -> None:
    spec = pod_spec(
        container("ctl", "docker:27", privileged=True), volumes=[volume("/var/run/docker.sock"), volume("/etc")]
    )
    findings = detect(RULES, pod(spec, name="builder"))
    mount = one(findings, "EKS-303")
    assert mount.severity == Severity.HIGH
    assert "/var/run/docker.sock" in mount.description and "/etc" in mount.description
    assert "ctl (image docker:27)" in one(findings, "EKS-301").description


def test_harmless_host_paths_and_add_on_pods_are_ignored() -> None:
    findings = detect(
        RULES,
        pod(pod_spec(volumes=[volume("/usr/local"), {"name": "c", "configMap": {"name": "x"}}])),
        pod(pod_spec(container("aws-node", ADDON_IMAGE), volumes=[volume("/var/run/dockershim.sock")])),
    )
    assert not of_rule(findings, "EKS-303")


# --- EKS-304 host namespaces, EKS-305 capabilities --------------------------------------------------------------------


def test_host_namespaces_are_listed_together() -> None:
    finding = one(detect(RULES, pod(pod_spec(hostNetwork=True, hostPID=True, hostIPC=False))), "EKS-304")
    assert finding.severity == Severity.MEDIUM
    assert "hostNetwork: true, hostPID: true;" in finding.description
    assert finding.details["flags"] == ["hostNetwork", "hostPID"]
    assert not of_rule(detect(RULES, pod(pod_spec(hostNetwork=False))), "EKS-304")


@pytest.mark.parametrize(
    ("caps", "severity"),
    [
        (["SYS_ADMIN", "NET_RAW"], Severity.HIGH),
        (["CAP_SYS_MODULE"], Severity.HIGH),
        (["all"], Severity.HIGH),
        (["NET_ADMIN"], Severity.MEDIUM),
        (["SYS_PTRACE", "CHOWN"], Severity.MEDIUM),
    ],
)
def test_dangerous_capabilities(caps: list[str], severity: Severity) -> None:
    finding = one(detect(RULES, pod(pod_spec(container(capabilities={"add": caps})))), "EKS-305")
    assert finding.severity == severity
    assert "adds" in finding.description and "NET_RAW" not in finding.description


def test_benign_capabilities_and_malformed_ones_are_ignored() -> None:
    findings = detect(
        RULES,
        pod(pod_spec(container(capabilities={"add": ["NET_BIND_SERVICE", "CHOWN"]}))),
        pod(pod_spec(container(capabilities={"add": "SYS_ADMIN"}))),
        pod(pod_spec(container(capabilities={"add": [None, 7]}))),
    )
    assert not of_rule(findings, "EKS-305")


# --- EKS-306 system namespace, EKS-307 controller ServiceAccount ------------------------------------------------------


def test_bare_pod_in_kube_system_by_a_pipeline() -> None:
    finding = one(detect(RULES, pod(pod_spec(), namespace="kube-system", name="kube-proxy-debug")), "EKS-306")
    assert finding.severity == Severity.MEDIUM and "github-actions-deploy" in finding.description


def test_system_namespace_pods_by_controllers_nodes_own_operators_or_add_ons_are_ignored() -> None:
    findings = detect(
        RULES,
        pod(pod_spec(), namespace="kube-system", user=sa("kube-system", "replicaset-controller")),
        pod(
            pod_spec(),
            namespace="kube-system",
            user={"username": "system:node:ip-10-0-1-2.ec2.internal", "groups": ["system:nodes"]},
        ),
        pod(pod_spec(), namespace="kube-system", user=sa("kube-system", "spark-operator")),
        pod(pod_spec(container("cni", ADDON_IMAGE)), namespace="kube-system"),
        pod(pod_spec(), namespace="shop"),
        audit_event("create", "pods", namespace="kube-system", name="x", subresource="eviction"),
    )
    assert not of_rule(findings, "EKS-306")


def test_controller_service_account_in_kube_system() -> None:
    findings = detect(
        RULES,
        pod(pod_spec(serviceAccountName="clusterrole-aggregation-controller"), namespace="kube-system", name="a"),
        pod(pod_spec(serviceAccountName="foo-controller"), namespace="kube-system", name="b"),
        workload("Deployment", pod_spec(serviceAccountName="foo-controller"), namespace="kube-system", name="c"),
        pod(pod_spec(serviceAccountName="foo-controller"), namespace="shop", name="d"),
        pod(pod_spec(serviceAccountName="coredns"), namespace="kube-system", name="e"),
    )
    found = {f.resources[0].name: f.severity for f in of_rule(findings, "EKS-307")}
    assert found == {"a": Severity.MEDIUM, "b": Severity.MEDIUM, "c": Severity.LOW}


# --- EKS-308 DaemonSet, EKS-309 CronJob/Job, EKS-310 sidecar ----------------------------------------------------------


def test_daemonset_created_by_a_person_but_not_by_an_operator() -> None:
    findings = detect(
        RULES,
        workload("DaemonSet", pod_spec(), name="agent"),
        workload("DaemonSet", pod_spec(), name="op", user=sa("argocd", "argocd-application-controller")),
        workload("DaemonSet", pod_spec(), name="up", verb="update"),
    )
    finding = one(findings, "EKS-308")
    assert finding.severity == Severity.LOW and finding.resources[0].name == "agent"


def test_cronjob_is_low_and_medium_when_its_spec_is_risky() -> None:
    findings = detect(
        RULES,
        workload("CronJob", pod_spec(), name="backup"),
        workload("CronJob", pod_spec(volumes=[volume("/")]), name="miner"),
        workload("Job", pod_spec(), name="by-controller", user=sa("kube-system", "cronjob-controller")),
    )
    found = {f.resources[0].name: f for f in of_rule(findings, "EKS-309")}
    assert {name: f.severity for name, f in found.items()} == {"backup": Severity.LOW, "miner": Severity.MEDIUM}
    assert "'*/5 * * * *'" in found["backup"].description and "hostPath /" in found["miner"].description


def test_json_patch_adding_a_container_is_medium() -> None:
    ops = [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/-",
            "value": {"name": "helper", "image": "ghcr.io/x/miner:1"},
        }
    ]
    event = audit_event("patch", "deployments", namespace="shop", name="web", request=ops, api_group="apps")
    finding = one(detect(RULES, event), "EKS-310")
    assert finding.severity == Severity.MEDIUM and "helper (image ghcr.io/x/miner:1)" in finding.description


def test_strategic_merge_patch_defining_a_full_container_next_to_others_is_low() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "proxy"}],
                    "containers": [{"name": "proxy", "image": "evil/proxy:2", "args": ["--listen", ":8080"]}],
                }
            }
        }
    }
    event = audit_event("patch", "deployments", namespace="shop", name="web", request=patch, api_group="apps")
    finding = one(detect(RULES, event), "EKS-310")
    assert finding.severity == Severity.LOW and "next to web" in finding.description


def test_image_bumps_restarts_and_scaling_are_not_sidecars() -> None:
    bump = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "ecr/web:2"}]}}}}
    restart = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}
    single = {
        "spec": {
            "template": {
                "spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"name": "web", "image": "ecr/web:3", "args": ["-v"]}],
                }
            }
        }
    }
    scale = [{"op": "replace", "path": "/spec/replicas", "value": 2}]
    events = [
        audit_event("patch", "deployments", namespace="shop", name="web", request=body, api_group="apps")
        for body in (bump, restart, single, {"spec": {"replicas": 3}}, scale)
    ]
    assert not of_rule(detect(RULES, *events), "EKS-310")


# --- real fixtures ---------------------------------------------------------------------------------------------------

FALCO = {
    "Create Privileged Pod": ("EKS-301", Severity.LOW),
    "Create Sensitive Mount Pod": ("EKS-303", Severity.LOW),
    "Create HostNetwork Pod": ("EKS-304", Severity.LOW),
    "Create HostPid Pod": ("EKS-304", Severity.LOW),
    "Create HostIPC Pod": ("EKS-304", Severity.LOW),
    "Pod Created in Kube Namespace": ("EKS-306", Severity.LOW),
    "EphemeralContainers Created": ("EKS-300", Severity.LOW),
}
PANTHER = {
    "Kubernetes.Pod.Privileged.Created": {"EKS-301", "EKS-302"},
    "Kubernetes.Pod.HostPath.Volume": {"EKS-303"},
    "Kubernetes.Pod.Host.": {"EKS-304"},
    "Kubernetes.Pod.Dangerous.Capabilities": {"EKS-305"},
    "Kubernetes.Pod.SystemNamespace": {"EKS-306"},
    "Kubernetes.DaemonSet.Created": {"EKS-308"},
    "Kubernetes.CronJob.CreatedOrModified": {"EKS-309"},
}


@needs_datasets
@pytest.mark.parametrize(("file", "falco_rule", "rule_id", "minimum"), falco_cases(FALCO))
def test_falco_traces(file: str, falco_rule: str, rule_id: str, minimum: Severity) -> None:
    check_falco(RULES, file, rule_id, minimum)


@needs_datasets
@pytest.mark.parametrize("file", [*falco_negatives(), "create_nginx_pod_unprivileged.json", "create_deployment.json"])
def test_falco_quiet_traces_raise_nothing_medium(file: str) -> None:
    check_falco_negative(RULES, file)


@needs_datasets
@pytest.mark.parametrize(("audit_id", "panther_rule", "test_name", "expected", "ours"), panther_cases(PANTHER))
def test_panther_rule_tests(
    audit_id: str, panther_rule: str, test_name: str, expected: str, ours: frozenset[str]
) -> None:
    check_panther(RULES, audit_id, expected, ours)


@needs_datasets
def test_fixture_coverage_is_not_vacuous() -> None:
    assert len(falco_cases(FALCO)) >= 3
    assert len([c for c in panther_cases(PANTHER) if c.values[3] == "true"]) >= 8


# --- dev cluster: this area's three modules together ---------------------------------------------------------------

OUR_SCENARIOS = {"S05", "S06", "S12"}  # privileged hostPath pod in kube-system, cluster-admin to a new SA, hostNetwork


@needs_datasets
def test_dev_cluster_scenarios_caught_and_benign_noise(capsys: pytest.CaptureFixture[str]) -> None:
    root = DATASETS / "dev-scenarios"
    labels = json.loads((root / "labels.json").read_text())
    started = time.monotonic()
    detector = Detector(
        engine=RuleEngine(rbac.RULES + workloads.RULES + exposure.RULES),
        cluster=labels["cluster"],
        account=labels["account"],
        region=labels["region"],
    )
    detector.run(decode_path(root / "audit.jsonl.gz", defaults=SourceContext(cluster=labels["cluster"])))
    elapsed = time.monotonic() - started
    assert not detector.engine.errors
    scenario_ids = {a for s in labels["scenarios"] for a in s["auditIDs"]}
    loud = [f for f in detector.findings() if f.severity >= Severity.MEDIUM]
    caught = {s["id"] for s in labels["scenarios"] if any(set(s["auditIDs"]) & set(f.evidence) for f in loud)}
    with gzip.open(root / "audit.jsonl.gz", "rt") as lines:
        times = {e["auditID"]: e["requestReceivedTimestamp"] for e in map(json.loads, lines)}
    benign = [f for f in loud if not set(f.evidence) & scenario_ids]
    after_learning = [f for f in benign if any(times.get(a, "") >= labels["learning_end"] for a in f.evidence)]
    with capsys.disabled():
        print(
            f"\nrbac+workloads+exposure on the dev set: {detector.stats.events} events in {elapsed:.1f}s; "
            f"MEDIUM+ scenarios caught {sorted(caught)}; MEDIUM+ findings citing only benign events: "
            f"{len(benign)} ({len(after_learning)} after learning_end)"
        )
        for f in benign:
            print(f"    benign MEDIUM+: {f.rule_id} {f.severity.name} {f.description[-160:]}")
    assert caught >= OUR_SCENARIOS
    assert len(benign) == 0
    assert elapsed < 30
