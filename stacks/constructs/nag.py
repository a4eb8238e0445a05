"""Acknowledging cdk-nag findings: always at the narrowest scope, always with a reason specific to eksight.

cdk-nag v3 acknowledges each finding individually (`AwsSolutions-IAM5[Resource::...]`), rendering
CloudFormation intrinsics the way cdk-nag does (`<LogicalId.Arn>`, `<AWS::AccountId>`, an import as its
export name), so the acknowledged resources are computed from the same tokens the policy uses instead of
hand-copied.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct

SHOW_ALL_FINDINGS = "eksight:showAllNagFindings"
"""Context flag (`-c eksight:showAllNagFindings=true`): skip every acknowledgement to review raw findings."""

BASIC_EXECUTION_FINDING = (
    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
)


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """`rule` is a cdk-nag v3 id such as ``AwsSolutions-S1`` or ``AwsSolutions-IAM5[Resource::*]``."""
    if len(reason) < 40:
        raise ValueError(f"acknowledgement of {rule} needs a specific reason, got {reason!r}")
    if scope.node.try_get_context(SHOW_ALL_FINDINGS):
        return
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_wildcard_resources(scope: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly these (token-bearing) resource ARNs."""
    stack = Stack.of(scope)
    for resource in resources:
        acknowledge(scope, f"AwsSolutions-IAM5[Resource::{_render(stack.resolve(resource))}]", reason)


def acknowledge_wildcard_actions(scope: IConstruct, actions: list[str], reason: str) -> None:
    for action in actions:
        acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", reason)


def _render(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_render(part) for part in parts)
        if "Fn::ImportValue" in value:  # cdk-nag flattens an import to its export name, without brackets
            return _render(value["Fn::ImportValue"])
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")
