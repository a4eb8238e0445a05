"""The detector Lambda against moto: S3 notification → SQS message → handler → EventBridge bus → capture queue.

Everything AWS is moto (`mock_aws`, in-process); nothing of eksight is mocked. The archive object is built the
way Firehose stores CloudWatch Logs deliveries (newline-delimited DATA_MESSAGE envelopes, gzip) from the
labelled dev-cluster dataset; the SQS messages are the ones moto's S3 really sends to the queue (s3:TestEvent
included). What reaches the bus is read back from an SQS queue targeted by a rule on the bus.

Expected findings come from two independent places: the labels (each signature scenario in the object is cited by
a MEDIUM+ published finding) and the detection pipeline run directly over the same bytes (the handler publishes
exactly those findings, each once).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import lambda_support
import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event
from lambda_support import SHARED_DATASETS, LambdaContext, emf_blobs, load_handler, metric_totals, metric_values
from moto import mock_aws

from eksight.adapters.s3 import quarantine_key
from eksight.core.archive_layout import findings_key
from eksight.core.archive_object import ObjectResult, process_object
from eksight.core.decode import context_from_key, decode_bytes
from eksight.core.detector import Detector
from eksight.core.findings import Finding, Severity
from eksight.core.rules import engine_for
from lambdas.detector.composition import (
    IDEMPOTENCY_KEY_PREFIX,
    DetectorApp,
    DetectorClients,
    DetectorSettings,
    LambdaHandler,
    ObjectRef,
    SettingsError,
    audit_objects,
    build,
    create_handler,
)

DEV = SHARED_DATASETS / "dev-scenarios"
pytestmark = pytest.mark.skipif(not (DEV / "audit.jsonl.gz").exists(), reason="dev-scenarios dataset absent")

REGION = "us-east-1"
BUCKET = "eksight-archive-test"
BUS = "eksight-findings"
TABLE = "eksight-baselines"
NAMESPACE = "eksight"
CLUSTER, ACCOUNT, CLUSTER_REGION = "prod-core-eks2", "828750217432", "eu-north-1"  # the dataset's own
PREFIX = f"audit/account={ACCOUNT}/region={CLUSTER_REGION}/cluster={CLUSTER}/year=2024/month=09/day=15/hour=20/"
ENVIRONMENT = {"FINDINGS_BUS_NAME": BUS, "ARCHIVE_BUCKET": BUCKET, "STATE_TABLE": TABLE}
SETTINGS = DetectorSettings(findings_bus_name=BUS, archive_bucket=BUCKET, state_table=TABLE)
SCENARIOS = ("S03", "S05", "S06")  # signature scenarios: anonymous access, privileged pod, cluster-admin binding


# ---- data ---------------------------------------------------------------------------------------------------


@cache
def _dataset() -> tuple[tuple[tuple[str, bytes], ...], dict[str, str]]:
    """(scenario id or "", line) per event of the dev cluster, and auditID → scenario id."""
    labels = json.loads((DEV / "labels.json").read_text())
    scenario_of = {audit_id: s["id"] for s in labels["scenarios"] if s["id"] in SCENARIOS for audit_id in s["auditIDs"]}
    lines = gzip.decompress((DEV / "audit.jsonl.gz").read_bytes()).splitlines()
    return tuple((scenario_of.get(json.loads(line)["auditID"], ""), line) for line in lines), scenario_of


def scenario_lines(*scenarios: str) -> list[bytes]:
    return [line for scenario, line in _dataset()[0] if scenario and scenario in scenarios]


def benign_lines(count: int) -> list[bytes]:
    return [line for scenario, line in _dataset()[0][: count * 2] if not scenario][:count]


def envelope(messages: list[bytes], stream: str = "kube-apiserver-audit-1abdea6d0f764575b219b884cf596055") -> bytes:
    """One CloudWatch Logs DATA_MESSAGE as the subscription delivers it (log event timestamp = event time)."""

    def millis(message: bytes) -> int:
        try:
            return int(datetime.fromisoformat(json.loads(message)["stageTimestamp"]).timestamp() * 1000)
        except ValueError:
            return 1726442000000

    return json.dumps(
        {
            "messageType": "DATA_MESSAGE",
            "owner": ACCOUNT,
            "logGroup": f"/aws/eks/{CLUSTER}/cluster",
            "logStream": stream,
            "subscriptionFilters": ["eksight-audit"],
            "logEvents": [
                {"id": str(i), "timestamp": millis(m), "message": m.decode()} for i, m in enumerate(messages)
            ],
        }
    ).encode()


CONTROL = json.dumps(
    {
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 1725321600000, "message": "CWL CONTROL MESSAGE: Checking health"}],
    }
)


def firehose_object(lines: list[bytes], per_envelope: int = 100) -> bytes:
    """Newline-delimited envelopes, gzipped once (what Firehose writes with the decompression processor off)."""
    envelopes = [CONTROL.encode()] + [envelope(lines[i : i + per_envelope]) for i in range(0, len(lines), per_envelope)]
    return gzip.compress(b"\n".join(envelopes) + b"\n")


def poison_object() -> bytes:
    """A good gzip member (the anonymous-access scenario), then bytes that are not gzip, a member whose lines are not
    JSON / whose log message is not an event, and a truncated member."""
    good = gzip.compress(envelope(scenario_lines("S03")) + b"\n")
    junk = gzip.compress(b'{"kind":"Event", oops}\nplain text\n' + envelope([b"not a json message"]) + b"\n")
    truncated = gzip.compress(envelope(benign_lines(80)) + b"\n")[:-40]
    return good + b"this is not gzip at all\n" + junk + truncated


def oracle(body: bytes, key: str) -> tuple[Detector, list[Finding]]:
    """The detection pipeline run directly over the object's bytes."""
    detector = Detector(engine_for(None)).run(decode_bytes(body, source=key, defaults=context_from_key(key)))
    return detector, detector.findings()


