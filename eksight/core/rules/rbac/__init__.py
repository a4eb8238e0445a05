"""RBAC rules: who is granted what (bindings), what a role grants (rule lines), and who changes RBAC.

Severity follows what the event proves, not what it might mean:

* A binding is judged by the role it references and the subjects it names. Admin-class roles bound
  cluster-wide to workload identities (ServiceAccounts) or to everyone (`system:authenticated`) are HIGH;
  to a named person MEDIUM; namespaced delegation to a person (the normal way teams get access) LOW.
* A role is judged line by line; the detail names the riskiest lines. A `create` (or a patch that rewrites
  `rules`) proves the grant is new; an `update` re-sends the whole object (Helm, `kubectl replace`), so
  the line may have been there before: one level lower.
* ServiceAccounts of `kube-system` that are not the control plane's own controllers are add-ons an
  operator installed; their RBAC writes are reported at LOW (the allow-lists drop the controllers).
"""

from __future__ import annotations

from eksight.core.rules.base import Rule
from eksight.core.rules.rbac import bindings, changes, roles

RULES: list[Rule] = [*bindings.RULES, *roles.RULES, *changes.RULES]
