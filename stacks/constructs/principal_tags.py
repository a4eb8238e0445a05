"""Roles that a policy elsewhere must single out are tagged, not named.

eksight's roles have no physical names (CloudFormation names them), so a policy written before the role exists —
the ingestion stack's archive bucket policy, deployed before the detection stack — or in another account — a
central findings bus — cannot list their ARNs. It names them by two tags instead, together with
`aws:PrincipalAccount`: ``eksight:role`` (what the role is for: `DETECTOR`, `FINDINGS_TO_CENTRAL`) and
``eksight:deployment`` (``<name_prefix>-<region>``: the deployment it belongs to). `aws:PrincipalTag` holds a role's
tags for every session of the role.

Tags are only as strong as the control over who may set them: whoever may tag or create roles in the account can
mint a principal that matches (docs/security.md, "Principal tags").
"""

from __future__ import annotations

from aws_cdk import Tags
from aws_cdk import aws_iam as iam

ROLE_TAG = "eksight:role"
DEPLOYMENT_TAG = "eksight:deployment"
DETECTOR = "detector"
FINDINGS_TO_CENTRAL = "findings-to-central"


def deployment_id(name_prefix: str, region: str) -> str:
    """The ``eksight:deployment`` value of a deployment's roles."""
    return f"{name_prefix}-{region}"


def tag_role(role: iam.IRole, purpose: str, deployment: str) -> None:
    """Tag `role` as `purpose` of `deployment` (a value of `deployment_id`)."""
    Tags.of(role).add(ROLE_TAG, purpose)
    Tags.of(role).add(DEPLOYMENT_TAG, deployment)


def all_but(purpose: str, deployment: str, account: str) -> dict[str, dict[str, dict[str, str]]]:
    """Conditions of explicit Deny statements that spare only `purpose`'s role of `deployment` in `account`, one
    statement per key (by suffix): a statement's conditions must all hold for it to apply, so "anyone who differs
    in any one" takes one statement per key. A principal without the tag differs (a missing key never equals)."""
    return {
        "": {"StringNotEquals": {f"aws:PrincipalTag/{ROLE_TAG}": purpose}},
        "OfThisDeployment": {"StringNotEquals": {f"aws:PrincipalTag/{DEPLOYMENT_TAG}": deployment}},
        "OfThisAccount": {"StringNotEquals": {"aws:PrincipalAccount": account}},
    }
