"""eksight's signature rules. Each module exports RULES; `default_engine()` indexes them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eksight.core.rules.base import AllowList, Hit, Rule, RuleContext, Threshold
from eksight.core.rules.engine import RuleEngine
from eksight.core.rules.networks import NO_NETWORKS, OperatorNetworks

if TYPE_CHECKING:
    from eksight.core.detection_options import AllowSpec
    from eksight.core.detection_runtime import AnyDetectionOptions, RuntimeAllowSpec

RULE_MODULES = ("access", "rbac", "workloads", "exposure", "tampering", "controls")

__all__ = [
    "AllowList",
    "Hit",
    "Rule",
    "RuleContext",
    "RuleEngine",
    "Threshold",
    "all_rules",
    "default_engine",
    "engine_for",
]


def all_rules() -> list[Rule]:
    import importlib

    rules: list[Rule] = []
    for name in RULE_MODULES:
        rules.extend(importlib.import_module(f"eksight.core.rules.{name}").RULES)
    return rules


def default_engine(
    extra_allow: dict[str, AllowList] | None = None,
    global_allow: AllowList | None = None,
    networks: OperatorNetworks = NO_NETWORKS,
) -> RuleEngine:
    return RuleEngine(all_rules(), extra_allow=extra_allow, global_allow=global_allow, networks=networks)


def engine_for(detection: AnyDetectionOptions | None) -> RuleEngine:
    """The default rules extended by a deployment config's `detection` section (allow-lists, network lists)."""
    if detection is None:
        return default_engine()

    def spec(allow: AllowSpec | RuntimeAllowSpec) -> AllowList:
        return AllowList(
            principals=tuple(allow.principals), namespaces=tuple(allow.namespaces), images=tuple(allow.images)
        )

    return default_engine(
        extra_allow={rule: spec(allow) for rule, allow in detection.rule_allow.items()},
        global_allow=spec(detection.allow),
        networks=OperatorNetworks.of(detection.threat_networks, detection.trusted_networks),
    )
