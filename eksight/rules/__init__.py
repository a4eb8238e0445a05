"""eksight's signature rules. Each module exports RULES; `default_engine()` indexes them all."""

from __future__ import annotations

from eksight.rules.base import AllowList, Hit, Rule, RuleContext, Threshold
from eksight.rules.engine import RuleEngine

RULE_MODULES = ("access", "rbac", "workloads", "exposure", "tampering")

__all__ = ["AllowList", "Hit", "Rule", "RuleContext", "RuleEngine", "Threshold", "all_rules", "default_engine"]


def all_rules() -> list[Rule]:
    import importlib

    rules: list[Rule] = []
    for name in RULE_MODULES:
        rules.extend(importlib.import_module(f"eksight.rules.{name}").RULES)
    return rules


def default_engine(extra_allow: dict[str, AllowList] | None = None,
                   global_allow: AllowList | None = None) -> RuleEngine:
    return RuleEngine(all_rules(), extra_allow=extra_allow, global_allow=global_allow)
