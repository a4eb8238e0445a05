"""Per account/region: archive notifications → detector → findings bus → Security Hub, SNS, central bus."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Environment, Stack, Tags, Token
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eksight.config import RegionDeployment
from eksight.queries import all_queries
from stacks.constructs.alert_topic import AlertTopic
from stacks.constructs.audit_catalog import AuditCatalog
from stacks.constructs.detection_alarms import DetectionAlarms
from stacks.constructs.detector_function import DetectorFunction
from stacks.constructs.encryption_key import FindingsKey
from stacks.constructs.findings_bus import FindingsBus
from stacks.constructs.hunting_workgroup import HuntingWorkgroup, NamedQuery
from stacks.constructs.principal_tags import deployment_id
from stacks.constructs.securityhub_forwarder import SecurityHubForwarder
from stacks.constructs.state_table import StateTable

HUNTING_CUTOFF_BYTES = 50 * 10**9  # a query is cancelled past 50 GB scanned ($0.25 at $5/TB)


class DetectionStack(Stack):
    """Composes the detection constructs on top of the same region's ingestion stack.

    What it uses from the ingestion stack (archive bucket, key, notification queue and its dead-letter
    queue) crosses the stack boundary as CloudFormation exports with fixed names (`<ingestion stack>:<Name>`,
    e.g. `eksight-ingestion-us-east-1:NotificationQueueArn`), so they do not change when a construct moves.
    A brought bucket or key is referenced by its ARN directly.
    """

    def __init__(
        self,
        scope: Construct,
        deployment: RegionDeployment,
        *,
        bucket: s3.IBucket,
        key: kms.IKey,
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            deployment.detection_stack_name,
            env=Environment(account=deployment.account, region=deployment.region),
            description=f"eksight detection: threat and anomaly detection of the EKS audit logs archived in "
            f"{deployment.region}, findings to EventBridge"
            + (" and Security Hub" if deployment.findings.securityhub.enabled else ""),
            **kwargs,
        )
        self.deployment = deployment
        for tag_key, value in deployment.tags.items():
            Tags.of(self).add(tag_key, value)
        Tags.of(self).add("eksight:component", "detection")
        findings = deployment.findings

        self._producer = Stack.of(bucket)
        self.add_stack_dependency(self._producer, "the detector reads the ingestion stack's archive and queue")
        bucket = s3.Bucket.from_bucket_attributes(
            self,
            "ArchiveBucket",
            bucket_arn=self._shared(bucket.bucket_arn, "ArchiveBucketArn"),
            bucket_name=self._shared(bucket.bucket_name, "ArchiveBucketName"),
        )
        key = kms.Key.from_key_arn(self, "ArchiveKey", self._shared(key.key_arn, "ArchiveKeyArn"))
        queue = sqs.Queue.from_queue_arn(
            self, "NotificationQueue", self._shared(queue.queue_arn, "NotificationQueueArn")
        )
        dead_letter_queue = sqs.Queue.from_queue_arn(
            self, "NotificationDeadLetterQueue", self._shared(dead_letter_queue.queue_arn, "DeadLetterQueueArn")
        )

        # construct id "Baselines" kept: it names the retained table's logical id, and a new id would mean a new table
        self.state = StateTable(self, "Baselines", key=key)
        self.key = FindingsKey(
            self,
            "FindingsKey",
            description=f"eksight: findings bus, archive, forwarder queues and logs ({deployment.name_prefix}, "
            f"{deployment.region})",
        )
        self.alerts = (
            AlertTopic(self, "Alerts", options=findings.notifications) if findings.notifications.enabled else None
        )
        self.securityhub = (
            SecurityHubForwarder(self, "SecurityHub", key=self.key.key, log_key=self.key.key)
            if findings.securityhub.enabled
            else None
        )
        self.findings = FindingsBus(
            self,
            "Findings",
            options=findings,
            key=self.key.key,
            deployment=deployment_id(deployment.name_prefix, deployment.region),
            forwarder=self.securityhub,
            alert_topic=self.alerts,
        )
        self.detector = DetectorFunction(
            self,
            "Detector",
            options=deployment.detector,
            detection=deployment.detection,
            bucket=bucket,
            key=key,
            queue=queue,
            table=self.state.table,
            bus=self.findings.bus,
            deployment=deployment_id(deployment.name_prefix, deployment.region),
            log_key=self.key.key,
        )
        self.findings.only_publisher(self.detector.function.role.role_arn)  # type: ignore[union-attr]
        dead_letter_queues: dict[str, sqs.IQueue] = {"Notifications": dead_letter_queue}
        if self.securityhub:
            dead_letter_queues["SecurityHub"] = self.securityhub.dead_letter_queue
        if self.findings.dead_letter_queue:
            dead_letter_queues["FindingsDelivery"] = self.findings.dead_letter_queue
        self.alarms = DetectionAlarms(
            self,
            "Alarms",
            detector=self.detector.function,
            queue=queue,
            dead_letter_queues=dead_letter_queues,
            forwarder=self.securityhub.function if self.securityhub else None,
            alert_topic=self.alerts.topic if self.alerts else None,
        )
        self.catalog = AuditCatalog(self, "Catalog", bucket=bucket, clusters=deployment.clusters)
        self.hunting = HuntingWorkgroup(
            self,
            "Hunting",
            bucket=bucket,
            key=key,
            database_name=self.catalog.database_name,
            cutoff_bytes=HUNTING_CUTOFF_BYTES,
            queries=[
                NamedQuery(q.name, q.description, q.athena_sql(self.catalog.database_name))
                for q in all_queries().values()
            ],
        )
        for named in self.hunting.named_queries:
            named.node.add_dependency(self.catalog.database)
        self._outputs()

    def _shared(self, value: str, name: str) -> str:
        """`value` of the ingestion stack as an import with a fixed export name (literals pass through)."""
        if not Token.is_unresolved(value):
            return value
        return self._producer.export_value(value, name=f"{self._producer.stack_name}:{name}")

    def _outputs(self) -> None:
        outputs: dict[str, tuple[str, str]] = {
            "FindingsBusName": (self.findings.bus.event_bus_name, "EventBridge bus receiving every finding"),
            "FindingsBusArn": (self.findings.bus.event_bus_arn, "ARN of the findings bus"),
            "StateTableName": (
                self.state.table.table_name,
                "DynamoDB table of detector state: behavioural profiles, finding ledger, processed objects",
            ),
            "DetectorFunctionName": (self.detector.function.function_name, "Lambda function of the detector"),
            "DashboardName": (self.alarms.dashboard.dashboard_name, "CloudWatch dashboard of the pipeline"),
            "AthenaWorkGroupName": (self.hunting.workgroup_name, "Athena workgroup of the hunting queries"),
            "GlueDatabaseName": (self.catalog.database_name, "Glue database of the audit archive and findings"),
        }
        if self.securityhub:
            outputs["SecurityHubForwarderName"] = (
                self.securityhub.function.function_name,
                "Lambda function importing findings into Security Hub",
            )
            outputs["SecurityHubQueueUrl"] = (
                self.securityhub.queue.queue_url,
                "SQS queue of findings waiting for the Security Hub forwarder",
            )
            outputs["SecurityHubDeadLetterQueueUrl"] = (
                self.securityhub.dead_letter_queue.queue_url,
                "Findings Security Hub did not take; redrive them to SecurityHubQueueUrl (docs/findings.md)",
            )
        if self.alerts:
            outputs["AlertTopicArn"] = (self.alerts.topic.topic_arn, "SNS topic of finding alerts and alarms")
        for name, (value, description) in outputs.items():
            output = CfnOutput(self, name, value=value, description=description)
            output.override_logical_id(name)
