"""What a pod spec asks the node for (catalog #14-#20): ephemeral containers, privileged containers, root, host
paths, host namespaces and capabilities. Each hit names the containers, images and settings that made it."""

from __future__ import annotations

from eksight.core.findings import Severity
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import dry_run
from eksight.core.rules.workloads.host_access import (
    HIGH_CAPABILITIES,
    MEDIUM_CAPABILITIES,
    capability_name,
    host_path_severity,
)
from eksight.core.rules.workloads.views import (
    CONTENT_ALLOW,
    POD_SUBRESOURCES,
    WORKLOAD_ALLOW,
    WORKLOAD_RESOURCES,
    WRITE,
    addon_pod,
    describe_container,
    images_of,
    judged,
    judged_containers,
    owner_of,
    pod_specs_of,
    workload_target,
)
from eksight.core.workloads import ContainerView, PodSpecView

# --- predicates ----------------------------------------------------------------------------------------------


def _ephemeral_container(ctx: RuleContext) -> Hit | None:
    if dry_run(ctx):
        return None
    specs = pod_specs_of(ctx)
    added = [c for spec in specs for c in spec.containers if c.kind == "ephemeral"]
    pod = f"{ctx.event.namespace}/{ctx.event.name}"
    if not added:
        return Hit(
            detail=f"Ephemeral container added to pod {pod} (no container in the logged body).",
            target=workload_target(ctx),
        )
    return Hit(
        detail=f"Added to pod {pod}: {'; '.join(describe_container(c) for c in added)}.",
        target=workload_target(ctx),
        details={"containers": [{"name": c.name, "image": c.image} for c in added]},
    )


def _privileged(ctx: RuleContext) -> Hit | None:
    findings = []
    for spec in pod_specs_of(ctx):
        for container in judged_containers(ctx, spec):
            if container.privileged:
                findings.append((spec, container))
    if not findings:
        return None
    spec = findings[0][0]
    detail = "; ".join(
        f"{describe_container(c)} in {owner_of(s)} sets securityContext.privileged: true" for s, c in findings
    )
    return judged(
        ctx,
        Hit(
            detail=detail + ".",
            target=workload_target(ctx, spec),
            details={"containers": [{"name": c.name, "image": c.image, "kind": c.kind} for _, c in findings]},
        ),
    )


def _run_as_root(ctx: RuleContext) -> Hit | None:
    findings = []
    for spec in pod_specs_of(ctx):
        for container in judged_containers(ctx, spec):
            if container.privileged:
                continue  # reported as privileged
            if container.run_as_user == 0:
                findings.append((spec, container, "runAsUser: 0"))
            elif container.run_as_non_root is False:
                findings.append((spec, container, "runAsNonRoot: false"))
    if not findings:
        return None
    detail = "; ".join(f"{describe_container(c)} in {owner_of(s)} sets {why}" for s, c, why in findings)
    return judged(ctx, Hit(detail=detail + ".", target=workload_target(ctx, findings[0][0])), Severity.INFORMATIONAL)


def _sensitive_host_path(ctx: RuleContext) -> Hit | None:
    findings: list[tuple[Severity, str, PodSpecView]] = []
    for spec in pod_specs_of(ctx):
        if addon_pod(ctx, spec):
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
    detail = f"{owner_of(spec)} mounts hostPath {paths}; containers: {images_of(spec)}."
    return judged(
        ctx,
        Hit(
            detail=detail,
            severity=severity,
            target=workload_target(ctx, spec),
            details={"host_paths": [path for _, path, _ in findings]},
        ),
    )


def _host_namespaces(ctx: RuleContext) -> Hit | None:
    for spec in pod_specs_of(ctx):
        if addon_pod(ctx, spec):
            continue
        flags = [
            name
            for name, on in (("hostNetwork", spec.host_network), ("hostPID", spec.host_pid), ("hostIPC", spec.host_ipc))
            if on
        ]
        if flags:
            return judged(
                ctx,
                Hit(
                    detail=f"{owner_of(spec)} sets {', '.join(f + ': true' for f in flags)}; "
                    f"containers: {images_of(spec)}.",
                    target=workload_target(ctx, spec),
                    details={"flags": flags},
                ),
            )
    return None


def _dangerous_capabilities(ctx: RuleContext) -> Hit | None:
    findings: list[tuple[Severity, PodSpecView, ContainerView, list[str]]] = []
    for spec in pod_specs_of(ctx):
        for container in judged_containers(ctx, spec):
            caps = [capability_name(c) for c in container.capabilities_add]
            risky = [c for c in caps if c in HIGH_CAPABILITIES or c in MEDIUM_CAPABILITIES]
            if risky:
                severity = Severity.HIGH if any(c in HIGH_CAPABILITIES for c in risky) else Severity.MEDIUM
                findings.append((severity, spec, container, risky))
    if not findings:
        return None
    findings.sort(key=lambda item: -item[0])
    detail = "; ".join(f"{describe_container(c)} in {owner_of(s)} adds {', '.join(caps)}" for _, s, c, caps in findings)
    return judged(
        ctx,
        Hit(
            detail=detail + ".",
            severity=findings[0][0],
            target=workload_target(ctx, findings[0][1]),
            details={"capabilities": sorted({cap for *_, caps in findings for cap in caps})},
        ),
    )


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
        allow=WORKLOAD_ALLOW,
        routine=(
            "kubectl debug is how teams with shell-less images debug; repeated from the same network "
            "and tool it is their practice."
        ),
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
        allow=CONTENT_ALLOW,
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
        allow=CONTENT_ALLOW,
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
        allow=CONTENT_ALLOW,
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
        allow=CONTENT_ALLOW,
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
        allow=CONTENT_ALLOW,
        verbs=WRITE,
        resources=WORKLOAD_RESOURCES,
        subresources=POD_SUBRESOURCES,
    ),
]
