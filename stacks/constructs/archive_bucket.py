"""The S3 archive of raw EKS audit logs (created, or the user's own bucket imported)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eksight.config import ArchiveOptions
from stacks.constructs.nag import acknowledge


class ArchiveBucket(Construct):
    """A private, TLS-only, KMS-encrypted, versioned bucket with lifecycle rules and access logging.

    An imported bucket is used as it is: eksight never changes its settings, only adds what the
    pipeline needs (the ObjectCreated notification, see ArchiveNotifications).
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: ArchiveOptions, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.created = options.existing_bucket_arn is None
        self.access_log_bucket: s3.Bucket | None = None
        if options.existing_bucket_arn:
            self.bucket: s3.IBucket = s3.Bucket.from_bucket_arn(self, "Imported", options.existing_bucket_arn)
            return

        if options.access_logging:
            self.access_log_bucket = s3.Bucket(
                self,
                "AccessLogs",
                # S3 server access logging can only deliver to SSE-S3 buckets.
                encryption=s3.BucketEncryption.S3_MANAGED,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
                enforce_ssl=True,
                minimum_tls_version=1.2,
                lifecycle_rules=[
                    s3.LifecycleRule(
                        id="expire-access-logs",
                        expiration=Duration.days(options.expiration_days),
                        abort_incomplete_multipart_upload_after=Duration.days(1),
                    )
                ],
                removal_policy=RemovalPolicy.RETAIN,
            )

        transitions = []
        if options.transition_days is not None:
            transitions.append(
                s3.Transition(
                    storage_class=s3.StorageClass(options.transition_storage_class),
                    transition_after=Duration.days(options.transition_days),
                )
            )
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,  # one KMS call per bucket key, not per object
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=options.versioning,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="archive/" if self.access_log_bucket else None,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="archive-retention",
                    transitions=transitions or None,
                    expiration=Duration.days(options.expiration_days),
                    noncurrent_version_expiration=(
                        Duration.days(options.noncurrent_version_expiration_days) if options.versioning else None
                    ),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,  # an audit archive outlives the stack
        )
        if not options.access_logging:
            acknowledge(
                self.bucket,
                "AwsSolutions-S1",
                "Server access logging was turned off in the config (archive.access_logging = "
                "false); the bucket is private and TLS-only.",
            )
