"""What rule modules share: identity kinds, the usual allow-lists, and small readers of an event (its path,
query, object, origin, user agent and source address) that the rules' detail texts are built from."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import parse_qs, urlsplit

from eksight.core.findings import Severity
from eksight.core.rules import defaults
from eksight.core.rules.base import AllowList, RuleContext

LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL
ALL = frozenset({"*"})

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

KUBE_SYSTEM = "kube-system"
SYSTEM_NAMESPACES = frozenset({KUBE_SYSTEM, "kube-public", "kube-node-lease"})
EXEC_SUBRESOURCES = frozenset({"exec", "attach"})

# --- small, cached helpers ----------------------------------------------------------------------------------


@lru_cache(maxsize=16384)
def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=16384)
def is_public_ip(text: str) -> bool:
    """Globally routable (not private, loopback, link-local, CGNAT 100.64/10, documentation ...)."""
    address = parse_address(text) if text else None
    return address is not None and address.is_global


def query_params(ctx: RuleContext) -> dict[str, list[str]]:
    try:
        return parse_qs(urlsplit(ctx.event.request_uri).query, keep_blank_values=True)
    except ValueError:
        return {}


def first_param(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def request_path(ctx: RuleContext) -> str:
    try:
        return urlsplit(ctx.event.request_uri).path or "/"
    except ValueError:
        return ctx.event.request_uri.split("?", 1)[0]


def clip(text: str, limit: int = 200) -> str:
    """`text` on one line, at most `limit` characters: clipped at a word boundary when one is near (a name or
    address cut in half reads as another name), with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    space = head.rfind(" ")
    return (head[:space] if space >= limit // 2 else head) + "…"  # give up at most half to end at a word


def described_object(ctx: RuleContext) -> str:
    event = ctx.event
    kind = event.resource + (f"/{event.subresource}" if event.subresource else "")
    if not kind:
        return request_path(ctx)
    if event.name:
        return f"{kind} {event.namespace}/{event.name}" if event.namespace else f"{kind} {event.name}"
    return f"{kind} in {event.namespace}" if event.namespace else f"{kind} (all namespaces)"


def actor(ctx: RuleContext) -> str:
    """The person or process behind a request: the principal plus its session (people sharing one SSO role are
    one principal key but different actors)."""
    principal = ctx.principal
    return f"{principal.key}|{principal.session}" if principal.session else principal.key


def who(ctx: RuleContext) -> str:
    principal = ctx.principal
    return principal.display if principal.name else principal.key


def origin(ctx: RuleContext) -> str:
    event = ctx.event
    ua = f", user agent {clip(event.user_agent, 80)!r}" if event.user_agent else ""
    return f"from {event.source_ip or 'an unknown address'}{ua}"


def authorized_by(ctx: RuleContext) -> str:
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


def informer_read(ctx: RuleContext) -> bool:
    """A watch, or the reflector's initial cache-filling list (``resourceVersion=0``): how controllers read,
    as opposed to a person or script enumerating objects."""
    return ctx.event.verb == "watch" or first_param(query_params(ctx), "resourceVersion") == "0"


def refused(ctx: RuleContext) -> bool:
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


def kubelet_ua(ua: str) -> bool:
    return ua.startswith("kubelet/")


# --- the written object ---------------------------------------------------------------------------------------


def dry_run(ctx: RuleContext) -> bool:
    """`kubectl ... --dry-run=server`: validated, never persisted."""
    return "dryRun=" in ctx.event.request_uri


NAME_NOT_LOGGED = "(name not logged)"  # creates logged at Metadata level name no object


def shown_name(ctx: RuleContext) -> str:
    """The object's name as finding text shows it: `object_name`, a generated name as 'web-… (generated)', or
    NAME_NOT_LOGGED."""
    name = object_name(ctx)
    if not name:
        return NAME_NOT_LOGGED
    if ctx.event.name:
        return name
    metadata = ctx.body.get("metadata") if isinstance(ctx.body, dict) else None
    named = isinstance(metadata, dict) and metadata.get("name")
    return name if named else f"{name}… (generated)"


def object_name(ctx: RuleContext) -> str:
    """objectRef.name, else metadata.name of the body (creates are logged without a name)."""
    if ctx.event.name:
        return ctx.event.name
    body = ctx.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if isinstance(metadata, dict):
        for key in ("name", "generateName"):
            value = metadata.get(key)
            if isinstance(value, str) and value:
                return value
    return ""


def helm_managed(ctx: RuleContext) -> bool:
    """Written by Helm: its user agent, or the object carries Helm's release label or annotations."""
    if ctx.event.user_agent.startswith("Helm/"):
        return True
    body = ctx.body
    metadata = body.get("metadata") if isinstance(body, dict) else None
    if not isinstance(metadata, dict):
        return False
    labels, annotations = metadata.get("labels"), metadata.get("annotations")
    return (isinstance(labels, dict) and labels.get("app.kubernetes.io/managed-by") == "Helm") or (
        isinstance(annotations, dict) and "meta.helm.sh/release-name" in annotations
    )
