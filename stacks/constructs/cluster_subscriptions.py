"""One CloudWatch Logs subscription filter per cluster on /aws/eks/<cluster>/cluster → its delivery stream."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from constructs import Construct, IDependable

from eksight.config import SubscriptionOptions
from eksight.core.eks import ANY_CLUSTER_LOG_GROUP, cluster_log_group


class ClusterSubscriptions(Construct):
    """CloudWatch Logs allows two subscription filters per log group; eksight uses one of them."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        streams: dict[str, firehose.CfnDeliveryStream],
        options: SubscriptionOptions,
        filter_pattern: str,
        prerequisites: dict[str, IDependable] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.filter_name = f"{name_prefix}-audit"
        if options.existing_role_arn:
            self.role: iam.IRole = iam.Role.from_role_arn(
                self, "ImportedRole", options.existing_role_arn, mutable=False
            )
        else:
            role = iam.Role(
                self,
                "Role",
                description="Lets CloudWatch Logs put EKS audit log events into eksight's delivery streams",
                assumed_by=iam.ServicePrincipal(
                    f"logs.{stack.region}.{stack.url_suffix}",
                    conditions={
                        "StringLike": {
                            "aws:SourceArn": stack.format_arn(
                                service="logs",
                                resource="log-group",
                                resource_name=ANY_CLUSTER_LOG_GROUP,
                                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                            )
                        }
                    },
                ),
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="PutIntoThisStacksStreams",
                    actions=["firehose:PutRecord", "firehose:PutRecordBatch"],
                    resources=[stream.attr_arn for stream in streams.values()],
                )
            )
            self.role = role

        self.filters: dict[str, logs.CfnSubscriptionFilter] = {}
        for cluster, stream in streams.items():
            subscription = logs.CfnSubscriptionFilter(
                self,
                cluster,
                log_group_name=cluster_log_group(cluster),
                filter_name=self.filter_name,
                filter_pattern=filter_pattern,
                destination_arn=stream.attr_arn,
                role_arn=self.role.role_arn,
            )
            # CloudWatch Logs test-delivers through the role on creation: its policy must exist first.
            if policy := self.role.node.try_find_child("DefaultPolicy"):
                subscription.node.add_dependency(policy)
            if prerequisites and cluster in prerequisites:
                subscription.node.add_dependency(prerequisites[cluster])
            self.filters[cluster] = subscription
