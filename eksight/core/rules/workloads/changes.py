"""Where pods land and who changes long-running or scheduled workloads (catalog #21-#26): pods created in
system namespaces, control-plane ServiceAccounts mounted, DaemonSets by people, CronJobs and Jobs, injected
sidecars."""

from __future__ import annotations

import re
from typing import Any

from eksight.core.findings import Severity
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import NODES, SYSTEM_NAMESPACES, dry_run, object_name, shown_name
from eksight.core.rules.workloads.host_access import (
    HIGH_CAPABILITIES,
    MEDIUM_CAPABILITIES,
    capability_name,
    host_path_severity,
)
from eksight.core.rules.workloads.views import (
    POD_SUBRESOURCES,
    WORKLOAD_ALLOW,
    WORKLOAD_RESOURCES,
    WRITE,
    addon_pod,
    by_person,
    images_of,
    judged_containers,
    owner_of,
    pod_specs_of,
    workload_target,
)
from eksight.core.workloads import PodSpecView

# ServiceAccounts kube-controller-manager uses for its own loops (--use-service-account-credentials): no pod
# ever needs one, and several can grant or delete anything.
CONTROL_PLANE_SERVICE_ACCOUNTS = frozenset(
    {
        "attachdetach-controller",
        "bootstrap-signer",
        "certificate-controller",
        "clusterrole-aggregation-controller",
        "cronjob-controller",
        "daemon-set-controller",
        "deployment-controller",
        "disruption-controller",
        "endpoint-controller",
        "endpointslice-controller",
        "endpointslicemirroring-controller",
        "ephemeral-volume-controller",
        "expand-controller",
        "generic-garbage-collector",
        "horizontal-pod-autoscaler",
        "job-controller",
        "legacy-service-account-token-cleaner",
        "namespace-controller",
        "node-controller",
        "persistent-volume-binder",
        "pod-garbage-collector",
        "pv-protection-controller",
        "pvc-protection-controller",
        "replicaset-controller",
        "replication-controller",
        "resourcequota-controller",
        "root-ca-cert-publisher",
        "route-controller",
        "service-account-controller",
        "service-controller",
        "statefulset-controller",
        "token-cleaner",
        "ttl-after-finished-controller",
        "ttl-controller",
        "validatingadmissionpolicy-status-controller",
        "service-cidrs-controller",
        "selinux-warning-controller",
    }
)


_PERSISTED_SPEC_KEYS = frozenset(
    {
        "command",
        "args",
        "volumeMounts",
        "securityContext",
        "ports",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "lifecycle",
        "workingDir",
    }
)
_CONTAINER_PATH = re.compile(r"^/spec/template/spec/(containers|initContainers)/(-|\d+)$")


def _pod_in_system_namespace(ctx: RuleContext) -> Hit | None:
    namespace = ctx.event.namespace
    if namespace not in SYSTEM_NAMESPACES or dry_run(ctx):
        return None
    if ctx.principal.kind == "service_account" and ctx.principal.namespace == namespace:
        return None  # an operator managing its own namespace: nothing planted from outside
    specs = pod_specs_of(ctx)
    if specs and all(addon_pod(ctx, spec) for spec in specs):
        return None
    images = images_of(specs[0]) if specs else "body not logged"
    return Hit(
        detail=f"Pod {shown_name(ctx)} created directly in {namespace} by "
        f"{ctx.principal.display}; containers: {images}.",
        target=workload_target(ctx),
    )


def _controller_service_account(ctx: RuleContext) -> Hit | None:
    for spec in pod_specs_of(ctx):
        account = spec.service_account
        namespace = spec.namespace or ctx.event.namespace
        if namespace != "kube-system" or not account:
            continue
        builtin = account in CONTROL_PLANE_SERVICE_ACCOUNTS
        if not builtin and not account.endswith("controller"):
            continue
        if addon_pod(ctx, spec):
            continue
        if builtin:
            severity, why = Severity.MEDIUM, "a kube-controller-manager identity no pod should ever use"
        elif spec.owner_kind == "Pod":
            severity, why = Severity.MEDIUM, "a controller's identity, run from a hand-made pod"
        else:
            severity, why = Severity.LOW, "a controller's identity (usually an add-on being installed)"
        return Hit(
            detail=f"{owner_of(spec)} runs as ServiceAccount kube-system/{account}: {why}; "
            f"containers: {images_of(spec)}.",
            severity=severity,
            target=workload_target(ctx, spec),
        )
    return None


