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
- The operator's network lists (threat intel for EKS-150, trusted egress for EKS-131 and EKS-136) come from the
  deployment config's `detection` section through the engine (`RuleContext.networks`), empty by default.
"""

from __future__ import annotations

from eksight.core.rules.access import anonymous, commands, credentials, origins, recon, secrets
from eksight.core.rules.access.origins import node_host_ip
from eksight.core.rules.base import Rule

__all__ = ["RULES", "node_host_ip"]

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
