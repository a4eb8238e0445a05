"""Findings from the bus → an SQS queue → lambdas/securityhub_forwarder/handler.py → Security Hub (BatchImportFindings)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.lambda_package import EksightFunction, LambdaPackage

SERVICE = "eksight-securityhub-forwarder"
TARGET_RETRY_ATTEMPTS = 24  # EventBridge → SQS delivery retries
TARGET_MAX_EVENT_AGE = Duration.hours(24)
# Security Hub takes 100 findings per BatchImportFindings call, 10 calls per second (burst 30) per account and
# Region: batches of 100 gathered for at most 5 s, by at most 2 concurrent invocations, stay far below that while a
# finding still reaches Security Hub within seconds.
BATCH_SIZE = 100
MAX_BATCHING_WINDOW = Duration.seconds(5)
MAX_CONCURRENCY = 2
TIMEOUT = Duration.minutes(1)
VISIBILITY_TIMEOUT = Duration.seconds(6 * (60 + 5))  # Lambda's guidance: 6 × (timeout + batching window)
MAX_RECEIVES = 5  # a finding Security Hub refused five times goes to the dead-letter queue (alarmed)
# It maps and imports findings only: numpy (the detector's, half the vendored size) stays out of its asset.
NOT_IMPORTED = ("numpy",)


class SecurityHubForwarder(Construct):
    """Imports routed findings as ASFF into this account/region's Security Hub, under the account's default
    custom product (`product/<account>/default`), which is the only product it may import into.

    The bus's rule puts each finding on a KMS-encrypted queue; the function reads batches of up to 100 at a
    bounded concurrency and reports per-message failures. A finding that fails `MAX_RECEIVES` times, and one
    EventBridge could not deliver to the queue, land in the dead-letter queue: redrive it to the queue after
    fixing the cause (docs/findings.md); imports are idempotent (same finding Id).
    """

    def __init__(self, scope: Construct, construct_id: str, *, key: kms.IKey, log_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.product_arn = stack.format_arn(
            service="securityhub", resource="product", resource_name=f"{stack.account}/default"
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY_TIMEOUT,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letter_queue, max_receive_count=MAX_RECEIVES),
        )
        self.wrapper = EksightFunction(
            self,
            "Forwarder",
            package=LambdaPackage("securityhub_forwarder", without=NOT_IMPORTED),
            description="eksight: import findings into AWS Security Hub (ASFF)",
            service=SERVICE,
            memory_mb=256,
            timeout=TIMEOUT,
            environment={"SECURITYHUB_PRODUCT_ARN": self.product_arn},
            log_key=log_key,
        )
        self.function = self.wrapper.function
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                max_batching_window=MAX_BATCHING_WINDOW,
                max_concurrency=MAX_CONCURRENCY,
                report_batch_item_failures=True,
            )
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ImportIntoTheDefaultProduct",
                actions=["securityhub:BatchImportFindings"],
                resources=[self.product_arn],
            )
        )

    def target(self) -> events.IRuleTarget:
        return targets.SqsQueue(
            self.queue,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=TARGET_RETRY_ATTEMPTS,
            max_event_age=TARGET_MAX_EVENT_AGE,
        )
