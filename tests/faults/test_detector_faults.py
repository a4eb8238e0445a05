"""Faults around the detector, injected at the wire of its real clients (tests/faults/wire.py), each run compared
with the fault-free run of the same events (`reference`): the same findings in the findings archive, on the bus
and in Security Hub, none lost and none twice; the same behavioural profiles and ledger entries, each learned from
the object once."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote_plus

import pytest

from eksight.core.behaviour.profile import Profile, dumps
from eksight.core.finding_formats import FINDINGS_DETAIL_TYPE
from tests.faults.pipeline import (
    DEV,
    Account,
    Delivery,
    Detector,
    Outcome,
    Run,
    detector,
    firehose_object,
    forwarder,
    new_cluster,
    object_lines,
    put_objects,
    run_pipeline,
)
from tests.faults.wire import Countdown, fail_entries, interrupt, refuse, trickle
from tests.lambdas.lambda_support import emf_blobs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DEV / "audit.jsonl.gz").exists(), reason="dev-scenarios dataset absent"),
]


def profile_write(params: dict[str, Any]) -> bool:
    return params.get("Item", {}).get("sk", {}).get("S") == "profile"


def assert_same_as_reference(run: Run, reference: Run) -> None:
    expected, actual = reference.outcome, run.outcome
    assert actual.archive == expected.archive
    assert actual.bus == expected.bus  # each finding once, none missing
    assert actual.securityhub == expected.securityhub
    assert actual.profiles == expected.profiles  # every profile learned the object once
    assert actual.ledger == expected.ledger


# ---- 1. DynamoDB ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "ThrottlingException"])
def test_profile_writes_throttled_mid_object(account: Account, reference: Run, code: str) -> None:
    """The third profile write is refused (after the SDK's own retries): the object fails, its notification comes
    back, and the retry folds in only what the first attempt had not written."""
    container = detector(account)
    refused = refuse(container.clients.dynamodb, "PutItem", code, Countdown(3, matches=profile_write))

    run = run_pipeline(account, "throttled", container=container)

    assert refused[code] == 1
    assert run.detection.invocations == 2 and sum(run.detection.failed.values()) == 1
    assert run.detection.metrics["ObjectsFailed"] == 1 and run.detection.metrics["ObjectsProcessed"] == 1
    assert_same_as_reference(run, reference)


def test_profile_reads_throttled_mid_object(account: Account, reference: Run) -> None:
    container = detector(account)
    code = "ProvisionedThroughputExceededException"
    refused = refuse(container.clients.dynamodb, "BatchGetItem", code, Countdown(2))

    run = run_pipeline(account, "read-throttled", container=container)

    assert refused[code] == 1 and sum(run.detection.failed.values()) == 1
    assert_same_as_reference(run, reference)


def test_another_writer_updates_profiles_between_read_and_write(account: Account, reference: Run) -> None:
    """Just before five of the profiles are first written, another writer (another container) stores each of them
    first: the conditional writes fail at DynamoDB, and the detector re-reads and re-merges its own learning."""
    container = detector(account)
    other_writer, table = account.client("dynamodb"), account.outputs["StateTableName"]
    raced: list[str] = []

    def write_first(params: dict[str, Any], **_: Any) -> None:
        creating = params.get("ConditionExpression", "").startswith("attribute_not_exists")
        if profile_write(params) and creating and len(raced) < 5:
            raced.append(params["Item"]["pk"]["S"])
            other_writer.put_item(
                TableName=table, Item={**params["Item"], "blob": {"B": dumps(Profile())}, "version": {"N": "1"}}
            )

    container.clients.dynamodb.meta.events.register("before-parameter-build.dynamodb.PutItem", write_first)

    run = run_pipeline(account, "conflict", container=container)

    assert len(raced) == 5 and container.app.state.conflicts >= 5  # the races happened, at DynamoDB
    assert not run.detection.failed  # absorbed inside the invocation
    assert_same_as_reference(run, reference)


# ---- 2. EventBridge ---------------------------------------------------------------------------------------------


def test_put_events_partial_failures(account: Account, reference: Run) -> None:
    """Every third entry fails on its first try (FailedEntryCount > 0): only those are sent again."""
    container = detector(account)
    tried: set[str] = set()

    def first_try_of_every_third(entry: dict[str, Any]) -> bool:
        finding_id = json.loads(entry["Detail"])["id"]
        fail = finding_id not in tried and len(tried) % 3 == 0
        tried.add(finding_id)
        return fail

    failed = fail_entries(container.clients.events, "PutEvents", "InternalFailure", first_try_of_every_third)

    run = run_pipeline(account, "partial", container=container)

    assert failed and all(entry["DetailType"] == FINDINGS_DETAIL_TYPE for entry in failed)
    assert not run.detection.failed
    assert_same_as_reference(run, reference)


def test_put_events_fully_throttled(account: Account, reference: Run) -> None:
    """Every PutEvents of the first attempt is throttled (more often than the publisher retries): the object
    fails before anything is published, and its redelivery publishes each finding once."""
    container = detector(account)
    refused = refuse(container.clients.events, "PutEvents", "ThrottlingException", Countdown(1, times=5))

    run = run_pipeline(account, "bus-throttled", container=container)

    assert refused["ThrottlingException"] == 5
    assert sum(run.detection.failed.values()) == 1 and run.detection.metrics["ObjectsProcessed"] == 1
    assert_same_as_reference(run, reference)


# ---- 4. the object deleted between the notification and the read -----------------------------------------------


def test_object_deleted_before_the_read(account: Account, reference: Run) -> None:
    """The deleted object's notification fails only itself, is reported each time (metric and log naming the key),
    and goes to the dead-letter queue after the queue's receive limit; the other object of its batch is detected."""
    cluster = new_cluster("deleted")
    s3, bucket = account.client("s3"), account.outputs["ArchiveBucketName"]
    keys = put_objects(
        account,
        cluster,
        {"object.gz": firehose_object(cluster, object_lines()), "gone.gz": firehose_object(cluster, object_lines(50))},
    )
    gone = keys[1]
    for version in s3.list_object_versions(Bucket=bucket, Prefix=gone)["Versions"]:
        s3.delete_object(Bucket=bucket, Key=gone, VersionId=version["VersionId"])
    container = detector(account)

    detection = container.function.deliver()

    receives = max_receives(account)
    assert detection.metrics["ObjectsProcessed"] == 1 and detection.metrics["ObjectsFailed"] == receives
    failures = detection.logs("object failed")
    assert len(failures) == receives and {f["key"] for f in failures} == {gone}
    assert all("NoSuch" in f["exception"] for f in failures)
    assert dead_lettered(account) == [gone]
    forwarding = forwarder(account)[1].deliver()
    assert_same_as_reference(
        Run(cluster, keys[:1], detection, forwarding, Outcome.collect(account, cluster, keys[:1])), reference
    )


def notified_key(message: dict[str, Any]) -> str:
    return unquote_plus(json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"])


# ---- 5. a Lambda timeout mid-object, then redelivery ------------------------------------------------------------

KILL_POINTS = {
    "profile writes": ("dynamodb", "PutItem", lambda: Countdown(3, matches=profile_write)),
    "findings archive": ("s3", "PutObject", lambda: Countdown(1, matches=lambda p: p["Key"].startswith("findings/"))),
}


@pytest.mark.parametrize("point", KILL_POINTS)
def test_timeout_mid_object_then_redelivery(account: Account, reference: Run, point: str) -> None:
    """The invocation dies mid-object (nothing after that point runs: no cleanup, the container is gone). Its
    idempotency record stays INPROGRESS until the invocation's deadline; the redelivered notification, after it,
    runs in a new container and gives the same findings once, the profiles folded once."""
    service, operation, when = KILL_POINTS[point]
    killed = detector(account)
    interrupt(getattr(killed.clients, service), operation, when())
    remaining_ms = 5000  # long enough for the object to reach the kill point within its share of it

    def deliver(first: Detector) -> Delivery:
        dying = first.function.deliver(rounds=1, remaining_ms=remaining_ms)
        assert dying.timed_out == 1
        early = detector(account).function.deliver(rounds=1)  # within the deadline: someone still holds it
        assert early.metrics.get("ObjectsInProgressElsewhere") == 1 and "ObjectsProcessed" not in early.metrics
        time.sleep(max(0.0, first.function.deadline - time.time()) + 0.1)  # the dead invocation's deadline
        return detector(account).function.deliver()  # after it: a new container processes it

    run = run_pipeline(account, "timeout", container=killed, deliver=deliver)

    assert run.detection.metrics["ObjectsProcessed"] == 1 and not run.detection.failed
    assert_same_as_reference(run, reference)


# ---- 6. a poison object -------------------------------------------------------------------------------------


def test_unreadable_object_is_dead_lettered_after_the_receive_limit_with_its_alarms(account: Account) -> None:
    """An object that can never be read (GetObject refused every time) fails only itself: its batch-mate is
    detected, and after the queue's receive limit (from the synthesized template) it is in the dead-letter queue,
    with the metrics the stack's alarms watch emitted: ObjectsFailed, and the dead-letter queue's depth."""
    cluster = new_cluster("poison")
    healthy, poison = put_objects(
        account,
        cluster,
        {
            "healthy.gz": firehose_object(cluster, object_lines(40)),
            "poison.gz": firehose_object(cluster, object_lines(20)),
        },
    )
    container = detector(account)
    refuse(container.clients.s3, "GetObject", "AccessDenied", lambda params: params["Key"] == poison, status=403)
    objects_failed = account.resource("detection", "AWS::CloudWatch::Alarm", "AlarmsObjectsFailed")["Properties"]

    detection = container.function.deliver()

    assert [p["key"] for p in detection.logs("object processed")] == [healthy]
    assert sum(detection.failed.values()) == max_receives(account)
    assert [f["key"] for f in detection.logs("object failed")] == [poison] * max_receives(account)
    # the alarm on the detector's own metric: its namespace, name and dimension, above the threshold
    emitted = [
        blob
        for blob in emf_blobs(detection.stdout)
        if objects_failed["MetricName"] in blob
        and blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == objects_failed["Namespace"]
        and all(blob.get(d["Name"]) == d["Value"] for d in objects_failed["Dimensions"])
    ]
    assert sum(metric_sum(blob[objects_failed["MetricName"]]) for blob in emitted) > objects_failed["Threshold"]
    assert dead_lettered(account) == [poison]


def test_object_that_always_times_out_is_dead_lettered_after_the_receive_limit(account: Account) -> None:
    """Every invocation that reads the object dies at Lambda's timeout (no metric of ours gets out): after the
    receive limit the notification is in the dead-letter queue, whose alarm then fires."""
    cluster = new_cluster("slow")
    [slow] = put_objects(account, cluster, {"slow.gz": firehose_object(cluster, object_lines(20))})
    container = detector(account)
    interrupt(container.clients.s3, "GetObject", lambda params: params["Key"] == slow)

    detection = container.function.deliver(remaining_ms=1)  # its idempotency record expires at once

    assert detection.timed_out == max_receives(account) and "ObjectsProcessed" not in detection.metrics
    assert dead_lettered(account) == [slow]


def test_object_that_cannot_be_read_in_time_does_not_take_its_batch_mates_along(account: Account) -> None:
    """The slow object comes first in its batch every time and would run into the invocation's timeout (which ends
    the whole batch: every message of it is received again). The detector gives each object of a batch a share of
    the invocation's time and stops one that overruns it, so its batch-mate is detected in the first invocation, and
    the slow one alone reaches the dead-letter queue."""
    cluster = new_cluster("slow-mate")
    slow, healthy = put_objects(
        account,
        cluster,
        {
            "slow.gz": firehose_object(cluster, object_lines(300)),
            "healthy.gz": firehose_object(cluster, object_lines(40)),
        },
    )
    container = detector(account)
    trickle(container.clients.s3, lambda params: params["Key"] == slow, lambda: container.function.deadline)

    detection = container.function.deliver(remaining_ms=2000)

    assert [p["key"] for p in detection.logs("object processed")] == [healthy]
    assert detection.timed_out == 0  # the detector stopped the slow object itself, each time
    failures = detection.logs("object failed")
    assert [(f["key"], f["over_time"]) for f in failures] == [(slow, True)] * max_receives(account)
    assert detection.metrics["ObjectsOverTime"] == max_receives(account)
    assert dead_lettered(account) == [slow]


def max_receives(account: Account) -> int:
    queue = account.resource("ingestion", "AWS::SQS::Queue", "NotificationsQueue")["Properties"]
    return int(queue["RedrivePolicy"]["maxReceiveCount"])


def dead_lettered(account: Account) -> list[str]:
    """The keys of the notifications in the dead-letter queue the stack's alarm watches (the alarm as provisioned:
    its dimension names the queue), after checking that the alarm's metric is over its threshold; drains it."""
    template = account.resource("detection", "AWS::CloudWatch::Alarm", "AlarmsNotificationsDeadLetters")["Properties"]
    [alarm] = [
        a
        for a in account.client("cloudwatch").describe_alarms()["MetricAlarms"]
        if a["AlarmDescription"] == template["AlarmDescription"]
    ]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    [queue_name] = [d["Value"] for d in alarm["Dimensions"] if d["Name"] == "QueueName"]
    sqs = account.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    depth = int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold" and depth > alarm["Threshold"]
    keys = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            keys.append(notified_key(message))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def metric_sum(value: float | list[float]) -> float:
    return sum(value) if isinstance(value, list) else value
