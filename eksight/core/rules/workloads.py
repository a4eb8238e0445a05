"""Workload rules: what a pod spec asks the node for (privileges, host namespaces, host paths, capabilities),
where pods land, and changes to long-running or scheduled workloads.

A workload is judged once, at the request of whoever wrote it: a Deployment's ReplicaSet and Pods are
created by kube-system controllers, which the allow-lists skip. Pod templates of every controller kind,
init and ephemeral containers count. Containers whose image belongs to an AWS-managed EKS add-on (VPC CNI,
kube-proxy, EBS CSI, ...) are skipped: those are privileged by design. Each hit names the containers,
images and settings that made it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Any

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import HUMAN_KINDS, NODES, SYSTEM_NAMESPACES, dry_run, object_name
from eksight.core.workloads import ContainerView, PodSpecView

WORKLOAD_RESOURCES = frozenset(
    {
        "pods",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "replicationcontrollers",
        "jobs",
        "cronjobs",
        "podtemplates",
    }
)
WRITE = frozenset({"create", "update", "patch"})
POD_SUBRESOURCES = frozenset({"", "ephemeralcontainers"})

# hostPath tiers. HIGH: the host's root or a container runtime socket (full control of every container on the
# node). MEDIUM: credentials, kubelet state, kernel interfaces and the host's configuration.
RUNTIME_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/cri-dockerd.sock",
    "/var/run/dockershim.sock",
)
HIGH_PATHS = ("/", *RUNTIME_SOCKETS)
# Paths sensitive with everything below them.
MEDIUM_TREES = (
    "/proc",
    "/root",
    "/home",
    "/boot",
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/etc/eks",
    "/etc/containerd",
    "/etc/docker",
    "/etc/systemd",
    "/etc/ssh",
    "/etc/sudoers.d",
    "/etc/cron.d",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/run/containerd",
    "/var/run/containerd",
    "/run/crio",
    "/var/run/crio",
    "/sys/kernel",
    "/sys/firmware",
    "/dev/mem",
    "/lib/modules",
)
# Paths sensitive themselves, whose subpaths are commonly benign (/etc/ssl/certs, /sys/fs/cgroup, ...).
MEDIUM_EXACT = (
    "/etc",
    "/etc/shadow",
    "/etc/passwd",
    "/etc/sudoers",
    "/etc/crontab",
    "/dev",
    "/sys",
    "/var/run",
    "/run",
    "/var",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/opt",
)

# Capabilities. HIGH: each is a documented container escape on its own. MEDIUM: host-level power that needs
# one more step (network takeover, process inspection, kernel interfaces).
HIGH_CAPABILITIES = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "DAC_READ_SEARCH", "BPF"})
MEDIUM_CAPABILITIES = frozenset(
    {
        "NET_ADMIN",
        "SYS_PTRACE",
        "SYS_BOOT",
        "SYSLOG",
        "PERFMON",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "SYS_TIME",
        "DAC_OVERRIDE",
        "SETFCAP",
    }
)

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

# Mirror pods of static pods are created by the kubelet (the node identity) in kube-system.
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


# --- helpers ---------------------------------------------------------------------------------------------


def _specs(ctx: RuleContext) -> list[PodSpecView]:
    """The event's pod specs (decoded once per event: the engine shares one context among its rules)."""
    return [] if dry_run(ctx) else ctx.pod_specs


def _kind_label(container: ContainerView) -> str:
    return {"init": "init container", "ephemeral": "ephemeral container"}.get(container.kind, "container")


def _describe(container: ContainerView) -> str:
    return f"{_kind_label(container)} {container.name or '?'} (image {container.image or '?'})"


def _containers(ctx: RuleContext, spec: PodSpecView) -> list[ContainerView]:
    """Containers not running an allow-listed (EKS add-on) image."""
    return [c for c in spec.containers if not (c.image and ctx.allow.allows_image(c.image))]


def _addon_pod(ctx: RuleContext, spec: PodSpecView) -> bool:
    """Every container of the spec runs an allow-listed image (and the spec shows at least one)."""
    images = [c.image for c in spec.containers]
    return bool(images) and all(image and ctx.allow.allows_image(image) for image in images)


