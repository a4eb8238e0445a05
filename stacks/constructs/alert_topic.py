"""The SNS topic for human-readable alerts (findings above a threshold, and the stack's alarms)."""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from eksight.config import NotificationOptions


class AlertTopic(Construct):
    """A new topic, encrypted with its own customer-managed key and TLS-only, with the configured email
    subscriptions; or the user's own topic, used as it is.

    CloudWatch alarms cannot publish to a topic encrypted with the AWS managed `aws/sns` key, so the new
    topic gets a dedicated key whose policy lets CloudWatch use it; the findings rule publishes with a role.
    """

    def __init__(self, scope: Construct, construct_id: str, *, options: NotificationOptions) -> None:
        super().__init__(scope, construct_id)
        self.created = options.sns_topic_arn is None
        self.key: kms.Key | None = None
        if options.sns_topic_arn:
            self.topic: sns.ITopic = sns.Topic.from_topic_arn(self, "Imported", options.sns_topic_arn)
            return

        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "Key",
            description="eksight: encrypts the alert topic (findings and alarms)",
            enable_key_rotation=True,
            pending_window=Duration.days(30),
            removal_policy=RemovalPolicy.DESTROY,  # protects notifications in flight only, nothing at rest
        )
        alarms = stack.format_arn(
            service="cloudwatch", resource="alarm", resource_name="*", arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
        # CloudWatch alarms publish as the cloudwatch service principal. No source conditions on this key
        # statement: the key encrypts this one topic only, and the topic policy below decides which alarms
        # may publish. (EventBridge publishes through a role of its rule, granted by FindingsBus.)
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsPublishThroughSns",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy, "*" means this key
            )
        )
        topic = sns.Topic(self, "Topic", display_name="eksight alerts", master_key=self.key, enforce_ssl=True)
        # An explicit topic policy replaces SNS's default one, so it must let this account's alarms publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnLike": {"aws:SourceArn": alarms}, "StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        for address in options.email:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        self.topic = topic
