"""The region's findings bus, its archive, and the rules that route findings by severity."""

from __future__ import annotations

from typing import TypedDict

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from eksight.config import FindingsOptions
from eksight.core import finding_formats
from eksight.core.findings import Severity
from stacks.constructs.alert_topic import AlertTopic
from stacks.constructs.nag import acknowledge, acknowledge_wildcard_actions
from stacks.constructs.principal_tags import FINDINGS_TO_CENTRAL, tag_role
from stacks.constructs.securityhub_forwarder import SecurityHubForwarder

# What the detector publishes with (eksight.core.finding_formats, used by FindingPublisher): the rules' contract.
FINDING_SOURCE = finding_formats.FINDINGS_SOURCE
FINDING_DETAIL_TYPE = finding_formats.FINDINGS_DETAIL_TYPE
TARGET_RETRY_ATTEMPTS = 24
TARGET_MAX_EVENT_AGE = Duration.hours(24)


class _TargetDelivery(TypedDict):
    """Retry and dead-letter settings shared by the bus's SNS and central-bus targets."""

    dead_letter_queue: sqs.IQueue
    retry_attempts: int
    max_event_age: Duration


def severities_at_or_above(minimum: str) -> list[str]:
    """An explicit list for the rule pattern: HIGH → ["HIGH", "CRITICAL"] (EventBridge matches strings)."""
    floor = Severity[minimum]
    return [severity.name for severity in Severity if severity >= floor]


def finding_pattern(min_severity: str | None = None) -> events.EventPattern:
    """eksight findings only (never, e.g., Security Hub's own "Findings - Imported" events), optionally of
    `min_severity` and above."""
    return events.EventPattern(
        source=[FINDING_SOURCE],
        detail_type=[FINDING_DETAIL_TYPE],
        detail={"severity": severities_at_or_above(min_severity)} if min_severity else None,
    )


def alert_message() -> events.RuleTargetInput:
    """A readable notification (SNS email) built by the rule's input transformer from the finding."""

    def field(path: str) -> str:
        return events.EventField.from_path(f"$.detail.{path}")

    return events.RuleTargetInput.from_multiline_text(
        f"eksight {field('severity')} finding in EKS cluster {field('cluster')} "
        f"(account {field('account')}, {field('region')})\n\n"
        f"{field('title')}\n\n"
        f"Rule: {field('rule_id')} ({field('type')})\n"
        f"Principal: {field('principal.name')}\n"
        f"Seen {field('count')} time(s), first {field('first_seen')}, last {field('last_seen')}\n"
        f"Remediation: {field('remediation')}\n"
        f"Finding id: {field('id')}"
    )