def _owner(spec: PodSpecView) -> str:
    where = f"{spec.namespace}/" if spec.namespace else ""
    return f"{spec.owner_kind} {where}{spec.name or '(unnamed)'}"


def _target(ctx: RuleContext, spec: PodSpecView | None = None) -> ResourceRef:
    event = ctx.event
    kind = event.resource + (f"/{event.subresource}" if event.subresource else "")
    name = (spec.name if spec else "") or object_name(ctx)
    return ResourceRef(event.namespace or (spec.namespace if spec else ""), kind, name)


def _images(spec: PodSpecView) -> str:
    return ", ".join(f"{c.name or '?'}={c.image or '?'}" for c in spec.containers) or "no containers shown"


def _max(values: Iterable[Severity], default: Severity = Severity.LOW) -> Severity:
    return max(values, default=default)


def _is_person(ctx: RuleContext) -> bool:
    return ctx.principal.kind in HUMAN_KINDS


def _instance(ctx: RuleContext) -> tuple[ResourceRef, str] | None:
    """For a pod that a kube-system controller creates from its owner's template: (the owner, as the finding's
    target, and a note). The template was judged when its author wrote it; each instance is recorded at LOW
    against the owner, so all pods of one ReplicaSet/DaemonSet/Job fold into one finding per window and
    workloads deployed before eksight still show up. None for any other request."""
    if not defaults.KUBE_SYSTEM_CONTROLLERS.allows_principal(ctx.principal):
        return None
    body = ctx.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    owners = metadata.get("ownerReferences") if isinstance(metadata, dict) else None
    owner = (
        next((o for o in owners if isinstance(o, dict) and o.get("controller")), None)
        if isinstance(owners, list)
        else None
    )
    kind = str(owner.get("kind", "")) if owner else ""
    name = str(owner.get("name", "")) if owner else ""
    resource = (kind.lower() + "s") if kind else ctx.event.resource
    note = (
        f" (a pod that {ctx.principal.service_account} created from {kind} {name or '?'}: the template's author "
        "is judged when writing it)"
    )
    return ResourceRef(ctx.event.namespace, resource, name or object_name(ctx)), note


def _judged(ctx: RuleContext, hit: Hit, instance_severity: Severity = Severity.LOW) -> Hit:
    """`hit` as is, or re-targeted at the owner at `instance_severity` for a controller-made pod."""
    instance = _instance(ctx)
    if instance is None:
        return hit
    owner, note = instance
    return Hit(
        detail=hit.detail.rstrip(".") + note + ".", severity=instance_severity, target=owner, details=hit.details
    )


# --- hostPath classification -----------------------------------------------------------------------------


def _normalize(path: str) -> str:
    """Absolute, without `.`/`..`, duplicate or trailing slashes; "" for an empty path."""
    text = path.strip()
    return posixpath.normpath("/" + text.lstrip("/")) if text else ""


def host_path_severity(raw: str) -> Severity | None:
    """How much of the node a hostPath volume hands to the pod (None: nothing we consider sensitive)."""
    path = _normalize(raw)
    if not path:
        return None
    if path in HIGH_PATHS or any(sock.startswith(path + "/") for sock in RUNTIME_SOCKETS):
        return Severity.HIGH  # the root, a runtime socket, or a directory that contains one
    if path in MEDIUM_EXACT or path in MEDIUM_TREES or any(path.startswith(tree + "/") for tree in MEDIUM_TREES):
        return Severity.MEDIUM
    if any(tree.startswith(path + "/") for tree in MEDIUM_TREES):
        return Severity.MEDIUM  # an ancestor of a sensitive tree (/var/lib, /etc/...)
    return None


def _capability(raw: str) -> str:
    name = raw.strip().upper()
    return name[4:] if name.startswith("CAP_") else name


# --- predicates ----------------------------------------------------------------------------------------------