def _daemonset_by_person(ctx: RuleContext) -> Hit | None:
    if not by_person(ctx) or dry_run(ctx):
        return None
    specs = pod_specs_of(ctx)
    if specs and all(addon_pod(ctx, spec) for spec in specs):
        return None
    images = images_of(specs[0]) if specs else "body not logged"
    return Hit(
        detail=f"DaemonSet {ctx.event.namespace}/{object_name(ctx)} (one pod on every node) created by "
        f"{ctx.principal.display}; containers: {images}.",
        target=workload_target(ctx),
    )


def _risky_spec(ctx: RuleContext, spec: PodSpecView) -> list[str]:
    reasons = []
    for container in judged_containers(ctx, spec):
        if container.privileged:
            reasons.append(f"{container.name} privileged")
        caps = [
            c for c in map(capability_name, container.capabilities_add) if c in HIGH_CAPABILITIES | MEDIUM_CAPABILITIES
        ]
        if caps:
            reasons.append(f"{container.name} adds {', '.join(caps)}")
    if not addon_pod(ctx, spec):
        reasons += [f"hostPath {p}" for p in spec.host_paths if host_path_severity(p) is not None]
        reasons += [
            flag
            for flag, on in (("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc))
            if on
        ]
    return reasons


def _scheduled_job(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    specs = pod_specs_of(ctx)
    if specs and all(addon_pod(ctx, spec) for spec in specs):
        return None
    kind = "CronJob" if ctx.event.resource == "cronjobs" else "Job"
    action = {"create": "created", "update": "updated", "patch": "patched"}.get(ctx.event.verb, ctx.event.verb)
    body = ctx.body
    spec = body.get("spec") if isinstance(body, dict) else None
    schedule = spec.get("schedule") if isinstance(spec, dict) else None
    when = f" schedule {schedule!r}," if isinstance(schedule, str) else ""
    reasons = [reason for s in specs for reason in _risky_spec(ctx, s)]
    images = images_of(specs[0]) if specs else "not shown"
    detail = (
        f"{kind} {ctx.event.namespace}/{object_name(ctx)} {action} by {ctx.principal.display};{when} "
        f"containers: {images}" + (f"; risky spec: {', '.join(reasons)}." if reasons else ".")
    )
    return Hit(detail=detail, severity=Severity.MEDIUM if reasons else None, target=workload_target(ctx))


def _added_containers(request: Any, response: Any) -> tuple[list[str], list[str]]:
    """(certainly added, probably added) container descriptions of a workload patch."""
    certain: list[str] = []
    probable: list[str] = []
    if isinstance(request, list):  # JSON Patch: an `add` into the containers list is an added container
        for op in request:
            if not isinstance(op, dict) or op.get("op") != "add":
                continue
            match = _CONTAINER_PATH.match(str(op.get("path", "")))
            value = op.get("value")
            if match and isinstance(value, dict):
                certain.append(f"{value.get('name', '?')} (image {value.get('image', '?')}) into {match.group(1)}")
        return certain, probable
    if not isinstance(request, dict):
        return certain, probable
    spec = _path(request, ("spec", "template", "spec"))
    if not isinstance(spec, dict):
        return certain, probable
    result = _path(response, ("spec", "template", "spec")) if isinstance(response, dict) else None
    for field in ("containers", "initContainers"):
        entries = [e for e in spec.get(field) or [] if isinstance(e, dict)] if isinstance(spec.get(field), list) else []
        order = spec.get(f"$setElementOrder/{field}")
        names = {str(e.get("name")) for e in order if isinstance(e, dict)} if isinstance(order, list) else set()
        if isinstance(result, dict) and isinstance(result.get(field), list):
            names |= {str(e.get("name")) for e in result[field] if isinstance(e, dict)}
        for entry in entries:
            name = str(entry.get("name", "?"))
            image = entry.get("image")
            others = names - {name}
            if isinstance(image, str) and others and _PERSISTED_SPEC_KEYS & set(entry):
                probable.append(f"{name} (image {image}) next to {', '.join(sorted(others))} in {field}")
    return certain, probable


def _path(node: Any, steps: tuple[str, ...]) -> Any:
    for step in steps:
        if not isinstance(node, dict):
            return None
        node = node.get(step)
    return node


def _sidecar_injection(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    certain, probable = _added_containers(ctx.request, ctx.response)
    if not certain and not probable:
        return None
    what = f"{ctx.event.resource[:-1]} {ctx.event.namespace}/{ctx.event.name}"
    if certain:
        return Hit(
            detail=f"Patch of {what} adds container {'; '.join(certain)}.",
            severity=Severity.MEDIUM,
            target=workload_target(ctx),
        )
    return Hit(
        detail=f"Patch of {what} defines container {'; '.join(probable)} with a full spec "
        "(a new container, or one redefined).",
        target=workload_target(ctx),
    )


RULES: list[Rule] = [
    Rule(
        id="EKS-306",
        title="Pod created directly in a system namespace",
        severity=Severity.MEDIUM,
        type="DefenseEvasion:Kubernetes/PodInSystemNamespace",
        mitre=("T1610", "T1036.005"),
        catalog=(21,),
        description="Someone other than the control plane created a bare pod in kube-system, kube-public or "
        "kube-node-lease, where it blends in with add-ons and can use their ServiceAccounts.",
        remediation="Find out who created the pod and why; system namespaces should only hold add-ons deployed "
        "through their controllers.",
        verbs=frozenset({"create"}),
        resources=frozenset({"pods"}),
        predicate=_pod_in_system_namespace,
        allow=WORKLOAD_ALLOW.extend(NODES),  # mirror pods of static pods: the kubelet creates them in kube-system
    ),
    Rule(
        id="EKS-307",
        title="Controller ServiceAccount assigned to a kube-system workload",
        severity=Severity.MEDIUM,
        type="PrivilegeEscalation:Kubernetes/ControllerServiceAccountAssigned",
        mitre=("T1078.001", "T1610"),
        catalog=(22,),
        description="A pod or workload in kube-system runs as a controller's ServiceAccount: its token carries "
        "that controller's (often cluster-wide) permissions.",
        remediation="Check the workload's origin and image; kube-controller-manager's own ServiceAccounts must "
        "never be mounted into pods.",
        predicate=_controller_service_account,
        allow=WORKLOAD_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
    Rule(
        id="EKS-308",
        title="DaemonSet created by a person or pipeline",
        severity=Severity.LOW,
        type="Persistence:Kubernetes/DaemonSetCreated",
        mitre=("T1610", "T1543"),
        catalog=(24,),
        description="A DaemonSet (a pod on every node, often privileged) was created by an identity that is not a "
        "controller.",
        remediation="Confirm the DaemonSet belongs to a known agent and release.",
        verbs=frozenset({"create"}),
        resources=frozenset({"daemonsets"}),
        predicate=_daemonset_by_person,
        allow=WORKLOAD_ALLOW,
        routine=(
            "Pipelines and platform teams roll out agents as DaemonSets with every release; repeated "
            "from the same network and tool it is a release."
        ),
    ),
    Rule(
        id="EKS-309",
        title="CronJob or Job created or modified",
        severity=Severity.LOW,
        type="Persistence:Kubernetes/CronJobCreatedOrModified",
        mitre=("T1053.007",),
        catalog=(25,),
        description="A CronJob or Job was created or changed by an identity that is not a controller; MEDIUM when "
        "its pod spec is privileged or uses host paths, namespaces or dangerous capabilities.",
        remediation="Confirm the job's purpose and image; scheduled jobs are a common persistence mechanism.",
        verbs=WRITE,
        resources=frozenset({"cronjobs", "jobs"}),
        predicate=_scheduled_job,
        allow=WORKLOAD_ALLOW,
        routine=(
            "Pipelines create and update Jobs and CronJobs with every release; repeated from the same "
            "network and tool it is a release (privileged specs still raise their own rules)."
        ),
    ),
    Rule(
        id="EKS-310",
        title="Container added to a running workload",
        severity=Severity.LOW,
        type="Persistence:Kubernetes/SidecarInjected",
        mitre=("T1610", "T1525"),
        catalog=(26,),
        description="A patch adds a container to a Deployment, DaemonSet or StatefulSet (MEDIUM when the patch "
        "proves it, LOW when it defines a full container next to existing ones).",
        remediation="Compare the workload with its source of truth (Git, Helm release); remove containers nobody owns.",
        verbs=frozenset({"patch"}),
        resources=frozenset({"deployments", "daemonsets", "statefulsets"}),
        predicate=_sidecar_injection,
        allow=WORKLOAD_ALLOW,
    ),
]
