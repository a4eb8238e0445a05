"""S3 ObjectCreated → SQS (with a dead-letter queue): the detector's input, for created and imported buckets."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eksight.core import archive_layout
from stacks.constructs.nag import BASIC_EXECUTION_FINDING, acknowledge

MAX_RECEIVES = 5  # an object that fails five times goes to the DLQ, where an alarm (detection stack) sees it


class ArchiveNotifications(Construct):
    """Queues every new delivery under ``audit/`` for the detector.

    Only that prefix: delivery errors and the detector's own quarantine writes must not re-trigger it.
    Encrypted with SQS-managed keys, which S3 can publish to without a key-policy change (a customer
    key would need one, which an imported key's owner would have to add); messages hold object keys
    only, never log content.
    """

    def __init__(
        self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, visibility_timeout: Duration
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # Derived from the detector's timeout (detector_function.queue_visibility_timeout): >= 6x it.
            visibility_timeout=visibility_timeout,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES),
        )
        # CDK's SqsDestination lets S3 send for this bucket's ARN only (aws:SourceArn); a bucket name can move to
        # another account once deleted, so also refuse S3 sending on behalf of any other account.
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyThisAccountsBuckets",
                effect=iam.Effect.DENY,
                principals=[iam.ServicePrincipal("s3.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"StringNotEquals": {"aws:SourceAccount": Stack.of(self).account}},
            )
        )
        bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED,
            s3n.SqsDestination(self.queue),
            s3.NotificationKeyFilter(prefix=archive_layout.AUDIT_ROOT),
        )
        # CDK puts the notification through one stack-wide handler function (it keeps notifications that
        # others configured on an imported bucket). Its role uses the AWS managed basic-execution policy.
        handler = next(
            child for child in Stack.of(self).node.children if child.node.id.startswith("BucketNotificationsHandler")
        )
        acknowledge(
            handler,
            BASIC_EXECUTION_FINDING,
            "CDK's bucket-notifications handler uses AWSLambdaBasicExecutionRole only to write its "
            "own logs; it runs during deploy to set this stack's S3 notification.",
        )
