"""Anonymous access (catalog #1): requests the API server answered for system:anonymous."""

from __future__ import annotations

from eksight.core.findings import ResourceRef
from eksight.core.identity import UNKNOWN
from eksight.core.rules.base import WRITE_VERBS, AllowList, Hit, Rule, RuleContext
from eksight.core.rules.common import (
    ALL,
    ANONYMOUS,
    CRITICAL,
    HIGH,
    LOW,
    MEDIUM,
    authorized_by,
    clip,
    described_object,
    is_public_ip,
    origin,
    request_path,
)

STREAM_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})

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
    event = ctx.event
    # One finding per source address (a scanner's whole session), escalating to its worst request.
    per_source = ResourceRef("", "source-ip", event.source_ip)
    if not event.resource:  # non-resource URL
        path = request_path(ctx)
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
            f"is not public by default.{authorized_by(ctx)}",
            severity=MEDIUM,
            target=per_source,
        )
    if event.verb in WRITE_VERBS or event.subresource in STREAM_SUBRESOURCES or event.subresource == "proxy":
        return None  # EKS-101
    return Hit(
        f"Unauthenticated {event.verb} of {described_object(ctx)} {origin(ctx)} succeeded.{authorized_by(ctx)}",
        severity=HIGH,
        target=per_source,
    )


def _anonymous_write(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if not event.resource:
        return None
    if not (event.verb in WRITE_VERBS or event.subresource in STREAM_SUBRESOURCES or event.subresource == "proxy"):
        return None
    severity = HIGH if event.resource in _REVIEW_RESOURCES and not event.subresource else CRITICAL
    return Hit(
        f"Unauthenticated {event.verb} of {described_object(ctx)} {origin(ctx)} succeeded.{authorized_by(ctx)}",
        severity=severity,
    )


def _anonymous_denied_from_internet(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    # system:anonymous refused (403), or credentials that failed authentication (401, no user at all)
    if ctx.principal.kind != ANONYMOUS and ctx.principal.key != "unknown":
        return None
    path = request_path(ctx)
    if not event.resource and (_is_health(path) or path in _PUBLIC_INFO_PATHS):
        return None
    return Hit(
        f"Unauthenticated {event.verb} of {described_object(ctx)} {origin(ctx)} was refused (HTTP {event.code}): "
        "the API endpoint is reachable from the internet and someone is probing it.",
        severity=LOW,
        target=ResourceRef("", "internet", "scanners"),
    )


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
        principal_kinds=frozenset({ANONYMOUS}),
        allow=AllowList(),
        fold=True,
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
        principal_kinds=frozenset({ANONYMOUS}),
        allow=AllowList(),
    ),
    Rule(
        id="EKS-102",
        title="Anonymous requests from the internet refused",
        severity=LOW,
        type="Discovery:Kubernetes/AnonymousAccessDenied",
        mitre=("T1595", "T1613"),
        catalog=(1,),
        description="The API server refused unauthenticated requests (system:anonymous, or credentials that failed "
        "authentication) from a public address: "
        "a scanner found the endpoint. LOW, one finding per UTC day with the count, what was asked for and from "
        "where; when anonymous requests succeed, EKS-100/EKS-101 report them as HIGH/CRITICAL.",
        remediation="Restrict the public endpoint to known networks (publicAccessCidrs) or make it private.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_anonymous_denied_from_internet,
        principal_kinds=frozenset({ANONYMOUS, UNKNOWN}),
        public_source=True,
        allowed=False,
        allow=AllowList(),
        fold=True,
        window_seconds=86400.0,  # scanners probe all day, each from its own address: one finding a day, not an hour
    ),
]
