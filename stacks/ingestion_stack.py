"""Per account/region: EKS audit logs from CloudWatch Logs → Firehose → encrypted S3 archive → SQS."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Environment, Stack, Tags
from constructs import Construct

from eksight.config import RegionDeployment
from eksight.core.eks import cluster_log_group
from stacks.constructs.archive_bucket import ArchiveBucket
from stacks.constructs.archive_notifications import ArchiveNotifications
from stacks.constructs.audit_logging import AuditLoggingEnabler
from stacks.constructs.cluster_subscriptions import ClusterSubscriptions
from stacks.constructs.delivery_streams import AuditDeliveryStreams
from stacks.constructs.detector_function import queue_visibility_timeout
from stacks.constructs.encryption_key import ArchiveKey
from stacks.constructs.principal_tags import deployment_id


class IngestionStack(Stack):
    """Composes the ingestion constructs; the detection stack plugs into `archive`, `key` and `notifications`."""

    def __init__(self, scope: Construct, deployment: RegionDeployment, **kwargs: Any) -> None:
        super().__init__(
            scope,
            deployment.stack_name,
            env=Environment(account=deployment.account, region=deployment.region),
            description=f"eksight ingestion: EKS audit logs of {len(deployment.clusters)} cluster(s) in "
            f"{deployment.region} to an encrypted S3 archive",
            **kwargs,
        )
        self.deployment = deployment
        options = deployment.options
        for key, value in deployment.tags.items():
            Tags.of(self).add(key, value)
        Tags.of(self).add("eksight:component", "ingestion")

        self.key = ArchiveKey(
            self,
            "ArchiveKey",
            options=options.encryption,
            description=f"eksight: EKS audit log archive ({deployment.name_prefix}, {deployment.region})",
        )
        self.archive = ArchiveBucket(self, "Archive", options=options.archive, key=self.key.key)
        self.notifications = ArchiveNotifications(
            self,
            "Notifications",
            bucket=self.archive.bucket,
            visibility_timeout=queue_visibility_timeout(deployment.detector),
        )
        self.delivery = AuditDeliveryStreams(
            self,
            "Delivery",
            name_prefix=deployment.name_prefix,
            clusters=deployment.clusters,
            options=options.delivery,
            bucket=self.archive.bucket,
            key=self.key,
        )
        self.archive.protect(
            delivery_writers=[self.delivery.role.role_arn],
            detector_deployment=deployment_id(deployment.name_prefix, deployment.region),
        )
        self.audit_logging = (
            AuditLoggingEnabler(
                self,
                "AuditLogging",
                clusters=deployment.clusters,
                # retained and encrypted with the archive key when eksight created it (its policy is ours)
                log_key=self.key.key if self.key.allow_stack_log_groups() else None,
            )
            if options.enable_audit_logging
            else None
        )
        self.subscriptions = ClusterSubscriptions(
            self,
            "Subscriptions",
            name_prefix=deployment.name_prefix,
            streams=self.delivery.streams,
            options=options.subscription,
            filter_pattern=deployment.filter_pattern,
            prerequisites=dict(self.audit_logging.resources) if self.audit_logging else None,
        )
        self._outputs()

    def _outputs(self) -> None:
        clusters = self.deployment.clusters
        outputs = {
            "ArchiveBucketName": (self.archive.bucket.bucket_name, "S3 bucket holding the raw audit logs"),
            "ArchiveBucketArn": (self.archive.bucket.bucket_arn, "ARN of the archive bucket"),
            "ArchiveKeyArn": (self.key.key.key_arn, "KMS key encrypting the archive and the streams"),
            "NotificationQueueArn": (self.notifications.queue.queue_arn, "SQS queue of new archive objects"),
            "NotificationQueueUrl": (self.notifications.queue.queue_url, "URL of that queue"),
            "DeadLetterQueueArn": (
                self.notifications.dead_letter_queue.queue_arn,
                "Where notifications go after 5 failed receives",
            ),
            "DeliveryStreamArns": (
                self.to_json_string({c: s.attr_arn for c, s in self.delivery.streams.items()}),
                "Firehose delivery stream per cluster (JSON)",
            ),
            "DeliveryErrorLogGroup": (
                self.delivery.error_log_group.log_group_name,
                "CloudWatch log group of Firehose delivery errors",
            ),
            "SubscriptionFilterName": (
                self.subscriptions.filter_name,
                "Name of eksight's subscription filter on each cluster's log group",
            ),
            "SubscribedLogGroups": (
                ",".join(cluster_log_group(c) for c in clusters),
                "Log groups eksight subscribes to",
            ),
            "AuditLoggingRequired": (
                ",".join(clusters),
                "Clusters that must have the EKS 'audit' log type on: "
                + (
                    "enabled by this stack"
                    if self.audit_logging
                    else "NOT enabled by this stack (enable_audit_logging is false); run `eksight check`"
                ),
            ),
        }
        for name, (value, description) in outputs.items():
            output = CfnOutput(self, name, value=value, description=description)
            output.override_logical_id(name)
