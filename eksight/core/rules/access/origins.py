"""Where a request came from (catalog #34, #40): in-cluster identities used from public addresses, node
credentials used from another address, and threat-listed source IPs.

Offline, eksight cannot tell AWS address space from the rest of the internet, so a public source IP is judged
without an ASN lookup; the deployment's `detection.trusted_networks` and `detection.threat_networks` reach the
rules as `RuleContext.networks`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from functools import lru_cache

from eksight.core.cloud_ranges import HOSTING_PROVIDERS, provider_of
from eksight.core.findings import ResourceRef
from eksight.core.identity import K8S_SYSTEM
from eksight.core.rules import defaults
from eksight.core.rules.base import AllowList, Hit, Rule, RuleContext
from eksight.core.rules.common import (
    ALL,
    HIGH,
    HUMAN_KINDS,
    LOW,
    MEDIUM,
    NODE,
    SERVICE_ACCOUNT,
    UNAUTHENTICATED,
    actor,
    clip,
    described_object,
    is_public_ip,
    kubelet_ua,
    offensive_ua,
    parse_address,
    tool_ua,
    who,
)


def _trusted(ctx: RuleContext, ip: str) -> bool:
    return parse_address(ip) in ctx.networks.trusted_public


def _system_identity_public_ip(ctx: RuleContext) -> Hit | None:
    kind = ctx.principal.kind
    event = ctx.event
    ip = event.source_ip
    if _trusted(ctx, ip):
        return None
    principal, ua = ctx.principal, event.user_agent
    target = ResourceRef(principal.namespace, "source-ip", ip)
    outcome = "" if event.allowed else f" (denied, HTTP {event.code})"
    request = f"{event.verb} {described_object(ctx)}{outcome}"
    if kind == NODE:
        if kubelet_ua(ua):
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
            "add your own egress IPs to detection.trusted_networks.",
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
    ip = ctx.event.source_ip
    expected = node_host_ip(principal.node)
    if not expected or ip == expected:
        return None
    address = parse_address(ip)
    if address is None or address.version != 4 or address.is_global:
        return None  # IPv6 clusters, unparsable addresses; public ones are EKS-131's
    event, ua = ctx.event, ctx.event.user_agent
    severity = MEDIUM if kubelet_ua(ua) else HIGH
    return Hit(
        f"Credentials of node {principal.node} (address {expected}) used from {ip}, user agent "
        f"{clip(ua, 80)!r}: {event.verb} {described_object(ctx)}. A pod that reads the node's IAM role from the "
        "instance metadata service authenticates as the node from its own IP.",
        severity=severity,
        target=ResourceRef("", "source-ip", ip),
    )


LEARNING_SECONDS = 86_400.0  # a principal's first day: where it works from is being learnt, not judged
_PRINCIPALS_KEPT = 4096
_RANGES_KEPT_PER_PRINCIPAL = 64


class _Origins:
    """Per principal (least recently active dropped first): when it was first seen, and the provider ranges
    it has already used."""

    __slots__ = ("first_seen", "ranges")

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.ranges: OrderedDict[str, None] = OrderedDict()


def _origins(ctx: RuleContext, now: float) -> _Origins:
    kept: OrderedDict[str, _Origins] = ctx.state.setdefault("origins", OrderedDict())
    key = actor(ctx)  # per person: several people share one SSO role
    origins = kept.get(key)
    if origins is None:
        origins = kept[key] = _Origins(now)
        while len(kept) > _PRINCIPALS_KEPT:
            kept.popitem(last=False)
    else:
        kept.move_to_end(key)
    return origins


def _person_from_hosting(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    now = ctx.time
    origins = _origins(ctx, now)
    ip = event.source_ip
    if not is_public_ip(ip) or _trusted(ctx, ip):
        return None
    found = provider_of(ip)
    if found is None:
        return None
    hosting = found.provider in HOSTING_PROVIDERS
    # Rented servers are remembered per range; hyperscalers (CI runners, NAT gateways: many ranges) per provider.
    place = found.network if hosting else found.provider
    if place in origins.ranges:
        origins.ranges.move_to_end(place)
        return None  # already used by this identity (reported the first time)
    origins.ranges[place] = None
    if len(origins.ranges) > _RANGES_KEPT_PER_PRINCIPAL:
        origins.ranges.popitem(last=False)
    learning = now - origins.first_seen < LEARNING_SECONDS
    if hosting and not learning:
        severity, why = MEDIUM, "a rented server this identity has not used before: people work from offices and homes"
    elif hosting:
        severity, why = LOW, "during this identity's first day (learning)"
    else:
        severity = LOW
        why = f"first request from {found.provider} address space, which also carries corporate egress (NAT, VPNs)"
    return Hit(
        f"{who(ctx)} ({ctx.principal.kind}) sent {event.verb} {described_object(ctx)} from {ip}, in {found.provider} "
        f"range {found.network}: {why}; user agent {clip(event.user_agent, 80)!r}.",
        severity=severity,
        target=ResourceRef("", "source-ip", ip),
        details={"provider": found.provider, "provider_range": found.network},
    )


def _threat_ip(ctx: RuleContext) -> Hit | None:
    threat = ctx.networks.threat
    if not threat:
        return None
    event = ctx.event
    hits = [ip for ip in event.source_ips if parse_address(ip) in threat]
    if not hits:
        return None
    outcome = "succeeded" if event.allowed else f"was denied (HTTP {event.code})"
    return Hit(
        f"{event.verb} {described_object(ctx)} by {who(ctx)} from threat-listed {', '.join(hits)} {outcome}.",
        severity=HIGH if event.allowed else MEDIUM,
        target=ResourceRef("", "source-ip", hits[0]),
    )


RULES: list[Rule] = [
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
        "traffic here — list those egress addresses in detection.trusted_networks. Kubelets (by user agent) "
        "and EKS's own eks:* identities, which call from AWS public ranges, are not reported.",
        remediation="Find where the token is used from; delete the service account's token secrets or recreate "
        "the account, and review the identity's activity.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_system_identity_public_ip,
        principal_kinds=frozenset({SERVICE_ACCOUNT, NODE, K8S_SYSTEM}),
        public_source=True,
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
        principal_kinds=frozenset({NODE}),
        allowed=None,
        allow=AllowList(),
    ),
    Rule(
        id="EKS-136",
        title="Person's credentials used from a hosting provider",
        severity=MEDIUM,
        type="CredentialAccess:Kubernetes/HumanCredentialsFromHostingProvider",
        mitre=("T1078", "T1078.004"),
        catalog=(34,),
        description="A person's or external automation's identity made a request from a hosting or cloud "
        "provider's address (the offline table in eksight/core/data, rebuilt by "
        "scripts/update_cloud_ranges.py). MEDIUM from a rented-server provider (DigitalOcean, Hetzner, OVH, "
        "Vultr, Linode) range the identity has not used before, once its first day (learning, per engine "
        "run) is over; LOW from the hyperscalers, which also carry corporate egress, and from ranges the "
        "identity already used (reported once per rented range, or per hyperscaler, per identity).",
        remediation="Ask the person whether they work from that server; if not, revoke the session (IAM role "
        "session / SSO) and review what it did. List your own egress in detection.trusted_networks.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_person_from_hosting,
        principal_kinds=HUMAN_KINDS,
        allow=UNAUTHENTICATED,
        fold=True,
    ),
    Rule(
        id="EKS-150",
        title="Request from a threat-listed IP",
        severity=HIGH,
        type="CredentialAccess:Kubernetes/MaliciousIPCaller.Custom",
        mitre=("T1078",),
        catalog=(40,),
        description="A request came from an address on the configured threat list (detection.threat_networks "
        "and its S3 object; empty by default). MEDIUM when the request was denied.",
        remediation="Block the address at the endpoint (publicAccessCidrs), and rotate the credentials it used.",
        verbs=ALL,
        resources=ALL,
        subresources=ALL,
        predicate=_threat_ip,
        allowed=None,
        needs_threat_networks=True,
        allow=defaults.CONTROL_PLANE,
    ),
]
