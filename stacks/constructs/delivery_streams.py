"""Firehose delivery streams, one per cluster: CloudWatch Logs envelopes → GZIP objects in the archive.

The CloudWatch envelope is kept (no message extraction) so `logGroup`, and with it the cluster name,
travels with every event. Firehose's built-in processors gunzip the CloudWatch payload and append a
newline, so each object is newline-delimited JSON envelopes, GZIP-compressed once.
"""

from __future__ import annotations

import hashlib

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eksight.config import DeliveryOptions
from eksight.core import archive_layout
from stacks.constructs.encryption_key import ArchiveKey
from stacks.constructs.nag import acknowledge_wildcard_resources

MAX_STREAM_NAME = 64


def stream_name(name_prefix: str, cluster: str) -> str:
    name = f"{name_prefix}-{cluster}"
    if len(name) <= MAX_STREAM_NAME:
        return name
    digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
    return f"{name[: MAX_STREAM_NAME - 9]}-{digest}"


class AuditDeliveryStreams(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        clusters: tuple[str, ...],
        options: DeliveryOptions,
        bucket: s3.IBucket,
        key: ArchiveKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        account, region = stack.account, stack.region

        # A literal name (not the resource's Ref) so the key policy can name it without a cycle.
        self.error_log_group_name = f"/aws/kinesisfirehose/{name_prefix}-audit-delivery"
        self.error_log_group = logs.LogGroup(
            self,
            "ErrorLogs",
            log_group_name=self.error_log_group_name,
            removal_policy=RemovalPolicy.DESTROY,
        )
        cfn_log_group: logs.CfnLogGroup = self.error_log_group.node.default_child  # type: ignore[assignment]
        cfn_log_group.retention_in_days = options.error_log_retention_days  # any value the config allows
        if key.allow_log_group(self.error_log_group_name):
            cfn_log_group.kms_key_id = key.key.key_arn  # the key (and its policy) is created first

        self.role = self._role(options, bucket, key, account, region)
        self.streams: dict[str, firehose.CfnDeliveryStream] = {}
        for cluster in clusters:
            log_stream = logs.LogStream(
                self,
                f"ErrorLogStream{cluster}",
                log_group=self.error_log_group,
                log_stream_name=cluster,
                removal_policy=RemovalPolicy.DESTROY,
            )
            stream = firehose.CfnDeliveryStream(
                self,
                cluster,
                delivery_stream_name=stream_name(name_prefix, cluster),
                delivery_stream_type="DirectPut",
                delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="CUSTOMER_MANAGED_CMK", key_arn=key.key.key_arn
                ),
                extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                    bucket_arn=bucket.bucket_arn,
                    role_arn=self.role.role_arn,
                    prefix=archive_layout.delivery_prefix(account, region, cluster),
                    error_output_prefix=archive_layout.delivery_error_prefix(account, region, cluster),
                    buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                        interval_in_seconds=options.buffering_interval_seconds, size_in_m_bs=options.buffering_size_mib
                    ),
                    compression_format="GZIP",
                    encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                        kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                            awskms_key_arn=key.key.key_arn
                        )
                    ),
                    processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                        enabled=True,
                        processors=[
                            _processor("Decompression", CompressionFormat="GZIP"),
                            _processor("AppendDelimiterToRecord"),
                        ],
                    ),
                    cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                        enabled=True,
                        log_group_name=self.error_log_group.log_group_name,
                        log_stream_name=log_stream.log_stream_name,
                    ),
                ),
            )
            # The role's policy must exist before Firehose validates the destination.
            if policy := self.role.node.try_find_child("DefaultPolicy"):
                stream.node.add_dependency(policy)
            self.streams[cluster] = stream

    def _role(
        self, options: DeliveryOptions, bucket: s3.IBucket, key: ArchiveKey, account: str, region: str
    ) -> iam.IRole:
        if options.existing_role_arn:
            return iam.Role.from_role_arn(self, "ImportedRole", options.existing_role_arn, mutable=False)
        role = iam.Role(
            self,
            "Role",
            description="Lets Firehose write EKS audit log deliveries to the eksight archive",
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": account}}
            ),
        )
        write_prefixes = [
            f"{archive_layout.AUDIT_ROOT}account={account}/region={region}/*",
            f"{archive_layout.DELIVERY_ERRORS_ROOT}account={account}/region={region}/*",
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteDeliveriesAndErrors",
                actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                resources=[bucket.arn_for_objects(prefix) for prefix in write_prefixes],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="LocateBucket",
                actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                resources=[bucket.bucket_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="EncryptDeliveries",
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[key.key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{region}.{Stack.of(self).url_suffix}"},
                    "StringLike": {
                        "kms:EncryptionContext:aws:s3:arn": [
                            bucket.bucket_arn,
                            *(bucket.arn_for_objects(p) for p in write_prefixes),
                        ]
                    },
                },
            )
        )
        error_streams = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=f"{self.error_log_group_name}:log-stream:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(sid="ReportDeliveryErrors", actions=["logs:PutLogEvents"], resources=[error_streams])
        )
        acknowledge_wildcard_resources(
            role,
            [bucket.arn_for_objects(p) for p in write_prefixes] + [error_streams],
            "Firehose names objects itself (date partitions, stream name, timestamp, random suffix), so "
            "writes are scoped to this account/region's audit/ and delivery-errors/ prefixes with a "
            "trailing '*'; the error log streams (one per cluster) live in one named log group.",
        )
        return role


def _processor(kind: str, **parameters: str) -> firehose.CfnDeliveryStream.ProcessorProperty:
    return firehose.CfnDeliveryStream.ProcessorProperty(
        type=kind,
        parameters=[
            firehose.CfnDeliveryStream.ProcessorParameterProperty(parameter_name=name, parameter_value=value)
            for name, value in parameters.items()
        ]
        or None,
    )
