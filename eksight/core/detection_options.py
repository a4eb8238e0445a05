"""The `detection` section of a deployment config: allow-lists and the learning period, validated against the
rule ids. It lives in the core (not in eksight.config) because the detector Lambda reads it and the rules are
what it is validated against; eksight.config embeds it in the deployment config."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator


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

    @field_validator("rule_allow")
    @classmethod
    def _known_rules(cls, value: dict[str, AllowSpec]) -> dict[str, AllowSpec]:
        from eksight.core.rules import all_rules  # lazy: only when rule_allow is set

        known = {rule.id for rule in all_rules()}
        unknown = sorted(set(value) - known)
        if unknown:
            close = [difflib.get_close_matches(u, known, n=1) for u in unknown]
            hint = "; ".join(f"{u} (did you mean {c[0]}?)" if c else u for u, c in zip(unknown, close, strict=True))
            raise ValueError(f"unknown rule id {hint}. Fix: use an id from docs/detections.md")
        return value


def load_detection(path: str | os.PathLike[str] | None) -> DetectionOptions | None:
    """The `detection` section of a deployment config (a JSON object: `allow`, `rule_allow`), validated; None
    (eksight's defaults) when no path is given."""
    if not path:
        return None
    return DetectionOptions.model_validate_json(Path(path).read_bytes())
