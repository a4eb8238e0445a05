"""The DynamoDB table holding behavioural baselines (profiles) between detector invocations."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_kms as kms
from constructs import Construct

from eksight.adapters import dynamodb as profile_table

_DEFINITION = profile_table.table_definition("unused")
_TYPES = {"S": dynamodb.AttributeType.STRING, "N": dynamodb.AttributeType.NUMBER, "B": dynamodb.AttributeType.BINARY}


def _key(kind: str) -> dynamodb.Attribute:
    """The table's HASH or RANGE key as eksight.adapters.dynamodb defines it (so the two cannot drift)."""
    name = next(k["AttributeName"] for k in _DEFINITION["KeySchema"] if k["KeyType"] == kind)
    kind_code = next(a["AttributeType"] for a in _DEFINITION["AttributeDefinitions"] if a["AttributeName"] == name)
    return dynamodb.Attribute(name=name, type=_TYPES[kind_code])


class StateTable(Construct):
    """On-demand, point-in-time recovery, TTL on `expires_at`, encrypted with the archive's KMS key.

    Retained when the stack is deleted and protected from DeleteTable: the baselines took weeks of event time to
    learn, and the finding ledger is what suppresses repeats.
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        if _DEFINITION["BillingMode"] != "PAY_PER_REQUEST":
            raise ValueError("eksight.adapters.dynamodb.table_definition changed its billing mode; update StateTable")
        self.key = key
        self.table = dynamodb.Table(
            self,
            "Table",
            partition_key=_key("HASH"),
            sort_key=_key("RANGE"),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=profile_table.TTL_ATTRIBUTE,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            removal_policy=RemovalPolicy.RETAIN,
            deletion_protection=True,  # DeleteTable is refused until someone turns this off on purpose
        )
