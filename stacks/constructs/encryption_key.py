"""The KMS key that encrypts the archive, the delivery streams and their error logs."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from eksight.config import EncryptionOptions


def stack_log_groups_arn(stack: Stack) -> str:
    """Every log group CloudFormation names for `stack`: generated names start with the stack name."""
    return stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{stack.stack_name}-*",
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )


class ArchiveKey(Construct):
    """Creates a key (rotation on) or imports the configured one.

    The key policy of a new key holds only the account-root statement (so IAM policies can grant use,
    which is how the Firehose role and later the detector get it) and the CloudWatch Logs service,
    restricted to this stack's log groups (the Firehose error log group by name, the audit-logging enabler's by
    the stack-name prefix of their generated names).
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: EncryptionOptions, description: str) -> None:
        super().__init__(scope, construct_id)
        self.created = options.existing_kms_key_arn is None
        self._log_groups: list[str] = []
        if options.existing_kms_key_arn:
            self.key: kms.IKey = kms.Key.from_key_arn(self, "Imported", options.existing_kms_key_arn)
        else:
            self.key = kms.Key(
                self,
                "Key",
                description=description,
                enable_key_rotation=True,
                rotation_period=Duration.days(options.key_rotation_period_days),
                pending_window=Duration.days(options.key_deletion_window_days),
                removal_policy=RemovalPolicy.RETAIN,  # archived logs stay readable after a stack delete
            )

    def allow_stack_log_groups(self) -> bool:
        """Let CloudWatch Logs encrypt this stack's log groups with generated names (they start with the stack
        name). False when the key is imported, as `allow_log_group`."""
        if not self.created:
            return False
        stack = Stack.of(self)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisStack",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.{stack.url_suffix}")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": stack_log_groups_arn(stack)}},
            )
        )
        return True

    def allow_log_group(self, log_group_name: str) -> bool:
        """Let CloudWatch Logs encrypt exactly this log group. False when the key is imported (its
        policy is not ours to change), in which case the log group keeps CloudWatch's default encryption."""
        if not self.created:
            return False
        stack = Stack.of(self)
        log_group_arn = stack.format_arn(
            service="logs", resource="log-group", resource_name=log_group_name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"CloudWatchLogs{len(self._log_groups)}",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.{stack.url_suffix}")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
            )
        )
        self._log_groups.append(log_group_name)
        return True


class FindingsKey(Construct):
    """The detection stack's own customer managed key (rotation on, retained): the findings bus and its
    archive, the Security Hub forwarder's queues, and the stack's Lambda log groups.

    Always created, even with a brought archive key, because its key policy must name AWS services: EventBridge
    (it encrypts events on the bus and in the archive, and sends to the encrypted queues) only for this
    account, and CloudWatch Logs only for log groups of this stack (their generated names start with the stack
    name, so the policy does not depend on the log groups, which depend on the key).
    """

    def __init__(self, scope: Construct, construct_id: str, *, description: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,  # archived findings stay readable after a stack delete
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="EventBridgeOfThisAccount",
                principals=[iam.ServicePrincipal("events.amazonaws.com")],
                actions=["kms:DescribeKey", "kms:GenerateDataKey", "kms:Decrypt", "kms:ReEncrypt*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.log_groups_arn = stack_log_groups_arn(stack)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchLogsOfThisStack",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.{stack.url_suffix}")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": self.log_groups_arn}},
            )
        )
