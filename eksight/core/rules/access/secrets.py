"""Secrets (catalog #30-#32): cluster-wide and kube-system lists, reads by odd clients, bulk and refused reads,
secrets written by people, and credentials left in ConfigMaps."""

from __future__ import annotations

import re
from typing import Any

from eksight.core.findings import ResourceRef, Severity
from eksight.core.rules.base import WRITE_VERBS, Hit, Rule, RuleContext, Threshold
from eksight.core.rules.common import (
    ANONYMOUS_ONLY,
    HIGH,
    HUMAN_KINDS,
    KUBE_SYSTEM,
    LOW,
    MEDIUM,
    NAME_NOT_LOGGED,
    NODE,
    NODES,
    SERVICE_ACCOUNT,
    SYSTEM,
    UNAUTHENTICATED,
    clip,
    described_object,
    first_param,
    informer_read,
    kubelet_ua,
    offensive_ua,
    origin,
    past,
    query_params,
    refused,
    scripted_ua,
    tool_ua,
    who,
)
from eksight.core.untrusted import as_dict, as_str

_SECRETS = frozenset({"secrets"})
_BULK_SECRETS = ResourceRef("", "secrets", "*")  # one finding per identity for burst rules, not one per secret
_ALL_SECRETS = ResourceRef("", "secrets", "")
_READ = frozenset({"get", "list", "watch"})


def _selector_scope(query: dict[str, list[str]]) -> str:
    """The selector, when it genuinely narrows a list (an equality, set or existence term; a name field).
    Negative terms (``!=``, ``notin``, ``!key``) match almost everything and do not count."""
    fields = first_param(query, "fieldSelector")
    if "metadata.name=" in fields and "!=" not in fields:
        return f"fieldSelector={fields}"
    labels = first_param(query, "labelSelector")
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
        if informer_read(ctx):
            return None  # a controller's informer (Argo CD, External Secrets, ...)
        return Hit(f"{what} (service account; confirm this workload needs every secret).", severity=LOW)
    scope = _selector_scope(query_params(ctx))
    if scope and kind != NODE:
        return Hit(f"{what}, narrowed by {clip(scope, 100)} (e.g. Helm's release storage).", severity=LOW)
    return Hit(f"{what}; every secret in the cluster was returned.", severity=HIGH)


def _secrets_listed_kube_system(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.namespace != KUBE_SYSTEM:
        return None
    kind = ctx.principal.kind
    what = f"{event.verb.title()} of kube-system secrets by {who(ctx)} {origin(ctx)}"  # names keep their case
    if kind == SERVICE_ACCOUNT:
        if tool_ua(event.user_agent, kind):
            return Hit(f"{what}: a service-account token used with a person's tool.", severity=HIGH)
        if informer_read(ctx):
            return None
        return Hit(f"{what} (service account).", severity=LOW)
    scope = _selector_scope(query_params(ctx))
    if scope and kind != NODE:
        return Hit(f"{what}, narrowed by {clip(scope, 100)}.", severity=LOW)
    return Hit(f"{what}: kube-system holds the cluster's own credentials.", severity=MEDIUM)


def _secret_read_suspicious_ua(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.verb in ("list", "watch") and (not event.namespace or event.namespace == KUBE_SYSTEM):
        return None  # EKS-120 / EKS-121 weigh the user agent for those
    ua, kind = event.user_agent, ctx.principal.kind
    target = described_object(ctx)
    if offensive_ua(ua):
        return Hit(
            f"{event.verb} of {target} by {who(ctx)} with an attack tool's user agent {clip(ua, 80)!r} "
            f"from {event.source_ip}.",
            severity=HIGH,
        )
    if kind == NODE:
        if ua and not kubelet_ua(ua):
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
    if not refused(ctx) or (event.verb in ("list", "watch") and not event.namespace):
        return None  # cluster-wide lists: EKS-125
    return Hit(
        f"Secret requests refused, among them {event.verb} of {described_object(ctx)}, {origin(ctx)}.",
        target=_BULK_SECRETS,
    )


def _secret_list_denied_cluster_wide(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.namespace or not refused(ctx):
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
    target = f"{event.namespace}/{name or NAME_NOT_LOGGED}" if event.namespace else name or NAME_NOT_LOGGED
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


RULES: list[Rule] = [
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
]
