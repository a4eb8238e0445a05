"""What one audit event says about its principal's behaviour: the features baselines learn and score.

Values are short strings so profiles stay compact and explanations readable: an action is
``get secrets`` or ``create pods/exec``; a network is a /24 (IPv4) or /48 (IPv6) prefix; a tool is the
user-agent family with and without its minor version (``kubectl``, ``kubectl 1.29``).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

import msgspec

from eksight.core.events import AuditEvent
from eksight.core.identity import Principal
from eksight.core.untrusted import as_dict, as_str

# Feature names, in scoring order. `hour` is only learned and scored for humans.
# `action_class` (the security-relevant class of an action, below) is learned for first-use detection only.
# `site` is the /16 (IPv4) or /32 (IPv6) around `network`: a pod moving to another subnet of the VPC keeps its
# site; a token replayed from the office VPN (also private addresses) does not.
# `class_namespace` (e.g. `secrets@payments`) is where a principal does security-relevant things: a developer
# reads secrets in one or two namespaces, so a third is rare even if it browses pods everywhere.
ACTION, NAMESPACE, NETWORK, SITE, ZONE, TOOL, TOOL_VERSION, HOUR, IMAGE, PERMISSION, CLASS, CLASS_NAMESPACE = (
    "action",
    "namespace",
    "network",
    "site",
    "zone",
    "tool",
    "tool_version",
    "hour",
    "image",
    "permission",
    "action_class",
    "class_namespace",
)
FEATURES = (ACTION, NAMESPACE, NETWORK, SITE, ZONE, TOOL, TOOL_VERSION, HOUR, IMAGE, PERMISSION, CLASS, CLASS_NAMESPACE)
# Clients people type into, not libraries workloads are built with: a workload identity using one is a
# credential in someone's hands.
INTERACTIVE_TOOLS = frozenset(
    {
        "kubectl",
        "curl",
        "wget",
        "python-requests",
        "python-urllib3",
        "httpie",
        "k9s",
        "helm",
        "lens",
        "openlens",
        "browser",
        "postmanruntime",
        "insomnia",
        "kubectx",
        "kubens",
        "stern",
        "kubectl.exe",
    }
)

INSIDE, OUTSIDE = "inside", "outside"
CLUSTER_SCOPE = "(cluster)"  # namespace value of cluster-scoped requests

# Security-relevant action classes: only these (or a strong identity signal) may raise an anomaly finding.
(
    SECRETS,
    RBAC,
    EXEC,
    RISKY_WORKLOAD,
    TOKEN,
    WEBHOOK,
    PERMISSION_CHECK,
    CLUSTER_LIST,
    NODE_PROXY,
    IDENTITY_MAP,
    EVENT_DELETE,
    WORKLOAD,
) = (
    "secrets",
    "rbac",
    "exec",
    "risky_workload",
    "token",
    "webhook",
    "permission_check",
    "cluster_list",
    "node_proxy",
    "identity_map",
    "event_delete",
    "workload",
)
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
READ_VERBS = frozenset({"get", "list", "watch"})
_RBAC_RESOURCES = frozenset({"roles", "clusterroles", "rolebindings", "clusterrolebindings"})
_WEBHOOKS = frozenset(
    {
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    }
)
_REVIEWS = frozenset(
    {"selfsubjectaccessreviews", "selfsubjectrulesreviews", "subjectaccessreviews", "localsubjectaccessreviews"}
)
_WORKLOADS = frozenset(
    {"pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "replicationcontrollers"}
)
_LISTABLE_SENSITIVE = frozenset({"secrets", "configmaps", "pods", "serviceaccounts", "roles", "rolebindings"})
_STREAMS = frozenset({"exec", "attach", "portforward"})
_PRIVATE_V4 = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
)
_UA = re.compile(r"^\s*([A-Za-z][\w.\-]*?)(?:/v?(\d+)(?:\.(\d+))?[^\s]*)?(?:\s|$)")
# Kubernetes client binaries built with a custom name: "kubectl1.29.3/..." style oddities are rare; the
# families below are collapsed so version bumps don't look like a new tool.
_UA_FAMILY_ALIASES = {"kubectl.exe": "kubectl", "Mozilla": "browser", "Go-http-client": "go-http-client"}


class EventFeatures(msgspec.Struct, frozen=True, gc=False):
    time: float
    day: int  # UTC day number (event time)
    hour_of_week: int  # 0 = Monday 00:00 UTC
    # feature -> value ('' = not applicable to this event). Shared by every event with the same values (see
    # `extract`): read-only.
    values: dict[str, str]
    action_class: str  # one of the classes above, '' when not security-relevant
    failed: bool  # 401/403
    audit_id: str
    source_ip: str
    user_agent: str
    target: tuple[str, str, str]  # (namespace, resource, name)
    # The (feature, value) pairs a profile learns: the non-empty values but the hour (also shared; computed
    # from `values` when not given).
    learnable: tuple[tuple[str, str], ...] = ()

    def learned_values(self) -> tuple[tuple[str, str], ...]:
        return self.learnable or learnable(self.values)


def learnable(values: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((feature, value) for feature, value in values.items() if value and feature != HOUR)


def extract(event: AuditEvent, principal: Principal, time: float, images: tuple[str, ...] = ()) -> EventFeatures:
    resource = event.resource
    namespace = event.namespace
    object_name = event.object_ref.name if event.object_ref else ""
    source_ip = event.source_ips[0] if event.source_ips else ""
    day, seconds = divmod(int(time), 86400)
    hour_of_week = (day + 3) % 7 * 24 + seconds // 3600  # 1970-01-01 was a Thursday
    status = event.response_status.code if event.response_status else 0
    values, learned, sensitive, target_resource = _described(
        event.verb,
        resource,
        event.subresource,
        namespace,
        "" if resource else _non_resource(event),
        object_name == "aws-auth",
        _registry_repo(images[0]) if images else "",
        _permission(event) if resource in _REVIEWS else "",
        source_ip,
        event.user_agent,
        hour_of_week,
    )
    return EventFeatures(
        time=time,
        day=day,
        hour_of_week=hour_of_week,
        values=values,
        action_class=sensitive,
        failed=status in (401, 403),
        audit_id=event.audit_id,
        source_ip=source_ip,
        user_agent=event.user_agent,
        target=(namespace, target_resource, object_name),
        learnable=learned,
    )


# Events repeat a few request shapes and sources over and over: each distinct one is described once, and once
# more per hour of the week it occurs in (the hour is one of its values).
Description = tuple[dict[str, str], tuple[tuple[str, str], ...], str, str]  # values, learnable, class, resource


@lru_cache(maxsize=16384)
def _described(
    verb: str,
    resource: str,
    subresource: str,
    namespace: str,
    path: str,
    aws_auth: bool,
    image: str,
    permission: str,
    source_ip: str,
    user_agent: str,
    hour_of_week: int,
) -> Description:
    """The feature values (shared, read-only, by every event with the same values: what learning and scoring
    look up, without building it again for every event), the learnable ones, the action class and the
    resource/subresource; `path`: the shortened URL of a non-resource request; `image`: the first image's
    registry and repository of a workload write."""
    values, learned, sensitive, target_resource = _shape(
        verb, resource, subresource, namespace, path, aws_auth, image, permission, source_ip, user_agent
    )
    values = dict(values)  # same order: the hour keeps its place
    values[HOUR] = str(hour_of_week)
    return values, learned, sensitive, target_resource


@lru_cache(maxsize=16384)
def _shape(
    verb: str,
    resource: str,
    subresource: str,
    namespace: str,
    path: str,
    aws_auth: bool,
    image: str,
    permission: str,
    source_ip: str,
    user_agent: str,
) -> Description:
    """`_described` but the hour (left empty)."""
    target_resource = f"{resource}/{subresource}" if subresource else resource
    action = f"{verb} {target_resource or path}"
    sensitive = _action_class(verb, resource, subresource, namespace, aws_auth, bool(image))
    network, site, zone = _network(source_ip)
    tool, tool_version = _tool(user_agent)
    values = {
        ACTION: action,
        NAMESPACE: namespace or (CLUSTER_SCOPE if resource else ""),
        NETWORK: network,
        SITE: site,
        ZONE: zone,
        TOOL: tool,
        TOOL_VERSION: f"{tool} {tool_version}" if tool_version else "",
        HOUR: "",
        IMAGE: image,
        PERMISSION: permission,
        CLASS: sensitive,
        CLASS_NAMESPACE: f"{sensitive}@{namespace or CLUSTER_SCOPE}" if sensitive else "",
    }
    return values, _shared(learnable(values)), sensitive, target_resource


@lru_cache(maxsize=8192)
def _shared(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """One object per distinct learnable value set (the hour aside): a profile keys its counters by it."""
    return pairs


def action_class(event: AuditEvent, has_images: bool = False) -> str:
    return _action_class(
        event.verb,
        event.resource,
        event.subresource,
        event.namespace,
        bool(event.object_ref and event.object_ref.name == "aws-auth"),
        has_images,
    )


def _action_class(verb: str, resource: str, subresource: str, namespace: str, aws_auth: bool, has_images: bool) -> str:
    if subresource in _STREAMS:
        return EXEC
    if resource == "secrets":
        return SECRETS
    if resource in _RBAC_RESOURCES and (verb in WRITE_VERBS or verb in ("bind", "escalate")):
        return RBAC
    if verb == "impersonate":
        return RBAC
    if (resource == "serviceaccounts" and subresource == "token") or (
        resource == "certificatesigningrequests" and verb in WRITE_VERBS
    ):
        return TOKEN
    if resource in _WEBHOOKS and verb in WRITE_VERBS:
        return WEBHOOK
    if resource in _REVIEWS:
        return PERMISSION_CHECK
    if resource == "nodes" and subresource == "proxy":
        return NODE_PROXY
    if resource == "configmaps" and namespace == "kube-system" and verb in WRITE_VERBS and aws_auth:
        return IDENTITY_MAP
    if resource == "events" and verb in ("delete", "deletecollection"):
        return EVENT_DELETE
    if verb in ("list", "watch") and not namespace and resource in _LISTABLE_SENSITIVE:
        return CLUSTER_LIST
    if resource in _WORKLOADS and verb in ("create", "update", "patch") and has_images:
        return WORKLOAD
    return ""


def _non_resource(event: AuditEvent) -> str:
    path = event.request_uri.split("?", 1)[0]
    parts = [p for p in path.split("/") if p][:2]
    return "/" + "/".join(parts) if parts else "/"


@lru_cache(maxsize=65536)
def _network(ip: str) -> tuple[str, str, str]:
    """(/24 or /48 prefix, /16 or /32 site, inside|outside). 'inside' = private, CGNAT (EKS custom
    networking) or loopback addresses, which on EKS means the cluster's VPC or a peered network; anything
    else came from outside."""
    if not ip:
        return "", "", ""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "invalid", "invalid", OUTSIDE
    if address.version == 4:
        network = ipaddress.ip_network(f"{ip}/24", strict=False)
        site = ipaddress.ip_network(f"{ip}/16", strict=False)
        inside = any(address in n for n in _PRIVATE_V4)
    else:
        if address.ipv4_mapped:
            return _network(str(address.ipv4_mapped))
        network = ipaddress.ip_network(f"{ip}/48", strict=False)
        site = ipaddress.ip_network(f"{ip}/32", strict=False)
        inside = address.is_private or address.is_loopback or address.is_link_local
    return str(network), str(site), INSIDE if inside else OUTSIDE


@lru_cache(maxsize=16384)
def _tool(user_agent: str) -> tuple[str, str]:
    """('kubectl', '1.29') from 'kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625'."""
    match = _UA.match(user_agent or "")
    if not match:
        return ("unknown" if user_agent else "", "")
    family, major, minor = match.groups()
    family = _UA_FAMILY_ALIASES.get(family, family)
    # Controllers of one binary share a family: "kube-controller-manager/v1.30.1 (...)/leader-election".
    version = f"{major}.{minor}" if major and minor else (major or "")
    return family.lower(), version


def _registry_repo(image: str) -> str:
    """Registry and repository of an image without tag or digest: 'docker.io/library/nginx'."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name = name[:colon]
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{name}"
    return name


def _permission(event: AuditEvent) -> str:
    """What a SelfSubjectAccessReview asked about, when the request body was logged."""
    body = event.request_object
    if not body:
        return "(unlogged)"
    try:
        decoded = msgspec.json.decode(body)
    except Exception:
        return "(unreadable)"
    spec = as_dict(as_dict(decoded).get("spec"))
    attributes = as_dict(spec.get("resourceAttributes"))
    if attributes:
        resource = as_str(attributes.get("resource"))
        sub = as_str(attributes.get("subresource"))
        return (
            f"{as_str(attributes.get('verb'))} {resource}/{sub}"
            if sub
            else f"{as_str(attributes.get('verb'))} {resource}"
        )
    path = as_dict(spec.get("nonResourceAttributes"))
    if path:
        return f"{as_str(path.get('verb'))} {as_str(path.get('path'))}"
    return "(rules review)"
