"""Alarms on everything that means "findings are late or lost", and a small dashboard of the pipeline."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.detector_function import SERVICE as DETECTOR_SERVICE
from stacks.constructs.lambda_package import METRICS_NAMESPACE

# Metrics the detector emits with Powertools (namespace `eksight`, dimension service=eksight-detector).
# Powertools sets dimensions per flush, so severity is part of the metric name, not a dimension.
FINDINGS_METRICS = {
    "CRITICAL": "FindingsCritical",
    "HIGH": "FindingsHigh",
    "MEDIUM": "FindingsMedium",
    "LOW": "FindingsLow",
    "INFORMATIONAL": "FindingsInformational",
}
EVENTS_PROCESSED = "EventsProcessed"
OBJECTS_PROCESSED = "ObjectsProcessed"
RECORDS_QUARANTINED = "RecordsQuarantined"
EVENT_LAG_SECONDS = "EventLagSeconds"
FINDINGS_SUPPRESSED = "FindingsSuppressed"
OBJECTS_FAILED = "ObjectsFailed"  # an object whose processing raised: its message is retried (partial batch failure)
# Notifications the detector did not run detection on (or not to the end), each for its own reason.
OBJECTS_NOT_PROCESSED = (
    OBJECTS_FAILED,
    "ObjectsOverTime",  # of ObjectsFailed: its share of the invocation's time ran out (it fails alone, is retried)
    "DuplicateObjects",  # already processed (idempotency record)
    "ObjectsInProgressElsewhere",  # another invocation holds it: retried later
    "ObjectsIgnored",  # notification records outside the audit archive
    "S3TestEvents",
)
# Every metric the detector emits, all on the dashboard (bench/cost.py counts them as custom metrics).
DETECTOR_METRICS = (
    EVENTS_PROCESSED,
    OBJECTS_PROCESSED,
    RECORDS_QUARANTINED,
    EVENT_LAG_SECONDS,
    FINDINGS_SUPPRESSED,
    *FINDINGS_METRICS.values(),
    *OBJECTS_NOT_PROCESSED,
)

PERIOD = Duration.minutes(5)
MAX_QUEUE_AGE = Duration.minutes(15)


def detector_metric(name: str, statistic: str = "Sum") -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"service": DETECTOR_SERVICE},
        statistic=statistic,
        period=PERIOD,
    )


class DetectionAlarms(Construct):
    """One alarm per failure mode (all with missing data = OK: no traffic is not a failure):

    - a dead-letter queue holds anything (ingestion notifications, Security Hub deliveries, other deliveries);
    - the detector errors or is throttled; the notification queue's oldest message is older than 15 minutes;
    - the Security Hub forwarder errors.

    Each alarm notifies `alert_topic` when one is configured.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        detector: lambda_.IFunction,
        queue: sqs.IQueue,
        dead_letter_queues: dict[str, sqs.IQueue],
        forwarder: lambda_.IFunction | None = None,
        alert_topic: sns.ITopic | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, dlq in dead_letter_queues.items():
            self._alarm(
                f"{name}DeadLetters",
                dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                0,
                f"{name} dead-letter queue holds messages: inspect them, fix the cause, then redrive.",
            )
        self._alarm(
            "DetectorErrors",
            detector.metric_errors(period=PERIOD),
            0,
            "The detector failed invocations (see its log group); failed objects are retried, then dead-lettered.",
        )
        self._alarm(
            "DetectorThrottles",
            detector.metric_throttles(period=PERIOD),
            0,
            "The detector was throttled: raise detector.reserved_concurrency or the account limit.",
        )
        self._alarm(
            "ObjectsFailed",
            detector_metric(OBJECTS_FAILED),
            0,
            "The detector could not process an archive object (unreadable, or a downstream call failed): "
            "its notification is retried and ends in the dead-letter queue after 5 receives. Partial "
            "batch failures do not count as Lambda errors, hence this alarm.",
        )
        self._alarm(
            "QueueAge",
            queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
            MAX_QUEUE_AGE.to_seconds(),
            "Audit log deliveries wait more than 15 minutes for the detector: detection is late.",
        )
        if forwarder is not None:
            self._alarm(
                "ForwarderErrors",
                forwarder.metric_errors(period=PERIOD),
                0,
                "The Security Hub forwarder failed (is Security Hub enabled in this region?); failed "
                "findings end in its dead-letter queue.",
            )
        if alert_topic is not None:
            for alarm in self.alarms.values():
                alarm.add_alarm_action(actions.SnsAction(alert_topic))

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.hours(24))
        lambda_widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(
                title="Detector invocations",
                width=8,
                left=[
                    detector.metric_invocations(period=PERIOD),
                    detector.metric_errors(period=PERIOD),
                    detector.metric_throttles(period=PERIOD),
                ],
                right=[
                    detector.metric_duration(period=PERIOD, statistic="p95"),
                    detector.metric_duration(period=PERIOD, statistic="Maximum"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Objects not processed",
                width=8,
                left=[detector_metric(name) for name in OBJECTS_NOT_PROCESSED],
            ),
        ]
        if forwarder is not None:
            lambda_widgets.append(
                cloudwatch.GraphWidget(
                    title="Security Hub forwarder",
                    width=8,
                    left=[forwarder.metric_invocations(period=PERIOD), forwarder.metric_errors(period=PERIOD)],
                    right=[forwarder.metric_duration(period=PERIOD, statistic="p95")],
                )
            )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Events and objects processed",
                width=8,
                left=[detector_metric(EVENTS_PROCESSED)],
                right=[detector_metric(OBJECTS_PROCESSED)],
            ),
            cloudwatch.GraphWidget(
                title="Findings by severity",
                width=8,
                stacked=True,
                left=[detector_metric(name).with_(label=severity) for severity, name in FINDINGS_METRICS.items()],
            ),
            cloudwatch.GraphWidget(
                title="Quarantined records, suppressed findings",
                width=8,
                left=[detector_metric(RECORDS_QUARANTINED)],
                right=[detector_metric(FINDINGS_SUPPRESSED)],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Lag: event time → processed (s)",
                width=8,
                left=[detector_metric(EVENT_LAG_SECONDS, "p95"), detector_metric(EVENT_LAG_SECONDS, "Maximum")],
            ),
            cloudwatch.GraphWidget(
                title="Notification queue",
                width=8,
                left=[queue.metric_approximate_number_of_messages_visible(period=PERIOD)],
                right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum")],
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", width=8, alarms=list(self.alarms.values())),
        )
        self.dashboard.add_widgets(*lambda_widgets)

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
        self.alarms[name] = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"eksight: {description}",
        )
