"""Access rules: who got in, with what, and what they did with it.

One module per theme, each with its rule table next to its predicates: anonymous access, commands in containers
(exec/attach/cp/port-forward, nodes/proxy), secrets, credentials minted or borrowed (TokenRequest, CSRs,
impersonation, system:masters), where requests come from (public and threat-listed IPs, node credentials off
their node) and reconnaissance. Ideas are numbered as in ``shared/reference/detection-catalog.md``.

Design notes
- Severities are conservative (HIGH/CRITICAL only for strong signals). Predicates pick the severity per event
  and say *why* in `Hit.detail`: the command, the secret, the IP, the group, the binding that allowed it.
- Predicates read untrusted bodies defensively and never raise; the ones indexed on every event (EKS-131,
  EKS-132, EKS-135, EKS-150, EKS-170) exit on a single attribute test for the common case.
- Two operator hooks, empty by default, live here and are read at call time so a deployment can set them at
  start-up: `THREAT_IPS` (EKS-150) and `TRUSTED_PUBLIC_CIDRS` (EKS-131).
"""

from __future__ import annotations

from eksight.core.rules.base import Rule

THREAT_IPS: frozenset[str] = frozenset()
"""Source IPs or CIDRs of a threat list (Tor exits, known-bad scanners, your own IOC feed). Empty by default:
assign a frozenset at start-up (``access.THREAT_IPS = frozenset({"203.0.113.7", "198.51.100.0/24"})``)."""

TRUSTED_PUBLIC_CIDRS: frozenset[str] = frozenset()
"""Public IPs/CIDRs that are your own (NAT gateway EIPs, public-subnet node IPs, CI runners that legitimately
use service-account tokens). Requests from them are not "system identity from a public IP" (EKS-131)."""

# The theme modules read the hooks above through this package, so they are imported after them.
from eksight.core.rules.access import anonymous, commands, credentials, origins, recon, secrets  # noqa: E402
from eksight.core.rules.access.origins import node_host_ip  # noqa: E402

__all__ = ["RULES", "THREAT_IPS", "TRUSTED_PUBLIC_CIDRS", "node_host_ip"]

RULES: list[Rule] = sorted(
    [
        *anonymous.RULES,
        *commands.RULES,
        *secrets.RULES,
        *credentials.RULES,
        *origins.RULES,
        *recon.RULES,
    ],
    key=lambda rule: rule.id,
)
