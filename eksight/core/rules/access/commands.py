"""Commands in containers (catalog #9-#13, #45): exec, attach, `kubectl cp`, port-forward, and the kubelet API
reached through `nodes/proxy`.

The exec family (EKS-110..113) is mutually exclusive: one exec event yields one finding, the most specific.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from eksight.core.findings import Severity
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import (
    ALL,
    EXEC_SUBRESOURCES,
    HIGH,
    KUBE_SYSTEM,
    LOW,
    MEDIUM,
    SERVICE_ACCOUNT,
    SYSTEM,
    clip,
    origin,
    request_path,
    who,
)

_EXEC_PATTERNS: tuple[tuple[str, re.Pattern[str], Severity], ...] = (
    (
        "service-account token read",
        re.compile(
            r"/(var/)?run/secrets/(kubernetes\.io|eks\.amazonaws\.com|pods\.eks\.amazonaws\.com)/serviceaccount"
            r"|/var/run/secrets/tokens/"
        ),
        HIGH,
    ),
    (
        "reverse shell",
        re.compile(
            r"/dev/(tcp|udp)/|\b(nc|ncat|netcat)\b[^|;&]*\s-[a-z]*[ec]\b|\bmkfifo\b|\b(ba|z|k|da)?sh\s+-i\b"
            r"|\bsocat\b[^|;&]*\b(exec|system):|socket\.socket|io::socket|fsockopen|tcpsocket"
        ),
        HIGH,
    ),
    (
        "cloud instance metadata access",
        re.compile(r"169\.254\.169\.254|fd00:ec2::254|169\.254\.170\.(2|23)\b|fd00:ec2::23\b"),
        HIGH,
    ),
    (
        "sensitive file access",
        re.compile(
            r"/etc/g?shadow\b|\.aws/credentials|/var/lib/kubelet/(pki|kubeconfig)|/etc/kubernetes/(pki|admin\.conf"
            r"|kubelet\.conf)|\.ssh/(id_|authorized_keys)|\.kube/config|/proc/(\d+|self)/environ"
        ),
        HIGH,
    ),
    (
        "container escape",
        re.compile(r"\bnsenter\b|\bchroot\b|docker\.sock|containerd\.sock|crio\.sock|\bcrictl\b|\bmount\s+/dev/"),
        HIGH,
    ),
    (
        "download and execute",
        re.compile(
            r"\b(curl|wget)\b[^;&]*\|\s*(sudo\s+)?(ba|z|da)?sh\b|base64\s+(-d|--decode)[^;&]*\|\s*(ba|z|da)?sh\b"
        ),
        HIGH,
    ),
    ("curl/wget", re.compile(r"(^|[\s/;|&(])(curl|wget)(\s|$)"), MEDIUM),
)


def exec_indicators(command: Iterable[str]) -> list[tuple[str, Severity]]:
    """Suspicious content of an exec argv (joined and lower-cased, so `sh -c '...'` scripts are read too)."""
    line = " ".join(part for part in command if isinstance(part, str))[:8192].lower()
    if not line:
        return []
    return [(label, severity) for label, pattern, severity in _EXEC_PATTERNS if pattern.search(line)]


def _is_copy_out(command: tuple[str, ...]) -> bool:
    """`kubectl cp POD:PATH ...` runs ``tar cf - PATH`` in the container (create, to stdout)."""
    if not command or command[0].rsplit("/", 1)[-1] != "tar":
        return False
    flags = [c for c in command[1:] if c and not c.startswith("/")]
    creates = any(c.lstrip("-").isalpha() and "c" in c.lstrip("-") for c in flags[:3])
    return creates and "-" in command[1:]


class _ExecView:
    __slots__ = ("cap_low", "command", "copy_out", "indicators", "kind", "line", "request")

    def __init__(self, ctx: RuleContext) -> None:
        try:
            request = ctx.exec_request
        except Exception:  # workloads.parse_exec is defensive; this only guards an import problem
            request = None
        self.request = request
        self.kind = getattr(request, "kind", "") or ctx.event.subresource
        command = getattr(request, "command", ()) or ()
        self.command = tuple(c for c in command if isinstance(c, str))
        self.line = clip(" ".join(self.command), 300)
        self.indicators = exec_indicators(self.command) if self.kind == "exec" else []
        self.copy_out = self.kind == "exec" and _is_copy_out(self.command)
        principal = ctx.principal
        # kube-system's own service accounts acting on kube-system pods: cluster machinery (Panther excludes it)
        self.cap_low = (
            principal.kind == SERVICE_ACCOUNT
            and principal.namespace == KUBE_SYSTEM
            and ctx.event.namespace == KUBE_SYSTEM
        )


def _exec_target(ctx: RuleContext, view: _ExecView) -> str:
    container = getattr(view.request, "container", "")
    where = f"{ctx.event.namespace}/{ctx.event.name}"
    return where + (f" (container {container})" if container else "")


def _exec_details(ctx: RuleContext, view: _ExecView) -> dict[str, Any]:
    details: dict[str, Any] = {"pod": f"{ctx.event.namespace}/{ctx.event.name}", "kind": view.kind}
    if view.command:
        details["command"] = list(view.command[:20])
    container = getattr(view.request, "container", "")
    if container:
        details["container"] = container
    if view.indicators:
        details["indicators"] = [label for label, _ in view.indicators]
    return details


def _exec_what(ctx: RuleContext, view: _ExecView) -> str:
    if view.kind == "attach":
        return f"Attached to {_exec_target(ctx, view)}"
    command = f" running {view.line!r}" if view.line else " (no command logged)"
    return f"Exec into {_exec_target(ctx, view)}{command}"


def _cap(view: _ExecView, severity: Severity) -> tuple[Severity, str]:
    if view.cap_low:
        return LOW, " (a kube-system service account in its own namespace: lowered to LOW)"
    return severity, ""


def _exec_plain(ctx: RuleContext) -> Hit | None:
    view = _ExecView(ctx)
    if view.kind not in ("exec", "attach") or view.indicators or view.copy_out:
        return None
    if ctx.event.namespace == KUBE_SYSTEM:
        return None  # EKS-111
    return Hit(f"{_exec_what(ctx, view)} by {who(ctx)} {origin(ctx)}.", severity=LOW, details=_exec_details(ctx, view))


def _exec_kube_system(ctx: RuleContext) -> Hit | None:
    view = _ExecView(ctx)
    if view.kind not in ("exec", "attach") or view.indicators or view.copy_out:
        return None
    if ctx.event.namespace != KUBE_SYSTEM:
        return None
    severity, note = _cap(view, MEDIUM)
    return Hit(
        f"{_exec_what(ctx, view)} by {who(ctx)} {origin(ctx)}{note}.",
        severity=severity,
        details=_exec_details(ctx, view),
    )


def _exec_suspicious(ctx: RuleContext) -> Hit | None:
    view = _ExecView(ctx)
    if not view.indicators:
        return None
    severity, note = _cap(view, max(s for _, s in view.indicators))
    labels = ", ".join(label for label, _ in view.indicators)
    where = " in kube-system" if ctx.event.namespace == KUBE_SYSTEM else ""
    return Hit(
        f"{_exec_what(ctx, view)} by {who(ctx)} {origin(ctx)}: {labels}{where}{note}.",
        severity=severity,
        details=_exec_details(ctx, view),
    )


def _exec_copy_out(ctx: RuleContext) -> Hit | None:
    view = _ExecView(ctx)
    if not view.copy_out or view.indicators:
        return None
    paths = [c for c in view.command[1:] if c.startswith("/") or c.startswith("~")] or ["(path not logged)"]
    severity, note = _cap(view, MEDIUM)
    return Hit(
        f"Files copied out of pod {_exec_target(ctx, view)} by {who(ctx)} {origin(ctx)}: "
        f"{clip(', '.join(paths), 200)} (command {view.line!r}){note}.",
        severity=severity,
        details=_exec_details(ctx, view),
    )


def _port_forward(ctx: RuleContext) -> Hit | None:
    view = _ExecView(ctx)
    if view.kind != "portforward":
        return None
    ports = getattr(view.request, "ports", ()) or ()
    port_text = f" ports {', '.join(str(p) for p in ports)}" if ports else ""
    severity = MEDIUM if ctx.event.namespace == KUBE_SYSTEM else LOW
    severity, note = _cap(view, severity)
    return Hit(
        f"Port-forward to pod {ctx.event.namespace}/{ctx.event.name}{port_text} by {who(ctx)} {origin(ctx)}{note}.",
        severity=severity,
        details={"pod": f"{ctx.event.namespace}/{ctx.event.name}", "ports": list(ports)},
    )


_KUBELET_READ_ONLY = ("/metrics", "/stats", "/healthz", "/spec")
_KUBELET_EXECUTION = ("/run", "/exec", "/attach", "/portforward", "/portForward", "/cri", "/checkpoint")


def _node_proxy(ctx: RuleContext) -> Hit | None:
    path = request_path(ctx)
    _, marker, rest = path.partition("/proxy")
    rest = rest if marker else ""
    rest = rest or "/"
    if any(rest == p or rest.startswith(p + "/") for p in _KUBELET_READ_ONLY):
        return None
    node = ctx.event.name
    head = f"Kubelet API {rest} on node {node} reached through the API server proxy by {who(ctx)} {origin(ctx)}"
    if any(rest == p or rest.startswith(p + "/") for p in _KUBELET_EXECUTION):
        return Hit(f"{head}: runs commands in containers with no pods/exec audit record.", severity=HIGH)
    return Hit(f"{head}.", severity=MEDIUM)


RULES: list[Rule] = [
    Rule(
        id="EKS-110",
        title="Exec or attach into a pod",
        severity=LOW,
        type="Execution:Kubernetes/ExecInPod",
        mitre=("T1609",),
        catalog=(9,),
        description="Someone opened a shell or ran a command in a running container (kubectl exec/attach). Routine "
        "for debugging, but it bypasses the image and deployment pipeline and runs with the pod's "
        "credentials.",
        remediation="Confirm the person and purpose; restrict pods/exec to break-glass roles in production.",
        verbs=frozenset({"create", "get"}),
        resources=frozenset({"pods"}),
        subresources=EXEC_SUBRESOURCES,
        predicate=_exec_plain,
        allow=SYSTEM,
        routine=(
            "Debugging shells are a team's daily routine; the same person doing it again from the "
            "same network and tool is that routine."
        ),
    ),
    Rule(
        id="EKS-111",
        title="Exec into a kube-system pod",
        severity=MEDIUM,
        type="Execution:Kubernetes/ExecInKubeSystemPod",
        mitre=("T1609",),
        catalog=(10,),
        description="A command ran inside a kube-system pod. Those pods carry the cluster's most privileged service "
        "accounts and often host access (CNI, kube-proxy, CSI drivers).",
        remediation="Confirm the change was planned; restrict pods/exec in kube-system to break-glass roles.",
        verbs=frozenset({"create", "get"}),
        resources=frozenset({"pods"}),
        subresources=EXEC_SUBRESOURCES,
        predicate=_exec_kube_system,
        allow=SYSTEM,
        routine=(
            "Platform admins debug add-ons (CNI, CoreDNS, CSI) this way, often every week; repeated "
            "from the same network and tool it is their practice, not a break-in."
        ),
    ),
    Rule(
        id="EKS-112",
        title="Suspicious command executed in a pod",
        severity=HIGH,
        type="Execution:Kubernetes/SuspiciousExecCommand",
        mitre=("T1609", "T1552.001", "T1552.005", "T1611", "T1059.004"),
        catalog=(11,),
        description="An exec request ran a command typical of an intrusion: reading the pod's service-account or "
        "IRSA/Pod Identity token, a reverse shell, instance-metadata credential theft, sensitive host "
        "files, a container escape or download-and-run. Plain curl/wget is MEDIUM.",
        remediation="Treat the pod and the requesting identity as compromised: rotate the service account's tokens "
        "and any IAM role reachable from the pod, and review the identity's other activity.",
        verbs=frozenset({"create", "get"}),
        resources=frozenset({"pods"}),
        subresources=frozenset({"exec"}),
        predicate=_exec_suspicious,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-113",
        title="Files copied out of a pod (kubectl cp)",
        severity=MEDIUM,
        type="Exfiltration:Kubernetes/FilesCopiedFromPod",
        mitre=("T1609", "T1005"),
        catalog=(12,),
        description="`kubectl cp` from a pod runs `tar cf -` in the container and streams the files out: data "
        "leaves the cluster without passing any egress control.",
        remediation="Confirm what was copied and why; restrict pods/exec where data must not leave.",
        verbs=frozenset({"create", "get"}),
        resources=frozenset({"pods"}),
        subresources=frozenset({"exec"}),
        predicate=_exec_copy_out,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-114",
        title="Port-forward to a pod",
        severity=LOW,
        type="CommandAndControl:Kubernetes/PodPortForward",
        mitre=("T1572",),
        catalog=(13,),
        description="A tunnel was opened from the client to a pod's port through the API server, bypassing "
        "network policies, load balancers and their logs. MEDIUM for kube-system pods.",
        remediation="Confirm the person and purpose; restrict pods/portforward to debugging roles.",
        verbs=frozenset({"create", "get"}),
        resources=frozenset({"pods"}),
        subresources=frozenset({"portforward"}),
        predicate=_port_forward,
        allow=SYSTEM,
        routine=(
            "Developers tunnel to their own services every day; repeated from the same network and "
            "tool it is their workflow."
        ),
    ),
    Rule(
        id="EKS-160",
        title="Kubelet API reached through nodes/proxy",
        severity=MEDIUM,
        type="Execution:Kubernetes/NodeProxyRequest",
        mitre=("T1609", "T1613"),
        catalog=(45,),
        description="The API server proxied a request to a kubelet's API (nodes/proxy). Metrics and stats paths "
        "are routine (Prometheus) and not reported; /run, /exec, /attach and friends execute in "
        "containers without a pods/exec record (HIGH).",
        remediation="Remove nodes/proxy from roles that do not need it; review what was run.",
        verbs=ALL,
        resources=frozenset({"nodes"}),
        subresources=frozenset({"proxy"}),
        predicate=_node_proxy,
        allow=SYSTEM,
    ),
]
