"""The `detection` section of a deployment config: allow-lists and the learning period, validated against the
rule ids, the operator's network lists (threat intel, trusted egress) and the suppressions. It lives in the core (not
in eksight.config) because detection takes these options and the rules are what they are validated against;
eksight.config embeds it in the deployment config. These models are the options' one definition: the detector
Lambda reads the section the stack validated with them through `eksight.core.detection_runtime` (msgspec structs
held to these fields, defaults and checks by tests/unit/test_detection_runtime.py), so it never imports pydantic."""

from __future__ import annotations

import difflib
import os
from datetime import date
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eksight.core.detection_runtime import (
    BUCKET_PATTERN,
    LEARNING_DAYS_DEFAULT,
    LEARNING_DAYS_MAX,
    MAX_NETWORKS,
    MAX_SUPPRESSIONS,
    OBJECT_KEY_MAX,
    OBJECT_KEY_PATTERN,
    SuppressionMethods,
    blank_reason_problem,
    duplicate_suppressions_problem,
    network_problem,
    suppression_scope_problem,
)

__all__ = ["MAX_NETWORKS", "MAX_SUPPRESSIONS", "AllowSpec", "DetectionOptions", "NetworksObject", "Suppression"]


class _Strict(BaseModel):
    # strict: "16" is not 16 and "yes" is not true — a config file should say what it means.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class AllowSpec(_Strict):
    """Glob patterns (`*`, `?`) of what a rule should not report."""

    principals: list[str] = Field(
        default_factory=list,
        description="Principal keys or names, e.g. 'sa:ci/deployer', "
        "'iam:arn:aws:iam::111122223333:role/platform-*', 'alice@example.com'.",
    )
    namespaces: list[str] = Field(default_factory=list, description="Namespaces, e.g. 'sandbox-*'.")
    images: list[str] = Field(
        default_factory=list,
        description="Container images, e.g. '123456789012.dkr.ecr.*.amazonaws.com/node-exporter:*'.",
    )


def _known_rule_ids() -> set[str]:
    from eksight.core.behaviour import ANOMALY_RULE_ID
    from eksight.core.rules import all_rules  # lazy: only when ids are checked

    return {rule.id for rule in all_rules()} | {ANOMALY_RULE_ID}


def unknown_rule_problem(rule_ids: set[str]) -> str | None:
    """The message for rule ids that are not eksight's (with a did-you-mean), or None when all are known."""
    known = _known_rule_ids()
    unknown = sorted(rule_ids - known)
    if not unknown:
        return None
    close = [difflib.get_close_matches(u, known, n=1) for u in unknown]
    hint = "; ".join(f"{u} (did you mean {c[0]}?)" if c else u for u, c in zip(unknown, close, strict=True))
    return f"unknown rule id {hint}. Fix: use an id from docs/detections.md"


class Suppression(_Strict, SuppressionMethods):
    """Findings of one rule for one principal and/or namespace that are still stored and counted but never
    forwarded (EventBridge → Security Hub, SNS). Written by `eksight suppress`."""

    rule: str = Field(description="Rule id, e.g. 'EKS-102' (docs/detections.md), or 'UEBA-1' for anomalies.")
    principal: str = Field(
        "", description="Principal key or name (glob), as in a finding's principal.key / principal.name."
    )
    namespace: str = Field("", description="Namespace (glob) that every object the finding names must be in.")
    all_principals: bool = Field(
        False,
        description="true: the rule is suppressed for everyone (required when neither principal nor "
        "namespace is given).",
    )
    reason: str = Field(min_length=1, description="Why these findings are expected (reviewed by the next reader).")
    expires: date | None = Field(
        None,
        strict=False,  # an ISO date string in the JSON file
        description="First day (UTC) on which the entry no longer applies; findings whose latest event is on or "
        "after it are forwarded again. null: never expires.",
    )
    finding: str = Field("", description="The finding id the entry was made from, if any.")

    @field_validator("reason")
    @classmethod
    def _reason_said(cls, value: str) -> str:
        problem = blank_reason_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _scoped(self) -> Suppression:
        problem = suppression_scope_problem(self.rule, self.principal, self.namespace, self.all_principals)
        if problem:
            raise ValueError(problem)
        return self


class NetworksObject(_Strict):
    """An S3 object with more network lists, read once when the detector starts (a JSON object with
    `threat_networks` and/or `trusted_networks`, at most 1 MiB)."""

    bucket: str = Field(pattern=BUCKET_PATTERN, description="Bucket name.")
    key: str = Field(
        min_length=1,
        max_length=OBJECT_KEY_MAX,
        pattern=OBJECT_KEY_PATTERN,  # no wildcards: the detector is granted exactly this object
        description="Object key, e.g. 'intel/eksight-networks.json' (no * or ?).",
    )


class DetectionOptions(_Strict):
    """Tuning of the signature rules, on top of eksight's defaults (which keep EKS system identities and
    add-ons quiet)."""

    allow: AllowSpec = Field(AllowSpec(), description="Allowed for every rule.")
    learning_days: int = Field(
        LEARNING_DAYS_DEFAULT,
        ge=0,
        le=LEARNING_DAYS_MAX,
        description="Days of event time per cluster during which anomaly findings stay "
        "INFORMATIONAL while the behavioural baseline learns (signature-rule findings are never held back).",
    )
    rule_allow: dict[str, AllowSpec] = Field(
        default_factory=dict, description="Allowed for one rule, by rule id (docs/detections.md)."
    )

    threat_networks: list[str] = Field(
        default_factory=list,
        max_length=MAX_NETWORKS,
        description="Threat-intel addresses or CIDRs (Tor exits, scanners, your IOC feed): any request from them "
        "is EKS-150.",
    )
    trusted_networks: list[str] = Field(
        default_factory=list,
        max_length=MAX_NETWORKS,
        description="Public addresses or CIDRs that are your own (NAT gateway EIPs, public-subnet nodes, CI "
        "runners): not reported as in-cluster identities (EKS-131) or people (EKS-136) on the internet.",
    )
    networks_object: NetworksObject | None = Field(
        None, description="More threat/trusted networks in an S3 object, added to the lists above at cold start."
    )
    suppressions: list[Suppression] = Field(
        default_factory=list,
        max_length=MAX_SUPPRESSIONS,
        description="Findings stored and counted but not forwarded (`eksight suppress`; `eksight check` reports "
        "expired entries).",
    )

    @field_validator("rule_allow")
    @classmethod
    def _known_rules(cls, value: dict[str, AllowSpec]) -> dict[str, AllowSpec]:
        problem = unknown_rule_problem(set(value)) if value else None
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("threat_networks", "trusted_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        problem = network_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("suppressions")
    @classmethod
    def _distinct_known_suppressions(cls, value: list[Suppression]) -> list[Suppression]:
        problem = (unknown_rule_problem({entry.rule for entry in value}) if value else None) or (
            duplicate_suppressions_problem(value)
        )
        if problem:
            raise ValueError(problem)
        return value


def load_detection(path: str | os.PathLike[str] | None) -> DetectionOptions | None:
    """The `detection` section of a deployment config (a JSON object: `allow`, `rule_allow`), validated; None
    (eksight's defaults) when no path is given."""
    if not path:
        return None
    return DetectionOptions.model_validate_json(Path(path).read_bytes())
