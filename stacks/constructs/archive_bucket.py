"""The S3 archive of raw EKS audit logs (created, or the user's own bucket imported)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import DefaultStackSynthesizer, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from eksight.config import ArchiveOptions
from eksight.core import archive_layout
from stacks.constructs.nag import acknowledge
from stacks.constructs.principal_tags import DETECTOR, all_but

# Changing or destroying the evidence: only the break-glass principal (and CloudFormation, for the bucket's own
# settings on deploy) may do it. S3 Lifecycle expirations are S3's own and are not affected.
TAMPERING_ACTIONS = [
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:DeleteBucket",
]


def cloudformation_execution_role_arn(stack: Stack) -> str:
    """The role CloudFormation deploys this stack with: the CDK bootstrap's ``cfn-exec-role`` (its qualifier
    from the stack's synthesizer), with the synthesizer's placeholders as this stack's tokens."""
    synthesizer = stack.synthesizer
    arn = (
        synthesizer.cloud_formation_execution_role_arn
        if isinstance(synthesizer, DefaultStackSynthesizer)
        else DefaultStackSynthesizer.DEFAULT_CLOUDFORMATION_ROLE_ARN.replace(
            "${Qualifier}", DefaultStackSynthesizer.DEFAULT_QUALIFIER
        )
    )
    for placeholder, value in (
        ("${AWS::Partition}", stack.partition),
        ("${AWS::AccountId}", stack.account),
        ("${AWS::Region}", stack.region),
    ):
        arn = arn.replace(placeholder, value)
    return arn


class ArchiveBucket(Construct):
    """A private, TLS-only, KMS-encrypted, versioned bucket with lifecycle rules and access logging, optional
    Object Lock (governance mode), and a policy that decides who may write where and who may destroy (`protect`).

    An imported bucket is used as it is: eksight never changes its settings, only adds what the
    pipeline needs (the ObjectCreated notification, see ArchiveNotifications); docs/byo.md has the
    recommended policy.
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: ArchiveOptions, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.options = options
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
            # Object Lock can only be turned on when the bucket is created (config: archive.object_lock_days).
            object_lock_enabled=True if options.object_lock_days else None,
            object_lock_default_retention=(
                s3.ObjectLockRetention.governance(Duration.days(options.object_lock_days))
                if options.object_lock_days
                else None
            ),
        )
        if not options.access_logging:
            acknowledge(
                self.bucket,
                "AwsSolutions-S1",
                "Server access logging was turned off in the config (archive.access_logging = "
                "false); the bucket is private and TLS-only.",
            )

    def protect(self, *, delivery_writers: Sequence[str], detector_deployment: str) -> None:
        """The bucket policy of a created bucket (an imported one is not ours to change).

        Explicit denies, so no IAM policy in the account can grant around them (``aws:PrincipalArn`` is a role's
        ARN for every session of the role): deliveries under ``audit/`` and ``delivery-errors/`` only by
        `delivery_writers` (the Firehose role), ``quarantine/`` and ``findings/`` only by the detector role of
        `detector_deployment` in this account (by its tags: the detection stack that creates it is deployed after
        this one, stacks/constructs/principal_tags.py), ``athena-results/`` by whoever IAM allows (Athena users),
        nothing elsewhere; deleting
        objects and changing the policy, lifecycle, versioning or Object Lock settings only by the break-glass
        principal (default: the account root) and the CloudFormation execution role, which applies this stack's
        own changes to the bucket and its policy on deploy.
        """
        if not self.created:
            return
        stack = Stack.of(self)
        bucket = self.bucket

        def objects(*roots: str) -> list[str]:
            return [bucket.arn_for_objects(root + "*") for root in roots]

        def deny(
            sid: str,
            actions: list[str],
            resources: list[str],
            *,
            unless: Sequence[str] = (),
            conditions: Mapping[str, Mapping[str, object]] | None = None,
        ) -> None:
            if unless:
                conditions = {"ArnNotEquals": {"aws:PrincipalArn": list(unless)}}
            bucket.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=sid,
                    effect=iam.Effect.DENY,
                    principals=[iam.AnyPrincipal()],
                    actions=actions,
                    resources=resources,
                    conditions=conditions,
                )
            )

        write = ["s3:PutObject"]
        deliveries = (archive_layout.AUDIT_ROOT, archive_layout.DELIVERY_ERRORS_ROOT)
        detector = (archive_layout.QUARANTINE_ROOT, archive_layout.FINDINGS_ROOT)
        deny("DeliveriesOnlyByFirehose", write, objects(*deliveries), unless=delivery_writers)
        for suffix, condition in all_but(DETECTOR, detector_deployment, stack.account).items():
            deny("DetectorOutputOnlyByTheDetector" + suffix, write, objects(*detector), conditions=condition)
        bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="NoWritesOutsideTheLayout",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=write,
                not_resources=objects(*deliveries, *detector, archive_layout.ATHENA_RESULTS_ROOT),
            )
        )
        break_glass = self.options.break_glass_principal_arn or f"arn:{stack.partition}:iam::{stack.account}:root"
        deny(
            "NoTamperingButBreakGlass",
            TAMPERING_ACTIONS,
            [bucket.bucket_arn, bucket.arn_for_objects("*")],
            unless=[break_glass, cloudformation_execution_role_arn(stack)],
        )
