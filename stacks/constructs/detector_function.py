"""The detector: SQS notifications of new archive objects → lambdas/detector/handler.py → findings on the bus."""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eksight.config import DetectorOptions
from eksight.core import archive_layout
from eksight.core.detection_options import DetectionOptions
from stacks.constructs.lambda_package import EksightFunction, LambdaPackage
from stacks.constructs.nag import acknowledge_wildcard_resources
from stacks.constructs.principal_tags import DETECTOR, tag_role

SERVICE = "eksight-detector"
DETECTION_CONFIG_FILE = "detection.json"
BATCH_SIZE = 5  # archive objects per invocation (each is up to the Firehose buffer size, 16 MiB by default)
MAX_BATCHING_WINDOW_SECONDS = 10
VISIBILITY_TIMEOUT_FACTOR = 6  # Lambda's guidance for SQS event sources


def queue_maximum_concurrency(options: DetectorOptions) -> int | None:
    """The event source mapping's cap: the reserved concurrency (config guarantees ≥ 2, the SQS minimum), so
    the poller never invokes more than the function may run; throttled batches would count as receives and push
    healthy objects to the dead-letter queue. None without reserved concurrency (the poller scales freely)."""
    return min(options.reserved_concurrency, 1000) if options.reserved_concurrency else None


def queue_visibility_timeout(options: DetectorOptions) -> Duration:
    """What the notification queue's visibility timeout must be for this detector: 6 × (timeout + batching
    window), so a message is not redelivered while a (throttled, retried) invocation still holds it."""
    return Duration.seconds(VISIBILITY_TIMEOUT_FACTOR * (options.timeout_seconds + MAX_BATCHING_WINDOW_SECONDS))


def detection_config_json(detection: DetectionOptions) -> str:
    """The deployment's `detection` options, as the handler reads them from the asset root."""
    return json.dumps(detection.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"


class DetectorFunction(Construct):
    """Reads each new object under ``audit/``, writes what it cannot decode under ``quarantine/``, keeps
    profiles in the baseline table and puts findings on the findings bus; nothing else."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: DetectorOptions,
        detection: DetectionOptions,
        bucket: s3.IBucket,
        key: kms.IKey,
        queue: sqs.IQueue,
        table: dynamodb.ITable,
        bus: events.IEventBus,
        deployment: str,
        log_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        package = LambdaPackage("detector", extra_files={DETECTION_CONFIG_FILE: detection_config_json(detection)})
        self.wrapper = EksightFunction(
            self,
            "Detector",
            package=package,
            description="eksight: detect threats and anomalies in new EKS audit log deliveries",
            service=SERVICE,
            memory_mb=options.memory_mb,
            timeout=Duration.seconds(options.timeout_seconds),
            reserved_concurrency=options.reserved_concurrency,
            environment={
                "STATE_TABLE": table.table_name,
                "FINDINGS_BUS_NAME": bus.event_bus_name,
                "ARCHIVE_BUCKET": bucket.bucket_name,
                "LEARNING_DAYS": str(detection.learning_days),
                "EKSIGHT_DETECTION_CONFIG": DETECTION_CONFIG_FILE,
            },
            log_key=log_key,
        )
        self.function = self.wrapper.function
        # Tagged, so the ingestion stack's archive bucket policy (deployed first) can single it out.
        tag_role(self.function.role, DETECTOR, deployment)  # type: ignore[arg-type]
        self.log_group = self.wrapper.log_group
        self.function.add_event_source(
            sources.SqsEventSource(
                queue,
                batch_size=BATCH_SIZE,
                max_batching_window=Duration.seconds(MAX_BATCHING_WINDOW_SECONDS),
                report_batch_item_failures=True,
                max_concurrency=queue_maximum_concurrency(options),
            )
        )

        read = bucket.arn_for_objects(archive_layout.AUDIT_ROOT + "*")
        write = bucket.arn_for_objects(archive_layout.QUARANTINE_ROOT + "*")
        write_findings = bucket.arn_for_objects(archive_layout.FINDINGS_ROOT + "*")
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                # GetObjectVersion: notifications of a versioned archive name the version, and the reader asks for it.
                sid="ReadAuditDeliveries",
                actions=["s3:GetObject", "s3:GetObjectVersion"],
                resources=[read],
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(sid="WriteQuarantine", actions=["s3:PutObject"], resources=[write])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(sid="WriteFindings", actions=["s3:PutObject"], resources=[write_findings])
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ArchiveKeyThroughS3",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{stack.region}.{stack.url_suffix}"},
                    # With S3 Bucket Keys the context is the bucket ARN; without, the object's.
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [bucket.bucket_arn, read, write, write_findings]
                    },
                },
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ArchiveKeyThroughDynamoDB",
                actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                resources=[key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{stack.region}.{stack.url_suffix}"}},
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="Baselines",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[table.table_arn],
            )
        )
        networks = detection.networks_object
        if networks is not None:  # read once per container: exactly that object, no listing, no other key
            self.function.add_to_role_policy(
                iam.PolicyStatement(
                    sid="ReadNetworkLists",
                    actions=["s3:GetObject"],
                    resources=[f"arn:{stack.partition}:s3:::{networks.bucket}/{networks.key}"],
                )
            )
        bus.grant_put_events_to(self.function)
        acknowledge_wildcard_resources(
            self.function,
            [read, write, write_findings],
            "S3 object keys are generated (Firehose names deliveries; quarantine and findings keys carry the source "
            "object's name): reads are limited to the archive's audit/ prefix, writes to its quarantine/ and "
            "findings/ prefixes.",
        )
