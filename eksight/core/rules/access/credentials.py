"""Credentials minted or borrowed (catalog #33, #35, #36, #48): TokenRequest, certificate signing requests,
impersonation, and use of the `system:masters` group."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from eksight.core.findings import ResourceRef
from eksight.core.rules.base import Hit, Rule, RuleContext
from eksight.core.rules.common import (
    ALL,
    HIGH,
    HUMAN_KINDS,
    KUBE_SYSTEM,
    LOW,
    MEDIUM,
    NAME_NOT_LOGGED,
    NODES,
    SERVICE_ACCOUNT,
    SYSTEM,
    described_object,
    origin,
    who,
)
from eksight.core.untrusted import as_dict, as_list, as_str


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
    head = f"CSR {name or NAME_NOT_LOGGED} created by {who(ctx)} {origin(ctx)}"
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
    head = f"{who(ctx)} impersonated {as_text} to {ctx.event.verb} {described_object(ctx)} {origin(ctx)}"
    # One finding per impersonated identity and window: a `kubectl --as=bob` discovery sweep is one finding
    # listing the objects it touched, not one per object.
    as_identity = ResourceRef("", "impersonated-user", username or ",".join(groups[:6]))
    if privileged_groups:
        return Hit(f"{head}: group {', '.join(privileged_groups)} is cluster admin.", severity=HIGH, target=as_identity)
    if username.startswith("system:serviceaccount:"):
        namespace = username.split(":")[2] if username.count(":") >= 3 else ""
        if namespace == KUBE_SYSTEM:
            return Hit(f"{head}: a kube-system service account.", severity=HIGH, target=as_identity)
        return Hit(f"{head}: an ordinary service account.", severity=LOW, target=as_identity)
    if username in ("system:admin", "kubernetes-admin") or username.startswith(("system:", "eks:")):
        return Hit(f"{head}: a system identity.", severity=HIGH, target=as_identity)
    return Hit(f"{head}.", severity=LOW, target=as_identity)


def _system_masters(ctx: RuleContext) -> Hit | None:
    principal = ctx.principal
    if "system:masters" not in principal.groups:
        return None
    return Hit(
        f"{who(ctx)} acted with group system:masters ({ctx.event.verb} {described_object(ctx)}) {origin(ctx)}.",
        severity=LOW,
        target=ResourceRef("", "group", "system:masters"),
    )


RULES: list[Rule] = [
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
        "impersonation (people, ordinary service accounts) is LOW (access proxies such as Teleport and "
        "admins checking a user's access with kubectl --as do it routinely). One finding per impersonated "
        "identity and hour lists the objects touched.",
        remediation="Restrict the impersonate verb; confirm the impersonating identity is an approved access proxy.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_impersonation,
        impersonating=True,
        allow=SYSTEM,
        fold=True,
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
        principal_kinds=HUMAN_KINDS,
        allow=SYSTEM,
    ),
]
