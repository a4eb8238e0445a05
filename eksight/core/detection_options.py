"""The `detection` section of a deployment config: allow-lists and the learning period, validated against the
rule ids, the operator's network lists (threat intel, trusted egress) and the suppressions. It lives in the core (not
in eksight.config) because the detector Lambda reads it and the rules are what it is validated against;
eksight.config embeds it in the deployment config."""

from __future__ import annotations

import difflib
import ipaddress
import os
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_NETWORKS = 10_000  # per list: the lists travel in the Lambda's asset and are indexed at cold start
MAX_SUPPRESSIONS = 1_000


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


class Suppression(_Strict):
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
        if not value.strip():
            raise ValueError("the reason is blank. Fix: say why these findings are expected")
        return value

    @model_validator(mode="after")
    def _scoped(self) -> Suppression:
        if self.all_principals and (self.principal or self.namespace):
            raise ValueError("all_principals is for rule-wide entries. Fix: drop it, or drop principal/namespace")
        narrowed = any(glob.strip("*") for glob in (self.principal, self.namespace))  # "*" alone narrows nothing
        if not (self.all_principals or narrowed):
            raise ValueError(
                f"suppressing {self.rule} for everyone needs all_principals: true. Fix: give a principal or "
                "namespace, or set all_principals"
            )
        return self

    @property
    def scope(self) -> tuple[str, str, str]:
        """What makes two entries the same entry (reason and expiry don't)."""
        return (self.rule, self.principal, self.namespace)

    @property
    def label(self) -> str:
        """The entry in words, e.g. ``EKS-102 principal=sa:ci/deployer namespace=prod``."""
        parts = [self.rule]
        parts += [f"principal={self.principal}"] if self.principal else []
        parts += [f"namespace={self.namespace}"] if self.namespace else []
        return " ".join(parts if len(parts) > 1 else [*parts, "(all principals)"])

    def expired(self, at: float | date) -> bool:
        """Whether the entry no longer applies at `at` (epoch seconds of event time, or a calendar day)."""
        if self.expires is None:
            return False
        day = at if isinstance(at, date) else datetime.fromtimestamp(at, UTC).date()
        return day >= self.expires


class NetworksObject(_Strict):
    """An S3 object with more network lists, read once when the detector starts (a JSON object with
    `threat_networks` and/or `trusted_networks`, at most 1 MiB)."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", description="Bucket name.")
    key: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[^*?]+$",  # IAM reads * and ? as wildcards: the detector is granted exactly this object
        description="Object key, e.g. 'intel/eksight-networks.json' (no * or ?).",
    )


class DetectionOptions(_Strict):
    """Tuning of the signature rules, on top of eksight's defaults (which keep EKS system identities and
    add-ons quiet)."""

    allow: AllowSpec = Field(AllowSpec(), description="Allowed for every rule.")
    learning_days: int = Field(
        7,
        ge=0,
        le=90,
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
        bad = [entry for entry in value if not _is_network(entry)]
        if bad:
            shown = ", ".join(repr(entry) for entry in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise ValueError(f"not an IP address or CIDR: {shown}. Fix: write e.g. 203.0.113.7 or 198.51.100.0/24")
        return value

    @field_validator("suppressions")
    @classmethod
    def _distinct_known_suppressions(cls, value: list[Suppression]) -> list[Suppression]:
        problem = unknown_rule_problem({entry.rule for entry in value}) if value else None
        if problem:
            raise ValueError(problem)
        repeated = [scope for scope, n in Counter(entry.scope for entry in value).items() if n > 1]
        if repeated:
            labels = ", ".join(entry.label for entry in value if entry.scope in repeated)
            raise ValueError(f"duplicate suppressions: {labels}. Fix: keep one entry for each rule/principal/namespace")
        return value


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def load_detection(path: str | os.PathLike[str] | None) -> DetectionOptions | None:
    """The `detection` section of a deployment config (a JSON object: `allow`, `rule_allow`), validated; None
    (eksight's defaults) when no path is given."""
    if not path:
        return None
    return DetectionOptions.model_validate_json(Path(path).read_bytes())
