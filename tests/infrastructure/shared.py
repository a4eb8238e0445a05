"""Configs and template helpers shared by the infrastructure tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Synth = Callable[[Any], dict[str, dict[str, Any]]]

# GovCloud (partition aws-us-gov) with every option away from its default, for both stacks of the region.
OPTIONS_CONFIG: dict[str, Any] = {
    "name_prefix": "acme-sec",
    "tags": {"team": "platform", "data-class": "audit"},
    "detection": {
        "learning_days": 14,
        "threat_networks": ["198.51.100.0/24"],
        "networks_object": {"bucket": "acme-threat-intel", "key": "eksight/networks.json"},
        "suppressions": [
            {"rule": "EKS-102", "principal": "sa:ci/deployer", "reason": "CI deploys", "expires": "2027-01-31"}
        ],
    },
    "regions": {
        "us-gov-west-1": {
            "clusters": ["alpha", "beta_2"],
            "archive": {"versioning": False, "access_logging": False, "transition_days": None, "expiration_days": 30},
            "encryption": {"key_deletion_window_days": 7, "key_rotation_period_days": 180},
            "delivery": {"buffering_interval_seconds": 300, "buffering_size_mib": 64, "error_log_retention_days": 90},
            "detector": {"memory_mb": 2048, "timeout_seconds": 120, "reserved_concurrency": 4},
            "findings": {
                "securityhub": {"enabled": False},
                "notifications": {
                    "sns_topic_arn": "arn:aws-us-gov:sns:us-gov-west-1:111122223333:sec-alerts",
                    "min_severity": "CRITICAL",
                },
                "archive_retention_days": 30,
            },
        }
    },
}


def stacks_of_kind(templates: dict[str, dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """`kind` is "ingestion" or "detection" (stack names are <prefix>-<kind>-<region>)."""
    return {name: template for name, template in templates.items() if f"-{kind}-" in name}


def region_of(stack_name: str) -> str:
    for kind in ("-ingestion-", "-detection-"):
        if kind in stack_name:
            return stack_name.split(kind, 1)[1]
    raise AssertionError(f"unexpected stack name {stack_name}")


def read_example(name: str) -> dict[str, Any]:
    return json.loads((Path(__file__).resolve().parents[2] / "examples" / name).read_text())


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def props(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r.get("Properties", {}) for r in resources(template, kind).values()]


def only(items: list[Any] | dict[str, Any]) -> Any:
    values = list(items.values()) if isinstance(items, dict) else items
    assert len(values) == 1, values
    return values[0]


def render(value: Any) -> str:
    """Flatten intrinsics to a comparable string: {"Ref": X} -> <X>, GetAtt -> <X.Attr>, Join -> text,
    ImportValue -> its export name."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(p) for p in parts)
    if "Fn::ImportValue" in value:  # rendered as cdk-nag does: the export name
        return render(value["Fn::ImportValue"])
    raise AssertionError(f"unexpected intrinsic {value}")


def statements(template: dict[str, Any], policy_logical_id_prefix: str) -> list[dict[str, Any]]:
    policies = resources(template, "AWS::IAM::Policy")
    found = [
        s
        for name, r in policies.items()
        if name.startswith(policy_logical_id_prefix)
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert found, f"no policy {policy_logical_id_prefix}*"
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
