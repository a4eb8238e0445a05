"""Where workloads come from (catalog #21, #23): images from a registry the cluster has never pulled from
(EKS-311), and workloads that non-system principals create in the control-plane namespaces (EKS-312).

EKS-311 learns every registry it sees in workload writes — controllers' pod creates included, so images of
workloads deployed before the log began are known after their next restart — keyed by registry host, or by AWS
account for ECR. The memory lives in the engine instance, bounded: in `eksight replay` it spans the whole log;
in the Lambda an engine lives per archive object, so there it only compares within one object (persisting it
across objects is future work). The first day of observed workload writes is learning (LOW).
"""

from __future__ import annotations

import re
from collections import OrderedDict

from eksight.core.findings import Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import AllowList, Hit, Rule, RuleContext
from eksight.core.rules.common import (
    NODES,
    SERVICE_ACCOUNT,
    SYSTEM_NAMESPACES,
    helm_managed,
    shown_name,
    who,
)
from eksight.core.rules.workloads.views import WORKLOAD_ALLOW, WORKLOAD_RESOURCES, WRITE, pod_specs_of

LEARNING_SECONDS = 86_400.0
REGISTRIES_KEPT = 4096
_ECR = re.compile(r"^(\d{12})\.dkr\.ecr(?:-fips)?\.[a-z0-9-]+\.amazonaws\.com(?:\.cn)?$")


def registry_of(image: str) -> str:
    """The registry an image reference pulls from: its host (docker.io when none), or "ECR account N"."""
    first, slash, _rest = image.partition("/")
    host = first.lower() if slash and ("." in first or ":" in first or first == "localhost") else "docker.io"
    if host in ("index.docker.io", "registry-1.docker.io"):
        host = "docker.io"
    ecr = _ECR.match(host)
    return f"ECR account {ecr.group(1)}" if ecr else host


def _new_registry(ctx: RuleContext) -> Hit | None:
    specs = pod_specs_of(ctx)
    if not specs:
        return None
    state = ctx.state
    first_write = state.setdefault("first_write", ctx.time)
    seen: OrderedDict[str, None] = state.setdefault("registries", OrderedDict())
    new: dict[str, str] = {}
    for spec in specs:
        for image in spec.images:
            if defaults.EKS_ADDON_IMAGES.allows_image(image):
                continue
            registry = registry_of(image)
            if registry in seen:
                seen.move_to_end(registry)
            else:
                new.setdefault(registry, image)
    for registry in new:
        seen[registry] = None
    while len(seen) > REGISTRIES_KEPT:
        seen.popitem(last=False)
    if not new or defaults.SYSTEM.allows_principal(ctx.principal) or ctx.principal.kind == "node":
        return None  # controllers and kubelets only teach: the workload's author was judged when writing it
    learning = ctx.time - first_write < LEARNING_SECONDS
    helm = helm_managed(ctx)  # a chart's release brings its vendor's images (quay.io for cert-manager, ...)
    listing = ", ".join(f"{registry} ({image})" for registry, image in sorted(new.items()))
    where = f"{ctx.event.namespace}/" if ctx.event.namespace else ""
    return Hit(
        f"{who(ctx)} {ctx.event.verb} {ctx.event.resource} {where}{shown_name(ctx)} with an image "
        f"from a registry no workload in this cluster used before: {listing}"
        + (" (during the first day of observed workloads: learning)." if learning else "")
        + (" (installed with Helm: a chart's release brings its vendor's images)." if helm and not learning else "")
        + ("" if learning or helm else "."),
        severity=Severity.LOW if learning or helm else Severity.MEDIUM,
        details={"new_registries": sorted(new)},
    )


def _control_plane_namespace_workload(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    namespace = event.namespace
    if namespace not in SYSTEM_NAMESPACES or event.resource == "pods":  # bare pods: EKS-306
        return None
    if ctx.principal.kind == SERVICE_ACCOUNT and ctx.principal.namespace == namespace:
        return None  # an operator managing its own namespace
    specs = pod_specs_of(ctx)
    images = [image for spec in specs for image in spec.images]
    if images and all(ctx.allow.allows_image(image) for image in images):
        return None
    shown = ", ".join(images[:4]) or "images not logged"
    head = f"{who(ctx)} created {event.resource.removesuffix('s')} {namespace}/{shown_name(ctx)}"
    how = "with Helm, how add-ons are installed" if helm_managed(ctx) else "by hand or by a pipeline"
    return Hit(f"{head} {how} ({shown}): workloads there blend in with the add-ons and can use their service accounts.")


RULES: list[Rule] = [
    Rule(
        id="EKS-311",
        title="Image from a registry never used in the cluster",
        severity=Severity.MEDIUM,
        type="Execution:Kubernetes/NewImageRegistry",
        mitre=("T1610", "T1525"),
        catalog=(23,),
        description="A workload was created or changed (by a person, CI or GitOps) with an image from a registry "
        "host, or ECR account, that no workload write seen before in this cluster used. Attackers run "
        "their own images from their own registries; a pipeline that suddenly pulls from elsewhere is a "
        "supply-chain warning. LOW during the first day of observed workloads (learning) and for Helm "
        "releases (a chart brings its vendor's images); the memory "
        "lasts one engine instance (a replay, or one archive object in the Lambda).",
        remediation="Check who added the image and whether the registry is approved; enforce an allowed-registry "
        "admission policy (Kyverno, Gatekeeper, ValidatingAdmissionPolicy).",
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=frozenset({"", "ephemeralcontainers"}),
        predicate=_new_registry,
        allow=AllowList(),  # controllers' pod creates teach the rule which registries are in use
    ),
    Rule(
        id="EKS-312",
        title="Workload created in a control-plane namespace",
        severity=Severity.LOW,
        type="DefenseEvasion:Kubernetes/WorkloadInSystemNamespace",
        mitre=("T1610", "T1036.005"),
        catalog=(21,),
        description="A person, pipeline or another namespace's service account created a Deployment, DaemonSet, "
        "StatefulSet, ReplicaSet, Job or CronJob in kube-system, kube-public or kube-node-lease. EKS "
        "add-on management (eks:*), the control plane, kube-system's own operators and EKS add-on images "
        "are not reported; the cluster creator (kubernetes-admin, system:masters) is, like any person. "
        "LOW: an audit trail, since installing add-ons there is routine (Panther's own tests treat a "
        "person's Deployment in kube-system as no alert); a bare pod there is MEDIUM (EKS-306), and what "
        "the workload asks for is judged by the pod-spec rules.",
        remediation="Find out who created the workload and why; system namespaces should hold only add-ons "
        "installed through IaC or the EKS add-on API.",
        verbs=frozenset({"create"}),
        resources=WORKLOAD_RESOURCES - {"pods", "podtemplates", "replicationcontrollers"},
        predicate=_control_plane_namespace_workload,
        allow=WORKLOAD_ALLOW.extend(NODES),
    ),
]

__all__ = ["RULES", "registry_of"]
