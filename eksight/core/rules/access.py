"""Access rules: who got in, with what, and what they did with it.

Covers anonymous access, exec/attach/cp/port-forward into pods, secret access, credential minting (TokenRequest,
CSRs), identities used from places they should not be, impersonation, reconnaissance (permission self-checks,
discovery and denial bursts), threat-listed source IPs, the kubelet API through `nodes/proxy`, and use of the
`system:masters` group. Ideas are numbered as in ``shared/reference/detection-catalog.md``.

Design notes
- Severities are conservative (HIGH/CRITICAL only for strong signals). Predicates pick the severity per event
  and say *why* in `Hit.detail`: the command, the secret, the IP, the group, the binding that allowed it.
- The exec family (EKS-110..113) is mutually exclusive: one exec event yields one finding, the most specific.
- Predicates read untrusted bodies defensively and never raise; the ones indexed on every event (EKS-131,
  EKS-132, EKS-135, EKS-150, EKS-170) exit on a single attribute test for the common case.
- Two operator hooks, empty by default, are read at call time so a deployment can set them at start-up:
  `THREAT_IPS` (IPs/CIDRs of a threat list, EKS-150) and `TRUSTED_PUBLIC_CIDRS` (your own egress addresses:
  NAT gateways, public node IPs, CI runners that use service-account tokens; EKS-131). Offline, eksight cannot
  tell AWS address space from the rest of the internet, so a public source IP is judged without an ASN lookup.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import WRITE_VERBS, AllowList, Hit, Rule, RuleContext, Threshold
from eksight.core.untrusted import as_dict, as_list, as_str

LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL
ALL = frozenset({"*"})

# --- operator hooks ----------------------------------------------------------------------------------------

THREAT_IPS: frozenset[str] = frozenset()
"""Source IPs or CIDRs of a threat list (Tor exits, known-bad scanners, your own IOC feed). Empty by default:
assign a frozenset at start-up (``access.THREAT_IPS = frozenset({"203.0.113.7", "198.51.100.0/24"})``)."""

TRUSTED_PUBLIC_CIDRS: frozenset[str] = frozenset()
"""Public IPs/CIDRs that are your own (NAT gateway EIPs, public-subnet node IPs, CI runners that legitimately
use service-account tokens). Requests from them are not "system identity from a public IP" (EKS-131)."""

# --- identity kinds (see eksight.core.identity) ---------------------------------------------------------------------

ANONYMOUS = "anonymous"
SERVICE_ACCOUNT = "service_account"
NODE = "node"
HUMAN_KINDS = frozenset({"iam_role", "iam_user", "sso_role", "mapped_user", "unknown"})
"""Identities a person or an external automation (CI, Terraform) stands behind. `unknown` is included on
purpose: an unrecognised identity is surfaced, not trusted."""

SYSTEM = defaults.SYSTEM
NODES = AllowList(principal_kinds=(NODE,))
ANONYMOUS_ONLY = AllowList(principal_kinds=(ANONYMOUS,))
# The `unknown` key is an empty username: failed authentication (401s from the internet), not an actor.
UNAUTHENTICATED = AllowList(principals=("unknown",))

STREAM_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})
KUBE_SYSTEM = "kube-system"
_SECRETS = frozenset({"secrets"})
_BULK_SECRETS = ResourceRef("", "secrets", "*")  # one finding per identity for burst rules, not one per secret
_ALL_SECRETS = ResourceRef("", "secrets", "")
_READ = frozenset({"get", "list", "watch"})
_EXEC_SUBS = frozenset({"exec", "attach"})

# --- small, cached helpers ----------------------------------------------------------------------------------


@lru_cache(maxsize=16384)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public_ip(text: str) -> bool:
    """Globally routable (not private, loopback, link-local, CGNAT 100.64/10, documentation ...)."""
    address = _address(text) if text else None
    return address is not None and address.is_global


@lru_cache(maxsize=8)
def _networks(entries: frozenset[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except (ValueError, TypeError):
            continue
    return tuple(networks)


def _in_networks(text: str, entries: frozenset[str]) -> bool:
    if not entries or not text:
        return False
    address = _address(text)
    return address is not None and any(address in network for network in _networks(entries))


def _query(ctx: RuleContext) -> dict[str, list[str]]:
    try:
        return parse_qs(urlsplit(ctx.event.request_uri).query, keep_blank_values=True)
    except ValueError:
        return {}


def _first(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _path(ctx: RuleContext) -> str:
    try:
        return urlsplit(ctx.event.request_uri).path or "/"
    except ValueError:
        return ctx.event.request_uri.split("?", 1)[0]


def clip(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _obj(ctx: RuleContext) -> str:
    event = ctx.event
    kind = event.resource + (f"/{event.subresource}" if event.subresource else "")
    if not kind:
        return _path(ctx)
    if event.name:
        return f"{kind} {event.namespace}/{event.name}" if event.namespace else f"{kind} {event.name}"
    return f"{kind} in {event.namespace}" if event.namespace else f"{kind} (all namespaces)"


def who(ctx: RuleContext) -> str:
    principal = ctx.principal
    return principal.display if principal.name else principal.key


def origin(ctx: RuleContext) -> str:
    event = ctx.event
    ua = f", user agent {clip(event.user_agent, 80)!r}" if event.user_agent else ""
    return f"from {event.source_ip or 'an unknown address'}{ua}"


def _reason(ctx: RuleContext) -> str:
    reason = ctx.event.annotations.get("authorization.k8s.io/reason", "")
    return f" Authorized by: {clip(reason, 200)}." if reason else ""


_PAST = {
    "create": "created",
    "update": "updated",
    "patch": "patched",
    "delete": "deleted",
    "deletecollection": "deleted (collection)",
}


def past(verb: str) -> str:
    return _PAST.get(verb, verb)


def _informer_list(ctx: RuleContext) -> bool:
    """A watch, or the reflector's initial cache-filling list (``resourceVersion=0``): how controllers read,
    as opposed to a person or script enumerating objects."""
    return ctx.event.verb == "watch" or _first(_query(ctx), "resourceVersion") == "0"


def _denied(ctx: RuleContext) -> bool:
    """Refused by authentication or authorization (not a 404 or a conflict)."""
    event = ctx.event
    return event.code in (401, 403) or event.decision == "forbid"


# --- user agents ---------------------------------------------------------------------------------------------

_OFFENSIVE_UA = re.compile(
    r"(?<![a-z])(kali|kube-?hunter|peirates|kubiscan|kubeletctl|kubesploit|trufflehog|access[_-]?matrix|"
    r"azurehound|micro-?scanner|nmap|masscan|zgrab|nuclei|sqlmap|nikto|metasploit|gobuster|ffuf|kdigger|"
    r"amicontained|red-?kube|kubestrike|kube-?scan)",
    re.IGNORECASE,
)
# Generic HTTP clients: odd for a person or a kubelet talking to the API server (kubectl, k9s, Lens, Helm,
# Terraform and client-go all identify themselves).
_SCRIPTED_UA = re.compile(
    r"^\s*(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|go-http-client|okhttp|libwww-perl|"
    r"httpie|postmanruntime|insomnia|mozilla|powershell|axios|node-fetch|undici|ruby|java/)",
    re.IGNORECASE,
)
# From a pod, Go and Java HTTP clients are ordinary application code; shell tools and scripts are not.
_SCRIPTED_UA_FROM_POD = re.compile(
    r"^\s*(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|libwww-perl|httpie|postmanruntime|"
    r"insomnia|mozilla|powershell)",
    re.IGNORECASE,
)
_INTERACTIVE_UA = re.compile(r"^\s*(kubectl|k9s|helm|lens|openlens|headlamp)\b", re.IGNORECASE)


def offensive_ua(ua: str) -> bool:
    return bool(ua) and _OFFENSIVE_UA.search(ua) is not None


def scripted_ua(ua: str, kind: str) -> bool:
    """An HTTP library or shell tool rather than a Kubernetes client, judged for this identity kind."""
    if not ua:
        return False
    pattern = _SCRIPTED_UA_FROM_POD if kind == SERVICE_ACCOUNT else _SCRIPTED_UA
    return pattern.match(ua) is not None


def tool_ua(ua: str, kind: str) -> bool:
    """For a service account or node: a person's tool (kubectl, curl, an attack tool) instead of the workload's
    own client — the signature of a token taken out of its pod."""
    return offensive_ua(ua) or scripted_ua(ua, kind) or (bool(ua) and _INTERACTIVE_UA.match(ua) is not None)


def _kubelet_ua(ua: str) -> bool:
    return ua.startswith("kubelet/")


# =============================================================================================================
# #1 Anonymous access
# =============================================================================================================

_HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
_PUBLIC_INFO_PATHS = frozenset({"/version", "/version/", "/.well-known/openid-configuration", "/openid/v1/jwks"})
_REVIEW_RESOURCES = frozenset(
    {
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "selfsubjectreviews",
        "tokenreviews",
        "subjectaccessreviews",
    }
)


def _is_health(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in _HEALTH_PATHS)


def _anonymous_read(ctx: RuleContext) -> Hit | None:
    if ctx.principal.kind != ANONYMOUS:
        return None
    event = ctx.event
    # One finding per source address (a scanner's whole session), escalating to its worst request.
    per_source = ResourceRef("", "source-ip", event.source_ip)
    if not event.resource:  # non-resource URL
        path = _path(ctx)
        if _is_health(path):
            return None
        if path in _PUBLIC_INFO_PATHS:
            if not is_public_ip(event.source_ip):
                return None  # in-VPC monitoring probing public information
            return Hit(
                f"Unauthenticated {event.verb.upper()} {path} {origin(ctx)}: public cluster information "
                "(version fingerprinting, typical of internet scanners).",
                severity=LOW,
                target=per_source,
            )
        return Hit(
            f"Unauthenticated {event.verb.upper()} {clip(path, 120)} {origin(ctx)} succeeded: this URL "
            f"is not public by default.{_reason(ctx)}",
            severity=MEDIUM,
            target=per_source,
        )
    if event.verb in WRITE_VERBS or event.subresource in STREAM_SUBRESOURCES or event.subresource == "proxy":
        return None  # EKS-101
    return Hit(
        f"Unauthenticated {event.verb} of {_obj(ctx)} {origin(ctx)} succeeded.{_reason(ctx)}",
        severity=HIGH,
        target=per_source,
    )


def _anonymous_write(ctx: RuleContext) -> Hit | None:
    if ctx.principal.kind != ANONYMOUS:
        return None
    event = ctx.event
    if not event.resource:
        return None
    if not (event.verb in WRITE_VERBS or event.subresource in STREAM_SUBRESOURCES or event.subresource == "proxy"):
        return None
    severity = HIGH if event.resource in _REVIEW_RESOURCES and not event.subresource else CRITICAL
    return Hit(f"Unauthenticated {event.verb} of {_obj(ctx)} {origin(ctx)} succeeded.{_reason(ctx)}", severity=severity)


# =============================================================================================================
# #9-#13 exec / attach / kubectl cp / port-forward
# =============================================================================================================

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


# =============================================================================================================
# #30-#32 secrets and credentials in ConfigMaps
# =============================================================================================================


def _selector_scope(query: dict[str, list[str]]) -> str:
    """The selector, when it genuinely narrows a list (an equality, set or existence term; a name field).
    Negative terms (``!=``, ``notin``, ``!key``) match almost everything and do not count."""
    fields = _first(query, "fieldSelector")
    if "metadata.name=" in fields and "!=" not in fields:
        return f"fieldSelector={fields}"
    labels = _first(query, "labelSelector")
    if not labels:
        return ""
    for term in re.split(r",(?![^()]*\))", labels):
        term = term.strip()
        if term and "!=" not in term and " notin " not in f" {term} " and not term.startswith("!"):
            return f"labelSelector={labels}"
    return ""


def _secrets_listed_cluster_wide(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.namespace:
        return None
    kind = ctx.principal.kind
    what = f"Secrets of all namespaces: {event.verb} by {who(ctx)} {origin(ctx)}"
    if kind == SERVICE_ACCOUNT:
        if tool_ua(event.user_agent, kind):
            return Hit(f"{what}; a service-account token used with a person's tool.", severity=HIGH)
        if _informer_list(ctx):
            return None  # a controller's informer (Argo CD, External Secrets, ...)
        return Hit(f"{what} (service account; confirm this workload needs every secret).", severity=LOW)
    scope = _selector_scope(_query(ctx))
    if scope and kind != NODE:
        return Hit(f"{what}, narrowed by {clip(scope, 100)} (e.g. Helm's release storage).", severity=LOW)
    return Hit(f"{what}; every secret in the cluster was returned.", severity=HIGH)


def _secrets_listed_kube_system(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.namespace != KUBE_SYSTEM:
        return None
    kind = ctx.principal.kind
    what = f"{event.verb} of kube-system secrets by {who(ctx)} {origin(ctx)}"
    if kind == SERVICE_ACCOUNT:
        if tool_ua(event.user_agent, kind):
            return Hit(f"{what}: a service-account token used with a person's tool.", severity=HIGH)
        if _informer_list(ctx):
            return None
        return Hit(f"{what.capitalize()} (service account).", severity=LOW)
    scope = _selector_scope(_query(ctx))
    if scope and kind != NODE:
        return Hit(f"{what.capitalize()}, narrowed by {clip(scope, 100)}.", severity=LOW)
    return Hit(f"{what.capitalize()}: kube-system holds the cluster's own credentials.", severity=MEDIUM)


def _secret_read_suspicious_ua(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.verb in ("list", "watch") and (not event.namespace or event.namespace == KUBE_SYSTEM):
        return None  # EKS-120 / EKS-121 weigh the user agent for those
    ua, kind = event.user_agent, ctx.principal.kind
    target = _obj(ctx)
    if offensive_ua(ua):
        return Hit(
            f"{event.verb} of {target} by {who(ctx)} with an attack tool's user agent {clip(ua, 80)!r} "
            f"from {event.source_ip}.",
            severity=HIGH,
        )
    if kind == NODE:
        if ua and not _kubelet_ua(ua):
            return Hit(
                f"{event.verb} of {target} with node credentials but user agent {clip(ua, 80)!r} (not the "
                f"kubelet) from {event.source_ip}.",
                severity=MEDIUM,
            )
        return None
    if scripted_ua(ua, kind):
        return Hit(
            f"{event.verb} of {target} by {who(ctx)} with a scripted HTTP client {clip(ua, 80)!r} from "
            f"{event.source_ip}.",
            severity=MEDIUM,
        )
    return None


def _secret_get(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if not event.name:
        return None
    return Hit(
        f"Secrets read one by one, among them {event.namespace}/{event.name}, {origin(ctx)}.", target=_BULK_SECRETS
    )


def _secret_name(ctx: RuleContext) -> str:
    return f"{ctx.event.namespace}/{ctx.event.name}"


def _secret_denied(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if not _denied(ctx) or (event.verb in ("list", "watch") and not event.namespace):
        return None  # cluster-wide lists: EKS-125
    return Hit(f"Secret requests refused, among them {event.verb} of {_obj(ctx)}, {origin(ctx)}.", target=_BULK_SECRETS)


def _secret_list_denied_cluster_wide(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.namespace or not _denied(ctx):
        return None
    return Hit(
        f"Denied {event.verb} of secrets across all namespaces by {who(ctx)} {origin(ctx)}.", target=_ALL_SECRETS
    )


def _secret_modified(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if ctx.principal.kind not in HUMAN_KINDS:
        return None
    body = as_dict(ctx.request)
    secret_type = as_str(body.get("type"))
    name = event.name or as_str(as_dict(body.get("metadata")).get("name"))
    target = f"{event.namespace}/{name}" if name else event.namespace or "(unnamed)"
    if secret_type == "kubernetes.io/service-account-token" and event.verb == "create":
        annotations = as_dict(as_dict(body.get("metadata")).get("annotations"))
        account = as_str(annotations.get("kubernetes.io/service-account.name"))
        return Hit(
            f"Long-lived service-account token secret {target} created for service account "
            f"{account or '(not named)'} by {who(ctx)} {origin(ctx)}: it never expires.",
            severity=MEDIUM,
        )
    return Hit(f"Secret {target} {past(event.verb)} by {who(ctx)} {origin(ctx)}.", severity=LOW)


_CREDENTIAL_PATTERNS: tuple[tuple[str, re.Pattern[str], Severity], ...] = (
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), HIGH),
    ("private key", re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"), HIGH),
    (
        "credential assignment",
        re.compile(
            r"(?i)\b([a-z0-9_.-]*(password|passwd|passphrase|secret[_-]?access[_-]?key|access[_-]?key[_-]?id|"
            r"api[_-]?key|client[_-]?secret))\b[\"']?\s*[:=]\s*[\"']?(?![\s\"'$<{%])\S"
        ),
        MEDIUM,
    ),
)
_CREDENTIAL_KEY = re.compile(
    r"(?i)(password|passwd|passphrase|secret[_-]?access[_-]?key|access[_-]?key[_-]?id|api[_-]?key|client[_-]?secret)$"
)
_SCAN_LIMIT = 512 * 1024


def credential_indicators(data: Any) -> list[tuple[str, str, Severity]]:
    """(data key, what was found, severity) for ConfigMap `data` that carries credentials. Values are never
    returned, only what kind of credential each key holds."""
    found: list[tuple[str, str, Severity]] = []
    budget = _SCAN_LIMIT
    for key, value in as_dict(data).items():
        if not isinstance(key, str) or not isinstance(value, str) or budget <= 0:
            continue
        text = value[:budget]
        budget -= len(text)
        stripped = text.strip()
        if _CREDENTIAL_KEY.search(key) and stripped and stripped[0] not in "$<{":
            found.append((key, "credential-named key", MEDIUM))
        for label, pattern, severity in _CREDENTIAL_PATTERNS:
            match = pattern.search(text)
            if match:
                what = label if label != "credential assignment" else f"assignment to {match.group(1)!r}"
                if label == "AWS access key id":
                    what = f"AWS access key id {match.group(0)[:8]}…"
                found.append((key, what, severity))
    return found


def _configmap_credentials(ctx: RuleContext) -> Hit | None:
    body = ctx.body
    if not isinstance(body, dict):
        return None
    found = credential_indicators(body.get("data"))
    if not found:
        return None
    event = ctx.event
    name = event.name or as_str(as_dict(body.get("metadata")).get("name"))
    listing = "; ".join(f"{key}: {what}" for key, what, _ in found[:6])
    return Hit(
        f"ConfigMap {event.namespace}/{name} {past(event.verb)} by {who(ctx)} carries credentials in plain "
        f"text ({clip(listing, 300)}). Anyone who can read ConfigMaps can read them.",
        severity=max(s for _, _, s in found),
        details={"configmap": f"{event.namespace}/{name}", "keys": sorted({k for k, _, _ in found})},
    )


# =============================================================================================================
# #33 TokenRequest, #34 identities out of place, #35 CSRs, #36 impersonation
# =============================================================================================================


def _token_request(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    spec = as_dict(as_dict(ctx.request).get("spec"))
    expiration = spec.get("expirationSeconds")
    expiration = expiration if isinstance(expiration, int) and not isinstance(expiration, bool) else None
    audiences = [a for a in as_list(spec.get("audiences")) if isinstance(a, str)]
    bound = as_dict(spec.get("boundObjectRef"))
    reasons = []
    if event.namespace == KUBE_SYSTEM:
        reasons.append("a kube-system service account")
    if expiration is not None and expiration > 86400:
        reasons.append(f"valid for {expiration // 3600} h")
    principal = ctx.principal
    if principal.kind == SERVICE_ACCOUNT and (principal.namespace, principal.service_account) != (
        event.namespace,
        event.name,
    ):
        reasons.append(f"minted by another service account ({principal.namespace}/{principal.service_account})")
    extra = []
    if audiences:
        extra.append(f"audiences {', '.join(audiences[:3])}")
    if bound:
        extra.append(f"bound to {as_str(bound.get('kind'))} {as_str(bound.get('name'))}")
    credential = event.annotations.get("authentication.kubernetes.io/issued-credential-id", "")
    if credential:
        extra.append(f"credential {credential}")
    detail = (
        f"Token minted for service account {event.namespace}/{event.name} by {who(ctx)} {origin(ctx)}"
        + (f" ({'; '.join(extra)})" if extra else "")
        + (f": {', '.join(reasons)}." if reasons else ".")
    )
    return Hit(detail, severity=MEDIUM if reasons else LOW)


def _trusted(ip: str) -> bool:
    return _in_networks(ip, TRUSTED_PUBLIC_CIDRS)


def _system_identity_public_ip(ctx: RuleContext) -> Hit | None:
    kind = ctx.principal.kind
    if kind not in (SERVICE_ACCOUNT, NODE, "k8s_system"):
        return None
    event = ctx.event
    ip = event.source_ip
    if not is_public_ip(ip) or _trusted(ip):
        return None
    principal, ua = ctx.principal, event.user_agent
    target = ResourceRef(principal.namespace, "source-ip", ip)
    outcome = "" if event.allowed else f" (denied, HTTP {event.code})"
    request = f"{event.verb} {_obj(ctx)}{outcome}"
    if kind == NODE:
        if _kubelet_ua(ua):
            return None  # a node in a public subnet using the public endpoint
        if tool_ua(ua, kind):
            severity = MEDIUM if event.allowed else LOW
            why = "node credentials used with a person's tool from the internet"
        else:
            severity, why = LOW, "node identity without the kubelet's user agent from a public address"
        return Hit(
            f"{principal.name} from public IP {ip}, user agent {clip(ua, 80)!r}: {why} ({request}).",
            severity=severity,
            target=target,
        )
    if kind == SERVICE_ACCOUNT:
        bound = f" (token bound to pod {principal.pod})" if principal.pod else ""
        if not event.allowed:
            severity = LOW
        elif offensive_ua(ua) or (principal.pod and tool_ua(ua, kind)):
            severity = HIGH  # a token minted for a pod, used from the internet with a person's tool
        else:
            severity = MEDIUM
        return Hit(
            f"Service account {principal.namespace}/{principal.service_account}{bound} used from public IP "
            f"{ip}{', user agent ' + repr(clip(ua, 80)) if ua else ''}: in-cluster tokens reach the API "
            f"server from private addresses ({request}). eksight cannot tell AWS addresses apart offline: "
            "add your own egress IPs to TRUSTED_PUBLIC_CIDRS.",
            severity=severity,
            target=target,
        )
    return Hit(
        f"Control-plane identity {principal.name} used from public IP {ip} ({request}).",
        severity=MEDIUM if event.allowed else LOW,
        target=target,
    )


_NODE_HOST = re.compile(r"^(?:fargate-)?ip-(\d{1,3})-(\d{1,3})-(\d{1,3})-(\d{1,3})(?:\.|$)")


@lru_cache(maxsize=4096)
def node_host_ip(node: str) -> str:
    """The private IPv4 address in an EC2 hostname (``ip-10-0-1-5.ec2.internal``), else ""."""
    match = _NODE_HOST.match(node)
    if not match:
        return ""
    parts = match.groups()
    return ".".join(parts) if all(int(p) < 256 for p in parts) else ""


def _node_credentials_off_node(ctx: RuleContext) -> Hit | None:
    principal = ctx.principal
    if principal.kind != NODE:
        return None
    ip = ctx.event.source_ip
    expected = node_host_ip(principal.node)
    if not expected or ip == expected:
        return None
    address = _address(ip)
    if address is None or address.version != 4 or address.is_global:
        return None  # IPv6 clusters, unparsable addresses; public ones are EKS-131's
    event, ua = ctx.event, ctx.event.user_agent
    severity = MEDIUM if _kubelet_ua(ua) else HIGH
    return Hit(
        f"Credentials of node {principal.node} (address {expected}) used from {ip}, user agent "
        f"{clip(ua, 80)!r}: {event.verb} {_obj(ctx)}. A pod that reads the node's IAM role from the instance "
        "metadata service authenticates as the node from its own IP.",
        severity=severity,
        target=ResourceRef("", "source-ip", ip),
    )


_CLIENT_SIGNERS = frozenset(
    {
        "kubernetes.io/kube-apiserver-client",
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/legacy-unknown",
    }
)


def _csr_subject_bytes(request: Any) -> bytes:
    """DER of the PEM CSR in spec.request (base64 of PEM), bounded; b"" if anything is off."""
    if not isinstance(request, str) or len(request) > 65536:
        return b""
    try:
        pem = base64.b64decode(request, validate=False).decode("ascii", "ignore")
        body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
        return base64.b64decode(body, validate=False)
    except (binascii.Error, ValueError):
        return b""


def csr_summary(spec: Any) -> tuple[str, tuple[str, ...], bool, bool, bool]:
    """(signer, usages, is client certificate, asks for system:masters, claims a node identity)."""
    spec = as_dict(spec)
    signer = as_str(spec.get("signerName"))
    usages = tuple(u for u in as_list(spec.get("usages")) if isinstance(u, str))
    der = _csr_subject_bytes(spec.get("request"))
    client = signer in _CLIENT_SIGNERS or "client auth" in usages
    return signer, usages, client, b"system:masters" in der, b"system:node:" in der


def _csr_created(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    body = as_dict(ctx.body)
    spec = body.get("spec")
    name = event.name or as_str(as_dict(body.get("metadata")).get("name"))
    head = f"CSR {name or '(unnamed)'} created by {who(ctx)} {origin(ctx)}"
    if not isinstance(spec, dict):
        return Hit(f"{head}; the request body was not logged, so its signer is unknown.", severity=MEDIUM)
    signer, usages, client, masters, node = csr_summary(spec)
    described = f"signer {signer or '(none)'}, usages {', '.join(usages) or '(none)'}"
    if masters:
        return Hit(
            f"{head} asks for a certificate in group system:masters ({described}): unrevocable cluster admin.",
            severity=HIGH,
        )
    if client and node:
        return Hit(f"{head} claims a node identity (system:node:…) ({described}).", severity=HIGH)
    if client:
        return Hit(
            f"{head} for a client certificate ({described}): a credential that cannot be revoked until it expires.",
            severity=MEDIUM,
        )
    return Hit(f"{head} ({described}).", severity=LOW)


def _csr_approved(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    body = as_dict(ctx.body)
    status = as_dict(body.get("status"))
    conditions = [c for c in as_list(status.get("conditions")) if isinstance(c, dict)]
    if conditions and not any(as_str(c.get("type")) == "Approved" for c in conditions):
        return None  # denied or other condition
    signer, _usages, client, masters, node = csr_summary(body.get("spec"))
    head = f"CSR {event.name} approved by {who(ctx)} {origin(ctx)}"
    described = f" (signer {signer})" if signer else ""
    if masters:
        return Hit(f"{head}{described}: the certificate carries group system:masters.", severity=HIGH)
    if client and node:
        return Hit(f"{head}{described}: the certificate claims a node identity.", severity=HIGH)
    return Hit(
        f"{head}{described}: approving mints a credential outside EKS's certificate controller.", severity=MEDIUM
    )


_PRIVILEGED_GROUPS = frozenset({"system:masters", "cluster-admin", "cluster-admins", "system:cluster-admins"})


def _impersonation(ctx: RuleContext) -> Hit | None:
    user = ctx.event.impersonated_user
    if user is None or not (user.username or user.groups):
        return None
    username, groups = user.username, tuple(g for g in user.groups if isinstance(g, str))
    privileged_groups = [g for g in groups if g in _PRIVILEGED_GROUPS or g.startswith("eks:")]
    as_text = f"{username or '(no user)'}" + (f" with groups {', '.join(groups[:6])}" if groups else "")
    head = f"{who(ctx)} impersonated {as_text} to {ctx.event.verb} {_obj(ctx)} {origin(ctx)}"
    if privileged_groups:
        return Hit(f"{head}: group {', '.join(privileged_groups)} is cluster admin.", severity=HIGH)
    if username.startswith("system:serviceaccount:"):
        namespace = username.split(":")[2] if username.count(":") >= 3 else ""
        if namespace == KUBE_SYSTEM:
            return Hit(f"{head}: a kube-system service account.", severity=HIGH)
        return Hit(f"{head}.", severity=MEDIUM)
    if username in ("system:admin", "kubernetes-admin") or username.startswith(("system:", "eks:")):
        return Hit(f"{head}: a system identity.", severity=HIGH)
    return Hit(f"{head}.", severity=LOW)


# =============================================================================================================
# #37-#39 reconnaissance
# =============================================================================================================


def _self_check(ctx: RuleContext) -> Hit | None:
    event, kind, ua = ctx.event, ctx.principal.kind, ctx.event.user_agent
    what = (
        "rules review (kubectl auth can-i --list)"
        if event.resource == "selfsubjectrulesreviews"
        else "access review (kubectl auth can-i)"
    )
    head = f"Permission self-check: {what} by {who(ctx)} {origin(ctx)}"
    if offensive_ua(ua):
        return Hit(f"{head} with an attack tool.", severity=MEDIUM)
    if kind == SERVICE_ACCOUNT:
        if tool_ua(ua, kind):
            return Hit(f"{head}: a service-account token used with a person's tool.", severity=MEDIUM)
        if event.resource == "selfsubjectrulesreviews":
            return Hit(f"{head}: a workload listing everything it may do.", severity=MEDIUM)
        return Hit(f"{head}.", severity=LOW)
    if kind == NODE:
        return Hit(f"{head}: kubelets do not check their own permissions.", severity=MEDIUM)
    if scripted_ua(ua, kind):
        return Hit(f"{head} with a scripted HTTP client.", severity=MEDIUM)
    return Hit(f"{head}.", severity=LOW)


def _discovery_list(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if not event.resource or _informer_list(ctx):
        return None
    scope = f"in {event.namespace}" if event.namespace else "across all namespaces"
    outcome = "" if event.allowed else f" (denied, HTTP {event.code})"
    return Hit(
        f"Many resource types listed within a minute, among them {event.resource} {scope}{outcome}, {origin(ctx)}.",
        target=ResourceRef("", "resource-types", "*"),
    )


def _resource_kind(ctx: RuleContext) -> str:
    return f"{ctx.event.api_group}/{ctx.event.resource}"


def _denied_request(ctx: RuleContext) -> Hit | None:
    if not _denied(ctx):
        return None
    event = ctx.event
    return Hit(
        f"Requests refused, among them (HTTP {event.code or 403}) {event.verb} {_obj(ctx)}, {origin(ctx)}.",
        target=ResourceRef("", "denied-requests", "*"),
    )


def _request_shape(ctx: RuleContext) -> str:
    event = ctx.event
    if not event.resource:
        return f"{event.verb} {_path(ctx)}"
    return f"{event.verb} {event.api_group}/{event.resource}/{event.subresource} {event.namespace}/{event.name}"


_RBAC_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
_WORKLOAD_RESOURCES = frozenset(
    {"pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "replicationcontrollers"}
)


def _forbidden_write(ctx: RuleContext) -> Hit | None:
    event, kind = ctx.event, ctx.principal.kind
    if not _denied(ctx) or (event.verb == "get" and event.subresource not in _EXEC_SUBS):
        return None
    message = event.response_status.message if event.response_status else ""
    why = f" ({clip(message, 160)})" if message else ""
    head = f"Forbidden {event.verb} of {_obj(ctx)} by {who(ctx)} {origin(ctx)}{why}"
    if "not currently held" in message or "escalat" in message.lower():
        return Hit(f"{head}: an attempt to grant permissions the caller does not hold.", severity=MEDIUM)
    if kind == SERVICE_ACCOUNT:
        return Hit(f"{head}: a workload's token trying to run or change workloads.", severity=MEDIUM)
    return Hit(f"{head}.", severity=LOW)


# =============================================================================================================
# #40 threat list, #45 nodes/proxy, #48 system:masters
# =============================================================================================================


def _threat_ip(ctx: RuleContext) -> Hit | None:
    entries = THREAT_IPS
    if not entries:
        return None
    event = ctx.event
    hits = [ip for ip in event.source_ips if _in_networks(ip, entries)]
    if not hits:
        return None
    outcome = "succeeded" if event.allowed else f"was denied (HTTP {event.code})"
    return Hit(
        f"{event.verb} {_obj(ctx)} by {who(ctx)} from threat-listed {', '.join(hits)} {outcome}.",
        severity=HIGH if event.allowed else MEDIUM,
        target=ResourceRef("", "source-ip", hits[0]),
    )


_KUBELET_READ_ONLY = ("/metrics", "/stats", "/healthz", "/spec")
_KUBELET_EXECUTION = ("/run", "/exec", "/attach", "/portforward", "/portForward", "/cri", "/checkpoint")


def _node_proxy(ctx: RuleContext) -> Hit | None:
    path = _path(ctx)
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


def _system_masters(ctx: RuleContext) -> Hit | None:
    principal = ctx.principal
    if principal.kind not in HUMAN_KINDS or "system:masters" not in principal.groups:
        return None
    return Hit(
        f"{who(ctx)} acted with group system:masters ({ctx.event.verb} {_obj(ctx)}) {origin(ctx)}.",
        severity=LOW,
        target=ResourceRef("", "group", "system:masters"),
    )


# =============================================================================================================
# the rules
# =============================================================================================================

RULES: list[Rule] = [
    Rule(
        id="EKS-100",
        title="Anonymous request allowed",
        severity=HIGH,
        type="Discovery:Kubernetes/SuccessfulAnonymousAccess",
        mitre=("T1078.001", "T1613"),
        catalog=(1,),
        description="The API server answered an unauthenticated request (system:anonymous) with success. Anything "
        "beyond the public health and version endpoints means a binding grants access to anonymous "
        "users, so anyone who can reach the endpoint can read the cluster.",
        remediation="Remove the (Cluster)RoleBinding named in the finding that grants system:anonymous or "
        "system:unauthenticated; restrict the public endpoint (publicAccessCidrs) or make it private.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_anonymous_read,
        allow=AllowList(),
    ),
    Rule(
        id="EKS-101",
        title="Anonymous write or exec allowed",
        severity=CRITICAL,
        type="Impact:Kubernetes/SuccessfulAnonymousAccess",
        mitre=("T1078.001", "T1609", "T1610"),
        catalog=(1,),
        description="An unauthenticated request (system:anonymous) changed cluster state or opened a session into "
        "a pod. Anyone on the network path to the API server can do the same.",
        remediation="Remove the binding that authorizes anonymous users immediately, restrict endpoint access, and "
        "review what the anonymous requests created or changed.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_anonymous_write,
        allow=AllowList(),
    ),
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
        subresources=_EXEC_SUBS,
        predicate=_exec_plain,
        allow=SYSTEM,
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
        subresources=_EXEC_SUBS,
        predicate=_exec_kube_system,
        allow=SYSTEM,
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
    ),
    Rule(
        id="EKS-120",
        title="Secrets listed across all namespaces",
        severity=HIGH,
        type="CredentialAccess:Kubernetes/SecretsListedClusterWide",
        mitre=("T1552.007",),
        catalog=(30,),
        description="A list or watch of /api/v1/secrets returns every secret in the cluster, values included. "
        "People rarely need it; controllers that do read it through informers (not reported).",
        remediation="Confirm the need; remove cluster-wide secrets read from the identity's roles and rotate the "
        "secrets if the request was not expected.",
        verbs=frozenset({"list", "watch"}),
        resources=_SECRETS,
        predicate=_secrets_listed_cluster_wide,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-121",
        title="kube-system secrets listed",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/KubeSystemSecretsListed",
        mitre=("T1552.007",),
        catalog=(30,),
        description="All secrets of kube-system were listed: the namespace holds the credentials of the cluster's "
        "own controllers and add-ons.",
        remediation="Confirm the need; rotate kube-system secrets if the request was not expected.",
        verbs=frozenset({"list", "watch"}),
        resources=_SECRETS,
        predicate=_secrets_listed_kube_system,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-122",
        title="Secret read with a suspicious user agent",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/SecretsAccessedWithSuspiciousUserAgent",
        mitre=("T1552.007",),
        catalog=(30,),
        description="A secret was read by an attack tool, a scripted HTTP client (curl, python-requests, ...) "
        "instead of kubectl or a controller, or by node credentials without the kubelet's agent: a "
        "token being used outside its intended client.",
        remediation="Find where the identity's credentials are used from; rotate them and the secret if unexpected.",
        verbs=_READ,
        resources=_SECRETS,
        predicate=_secret_read_suspicious_ua,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-123",
        title="Many distinct secrets read",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/BulkSecretReads",
        mitre=("T1552.007",),
        catalog=(30,),
        description="One identity read 15 or more distinct secrets one by one within 30 minutes (Panther's "
        "BulkSecretAccess threshold): harvesting credentials without the tell-tale cluster-wide list.",
        remediation="Confirm the activity; rotate the secrets read if it was not expected.",
        verbs=frozenset({"get"}),
        resources=_SECRETS,
        predicate=_secret_get,
        allow=SYSTEM.extend(NODES),
        threshold=Threshold(count=15, window_seconds=1800, distinct=_secret_name),
    ),
    Rule(
        id="EKS-124",
        title="Repeated denied secret access",
        severity=MEDIUM,
        type="Discovery:Kubernetes/SecretAccessDeniedBurst",
        mitre=("T1552.007", "T1613"),
        catalog=(31,),
        description="One identity was refused secrets 20 times within 15 minutes (Panther's threshold): probing "
        "for credentials it is not allowed to read.",
        remediation="Find out why this identity asks for these secrets; if its credentials are misused, rotate them.",
        verbs=_READ,
        resources=_SECRETS,
        predicate=_secret_denied,
        allowed=False,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
        threshold=Threshold(count=20, window_seconds=900),
    ),
    Rule(
        id="EKS-125",
        title="Denied attempts to list all secrets",
        severity=MEDIUM,
        type="Discovery:Kubernetes/ClusterWideSecretListDenied",
        mitre=("T1552.007", "T1613"),
        catalog=(31,),
        description="One identity tried three times within 15 minutes to list secrets across all namespaces and "
        "was refused: a stolen credential trying the obvious first move.",
        remediation="Find out who holds this identity's credentials and why it tries to dump secrets.",
        verbs=frozenset({"list", "watch"}),
        resources=_SECRETS,
        predicate=_secret_list_denied_cluster_wide,
        allowed=False,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
        threshold=Threshold(count=3, window_seconds=900),
    ),
    Rule(
        id="EKS-126",
        title="Secret created, changed or deleted by a person",
        severity=LOW,
        type="Persistence:Kubernetes/SecretModified",
        mitre=("T1098", "T1485"),
        catalog=(32,),
        description="A person or external automation wrote a secret directly. An audit trail; a long-lived "
        "service-account token secret (never expires) is MEDIUM.",
        remediation="Prefer secrets managed by a pipeline or an external secret store; review unexpected changes.",
        verbs=WRITE_VERBS,
        resources=_SECRETS,
        predicate=_secret_modified,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-127",
        title="ConfigMap carries credentials",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/CredentialsInConfigMap",
        mitre=("T1552.001", "T1552.007"),
        catalog=(32,),
        description="A ConfigMap was written with what looks like a credential (AWS access key, private key, "
        "password or API key assignment). ConfigMaps are readable by far more identities than secrets "
        "and are not encrypted with the cluster's KMS key.",
        remediation="Move the value to a Secret or an external secret store and rotate the credential.",
        verbs=frozenset({"create", "update", "patch"}),
        resources=frozenset({"configmaps"}),
        predicate=_configmap_credentials,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-130",
        title="Service-account token minted (TokenRequest)",
        severity=LOW,
        type="Persistence:Kubernetes/ServiceAccountTokenCreated",
        mitre=("T1528", "T1550.001"),
        catalog=(33,),
        description="Someone other than a kubelet or the control plane requested a token for a service account "
        "(kubectl create token). The token works from anywhere until it expires. MEDIUM for kube-system "
        "accounts, tokens valid longer than a day, or one service account minting for another.",
        remediation="Confirm the need; if unexpected, delete and recreate the service account to invalidate the "
        "token (bound tokens die with their object) and review what it did.",
        verbs=frozenset({"create"}),
        resources=frozenset({"serviceaccounts"}),
        subresources=frozenset({"token"}),
        predicate=_token_request,
        allow=SYSTEM.extend(NODES),
    ),
    Rule(
        id="EKS-131",
        title="In-cluster identity used from a public IP",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/SystemIdentityFromPublicIP",
        mitre=("T1078", "T1550.001"),
        catalog=(34,),
        description="A service-account token, node credential or control-plane identity was used from a public "
        "address. In-cluster clients reach the API server from private addresses, so this usually "
        "means a token left the cluster. Caveats: offline there is no way to recognise AWS address "
        "space, so clusters whose nodes use the public endpoint from public subnets will see their own "
        "traffic here — list those egress addresses in TRUSTED_PUBLIC_CIDRS. Kubelets (by user agent) "
        "and EKS's own eks:* identities, which call from AWS public ranges, are not reported.",
        remediation="Find where the token is used from; delete the service account's token secrets or recreate "
        "the account, and review the identity's activity.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_system_identity_public_ip,
        allowed=None,
        allow=AllowList(principal_kinds=("eks_system",)),
    ),
    Rule(
        id="EKS-132",
        title="Node credentials used from another address",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/NodeCredentialsUsedOffNode",
        mitre=("T1552.005", "T1078"),
        catalog=(34,),
        description="A node identity (system:node:ip-A-B-C-D…) made a request from a private IPv4 address other "
        "than the one in its own hostname. Kubelets call from their node's address; a pod that took the "
        "node's IAM role from the instance metadata service calls from the pod's. HIGH when the user "
        "agent is not the kubelet's.",
        remediation="Require IMDSv2 with hop limit 1 on the node group (or block IMDS from pods), find the pod "
        "that owns the source address, and review what the node identity did.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_node_credentials_off_node,
        allowed=None,
        allow=AllowList(),
    ),
    Rule(
        id="EKS-133",
        title="Certificate signing request by a non-node identity",
        severity=MEDIUM,
        type="Persistence:Kubernetes/ClientCertificateRequested",
        mitre=("T1649",),
        catalog=(35,),
        description="A person or workload asked the cluster to sign a certificate. Client certificates "
        "authenticate until they expire and cannot be revoked; one for system:masters or a node "
        "identity is HIGH, serving certificates LOW.",
        remediation="Deny or delete the CSR unless expected; never approve client certificates for privileged groups.",
        verbs=frozenset({"create"}),
        resources=frozenset({"certificatesigningrequests"}),
        predicate=_csr_created,
        allow=SYSTEM.extend(NODES),
    ),
    Rule(
        id="EKS-134",
        title="Certificate signing request approved by a non-system identity",
        severity=MEDIUM,
        type="Persistence:Kubernetes/CertificateSigningRequestApproved",
        mitre=("T1649",),
        catalog=(35,),
        description="A CSR was approved by someone other than EKS's certificate controller: approving mints a "
        "credential for whoever holds the private key.",
        remediation="Confirm the approval; if unexpected, treat the certificate's subject as compromised.",
        verbs=frozenset({"update", "patch"}),
        resources=frozenset({"certificatesigningrequests"}),
        subresources=frozenset({"approval"}),
        predicate=_csr_approved,
        allow=SYSTEM.extend(NODES),
    ),
    Rule(
        id="EKS-135",
        title="Impersonation of a privileged identity",
        severity=HIGH,
        type="PrivilegeEscalation:Kubernetes/PrivilegedImpersonation",
        mitre=("T1078", "T1134"),
        catalog=(36,),
        description="A request used Impersonate-User/Group headers to act as a cluster admin (system:masters, "
        "cluster-admin groups), a system identity or a kube-system service account. Other "
        "impersonation is LOW (access proxies such as Teleport do it routinely).",
        remediation="Restrict the impersonate verb; confirm the impersonating identity is an approved access proxy.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_impersonation,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-140",
        title="Permission self-check",
        severity=LOW,
        type="Discovery:Kubernetes/PermissionChecked",
        mitre=("T1069", "T1613"),
        catalog=(37,),
        description="An identity asked what it may do (SelfSubjectAccessReview/RulesReview, kubectl auth can-i). "
        "Normal for people and some tools (k9s); MEDIUM when a workload enumerates its rules or the "
        "client is a script or attack tool — the first step after stealing a token.",
        remediation="Confirm who holds the identity's credentials when the client or identity is unusual.",
        verbs=frozenset({"create"}),
        resources=frozenset({"selfsubjectaccessreviews", "selfsubjectrulesreviews"}),
        predicate=_self_check,
        allow=SYSTEM,
    ),
    Rule(
        id="EKS-141",
        title="Resource discovery burst",
        severity=MEDIUM,
        type="Discovery:Kubernetes/ResourceEnumeration",
        mitre=("T1613",),
        catalog=(38,),
        description="One identity listed 15 or more different resource types within a minute (ad-hoc lists, not "
        "controller informers): enumeration of what the cluster runs and what the identity can see.",
        remediation="Confirm the activity (some inventory and backup tools do this; allow-list them).",
        verbs=frozenset({"list"}),
        resources=ALL,
        predicate=_discovery_list,
        allowed=None,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
        threshold=Threshold(count=15, window_seconds=60, distinct=_resource_kind),
    ),
    Rule(
        id="EKS-142",
        title="Repeated access denied",
        severity=MEDIUM,
        type="Discovery:Kubernetes/RepeatedAccessDenied",
        mitre=("T1613", "T1078"),
        catalog=(39,),
        description="One identity was refused 10 different requests within 30 minutes (Panther's Multiple403 "
        "threshold, counted over distinct requests so a controller retrying one missing permission "
        "does not count): an identity testing what it may do. Anonymous and failed-authentication "
        "requests (internet background noise) and kubelets (NodeRestriction) are not counted.",
        remediation="Find out who uses the identity and what it was looking for.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_denied_request,
        allowed=False,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
        threshold=Threshold(count=10, window_seconds=1800, distinct=_request_shape),
    ),
    Rule(
        id="EKS-143",
        title="Forbidden workload or RBAC change",
        severity=MEDIUM,
        type="PrivilegeEscalation:Kubernetes/ForbiddenWorkloadOrRbacWrite",
        mitre=("T1610", "T1098"),
        catalog=(39,),
        description="A request to create or change workloads, exec into pods, or change RBAC was refused. MEDIUM "
        "for service-account tokens and for attempts to grant permissions the caller does not hold "
        "(RBAC escalation prevention); LOW for people otherwise (missing rights are common).",
        remediation="Find out why the identity attempted it; a workload token doing this is likely stolen.",
        verbs=frozenset({"create", "update", "patch", "get"}),
        resources=_WORKLOAD_RESOURCES | _RBAC_RESOURCES,
        subresources=frozenset({"", "exec", "attach", "ephemeralcontainers"}),
        predicate=_forbidden_write,
        allowed=False,
        allow=SYSTEM.extend(NODES).extend(ANONYMOUS_ONLY).extend(UNAUTHENTICATED),
    ),
    Rule(
        id="EKS-150",
        title="Request from a threat-listed IP",
        severity=HIGH,
        type="CredentialAccess:Kubernetes/MaliciousIPCaller.Custom",
        mitre=("T1078",),
        catalog=(40,),
        description="A request came from an address on the configured threat list (access.THREAT_IPS; empty by "
        "default). MEDIUM when the request was denied.",
        remediation="Block the address at the endpoint (publicAccessCidrs), and rotate the credentials it used.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_threat_ip,
        allowed=None,
        allow=defaults.CONTROL_PLANE,
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
    Rule(
        id="EKS-170",
        title="Request with the system:masters group",
        severity=LOW,
        type="Policy:Kubernetes/SystemMastersGroupUsed",
        mitre=("T1078",),
        catalog=(48,),
        description="A person or external automation acted with group system:masters, which bypasses RBAC "
        "entirely and cannot be limited by any binding. It is how an EKS cluster creator's access "
        "worked before access entries (and how aws-auth admin mappings work), so it is an audit "
        "trail, not an alarm.",
        remediation="Move administrators to access entries with AmazonEKSClusterAdminPolicy (or RBAC bindings) and "
        "drop system:masters mappings from aws-auth.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_system_masters,
        allow=SYSTEM,
    ),
]