class FindingsBus(Construct):
    """A custom bus (so findings never mix with the default bus's AWS events), archived for replay.

    Routes: severity ≥ `securityhub.min_severity` → the Security Hub forwarder; severity ≥
    `notifications.min_severity` → the alert topic (readable text); every finding → the central bus, if
    configured. Deliveries that fail after retries land in an encrypted dead-letter queue (the forwarder's
    own for Security Hub, `dead_letter_queue` for the others).

    The bus and its archive are encrypted with `key`. Who may put events on it is decided by its resource
    policy (`only_publisher`): rules cannot match the calling principal, so a forged "eksight Finding" from
    anyone else in the account must be stopped before it reaches them.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        options: FindingsOptions,
        key: kms.IKey,
        deployment: str,
        forwarder: SecurityHubForwarder | None = None,
        alert_topic: AlertTopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, "Bus", description="eksight findings of this account and region", kms_key=key)
        self.archive = self.bus.archive(
            "Archive",
            description="Every eksight finding, replayable to the findings bus",
            event_pattern=finding_pattern(),
            retention=Duration.days(options.archive_retention_days),
        )
        # The key set on the CloudFormation resource: Archive's kms_key (aws-cdk-lib 2.275) would add a key policy
        # statement naming the bus ARN, a circular dependency (key → bus → key); the key's policy already lets
        # EventBridge of this account use it.
        archive: events.CfnArchive = self.archive.node.default_child  # type: ignore[assignment]
        archive.kms_key_identifier = key.key_arn
        self.rules: dict[str, events.Rule] = {}
        self.dead_letter_queue: sqs.Queue | None = None

        if forwarder is not None:
            self.rules["SecurityHub"] = events.Rule(
                self,
                "ToSecurityHub",
                event_bus=self.bus,
                description=f"eksight findings of severity {options.securityhub.min_severity} and above → "
                "Security Hub forwarder",
                event_pattern=finding_pattern(options.securityhub.min_severity),
                targets=[forwarder.target()],
            )
        if alert_topic is not None:
            self.rules["Notifications"] = events.Rule(
                self,
                "ToAlertTopic",
                event_bus=self.bus,
                description=f"eksight findings of severity {options.notifications.min_severity} and above → "
                "alert topic",
                event_pattern=finding_pattern(options.notifications.min_severity),
                # A topic eksight created is published to through a role of this rule (so its policy names
                # no service principal); a brought topic's policies must allow EventBridge (docs/findings.md).
                targets=[
                    targets.SnsTopic(
                        alert_topic.topic,
                        message=alert_message(),
                        role=self._events_role("AlertTopicRole", "Lets EventBridge publish eksight alerts")
                        if alert_topic.created
                        else None,
                        **self._delivery(),
                    )
                ],
            )
            if role := self.node.try_find_child("AlertTopicRole"):
                acknowledge_wildcard_actions(
                    role,
                    ["kms:GenerateDataKey*"],
                    "CDK's Topic.grantPublish lets the alert rule's role generate data keys with the topic's own "
                    "dedicated KMS key only (SNS encrypts each published alert with it).",
                )
        if options.central_bus_arn:
            central = events.EventBus.from_event_bus_arn(self, "CentralBus", options.central_bus_arn)
            role = self._events_role("CentralBusRole", "Lets EventBridge forward eksight findings to the central bus")
            # Tagged, so the central bus's policy can admit exactly this role of each source account (docs/findings.md).
            tag_role(role, FINDINGS_TO_CENTRAL, deployment)
            self.rules["CentralBus"] = events.Rule(
                self,
                "ToCentralBus",
                event_bus=self.bus,
                description="every eksight finding → the central findings bus",
                event_pattern=finding_pattern(),
                targets=[targets.EventBus(central, role=role, dead_letter_queue=self._delivery()["dead_letter_queue"])],
            )

    def only_publisher(self, principal_arn: str) -> None:
        """Deny `events:PutEvents` on the bus to every principal but `principal_arn` (the detector's role).

        An explicit Deny in the bus's resource policy overrides any IAM Allow in the account (an administrator's
        `events:*` included). `aws:PrincipalArn` is the role's ARN for any session of the role.
        """
        self.bus.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheDetectorPublishes",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": principal_arn}},
            )
        )

    def _events_role(self, construct_id: str, description: str) -> iam.Role:
        """A role only EventBridge rules on this bus can use (confused deputy: source account and rule ARN)."""
        stack = Stack.of(self)
        rules_of_this_bus = stack.format_arn(
            service="events",
            resource="rule",
            resource_name=f"{self.bus.event_bus_name}/*",
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )
        return iam.Role(
            self,
            construct_id,
            description=description,
            assumed_by=iam.ServicePrincipal(
                "events.amazonaws.com",
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": rules_of_this_bus},
                },
            ),
        )

    def _delivery(self) -> _TargetDelivery:
        if self.dead_letter_queue is None:
            self.dead_letter_queue = sqs.Queue(
                self,
                "DeliveryDeadLetterQueue",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),
            )
            acknowledge(
                self.dead_letter_queue,
                "AwsSolutions-SQS3",
                "This queue is itself the dead-letter queue of the findings bus's SNS and central-bus "
                "targets; a dead-letter queue of a dead-letter queue adds nothing, and an alarm watches it.",
            )
        return {
            "dead_letter_queue": self.dead_letter_queue,
            "retry_attempts": TARGET_RETRY_ATTEMPTS,
            "max_event_age": TARGET_MAX_EVENT_AGE,
        }