# ---- the emulated account -----------------------------------------------------------------------------------


@dataclass
class Aws:
    app: DetectorApp
    handler: LambdaHandler
    s3: Any
    sqs: Any
    dynamodb: Any
    notifications_url: str
    notifications_arn: str
    capture_url: str

    def put(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def deliveries(self) -> list[dict[str, Any]]:
        """The messages S3 sent to the notification queue, as Lambda's SQS event source hands them over."""
        records = []
        while messages := self.sqs.receive_message(
            QueueUrl=self.notifications_url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            for message in messages:
                records.append(
                    {
                        "messageId": message["MessageId"],
                        "receiptHandle": message["ReceiptHandle"],
                        "body": message["Body"],
                        "attributes": message.get("Attributes", {}),
                        "messageAttributes": {},
                        "md5OfBody": message["MD5OfBody"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.notifications_arn,
                        "awsRegion": REGION,
                    }
                )
                self.sqs.delete_message(QueueUrl=self.notifications_url, ReceiptHandle=message["ReceiptHandle"])
        return records

    def invoke(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self.handler({"Records": records}, LambdaContext())

    def published(self) -> list[dict[str, Any]]:
        """Events that reached the findings bus (drained from the capture queue)."""
        out = []
        while messages := self.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=message["ReceiptHandle"])
        return out

    def idempotency_items(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return [item for item in items if item["pk"]["S"].startswith("idempotency#")]

    def profiles(self) -> dict[tuple[str, str], Any]:
        """Behavioural profiles the detector stored (same table, pk = <cluster>|<principal or peer group>)."""
        from eksight.core.behaviour.profile import loads

        items = self.dynamodb.scan(TableName=TABLE)["Items"]
        return {
            (i["pk"]["S"], i["sk"]["S"]): loads(i["blob"]["B"]) for i in items if i["sk"]["S"] in ("profile", "peer")
        }


def as_message(record: dict[str, Any], message_id: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **record,
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": json.dumps(body) if body is not None else record["body"],
    }


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
        "POWERTOOLS_SERVICE_NAME": "eksight-detector",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3, sqs, events, dynamodb = (session.client(n) for n in ("s3", "sqs", "events", "dynamodb"))
        s3.create_bucket(Bucket=BUCKET)
        notifications = sqs.create_queue(QueueName="eksight-notifications")["QueueUrl"]
        notifications_arn = sqs.get_queue_attributes(QueueUrl=notifications, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        s3.put_bucket_notification_configuration(
            Bucket=BUCKET,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": notifications_arn,
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audit/"}]}},
                    }
                ]
            },
        )
        capture = sqs.create_queue(QueueName="findings-capture")["QueueUrl"]
        capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.create_event_bus(Name=BUS)
        events.put_rule(
            Name="all-eksight-findings", EventBusName=BUS, EventPattern=json.dumps({"source": ["io.github.eksight"]})
        )
        events.put_targets(
            Rule="all-eksight-findings", EventBusName=BUS, Targets=[{"Id": "capture", "Arn": capture_arn}]
        )
        dynamodb.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
        )
        app = build(SETTINGS, DetectorClients(s3=s3, events=events, dynamodb=dynamodb))
        yield Aws(app, create_handler(app), s3, sqs, dynamodb, notifications, notifications_arn, capture)


def object_messages(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if "Records" in json.loads(r["body"])]


# ---- tests --------------------------------------------------------------------------------------------------


def test_findings_of_an_archive_object_reach_the_bus_once(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    key = PREFIX + "eksight prod+1 2024-09-15-20.gz"  # S3 URL-encodes it in the notification ("+" for " ")
    lines = benign_lines(300) + scenario_lines(*SCENARIOS)
    body = firehose_object(lines)
    aws.put(key, body)
    records = aws.deliveries()
    assert [json.loads(r["body"]).get("Event") for r in records] == ["s3:TestEvent", None]
    assert json.loads(records[1]["body"])["Records"][0]["s3"]["object"]["key"] != key  # really encoded

    assert aws.invoke(records) == {"batchItemFailures": []}

    published = aws.published()
    detector, expected = oracle(body, key)
    assert expected, "the oracle found nothing: the fixture lost its attacks"
    assert Counter((e["detail"]["id"], e["detail"]["rule_id"]) for e in published) == Counter(
        (f.id, f.rule_id) for f in expected
    )  # exactly the pipeline's findings, each once
    assert sorted(e["detail"]["rule_id"] for e in published) == sorted(f.rule_id for f in expected)
    assert {(e["source"], e["detail-type"]) for e in published} == {("io.github.eksight", "eksight Finding")}
    assert {(e["detail"]["cluster"], e["detail"]["account"], e["detail"]["region"]) for e in published} == {
        (CLUSTER, ACCOUNT, CLUSTER_REGION)
    }
    assert all(f"arn:aws:eks:{CLUSTER_REGION}:{ACCOUNT}:cluster/{CLUSTER}" in e["resources"] for e in published)
    # Every finding, of every severity, is also kept in the archive under findings/ (the Athena table), at the
    # object's hour.
    kept = aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="findings/").get("Contents", [])
    assert [o["Key"] for o in kept] == [findings_key(key)]
    stored = gzip.decompress(aws.s3.get_object(Bucket=BUCKET, Key=kept[0]["Key"])["Body"].read()).splitlines()
    assert sorted(json.loads(line)["id"] for line in stored) == sorted(f.id for f in expected)
    _, scenario_of = _dataset()
    cited = {
        scenario_of[a]
        for e in published
        if Severity[e["detail"]["severity"]] >= Severity.MEDIUM
        for a in e["detail"]["evidence"]
        if a in scenario_of
    }
    assert cited == set(SCENARIOS)  # every labelled attack in the object, from the labels

    blobs = emf_blobs(capsys.readouterr().out)
    assert {blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] for blob in blobs} == {NAMESPACE}
    [main] = [blob for blob in blobs if "ObjectsProcessed" in blob]  # the dimension the dashboards/alarms use
    assert main["service"] == "eksight-detector" and main["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    totals = metric_totals(blobs)
    by_severity = Counter(f.severity.name for f in expected)
    assert {
        name: totals.get(name)
        for name in (
            "ObjectsProcessed",
            "EventsProcessed",
            "RecordsQuarantined",
            "S3TestEvents",
            "FindingsCritical",
            "FindingsHigh",
            "FindingsMedium",
            "FindingsLow",
            "FindingsInformational",
        )
    } == {
        "ObjectsProcessed": 1,
        "EventsProcessed": detector.stats.events,
        "RecordsQuarantined": 0,
        "S3TestEvents": 1,
        "FindingsCritical": by_severity["CRITICAL"],
        "FindingsHigh": by_severity["HIGH"],
        "FindingsMedium": by_severity["MEDIUM"],
        "FindingsLow": by_severity["LOW"],
        "FindingsInformational": by_severity["INFORMATIONAL"],
    }
    assert "DuplicateObjects" not in totals
    newest = max(datetime.fromisoformat(json.loads(line)["stageTimestamp"]).timestamp() for line in lines)
    [lag] = metric_values(blobs, "EventLagSeconds")
    assert 0 <= (time.time() - newest) - lag < 60  # now − the object's newest event time (2024: about two years)


def test_same_object_twice_publishes_nothing_twice(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0001.gz"
    aws.put(key, firehose_object(scenario_lines(*SCENARIOS)))
    [message] = object_messages(aws.deliveries())

    assert aws.invoke([message]) == {"batchItemFailures": []}
    first = aws.published()
    assert first
    capsys.readouterr()

    # the same SQS message again (redelivery), then two messages for the same object in one batch
    assert aws.invoke([message]) == {"batchItemFailures": []}
    assert aws.invoke([as_message(message, "copy-1"), as_message(message, "copy-2")]) == {"batchItemFailures": []}

    assert aws.published() == []
    profiles = aws.profiles()
    assert profiles and all(len(p.applied) == 1 for p in profiles.values())  # learned once, not four times
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert totals.get("DuplicateObjects") == 3
    assert "ObjectsProcessed" not in totals and "EventsProcessed" not in totals
    [item] = aws.idempotency_items()  # one record per object, beside (never among) the profiles' pk=<cluster>|...
    assert item["pk"] == {"S": "idempotency#eksight-detector"}
    assert item["sk"]["S"].startswith("eksight-detector/object#")
    assert item["status"] == {"S": "COMPLETED"}
    assert 7 * 86400 - 120 < int(item["expires_at"]["N"]) - time.time() <= 7 * 86400


def test_profiles_stay_warm_across_objects_and_unchanged_ones_are_not_written_again(aws: Aws) -> None:
    """The container's profile cache (composition root): a second object by the same principals reads no profile
    and writes back only those that changed materially (docs/baselines.md, "Writing less")."""
    first = benign_lines(400)
    again = [line.replace(b'"auditID":"', b'"auditID":"again-', 1) for line in first]  # the same requests, re-IDed
    assert again != first
    for name, lines in (("0003", first), ("0004", again)):
        aws.put(PREFIX + f"eksight-prod-1-2024-09-15-20-58-00-{name}.gz", firehose_object(lines))
    one, two = object_messages(aws.deliveries())
    assert aws.invoke([one]) == {"batchItemFailures": []}
    reads, writes = aws.app.state.reads, aws.app.state.writes
    profiles = aws.profiles()
    assert reads and writes >= len(profiles) > 0 and len(aws.app.profiles) >= len(profiles)

    assert aws.invoke([two]) == {"batchItemFailures": []}
    assert aws.app.state.reads == reads  # every profile came from the cache
    assert aws.app.state.writes - writes < len(profiles) / 2  # most learned counts only: deferred
    stored = aws.profiles()
    cached = {key: aws.app.profiles.get(key) for key in stored}
    # the cache holds both objects' learning; the table, for the deferred profiles, only the first's
    assert all(entry is not None and entry.state.events >= stored[key].events for key, entry in cached.items())
    assert sum(entry.state.events for entry in cached.values() if entry) > sum(p.events for p in stored.values())


def test_a_new_version_of_an_object_is_processed_again(aws: Aws) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0002.gz"
    aws.put(key, firehose_object(scenario_lines("S03")))
    aws.put(key, firehose_object(scenario_lines("S05")))  # same key, new content: a new eTag
    messages = object_messages(aws.deliveries())
    assert len(messages) == 2

    assert aws.invoke(messages) == {"batchItemFailures": []}
    # both notifications read the key's current content (S05): the second one is a new eTag, so it runs again
    published = aws.published()
    assert published and len(published) == 2 * len({e["detail"]["id"] for e in published})
    assert len(aws.idempotency_items()) == 2


def test_poison_object_is_quarantined_and_its_good_records_still_detected(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-poison.gz"
    body = poison_object()
    aws.put(key, body)
    [message] = object_messages(aws.deliveries())

    assert aws.invoke([message]) == {"batchItemFailures": []}

    detector, expected = oracle(body, key)
    quarantined = dict(detector.stats.quarantined)
    assert set(quarantined) == {"invalid_gzip", "invalid_json", "truncated_gzip"}
    stored = aws.s3.get_object(Bucket=BUCKET, Key=quarantine_key(key))
    assert quarantine_key(key).startswith(
        f"quarantine/account={ACCOUNT}/region={CLUSTER_REGION}/cluster={CLUSTER}/year=2024/"
    )
    lines = [json.loads(line) for line in gzip.decompress(stored["Body"].read()).splitlines()]
    assert Counter(line["reason"] for line in lines) == Counter(quarantined)
    assert all(line["source"] == f"s3://{BUCKET}/{key}" and line["detail"] for line in lines)
    assert [line["offset"] for line in lines] == sorted(line["offset"] for line in lines)
    assert stored["Metadata"]["eksight-reasons"] == ",".join(f"{r}={n}" for r, n in sorted(quarantined.items()))
    assert stored["Metadata"]["eksight-records"] == str(sum(quarantined.values()))

    published = aws.published()  # the good member's anonymous-access events are still detected
    assert sorted(e["detail"]["id"] for e in published) == sorted(f.id for f in expected)
    _, scenario_of = _dataset()
    assert {scenario_of.get(a) for e in published for a in e["detail"]["evidence"]} == {"S03"}
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert totals["RecordsQuarantined"] == sum(quarantined.values())
    assert totals["ObjectsProcessed"] == 1


def test_missing_object_fails_only_its_message(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0003.gz"
    aws.put(key, firehose_object(scenario_lines("S06")))
    records = aws.deliveries()
    test_event, good = records[0], object_messages(records)[0]
    gone = json.loads(good["body"])
    gone["Records"][0]["s3"]["object"]["key"] = (PREFIX + "was-deleted.gz").replace("=", "%3D")
    batch = [test_event, as_message(good, "missing", gone), good]

    assert aws.invoke(batch) == {"batchItemFailures": [{"itemIdentifier": "missing"}]}

    assert {e["detail"]["rule_id"] for e in aws.published()} == {
        f.rule_id for f in oracle(firehose_object(scenario_lines("S06")), key)[1]
    }
    # the failed object left no idempotency record behind: its retry will process it
    assert len(aws.idempotency_items()) == 1
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert (totals["ObjectsProcessed"], totals["ObjectsFailed"], totals["S3TestEvents"]) == (1, 1, 1)


def test_garbage_message_body_fails_only_itself(aws: Aws) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0004.gz"
    aws.put(key, firehose_object(scenario_lines("S03")))
    [good] = object_messages(aws.deliveries())
    garbage = {**good, "messageId": "garbage", "body": "not json"}

    assert aws.invoke([garbage, good]) == {"batchItemFailures": [{"itemIdentifier": "garbage"}]}
    assert aws.published()


def test_keys_outside_audit_and_other_events_are_ignored(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0005.gz"
    aws.put(key, firehose_object(scenario_lines("S03")))
    [good] = object_messages(aws.deliveries())
    outside = json.loads(good["body"])
    outside["Records"][0]["s3"]["object"]["key"] = "delivery-errors/account%3D1/processing-failed/x.gz"
    removed = json.loads(good["body"])
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    both = {"Records": outside["Records"] + removed["Records"]}  # several records in one body

    assert aws.invoke([as_message(good, "two-records", both)]) == {"batchItemFailures": []}

    assert aws.published() == []
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert totals["ObjectsIgnored"] == 2
    assert "ObjectsProcessed" not in totals


def test_detection_config_allow_lists_apply(aws: Aws, tmp_path: Path) -> None:
    config = tmp_path / "detection.json"
    config.write_text(json.dumps({"rule_allow": {"EKS-100": {"principals": ["*"]}}}))
    settings = DetectorSettings.from_environ({**ENVIRONMENT, "EKSIGHT_DETECTION_CONFIG": config.name}, root=tmp_path)
    clients = DetectorClients(s3=aws.s3, events=boto3.client("events"), dynamodb=aws.dynamodb)
    handler = create_handler(build(settings, clients))
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0006.gz"
    aws.put(key, firehose_object(scenario_lines("S03", "S06")))
    [message] = object_messages(aws.deliveries())

    assert handler({"Records": [message]}, LambdaContext()) == {"batchItemFailures": []}

    rules = {e["detail"]["rule_id"] for e in aws.published()}
    assert "EKS-100" in {f.rule_id for f in oracle(firehose_object(scenario_lines("S03", "S06")), key)[1]}
    assert rules and "EKS-100" not in rules


def test_suppressed_findings_are_archived_and_counted_but_not_published(
    aws: Aws, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "detection.json"
    suppression = {"rule": "EKS-100", "all_principals": True, "reason": "lab cluster", "expires": "2099-01-01"}
    config.write_text(json.dumps({"suppressions": [suppression]}))
    settings = DetectorSettings.from_environ({**ENVIRONMENT, "EKSIGHT_DETECTION_CONFIG": config.name}, root=tmp_path)
    clients = DetectorClients(s3=aws.s3, events=boto3.client("events"), dynamodb=aws.dynamodb)
    handler = create_handler(build(settings, clients))
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0008.gz"
    body = firehose_object(scenario_lines("S03", "S06"))
    aws.put(key, body)
    [message] = object_messages(aws.deliveries())
    expected = oracle(body, key)[1]
    suppressed_ids = {f.id for f in expected if f.rule_id == "EKS-100"}
    assert suppressed_ids and len(suppressed_ids) < len(expected), "the fixture must produce EKS-100 and others"

    assert handler({"Records": [message]}, LambdaContext()) == {"batchItemFailures": []}

    published = {e["detail"]["id"] for e in aws.published()}
    assert published == {f.id for f in expected} - suppressed_ids
    stored = gzip.decompress(aws.s3.get_object(Bucket=BUCKET, Key=findings_key(key))["Body"].read()).splitlines()
    by_id = {json.loads(line)["id"]: json.loads(line) for line in stored}
    assert set(by_id) == {f.id for f in expected}  # every finding archived, the suppressed ones marked
    assert {i for i, f in by_id.items() if f.get("suppressed_by")} == suppressed_ids
    assert by_id[next(iter(suppressed_ids))]["suppressed_by"] == "EKS-100 (all principals): lab cluster"
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert totals["FindingsSuppressed"] == len(suppressed_ids)


def test_the_network_lists_object_is_read_at_cold_start(aws: Aws, tmp_path: Path) -> None:
    aws.s3.put_object(Bucket=BUCKET, Key="intel/networks.json", Body=b'{"threat_networks": ["203.0.113.0/24"]}')
    config = tmp_path / "detection.json"
    source = {"bucket": BUCKET, "key": "intel/networks.json"}
    config.write_text(json.dumps({"threat_networks": ["198.51.100.7"], "networks_object": source}))
    settings = DetectorSettings.from_environ({**ENVIRONMENT, "EKSIGHT_DETECTION_CONFIG": config.name}, root=tmp_path)
    clients = DetectorClients(s3=aws.s3, events=boto3.client("events"), dynamodb=aws.dynamodb)
    detection = build(settings, clients).detection
    assert detection is not None and detection.threat_networks == ["198.51.100.7", "203.0.113.0/24"]
    aws.s3.put_object(Bucket=BUCKET, Key="intel/networks.json", Body=b"<html>not the feed</html>")
    detection = build(settings, clients).detection  # a broken feed: the config's list, and no crash
    assert detection is not None and detection.threat_networks == ["198.51.100.7"]


def test_an_object_in_progress_elsewhere_is_retried_later(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0007.gz"
    aws.put(key, firehose_object(scenario_lines("S03")))
    aws.put(PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0008.gz", firehose_object(scenario_lines("S06")))
    message, other = object_messages(aws.deliveries())
    ref = json.loads(message["body"])["Records"][0]["s3"]
    # another invocation took the object and is still within its deadline (Powertools' own API writes its record)
    aws.app.persistence.configure(aws.app.idempotency, key_prefix=IDEMPOTENCY_KEY_PREFIX)
    aws.app.persistence.save_inprogress(
        data={"bucket": BUCKET, "key": key, "version_id": None, "etag": ref["object"]["eTag"]},
        remaining_time_in_millis=60_000,
    )
    capsys.readouterr()

    assert aws.invoke([message, other]) == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}

    _, scenario_of = _dataset()
    assert {scenario_of.get(a) for e in aws.published() for a in e["detail"]["evidence"]} == {"S06"}  # only the other
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert totals["ObjectsInProgressElsewhere"] == 1 and "ObjectsFailed" not in totals


# ---- settings, notifications, cold start ----------------------------------------------------------------------


def test_settings_name_every_missing_variable() -> None:
    with pytest.raises(SettingsError, match="FINDINGS_BUS_NAME, STATE_TABLE"):
        DetectorSettings.from_environ({"ARCHIVE_BUCKET": BUCKET, "STATE_TABLE": ""})
    with pytest.raises(SettingsError, match="LEARNING_DAYS must be a whole number of days, got 'seven'"):
        DetectorSettings.from_environ({**ENVIRONMENT, "LEARNING_DAYS": "seven"})


def test_settings_read_the_optional_variables(tmp_path: Path) -> None:
    assert DetectorSettings.from_environ(ENVIRONMENT) == SETTINGS
    settings = DetectorSettings.from_environ(
        {**ENVIRONMENT, "EKSIGHT_DETECTION_CONFIG": "detection.json", "LEARNING_DAYS": "14"}, root=tmp_path
    )
    assert (settings.detection_config, settings.learning_days) == (tmp_path / "detection.json", 14)


def test_learning_days_from_the_environment_override_the_detection_config(aws: Aws, tmp_path: Path) -> None:
    config = tmp_path / "detection.json"
    config.write_text(json.dumps({"learning_days": 3, "rule_allow": {"EKS-100": {"principals": ["*"]}}}))
    clients = DetectorClients(s3=aws.s3, events=boto3.client("events"), dynamodb=aws.dynamodb)

    def detection(environment: dict[str, str]) -> Any:
        return build(DetectorSettings.from_environ(environment, root=tmp_path), clients).detection

    assert detection(ENVIRONMENT) is None  # eksight's defaults
    assert detection({**ENVIRONMENT, "LEARNING_DAYS": "5"}).learning_days == 5
    configured = {**ENVIRONMENT, "EKSIGHT_DETECTION_CONFIG": config.name}
    assert detection(configured).learning_days == 3
    overridden = detection({**configured, "LEARNING_DAYS": "21"})
    assert overridden.learning_days == 21 and set(overridden.rule_allow) == {"EKS-100"}  # the rest is kept
    with pytest.raises(ValueError, match="learning_days"):
        detection({**ENVIRONMENT, "LEARNING_DAYS": "91"})  # the config's own bound


def test_audit_objects_of_a_notification() -> None:
    def record(event_name: str, key: str, **obj: str) -> dict[str, Any]:
        return {"eventName": event_name, "s3": {"bucket": {"name": BUCKET}, "object": {"key": key, **obj}}}

    notification = S3Event(
        {
            "Records": [
                record("ObjectCreated:Put", "audit/a+b%3Dc.gz", eTag="e1", versionId="v1"),
                record("ObjectRemoved:Delete", "audit/gone.gz"),
                record("ObjectCreated:Put", "quarantine/x.gz", eTag="e2"),
                record("ObjectCreated:CompleteMultipartUpload", "audit/big.gz", eTag="", versionId=""),
            ]
        }
    )
    refs, ignored = audit_objects(notification)
    assert refs == [
        ObjectRef(BUCKET, "audit/a b=c.gz", "v1", "e1"),
        ObjectRef(BUCKET, "audit/big.gz", None, None),
    ]
    assert ignored == [
        {"event_name": "ObjectRemoved:Delete", "key": "audit/gone.gz"},
        {"event_name": "ObjectCreated:Put", "key": "quarantine/x.gz"},
    ]
    assert audit_objects(S3Event({"Service": "Amazon S3", "Event": "s3:TestEvent"})) == ([], [])


def test_the_handler_module_builds_its_app_from_the_environment_at_cold_start(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lambdas/detector/handler.py as the local demo loads it: settings from the environment, its own clients,
    and process_object looked up per object (the demo wraps it to count what was read)."""
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    module = load_handler("detector")
    assert module.app.settings == SETTINGS
    seen: list[str] = []

    def counted(*args: Any, **kwargs: Any) -> ObjectResult:
        seen.append(args[1])
        return process_object(*args, **kwargs)

    monkeypatch.setattr(module, "process_object", counted)
    key = PREFIX + "eksight-prod-1-2024-09-15-20-58-00-0009.gz"
    aws.put(key, firehose_object(scenario_lines("S03")))

    assert module.handler({"Records": aws.deliveries()}, LambdaContext()) == {"batchItemFailures": []}
    assert seen == [key] and aws.published()


DEFERRED = ("numpy", "eksight.core.archive_object", "eksight.core.behaviour.cache", "eksight.core.rules")


@pytest.mark.parametrize("config", [None, {"rule_allow": {"EKS-100": {"principals": ["sa:monitoring/*"]}}}])
def test_the_cold_start_leaves_detection_to_the_first_object(tmp_path: Path, config: dict[str, Any] | None) -> None:
    """`import handler` as Lambda runs it (a fresh interpreter, the asset root on the path): settings, clients and
    the entry point, not detection (the object pipeline, the rules, behavioural scoring with numpy), which the
    first object imports; and never pydantic: the shipped detection config is read with msgspec structs."""
    handler_dir = Path(lambda_support.ROOT) / "lambdas" / "detector"
    environment = {
        **os.environ,
        **ENVIRONMENT,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "LAMBDA_TASK_ROOT": str(handler_dir),
        "PYTHONPATH": f"{handler_dir}{os.pathsep}{lambda_support.ROOT}",
    }
    if config is not None:
        (tmp_path / "detection.json").write_text(json.dumps(config))
        environment["EKSIGHT_DETECTION_CONFIG"] = str(tmp_path / "detection.json")  # absolute: root / it is it
    code = f"import sys, handler; print(*[m for m in {(*DEFERRED, 'pydantic')!r} if m in sys.modules])"
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=environment, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == []
