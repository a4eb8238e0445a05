"""eksight.tools.emulator.provision creates the synthesized detection stack in moto, on top of the ingestion stack.

(A provisioner test, next to the template tests because it exercises exactly the resource types the detection
stack added; the end-to-end emulator tests live in tests/emulator.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from eksight.tools.emulator import ProvisionError, provision
from tests.infrastructure.shared import Synth

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ACCOUNT = "111122223333"  # examples/multi-region.json pins it


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield


def test_detection_stack_is_provisioned_on_the_ingestion_stacks_exports(synth: Synth, aws: None) -> None:
    templates = synth(EXAMPLES / "multi-region.json")
    session = boto3.Session(region_name="eu-west-1")
    for cluster in ("eu-prod", "eu-batch", "eu-staging"):
        session.client("eks").create_cluster(
            name=cluster, roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks", resourcesVpcConfig={"subnetIds": ["subnet-1"]}
        )
        session.client("logs").create_log_group(logGroupName=f"/aws/eks/{cluster}/cluster")
    ingestion = provision(
        templates["eksight-ingestion-eu-west-1"],
        session=session,
        region="eu-west-1",
        account=ACCOUNT,
        stack_name="eksight-ingestion-eu-west-1",
        sleep=lambda _: None,
    )
    assert set(ingestion.exports) == {
        f"eksight-ingestion-eu-west-1:{name}"
        for name in (
            "ArchiveBucketArn",
            "ArchiveBucketName",
            "ArchiveKeyArn",
            "NotificationQueueArn",
            "DeadLetterQueueArn",
        )
    }

    with pytest.raises(ProvisionError, match="Fn::ImportValue 'eksight-ingestion-eu-west-1:"):
        provision(
            templates["eksight-detection-eu-west-1"],
            session=session,
            region="eu-west-1",
            account=ACCOUNT,
            stack_name="eksight-detection-eu-west-1",
        )
    detection = provision(
        templates["eksight-detection-eu-west-1"],
        session=session,
        region="eu-west-1",
        account=ACCOUNT,
        stack_name="eksight-detection-eu-west-1",
        imports=ingestion.exports,
    )
    out = detection.outputs

    table = session.client("dynamodb").describe_table(TableName=out["StateTableName"])["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    assert table["SSEDescription"]["KMSMasterKeyArn"] == ingestion.exports["eksight-ingestion-eu-west-1:ArchiveKeyArn"]
    ttl = session.client("dynamodb").describe_time_to_live(TableName=out["StateTableName"])
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    events = session.client("events")
    rules = {r["Name"]: r for r in events.list_rules(EventBusName=out["FindingsBusName"])["Rules"]}
    patterns = [json.loads(r["EventPattern"]) for r in rules.values()]
    assert {
        "source": ["io.github.eksight"],
        "detail-type": ["eksight Finding"],
        "detail": {"severity": ["MEDIUM", "HIGH", "CRITICAL"]},
    } in patterns
    targets = [
        t
        for name in rules
        for t in events.list_targets_by_rule(Rule=name, EventBusName=out["FindingsBusName"])["Targets"]
    ]
    assert {t["Arn"] for t in targets} >= {
        out["AlertTopicArn"],
        "arn:aws:events:us-east-1:999988887777:event-bus/security-findings",
    }
    assert all("DeadLetterConfig" in t for t in targets if t["Arn"] == out["AlertTopicArn"])
    archives = events.list_archives(EventSourceArn=out["FindingsBusArn"])["Archives"]
    assert [a["RetentionDays"] for a in archives] == [90]

    sns = session.client("sns")
    assert sns.get_topic_attributes(TopicArn=out["AlertTopicArn"])["Attributes"]["KmsMasterKeyId"]
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=out["AlertTopicArn"])["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "eks-security@example.com")]

    cloudwatch = session.client("cloudwatch")
    alarms = cloudwatch.describe_alarms()["MetricAlarms"]
    assert len(alarms) == 8 and all(a["AlarmActions"] == [out["AlertTopicArn"]] for a in alarms)
    assert cloudwatch.get_dashboard(DashboardName=out["DashboardName"])["DashboardBody"]

    # The Security Hub rule delivers to the forwarder's queue (a target moto does deliver to), and the bus keeps
    # its deny-all-but-the-detector policy (stored by moto; it does not evaluate bus policies on PutEvents).
    forwarder_queue = session.client("sqs").get_queue_attributes(
        QueueUrl=out["SecurityHubQueueUrl"], AttributeNames=["QueueArn", "RedrivePolicy"]
    )["Attributes"]
    assert forwarder_queue["QueueArn"] in {t["Arn"] for t in targets}
    assert json.loads(forwarder_queue["RedrivePolicy"])["maxReceiveCount"] == 5
    [statement] = json.loads(events.describe_event_bus(Name=out["FindingsBusName"])["Policy"])["Statement"]
    assert (statement["Effect"], statement["Action"]) == ("Deny", "events:PutEvents")
    iam = session.client("iam")
    [detector_role] = [  # the role the detection stack tagged as this deployment's detector
        role["Arn"]
        for role in iam.list_roles()["Roles"]
        if {"Key": "eksight:role", "Value": "detector"} in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
    ]
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": detector_role}}

    skipped = {s.type for s in detection.skipped}
    assert skipped == {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping"}
