"""Findings from the bus → lambdas/securityhub_forwarder/handler.py → Security Hub (BatchImportFindings)."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.lambda_package import EksightFunction, LambdaPackage

SERVICE = "eksight-securityhub-forwarder"
TARGET_RETRY_ATTEMPTS = 24  # EventBridge → Lambda delivery retries (throttling, service errors)
TARGET_MAX_EVENT_AGE = Duration.hours(24)
ASYNC_RETRY_ATTEMPTS = 2  # Lambda's own retries of a failed asynchronous invocation
# It maps and imports findings only: numpy (the detector's, half the vendored size) stays out of its asset.
NOT_IMPORTED = ("numpy",)


class SecurityHubForwarder(Construct):
    """Imports each routed finding as ASFF into this account/region's Security Hub, under the account's
    default custom product (`product/<account>/default`), which is the only product it may import into.

    Every way a finding can fail to arrive ends in one encrypted dead-letter queue: EventBridge could not
    invoke the function (the rule target's DLQ), or the function failed on all its attempts (its
    asynchronous-invocation DLQ). Replay it after fixing the cause; imports are idempotent (same finding Id).
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.product_arn = stack.format_arn(
            service="securityhub", resource="product", resource_name=f"{stack.account}/default"
        )
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.wrapper = EksightFunction(
            self,
            "Forwarder",
            package=LambdaPackage("securityhub_forwarder", without=NOT_IMPORTED),
            description="eksight: import findings into AWS Security Hub (ASFF)",
            service=SERVICE,
            memory_mb=256,
            timeout=Duration.minutes(1),
            environment={"SECURITYHUB_PRODUCT_ARN": self.product_arn},
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=ASYNC_RETRY_ATTEMPTS,
        )
        self.function = self.wrapper.function
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                sid="ImportIntoTheDefaultProduct",
                actions=["securityhub:BatchImportFindings"],
                resources=[self.product_arn],
            )
        )

    def target(self) -> events.IRuleTarget:
        return targets.LambdaFunction(
            self.function,
            dead_letter_queue=self.dead_letter_queue,
            retry_attempts=TARGET_RETRY_ATTEMPTS,
            max_event_age=TARGET_MAX_EVENT_AGE,
        )