def _ephemeral_container(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    specs = _specs(ctx)
    added = [c for spec in specs for c in spec.containers if c.kind == "ephemeral"]
    pod = f"{ctx.event.namespace}/{ctx.event.name}"
    if not added:
        return Hit(
            detail=f"Ephemeral container added to pod {pod} (no container in the logged body).", target=_target(ctx)
        )
    return Hit(
        detail=f"Added to pod {pod}: {'; '.join(_describe(c) for c in added)}.",
        target=_target(ctx),
        details={"containers": [{"name": c.name, "image": c.image} for c in added]},
    )


def _privileged(ctx: RuleContext) -> Hit | None:
    findings = []
    for spec in _specs(ctx):
        for container in _containers(ctx, spec):
            if container.privileged:
                findings.append((spec, container))
    if not findings:
        return None
    spec = findings[0][0]
    detail = "; ".join(f"{_describe(c)} in {_owner(s)} sets securityContext.privileged: true" for s, c in findings)
    return _judged(
        ctx,
        Hit(
            detail=detail + ".",
            target=_target(ctx, spec),
            details={"containers": [{"name": c.name, "image": c.image, "kind": c.kind} for _, c in findings]},
        ),
    )


def _run_as_root(ctx: RuleContext) -> Hit | None:
    findings = []
    for spec in _specs(ctx):
        for container in _containers(ctx, spec):
            if container.privileged:
                continue  # reported as privileged
            if container.run_as_user == 0:
                findings.append((spec, container, "runAsUser: 0"))
            elif container.run_as_non_root is False:
                findings.append((spec, container, "runAsNonRoot: false"))
    if not findings:
        return None
    detail = "; ".join(f"{_describe(c)} in {_owner(s)} sets {why}" for s, c, why in findings)
    return _judged(ctx, Hit(detail=detail + ".", target=_target(ctx, findings[0][0])), Severity.INFORMATIONAL)


def _sensitive_host_path(ctx: RuleContext) -> Hit | None:
    findings: list[tuple[Severity, str, PodSpecView]] = []
    for spec in _specs(ctx):
        if _addon_pod(ctx, spec):
            continue
        for path in spec.host_paths:
            severity = host_path_severity(path)
            if severity is not None:
                findings.append((severity, path, spec))
    if not findings:
        return None
    findings.sort(key=lambda item: -item[0])
    severity, _, spec = findings[0]
    paths = ", ".join(
        f"{path} ({'runtime socket / host root' if sev == Severity.HIGH else 'sensitive'})" for sev, path, _ in findings
    )
    detail = f"{_owner(spec)} mounts hostPath {paths}; containers: {_images(spec)}."
    return _judged(
        ctx,
        Hit(
            detail=detail,
            severity=severity,
            target=_target(ctx, spec),
            details={"host_paths": [path for _, path, _ in findings]},
        ),
    )


def _host_namespaces(ctx: RuleContext) -> Hit | None:
    for spec in _specs(ctx):
        if _addon_pod(ctx, spec):
            continue
        flags = [
            name
            for name, on in (("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc))
            if on
        ]
        if flags:
            return _judged(
                ctx,
                Hit(
                    detail=f"{_owner(spec)} sets {', '.join(f + ': true' for f in flags)}; "
                    f"containers: {_images(spec)}.",
                    target=_target(ctx, spec),
                    details={"flags": flags},
                ),
            )
    return None


def _dangerous_capabilities(ctx: RuleContext) -> Hit | None:
    findings: list[tuple[Severity, PodSpecView, ContainerView, list[str]]] = []
    for spec in _specs(ctx):
        for container in _containers(ctx, spec):
            caps = [_capability(c) for c in container.capabilities_add]
            risky = [c for c in caps if c in HIGH_CAPABILITIES or c in MEDIUM_CAPABILITIES]
            if risky:
                severity = Severity.HIGH if any(c in HIGH_CAPABILITIES for c in risky) else Severity.MEDIUM
                findings.append((severity, spec, container, risky))
    if not findings:
        return None
    findings.sort(key=lambda item: -item[0])
    detail = "; ".join(f"{_describe(c)} in {_owner(s)} adds {', '.join(caps)}" for _, s, c, caps in findings)
    return _judged(
        ctx,
        Hit(
            detail=detail + ".",
            severity=findings[0][0],
            target=_target(ctx, findings[0][1]),
            details={"capabilities": sorted({cap for *_, caps in findings for cap in caps})},
        ),
    )


def _pod_in_system_namespace(ctx: RuleContext) -> Hit | None:
    namespace = ctx.event.namespace
    if namespace not in SYSTEM_NAMESPACES or dry_run(ctx):
        return None
    if ctx.principal.kind == "service_account" and ctx.principal.namespace == namespace:
        return None  # an operator managing its own namespace: nothing planted from outside
    specs = _specs(ctx)
    if specs and all(_addon_pod(ctx, spec) for spec in specs):
        return None
    images = _images(specs[0]) if specs else "body not logged"
    return Hit(
        detail=f"Pod {object_name(ctx) or '(unnamed)'} created directly in {namespace} by "
        f"{ctx.principal.display}; containers: {images}.",
        target=_target(ctx),
    )


def _controller_service_account(ctx: RuleContext) -> Hit | None:
    for spec in _specs(ctx):
        account = spec.service_account
        namespace = spec.namespace or ctx.event.namespace
        if namespace != "kube-system" or not account:
            continue
        builtin = account in CONTROL_PLANE_SERVICE_ACCOUNTS
        if not builtin and not account.endswith("controller"):
            continue
        if _addon_pod(ctx, spec):
            continue
        if builtin:
            severity, why = Severity.MEDIUM, "a kube-controller-manager identity no pod should ever use"
        elif spec.owner_kind == "Pod":
            severity, why = Severity.MEDIUM, "a controller's identity, run from a hand-made pod"
        else:
            severity, why = Severity.LOW, "a controller's identity (usually an add-on being installed)"
        return Hit(
            detail=f"{_owner(spec)} runs as ServiceAccount kube-system/{account}: {why}; containers: {_images(spec)}.",
            severity=severity,
            target=_target(ctx, spec),
        )
    return None


def _daemonset_by_person(ctx: RuleContext) -> Hit | None:
    if not _is_person(ctx) or dry_run(ctx):
        return None
    specs = _specs(ctx)
    if specs and all(_addon_pod(ctx, spec) for spec in specs):
        return None
    images = _images(specs[0]) if specs else "body not logged"
    return Hit(
        detail=f"DaemonSet {ctx.event.namespace}/{object_name(ctx)} (one pod on every node) created by "
        f"{ctx.principal.display}; containers: {images}.",
        target=_target(ctx),
    )


def _risky_spec(ctx: RuleContext, spec: PodSpecView) -> list[str]:
    reasons = []
    for container in _containers(ctx, spec):
        if container.privileged:
            reasons.append(f"{container.name} privileged")
        caps = [c for c in map(_capability, container.capabilities_add) if c in HIGH_CAPABILITIES | MEDIUM_CAPABILITIES]
        if caps:
            reasons.append(f"{container.name} adds {', '.join(caps)}")
    if not _addon_pod(ctx, spec):
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
    specs = _specs(ctx)
    if specs and all(_addon_pod(ctx, spec) for spec in specs):
        return None
    kind = "CronJob" if ctx.event.resource == "cronjobs" else "Job"
    action = {"create": "created", "update": "updated", "patch": "patched"}.get(ctx.event.verb, ctx.event.verb)
    body = ctx.body
    spec = body.get("spec") if isinstance(body, dict) else None
    schedule = spec.get("schedule") if isinstance(spec, dict) else None
    when = f" schedule {schedule!r}," if isinstance(schedule, str) else ""
    reasons = [reason for s in specs for reason in _risky_spec(ctx, s)]
    images = _images(specs[0]) if specs else "not shown"
    detail = (
        f"{kind} {ctx.event.namespace}/{object_name(ctx)} {action} by {ctx.principal.display};{when} "
        f"containers: {images}" + (f"; risky spec: {', '.join(reasons)}." if reasons else ".")
    )
    return Hit(detail=detail, severity=Severity.MEDIUM if reasons else None, target=_target(ctx))


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
            target=_target(ctx),
        )
    return Hit(
        detail=f"Patch of {what} defines container {'; '.join(probable)} with a full spec "
        "(a new container, or one redefined).",
        target=_target(ctx),
    )


# --- rules -----------------------------------------------------------------------------------------------------

_WORKLOAD_ALLOW = defaults.SYSTEM.extend(defaults.EKS_ADDON_IMAGES)
# Pod-content rules also see the pods controllers make (recorded at LOW against their owner, see `_instance`).
_CONTENT_ALLOW = defaults.CONTROL_PLANE.extend(defaults.EKS_ADDON_IMAGES)

RULES: list[Rule] = [
    Rule(
        id="EKS-300",
        title="Ephemeral container added to a pod",
        severity=Severity.MEDIUM,
        type="Execution:Kubernetes/EphemeralContainerAdded",
        mitre=("T1609", "T1610"),
        catalog=(14,),
        description="An ephemeral container (kubectl debug) was added to a running pod: it shares the pod's "
        "network, volumes and ServiceAccount, and can target another container's processes.",
        remediation="Confirm the debugging session with its owner; restrict pods/ephemeralcontainers to break-glass "
        "roles.",
        verbs=frozenset({"update", "patch", "create"}),
        resources=frozenset({"pods"}),
        subresources=frozenset({"ephemeralcontainers"}),
        predicate=_ephemeral_container,
        allow=_WORKLOAD_ALLOW,
    ),
    Rule(
        id="EKS-301",
        title="Privileged container",
        severity=Severity.HIGH,
        type="PrivilegeEscalation:Kubernetes/PrivilegedContainer",
        mitre=("T1611", "T1610"),
        catalog=(15,),
        description="A pod or pod template runs a privileged container: it has every capability and the host's "
        "devices, i.e. root on the node.",
        remediation="Remove privileged: true (grant only the capabilities needed), enforce the Pod Security "
        "'baseline' or 'restricted' level on the namespace, and check what the container did.",
        predicate=_privileged,
        allow=_CONTENT_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
    Rule(
        id="EKS-302",
        title="Container explicitly set to run as root",
        severity=Severity.LOW,
        type="PrivilegeEscalation:Kubernetes/RootContainer",
        mitre=("T1610",),
        catalog=(15,),
        description="A container's securityContext asks for root (runAsUser: 0 or runAsNonRoot: false).",
        remediation="Run as a non-root user (runAsNonRoot: true, a non-zero runAsUser) unless the image needs root.",
        predicate=_run_as_root,
        allow=_CONTENT_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
    Rule(
        id="EKS-303",
        title="Sensitive host path mounted",
        severity=Severity.MEDIUM,
        type="Persistence:Kubernetes/ContainerWithSensitiveMount",
        mitre=("T1611",),
        catalog=(16,),
        description="A pod or pod template mounts a sensitive hostPath: the node's root or a container runtime "
        "socket (HIGH), or kubelet credentials, host configuration or kernel interfaces.",
        remediation="Use a volume type other than hostPath, or a narrow read-only path; forbid hostPath with Pod "
        "Security 'baseline'. Check the node for tampering if the pod ran.",
        predicate=_sensitive_host_path,
        allow=_CONTENT_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
    Rule(
        id="EKS-304",
        title="Pod shares the host's namespaces",
        severity=Severity.MEDIUM,
        type="PrivilegeEscalation:Kubernetes/HostNamespaceShared",
        mitre=("T1611",),
        catalog=(17, 18, 19),
        description="A pod or pod template sets hostNetwork, hostPID or hostIPC: it sees the node's network "
        "(and IMDS credentials), processes or shared memory.",
        remediation="Remove the host namespace flags unless the workload is a node agent you trust; enforce Pod "
        "Security 'baseline'.",
        predicate=_host_namespaces,
        allow=_CONTENT_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
    Rule(
        id="EKS-305",
        title="Container adds dangerous Linux capabilities",
        severity=Severity.MEDIUM,
        type="PrivilegeEscalation:Kubernetes/DangerousCapabilities",
        mitre=("T1611", "T1068"),
        catalog=(20,),
        description="A container adds capabilities that allow a container escape (SYS_ADMIN, SYS_MODULE, "
        "DAC_READ_SEARCH, BPF, ALL: HIGH) or host-level control (NET_ADMIN, SYS_PTRACE, ...).",
        remediation="Drop the capability, or confine the workload to a dedicated node group; enforce Pod Security "
        "'baseline'.",
        predicate=_dangerous_capabilities,
        allow=_CONTENT_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
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
        allow=_WORKLOAD_ALLOW.extend(NODES),
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
        allow=_WORKLOAD_ALLOW,
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
        allow=_WORKLOAD_ALLOW,
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
        allow=_WORKLOAD_ALLOW,
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
        allow=_WORKLOAD_ALLOW,
    ),
]
