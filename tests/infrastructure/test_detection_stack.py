"""The synthesized detection stacks do what they must, and nothing more (least privilege, routing, encryption).

Templates come from the cached `synth` fixture: examples/minimal.json (defaults), examples/multi-region.json
(eu-west-1: email alerts from MEDIUM and a central bus; us-east-1: a brought bucket and key) and the GovCloud
options config (shared.OPTIONS_CONFIG: Security Hub off, brought topic, detector sizing).
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eksight import config
from eksight.adapters.eventbridge import FindingPublisher
from eksight.core.findings import Finding, ResourceRef, Severity
from eksight.queries.sources import FINDINGS_COLUMNS
from stacks.constructs import lambda_package
from stacks.constructs.detection_alarms import DETECTOR_METRICS, FINDINGS_METRICS
from stacks.constructs.detector_function import DETECTION_CONFIG_FILE, detection_config_json
from stacks.constructs.lambda_package import (
    RUNTIME_CACHE_TAG,
    LambdaPackage,
    LambdaPackageError,
    asset_size,
    runtime_python,
)
from stacks.constructs.securityhub_forwarder import NOT_IMPORTED
from tests.infrastructure.shared import (
    OPTIONS_CONFIG,
    Synth,
    as_list,
    only,
    props,
    render,
    resources,
    stacks_of_kind,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SEVERITIES = [s.name for s in Severity]


@pytest.fixture(scope="module")
def minimal_pair(synth: Synth) -> tuple[dict[str, Any], dict[str, Any]]:
    templates = synth(EXAMPLES / "minimal.json")
    return only(stacks_of_kind(templates, "ingestion")), only(stacks_of_kind(templates, "detection"))


@pytest.fixture(scope="module")
def minimal(minimal_pair: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return minimal_pair[1]


@pytest.fixture(scope="module")
def multi(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth(EXAMPLES / "multi-region.json")


@pytest.fixture(scope="module")
def alerting(multi: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return multi["eksight-detection-eu-west-1"]


@pytest.fixture(scope="module")
def options(options_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return only(stacks_of_kind(options_templates, "detection"))


# --- helpers ---------------------------------------------------------------------------------------------


def function_by_service(template: dict[str, Any], service: str) -> tuple[str, dict[str, Any]]:
    return only(
        [
            (name, r["Properties"])
            for name, r in resources(template, "AWS::Lambda::Function").items()
            if r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == service
        ]
    )


def role_statements(template: dict[str, Any], function: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of every policy attached to the function's role (inline and AWS::IAM::Policy)."""
    role_id = function["Role"]["Fn::GetAtt"][0]
    found = list(_inline(template["Resources"][role_id]))
    for policy in props(template, "AWS::IAM::Policy"):
        if {"Ref": role_id} in policy.get("Roles", []):
            found += policy["PolicyDocument"]["Statement"]
    return found


def _inline(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def allowed(statements: list[dict[str, Any]], action: str, resource: str) -> bool:
    """IAM-style: an Allow statement whose Action and Resource patterns (`*`, `?`) cover the request."""
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        actions = [a.lower() for a in as_list(statement["Action"])]
        if not any(fnmatch.fnmatchcase(action.lower(), a) for a in actions):
            continue
        if any(fnmatch.fnmatchcase(resource, render(r)) for r in as_list(statement["Resource"])):
            return True
    return False


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge matching for the pattern subset eksight uses: nested objects and arrays of exact values.
    Every field of the pattern must be present; a value matches if it (or, for an array in the event, any
    of its elements) equals one of the listed values. Anything else in a pattern is refused, not guessed."""
    for key, expected in pattern.items():
        if key not in event:
            return False
        actual = event[key]
        if isinstance(expected, dict):
            if not isinstance(actual, dict) or not matches(expected, actual):
                return False
        elif isinstance(expected, list):
            if any(isinstance(value, dict | list) for value in expected):
                raise NotImplementedError(f"content filter in {expected}: extend the test matcher first")
            values = actual if isinstance(actual, list) else [actual]
            if not any(value in expected for value in values):
                return False
        else:
            raise AssertionError(f"invalid pattern value for {key}: {expected!r}")
    return True


def finding(severity: Severity, **overrides: Any) -> Finding:
    base: dict[str, Any] = dict(
        id="f-1",
        type="Execution:Kubernetes/ExecInKubeSystemPod",
        severity=severity,
        title="alice exec'd into kube-system/coredns",
        description="interactive shell",
        detector="rule",
        rule_id="exec-kube-system",
        cluster="prod",
        account="111122223333",
        region="us-east-1",
        principal={
            "key": "iam:arn:aws:iam::111122223333:role/Dev",
            "name": "alice",
            "arn": "arn:aws:iam::111122223333:role/Dev",
        },
        first_seen=1_790_000_000.0,
        last_seen=1_790_000_060.0,
        resources=[ResourceRef("kube-system", "pods", "coredns-1")],
    )
    return Finding(**{**base, **overrides})


class RecordingEventsClient:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries += Entries
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in range(len(Entries))]}


def finding_event(severity: Severity) -> dict[str, Any]:
    """The event EventBridge builds from what the detector's publisher actually sends (PutEvents entry)."""
    client = RecordingEventsClient()
    FindingPublisher(client, "bus").publish([finding(severity)])
    entry = only(client.entries)
    return {
        "version": "0",
        "id": "e-1",
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": "111122223333",
        "time": "2026-09-21T12:00:00Z",
        "region": "us-east-1",
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


SECURITY_HUB_IMPORTED = {
    "version": "0",
    "id": "e-2",
    "detail-type": "Security Hub Findings - Imported",
    "source": "aws.securityhub",
    "account": "111122223333",
    "time": "2026-09-21T12:00:01Z",
    "region": "us-east-1",
    "resources": ["arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default/f-1"],
    # A finding eksight itself imported: HIGH, with eksight's fields. It must not loop back.
    "detail": {
        "severity": "HIGH",
        "findings": [
            {
                "ProductArn": "arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default",
                "GeneratorId": "eksight/exec-kube-system",
                "Severity": {"Label": "HIGH"},
                "ProductFields": {"eksight/rule_id": "exec-kube-system"},
            }
        ],
    },
}


def rule_targets(template: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(event pattern, target) of every rule."""
    return [
        (rule["EventPattern"], target) for rule in props(template, "AWS::Events::Rule") for target in rule["Targets"]
    ]


def routed(template: dict[str, Any], event: dict[str, Any]) -> set[str]:
    """Rendered ARNs of the targets `event` reaches."""
    return {render(target["Arn"]) for pattern, target in rule_targets(template) if matches(pattern, event)}


# --- routing ---------------------------------------------------------------------------------------------


def test_the_test_matcher_follows_eventbridge_semantics() -> None:
    pattern = {"source": ["a"], "detail": {"severity": ["HIGH", "CRITICAL"]}}
    assert matches(pattern, {"source": "a", "detail": {"severity": "HIGH", "x": 1}})
    assert not matches(pattern, {"source": "a", "detail": {"severity": "high"}})  # case-sensitive
    assert not matches(pattern, {"source": "a", "detail": {}})  # missing field never matches
    assert not matches(pattern, {"source": "a", "severity": "HIGH"})  # nesting matters
    assert matches({"resources": ["r2"]}, {"resources": ["r1", "r2"]})  # array: any element
    with pytest.raises(NotImplementedError):
        matches({"detail": {"severity": [{"prefix": "H"}]}}, {"detail": {"severity": "HIGH"}})


def forwarder_queue(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The queue the forwarder's event source mapping reads."""
    forwarder_id, _ = function_by_service(template, "eksight-securityhub-forwarder")
    mapping = only(
        [m for m in props(template, "AWS::Lambda::EventSourceMapping") if m["FunctionName"] == {"Ref": forwarder_id}]
    )
    queue_id = mapping["EventSourceArn"]["Fn::GetAtt"][0]
    return queue_id, template["Resources"][queue_id]["Properties"]


def detector_mapping(template: dict[str, Any]) -> dict[str, Any]:
    detector_id, _ = function_by_service(template, "eksight-detector")
    return only(
        [m for m in props(template, "AWS::Lambda::EventSourceMapping") if m["FunctionName"] == {"Ref": detector_id}]
    )


def test_high_and_critical_findings_reach_the_forwarder_and_lower_ones_do_not(minimal: dict[str, Any]) -> None:
    queue_id, _ = forwarder_queue(minimal)
    queue_arn = f"<{queue_id}.Arn>"
    reached = {severity.name: queue_arn in routed(minimal, finding_event(severity)) for severity in Severity}
    assert reached == {"INFORMATIONAL": False, "LOW": False, "MEDIUM": False, "HIGH": True, "CRITICAL": True}


def test_security_hubs_own_imported_events_never_match_any_rule(
    minimal: dict[str, Any], alerting: dict[str, Any]
) -> None:
    for template in (minimal, alerting):
        assert routed(template, SECURITY_HUB_IMPORTED) == set()
        for pattern, _ in rule_targets(template):
            assert pattern["source"] == ["io.github.eksight"]


def test_rules_and_archive_use_the_source_and_detail_type_the_detector_publishes(minimal: dict[str, Any]) -> None:
    event = finding_event(Severity.CRITICAL)
    archive = only(props(minimal, "AWS::Events::Archive"))
    assert matches(archive["EventPattern"], event)
    assert archive["RetentionDays"] == 90
    bus_id = only(list(resources(minimal, "AWS::Events::EventBus")))
    assert render(archive["SourceArn"]) == f"<{bus_id}.Arn>"
    for rule in props(minimal, "AWS::Events::Rule"):
        assert render(rule["EventBusName"]) == f"<{bus_id}>", "rules must listen on the findings bus"


def test_alerts_from_medium_and_every_finding_to_the_central_bus(alerting: dict[str, Any]) -> None:
    topic_id = only(list(resources(alerting, "AWS::SNS::Topic")))
    central = "arn:aws:events:us-east-1:999988887777:event-bus/security-findings"
    by_severity = {s.name: routed(alerting, finding_event(s)) for s in Severity}
    assert {s for s, arns in by_severity.items() if f"<{topic_id}>" in arns} == {"MEDIUM", "HIGH", "CRITICAL"}
    assert all(central in arns for arns in by_severity.values())


def test_alert_message_is_readable_text_built_from_the_finding(alerting: dict[str, Any]) -> None:
    ((_, target),) = [(p, t) for p, t in rule_targets(alerting) if "InputTransformer" in t]
    transformer = target["InputTransformer"]
    event = finding_event(Severity.HIGH)

    def lookup(path: str) -> Any:
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        return value

    values = {name: lookup(path) for name, path in transformer["InputPathsMap"].items()}
    text = transformer["InputTemplate"]
    for name, value in values.items():
        text = text.replace(f"<{name}>", str(value))
    lines = [json.loads(line) for line in text.splitlines()]  # each line is a JSON string
    message = "\n".join(lines)
    assert message.startswith("eksight HIGH finding in EKS cluster prod (account 111122223333, us-east-1)")
    assert "alice exec'd into kube-system/coredns" in message and "Principal: alice" in message
    assert "<" not in message, "every placeholder must be filled"


def test_central_bus_role_may_put_events_on_that_bus_only(alerting: dict[str, Any]) -> None:
    central = "arn:aws:events:us-east-1:999988887777:event-bus/security-findings"
    ((_, target),) = [(p, t) for p, t in rule_targets(alerting) if render(t["Arn"]) == central]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    trust = only(alerting["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    policy = only([p for p in props(alerting, "AWS::IAM::Policy") if {"Ref": role_id} in p["Roles"]])
    assert policy["PolicyDocument"]["Statement"] == [
        {"Action": "events:PutEvents", "Effect": "Allow", "Resource": central}
    ]
    assert "DeadLetterConfig" in target


def test_every_rule_target_has_an_encrypted_dead_letter_queue(alerting: dict[str, Any]) -> None:
    for _, target in rule_targets(alerting):
        queue_id = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        queue = alerting["Resources"][queue_id]["Properties"]
        assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue
        policy = only([p for p in props(alerting, "AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]])
        denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert {"Bool": {"aws:SecureTransport": "false"}} in [s["Condition"] for s in denies]


def test_severity_thresholds_are_explicit_lists() -> None:
    from stacks.constructs.findings_bus import severities_at_or_above

    assert severities_at_or_above("HIGH") == ["HIGH", "CRITICAL"]
    assert severities_at_or_above("INFORMATIONAL") == SEVERITIES
    assert list(config.SeverityName.__args__) == SEVERITIES  # type: ignore[attr-defined]


# --- SNS -------------------------------------------------------------------------------------------------


def test_alert_topic_is_kms_encrypted_tls_only_and_emails_subscribe(alerting: dict[str, Any]) -> None:
    topic_id, topic = only(list(resources(alerting, "AWS::SNS::Topic").items()))
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = alerting["Resources"][key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    policy = only(props(alerting, "AWS::SNS::TopicPolicy"))["PolicyDocument"]["Statement"]
    tls = only([s for s in policy if s["Effect"] == "Deny"])
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and tls["Principal"] == "*"
    # No service may publish unconditioned: alarms of this account only; the finding rule uses its own role.
    for statement in (s for s in policy if s["Effect"] == "Allow"):
        assert statement["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "111122223333"
    subscription = only(props(alerting, "AWS::SNS::Subscription"))
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "eks-security@example.com")
    assert subscription["TopicArn"] == {"Ref": topic_id}
    key_services = {s["Principal"].get("Service") for s in key["KeyPolicy"]["Statement"]}
    assert key_services == {None, "cloudwatch.amazonaws.com"}  # the account root, and alarms


def test_a_brought_topic_is_used_not_created(options: dict[str, Any]) -> None:
    topic = "arn:aws-us-gov:sns:us-gov-west-1:111122223333:sec-alerts"
    assert resources(options, "AWS::SNS::Topic") == {}
    # no topic key: the stack's only key is its findings key (bus, archive, queues, logs)
    assert [k["Description"] for k in props(options, "AWS::KMS::Key")] == [
        "eksight: findings bus, archive, forwarder queues and logs (acme-sec, us-gov-west-1)"
    ]
    ((pattern, target),) = rule_targets(options)
    assert target["Arn"] == topic
    assert pattern["detail"]["severity"] == ["CRITICAL"]
    assert options["Outputs"]["AlertTopicArn"]["Value"] == topic
    for alarm in props(options, "AWS::CloudWatch::Alarm"):
        assert alarm["AlarmActions"] == [topic]


def test_without_notifications_alarms_notify_nobody_and_there_is_no_topic(minimal: dict[str, Any]) -> None:
    assert resources(minimal, "AWS::SNS::Topic") == {}
    assert "AlertTopicArn" not in minimal["Outputs"]
    assert all("AlarmActions" not in alarm for alarm in props(minimal, "AWS::CloudWatch::Alarm"))


# --- least privilege ---------------------------------------------------------------------------------------


def test_detector_reads_only_audit_and_writes_only_quarantine(minimal: dict[str, Any]) -> None:
    _, detector = function_by_service(minimal, "eksight-detector")
    policy = role_statements(minimal, detector)
    bucket = "eksight-ingestion-us-east-1:ArchiveBucketArn"  # the imported archive bucket ARN, rendered
    delivery = f"{bucket}/audit/account=111122223333/region=us-east-1/cluster=prod/year=2026/x.gz"
    assert allowed(policy, "s3:GetObject", delivery) and allowed(policy, "s3:GetObjectVersion", delivery)
    assert allowed(policy, "s3:PutObject", f"{bucket}/quarantine/audit/x.gz/0.jsonl")
    for action, key in [
        ("s3:GetObject", "quarantine/x"),
        ("s3:GetObject", "delivery-errors/x"),
        ("s3:GetObject", "auditx/y"),
        ("s3:PutObject", "audit/x"),
        ("s3:PutObject", "x"),
        ("s3:GetObjectVersion", "quarantine/x"),
        ("s3:PutObject", "delivery-errors/x"),
        ("s3:DeleteObject", "audit/x"),
        ("s3:DeleteObject", "quarantine/x"),
        ("s3:PutObjectAcl", "quarantine/x"),
        ("s3:ListBucket", ""),
    ]:
        assert not allowed(policy, action, f"{bucket}/{key}".rstrip("/")), (action, key)
    s3_actions = {a for s in policy for a in as_list(s["Action"]) if a.startswith("s3:")}
    assert s3_actions == {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"}


def test_detector_writes_baselines_and_findings_only_to_its_own_table_and_bus(minimal: dict[str, Any]) -> None:
    _, detector = function_by_service(minimal, "eksight-detector")
    policy = role_statements(minimal, detector)
    table = f"<{only(list(resources(minimal, 'AWS::DynamoDB::Table')))}.Arn>"
    bus = f"<{only(list(resources(minimal, 'AWS::Events::EventBus')))}.Arn>"
    dynamodb = [s for s in policy if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))]
    assert {render(r) for s in dynamodb for r in as_list(s["Resource"])} == {table}
    assert {a for s in dynamodb for a in as_list(s["Action"])} == {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    }
    assert not allowed(policy, "dynamodb:Scan", table) and not allowed(policy, "dynamodb:DeleteTable", table)
    assert allowed(policy, "events:PutEvents", bus)
    assert not allowed(policy, "events:PutEvents", "arn:aws:events:us-east-1:111122223333:event-bus/default")
    events_resources = {
        render(r) for s in policy if "events:PutEvents" in as_list(s["Action"]) for r in as_list(s["Resource"])
    }
    assert events_resources == {bus}


def test_detector_uses_the_archive_key_only_through_s3_and_dynamodb(minimal: dict[str, Any]) -> None:
    _, detector = function_by_service(minimal, "eksight-detector")
    kms = [s for s in role_statements(minimal, detector) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert {render(s["Condition"]["StringEquals"]["kms:ViaService"]) for s in kms} == {
        "s3.us-east-1.<AWS::URLSuffix>",
        "dynamodb.us-east-1.<AWS::URLSuffix>",
    }
    assert {render(r) for s in kms for r in as_list(s["Resource"])} == {"eksight-ingestion-us-east-1:ArchiveKeyArn"}
    assert not any(a in ("kms:*", "kms:CreateGrant", "kms:ReEncrypt*") for s in kms for a in as_list(s["Action"]))


def test_only_xray_is_granted_on_every_resource(minimal: dict[str, Any], alerting: dict[str, Any]) -> None:
    for template in (minimal, alerting):
        for policy in props(template, "AWS::IAM::Policy"):
            for statement in policy["PolicyDocument"]["Statement"]:
                if "*" in as_list(statement["Resource"]):
                    assert set(as_list(statement["Action"])) == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}


def test_detector_consumes_only_the_ingestion_queue(minimal: dict[str, Any]) -> None:
    _, detector = function_by_service(minimal, "eksight-detector")
    sqs = [s for s in role_statements(minimal, detector) if any(a.startswith("sqs:") for a in as_list(s["Action"]))]
    assert {render(r) for s in sqs for r in as_list(s["Resource"])} == {
        "eksight-ingestion-us-east-1:NotificationQueueArn"
    }
    assert not any("sqs:SendMessage" in as_list(s["Action"]) for s in sqs)


def test_forwarder_imports_only_into_the_accounts_default_product(
    minimal: dict[str, Any], alerting: dict[str, Any]
) -> None:
    _, forwarder = function_by_service(minimal, "eksight-securityhub-forwarder")
    statements = role_statements(minimal, forwarder)
    hub = only([s for s in statements if "securityhub:BatchImportFindings" in as_list(s["Action"])])
    assert render(hub["Resource"]) == "arn:aws:securityhub:us-east-1:<AWS::AccountId>:product/<AWS::AccountId>/default"
    assert {a for s in statements for a in as_list(s["Action"]) if a.startswith("securityhub:")} == {
        "securityhub:BatchImportFindings"
    }
    _, forwarder = function_by_service(alerting, "eksight-securityhub-forwarder")  # account pinned in config
    assert (
        forwarder["Environment"]["Variables"]["SECURITYHUB_PRODUCT_ARN"]
        == "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default"
    )


def test_forwarder_reads_its_queue_in_batches_of_100_at_a_bounded_concurrency(minimal: dict[str, Any]) -> None:
    forwarder_id, forwarder = function_by_service(minimal, "eksight-securityhub-forwarder")
    mapping = only(
        [m for m in props(minimal, "AWS::Lambda::EventSourceMapping") if m["FunctionName"] == {"Ref": forwarder_id}]
    )
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (100, 5)
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    _, queue = forwarder_queue(minimal)
    assert queue["VisibilityTimeout"] >= 6 * (forwarder["Timeout"] + mapping["MaximumBatchingWindowInSeconds"])
    assert props(minimal, "AWS::Lambda::EventInvokeConfig") == []  # no asynchronous invocation any more


def test_forwarder_failures_end_in_its_kms_encrypted_dead_letter_queue(minimal: dict[str, Any]) -> None:
    queue_id, queue = forwarder_queue(minimal)
    dlq = queue["RedrivePolicy"]["deadLetterTargetArn"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    ((_, target),) = [(p, t) for p, t in rule_targets(minimal) if render(t["Arn"]) == f"<{queue_id}.Arn>"]
    assert target["DeadLetterConfig"]["Arn"] == dlq  # EventBridge could not deliver to the queue
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    key = {"Fn::GetAtt": [only([k for k in resources(minimal, "AWS::KMS::Key")]), "Arn"]}
    assert queue["KmsMasterKeyId"] == key
    assert minimal["Resources"][dlq["Fn::GetAtt"][0]]["Properties"]["KmsMasterKeyId"] == key


# --- table, function, queue ---------------------------------------------------------------------------------


def test_baseline_table_is_on_demand_recoverable_expiring_and_encrypted_with_the_archive_key(
    minimal: dict[str, Any],
) -> None:
    from eksight.adapters import dynamodb

    table = only(resources(minimal, "AWS::DynamoDB::Table"))
    p = table["Properties"]
    definition = dynamodb.table_definition("x")
    assert p["KeySchema"] == definition["KeySchema"] and p["AttributeDefinitions"] == definition["AttributeDefinitions"]
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert p["TimeToLiveSpecification"] == {"AttributeName": dynamodb.TTL_ATTRIBUTE, "Enabled": True}
    assert p["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Fn::ImportValue": "eksight-ingestion-us-east-1:ArchiveKeyArn"},
    }
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"
    assert "TableName" not in p


def test_the_brought_key_encrypts_the_table_when_the_region_brings_one(multi: dict[str, dict[str, Any]]) -> None:
    table = only(props(multi["eksight-detection-us-east-1"], "AWS::DynamoDB::Table"))
    assert (
        table["SSESpecification"]["KMSMasterKeyId"]
        == "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    )


def test_detector_function_settings_and_environment(minimal: dict[str, Any]) -> None:
    _, detector = function_by_service(minimal, "eksight-detector")
    assert (detector["Runtime"], detector["Architectures"], detector["Handler"]) == (
        "python3.12",
        ["x86_64"],
        "handler.handler",
    )
    assert (detector["MemorySize"], detector["Timeout"]) == (1024, 300)
    assert "ReservedConcurrentExecutions" not in detector
    assert detector["TracingConfig"] == {"Mode": "Active"}
    variables = {k: render(v) for k, v in detector["Environment"]["Variables"].items()}
    table = only(list(resources(minimal, "AWS::DynamoDB::Table")))
    bus = only(list(resources(minimal, "AWS::Events::EventBus")))
    assert variables == {
        "STATE_TABLE": f"<{table}>",
        "FINDINGS_BUS_NAME": f"<{bus}>",
        "ARCHIVE_BUCKET": "eksight-ingestion-us-east-1:ArchiveBucketName",
        "LEARNING_DAYS": "7",
        "POWERTOOLS_SERVICE_NAME": "eksight-detector",
        "POWERTOOLS_METRICS_NAMESPACE": "eksight",
        "EKSIGHT_DETECTION_CONFIG": DETECTION_CONFIG_FILE,
    }
    log_group = minimal["Resources"][detector["LoggingConfig"]["LogGroup"]["Ref"]]["Properties"]
    assert log_group["RetentionInDays"] == 30


def test_detector_reads_the_queue_in_small_batches_reporting_partial_failures(minimal: dict[str, Any]) -> None:
    mapping = detector_mapping(minimal)
    assert (mapping["BatchSize"], mapping["MaximumBatchingWindowInSeconds"]) == (5, 10)
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["EventSourceArn"] == {"Fn::ImportValue": "eksight-ingestion-us-east-1:NotificationQueueArn"}
    assert "ScalingConfig" not in mapping


def test_queue_visibility_timeout_is_at_least_six_times_the_function_timeout(
    minimal_pair: tuple[dict[str, Any], dict[str, Any]], options_templates: dict[str, dict[str, Any]]
) -> None:
    pairs = [
        minimal_pair,
        (only(stacks_of_kind(options_templates, "ingestion")), only(stacks_of_kind(options_templates, "detection"))),
    ]
    timeouts = []
    for ingestion, detection in pairs:
        queue = only(
            [q for n, q in resources(ingestion, "AWS::SQS::Queue").items() if n.startswith("NotificationsQueue")]
        )
        detector = only(
            [f for f in props(detection, "AWS::Lambda::Function") if "STATE_TABLE" in f["Environment"]["Variables"]]
        )
        window = detector_mapping(detection)["MaximumBatchingWindowInSeconds"]
        assert queue["Properties"]["VisibilityTimeout"] >= 6 * (detector["Timeout"] + window)
        timeouts.append((detector["Timeout"], queue["Properties"]["VisibilityTimeout"]))
    assert timeouts == [(300, 1860), (120, 780)]  # follows the configured timeout


def test_detector_options_are_applied(options: dict[str, Any]) -> None:
    _, detector = function_by_service(options, "eksight-detector")
    assert (detector["MemorySize"], detector["Timeout"], detector["ReservedConcurrentExecutions"]) == (2048, 120, 4)
    assert detector["Environment"]["Variables"]["LEARNING_DAYS"] == "14"
    # The poller stops at the reserved concurrency instead of being throttled into the dead-letter queue.
    assert detector_mapping(options)["ScalingConfig"] == {"MaximumConcurrency": 4}
    assert only(props(options, "AWS::Events::Archive"))["RetentionDays"] == 30


def test_security_hub_can_be_turned_off(options: dict[str, Any]) -> None:
    services = {
        f["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] for f in props(options, "AWS::Lambda::Function")
    }
    assert services == {"eksight-detector"}
    assert "SecurityHubForwarderName" not in options["Outputs"]
    assert "securityhub" not in json.dumps(props(options, "AWS::IAM::Policy"))


def test_govcloud_stack_has_no_commercial_partition_arn(options: dict[str, Any]) -> None:
    text = json.dumps(options)
    assert "arn:aws:" not in text and "arn:aws-us-gov:" in text


def test_config_tags_reach_the_detection_resources(options: dict[str, Any]) -> None:
    taggable = {
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
        "AWS::Lambda::Function",
        "AWS::Logs::LogGroup",
        "AWS::Events::EventBus",
        "AWS::Events::Rule",
    }
    checked = 0
    for name, resource in options["Resources"].items():
        if resource["Type"] in taggable:
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            assert (tags.get("team"), tags.get("eksight:component")) == ("platform", "detection"), name
            checked += 1
    assert checked >= 6


# --- alarms and dashboard -----------------------------------------------------------------------------------


def test_alarms_watch_every_dead_letter_queue_errors_throttles_and_queue_age(alerting: dict[str, Any]) -> None:
    alarms = props(alerting, "AWS::CloudWatch::Alarm")
    topic = {"Ref": only(list(resources(alerting, "AWS::SNS::Topic")))}

    def watching(metric: str, queue_or_function: str) -> dict[str, Any]:
        return only(
            [a for a in alarms if a["MetricName"] == metric and queue_or_function in json.dumps(a["Dimensions"])]
        )

    dlq_ids = {t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for _, t in rule_targets(alerting)}
    watched = ["eksight-ingestion-eu-west-1:DeadLetterQueueArn", *dlq_ids]
    assert len(watched) == 3
    for queue in watched:
        alarm = watching("ApproximateNumberOfMessagesVisible", queue)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    detector_id, _ = function_by_service(alerting, "eksight-detector")
    forwarder_id, _ = function_by_service(alerting, "eksight-securityhub-forwarder")
    assert watching("Errors", detector_id)["Threshold"] == 0
    assert watching("Throttles", detector_id)["Threshold"] == 0
    assert watching("Errors", forwarder_id)["Threshold"] == 0
    # Objects that fail inside a batch are partial batch failures, not Lambda errors: their own alarm, on the
    # metric the handler really emits.
    failed = only([a for a in alarms if a["MetricName"] == "ObjectsFailed"])
    assert (failed["Namespace"], failed["Threshold"], failed["Statistic"]) == ("eksight", 0, "Sum")
    assert 'name="ObjectsFailed"' in (lambda_package.LAMBDAS_ROOT / "detector" / "composition.py").read_text()
    age = watching("ApproximateAgeOfOldestMessage", "eksight-ingestion-eu-west-1:NotificationQueueArn")
    assert (age["Threshold"], age["Statistic"]) == (900, "Maximum")
    for alarm in alarms:
        assert alarm["AlarmActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_dashboard_shows_the_detectors_powertools_metrics(minimal: dict[str, Any]) -> None:
    def queue_names_as_text(value: Any) -> Any:  # the imported queues' names are Fn::Select of their ARN
        if isinstance(value, dict) and "Fn::Select" in value:
            return "queue-name"
        if isinstance(value, dict):
            return {k: queue_names_as_text(v) for k, v in value.items()}
        return [queue_names_as_text(v) for v in value] if isinstance(value, list) else value

    body = render(queue_names_as_text(only(props(minimal, "AWS::CloudWatch::Dashboard"))["DashboardBody"]))
    widgets = json.loads(body.replace("<AWS::Region>", "us-east-1"))["widgets"]
    metrics = [m for w in widgets for m in w["properties"].get("metrics", [])]
    eksight = {m[1] for m in metrics if m[0] == "eksight"}
    assert eksight == set(DETECTOR_METRICS)
    assert all(m[2:4] == ["service", "eksight-detector"] for m in metrics if m[0] == "eksight")
    assert set(FINDINGS_METRICS) == set(SEVERITIES)
    assert {m[1] for m in metrics if m[0] == "AWS/Lambda"} >= {"Duration", "Errors", "Invocations", "Throttles"}


def test_dashboard_metrics_are_the_metrics_the_detector_emits() -> None:
    source = (lambda_package.LAMBDAS_ROOT / "detector" / "composition.py").read_text()
    emitted = set(re.findall(r'add_metric\(name="(\w+)"', source))
    assert 'add_metric(name=f"Findings{severity.title()}"' in source  # one per severity: FINDINGS_METRICS
    assert "ObjectsOverTime" in emitted
    assert emitted | set(FINDINGS_METRICS.values()) == set(DETECTOR_METRICS)
    assert len(DETECTOR_METRICS) == len(set(DETECTOR_METRICS))


def test_glue_findings_table_has_the_query_librarys_columns(minimal: dict[str, Any]) -> None:
    tables = {t["TableInput"]["Name"]: t["TableInput"] for t in props(minimal, "AWS::Glue::Table")}
    columns = [(c["Name"], c["Type"]) for c in tables["findings"]["StorageDescriptor"]["Columns"]]
    assert ("suppressed_by", "string") in columns
    assert columns == [(name, hive) for name, hive, _duckdb in FINDINGS_COLUMNS]


def test_outputs_have_stable_names(minimal: dict[str, Any], alerting: dict[str, Any]) -> None:
    common = {
        "FindingsBusName",
        "FindingsBusArn",
        "StateTableName",
        "DetectorFunctionName",
        "DashboardName",
        "AthenaWorkGroupName",
        "GlueDatabaseName",
        "SecurityHubForwarderName",
    }
    common |= {"SecurityHubQueueUrl", "SecurityHubDeadLetterQueueUrl"}
    assert set(minimal["Outputs"]) == common
    assert set(alerting["Outputs"]) == common | {"AlertTopicArn"}


def test_ingestion_exports_what_detection_imports_under_fixed_names(
    minimal_pair: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    ingestion, detection = minimal_pair
    exports = {o["Export"]["Name"] for o in ingestion["Outputs"].values() if "Export" in o}
    imports = set()

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            if "Fn::ImportValue" in value:
                imports.add(value["Fn::ImportValue"])
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(detection["Resources"])
    assert (
        imports
        == exports
        == {
            f"eksight-ingestion-us-east-1:{name}"
            for name in (
                "ArchiveBucketArn",
                "ArchiveBucketName",
                "ArchiveKeyArn",
                "NotificationQueueArn",
                "DeadLetterQueueArn",
            )
        }
    )


# --- the Lambda asset ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def detector_asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The detector's asset, bundled exactly as at synth, around a stub handler (the real one is not ours)."""
    handlers = tmp_path_factory.mktemp("lambdas")
    (handlers / "detector").mkdir()
    (handlers / "detector" / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    (handlers / "detector" / "__pycache__").mkdir()
    (handlers / "detector" / "__pycache__" / "handler.cpython-312.pyc").write_bytes(b"stale")
    detection = config.parse({"detection": {"learning_days": 3}, "regions": {"us-east-1": {"clusters": ["a"]}}})
    package = LambdaPackage(
        "detector",
        handlers_root=handlers,
        extra_files={DETECTION_CONFIG_FILE: detection_config_json(detection.file.detection)},
    )
    out = tmp_path_factory.mktemp("asset")
    package.bundle(out)
    return out


def test_asset_holds_handler_eksight_and_python312_x86_64_dependencies(detector_asset: Path) -> None:
    names = {p.relative_to(detector_asset).as_posix() for p in detector_asset.rglob("*")}
    assert {
        "handler.py",
        "eksight/__init__.py",
        "eksight/core/findings.py",
        "eksight/core/finding_formats.py",
        "eksight/adapters/dynamodb.py",
        "msgspec/__init__.py",
        "numpy/__init__.py",
        "aws_lambda_powertools/__init__.py",
        "aws_xray_sdk/__init__.py",
        "boto3/__init__.py",
        "pydantic/__init__.py",
        "pydantic_core/__init__.py",
        DETECTION_CONFIG_FILE,
    } <= names  # pydantic: shipped with eksight.core (the handler reads detection.json without it)
    # Binary wheels built for the Lambda runtime, not for the machine that synthesized.
    assert any(n.startswith("numpy/_core/_multiarray_umath.cpython-312-x86_64-linux-gnu") for n in names)
    assert any(n.startswith("msgspec/_core.cpython-312-x86_64-linux-gnu") for n in names)
    assert json.loads((detector_asset / DETECTION_CONFIG_FILE).read_text())["learning_days"] == 3


def test_asset_ships_only_the_core_and_the_adapters_of_eksight(detector_asset: Path) -> None:
    names = {p.relative_to(detector_asset).as_posix() for p in detector_asset.rglob("*")}
    shipped = {n.split("/")[1] for n in names if n.startswith("eksight/") and "__pycache__" not in n}
    assert shipped == {"__init__.py", "core", "adapters"}, shipped  # no tools (CLI, wizard, emulator), no config
    assert not [n for n in names if n.startswith(("tests/", "bin/", "stacks/", "eksight/tools", "eksight/config"))]
    assert not [n for n in names if n.endswith(".pyc") and not n.endswith(f".{RUNTIME_CACHE_TAG}.pyc")]
    assert not [n for n in names if n.startswith("numpy/") and "/tests/" in n]


# Counts the modules an import compiles from source (none when every module has its pyc).
COUNT_COMPILED = """
import importlib._bootstrap_external as external
compiled = []
original = external.SourceLoader.source_to_code
def source_to_code(self, data, path, *, _optimize=-1):
    compiled.append(path)
    return original(self, data, path, _optimize=_optimize)
external.SourceLoader.source_to_code = source_to_code
import handler, eksight.core.findings, boto3, aws_lambda_powertools.utilities.batch, msgspec
print(eksight.core.findings.to_json_line.__code__.co_filename)  # what a traceback shows
print(len(compiled), *compiled[:5])
"""


def test_asset_ships_the_runtimes_bytecode_for_every_module(detector_asset: Path) -> None:
    """Lambda's code directory is read-only: a module without its cpython-312 pyc is compiled at every cold start."""
    python = runtime_python()
    if python is None:
        pytest.skip("no python3.12 to compile with here (set EKSIGHT_LAMBDA_PYTHON)")
    sources = set(detector_asset.rglob("*.py"))
    assert set(detector_asset.rglob("*.pyc")) == {
        source.parent / "__pycache__" / f"{source.stem}.{RUNTIME_CACHE_TAG}.pyc" for source in sources
    }
    assert (detector_asset / "__pycache__" / f"handler.{RUNTIME_CACHE_TAG}.pyc").read_bytes() != b"stale"
    run = subprocess.run(
        [python, "-B", "-c", COUNT_COMPILED],
        cwd=detector_asset,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(detector_asset), "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    shown, compiled = run.stdout.splitlines()[-2:]
    assert compiled == "0"
    assert shown == str(detector_asset / "eksight" / "core" / "findings.py")  # tracebacks show the source


def test_asset_is_well_under_lambdas_250_mb_limit(detector_asset: Path) -> None:
    size_mb = asset_size(detector_asset) / 1e6
    print(f"\ndetector asset, unzipped: {size_mb:.1f} MB")
    assert size_mb < 125


def test_forwarder_asset_leaves_out_numpy_which_its_imports_do_not_need(tmp_path: Path) -> None:
    (tmp_path / "securityhub_forwarder").mkdir()
    (tmp_path / "securityhub_forwarder" / "handler.py").write_text("")
    out = tmp_path / "asset"
    LambdaPackage("securityhub_forwarder", without=NOT_IMPORTED, handlers_root=tmp_path).bundle(out)
    tops = {p.name for p in out.iterdir()}
    assert not {t for t in tops if t.lower().startswith("numpy")}
    assert {"msgspec", "aws_lambda_powertools", "boto3", "eksight"} <= tops
    assert asset_size(out) / 1e6 < 50
    # ...and what the forwarder imports really works without numpy (the real handler, when it exists).
    handler = lambda_package.LAMBDAS_ROOT / "securityhub_forwarder" / "handler.py"
    modules = ["eksight.core.finding_formats", "eksight.adapters.securityhub", "eksight.adapters.eventbridge"]
    code = (
        "import sys; sys.modules['numpy'] = None\n"
        + "".join(f"import {m}\n" for m in modules)
        + (
            f"import importlib.util as u; s = u.spec_from_file_location('h', {str(handler)!r}); "
            "m = sys.modules['h'] = u.module_from_spec(s); s.loader.exec_module(m)\n"
            if handler.exists()
            else ""
        )
    )
    env = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(lambda_package.PROJECT_ROOT),
    }
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]


def test_leaving_out_an_unknown_distribution_is_an_error() -> None:
    with pytest.raises(LambdaPackageError, match="pandas is not among the vendored"):
        list(LambdaPackage("securityhub_forwarder", without=["pandas"]).files())


def test_asset_hash_follows_the_content(tmp_path: Path) -> None:
    (tmp_path / "detector").mkdir()
    handler = tmp_path / "detector" / "handler.py"
    handler.write_text("def handler(event, context): pass\n")
    package = LambdaPackage("detector", handlers_root=tmp_path, extra_files={"detection.json": "{}"})
    first = package.fingerprint()
    assert package.fingerprint() == first  # deterministic
    assert (
        LambdaPackage("detector", handlers_root=tmp_path, extra_files={"detection.json": "{ }"}).fingerprint() != first
    )
    handler.write_text("def handler(event, context): return 1\n")
    assert package.fingerprint() != first


def test_missing_dependencies_or_handler_fail_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "detector").mkdir()
    (tmp_path / "detector" / "handler.py").write_text("")
    with pytest.raises(LambdaPackageError, match="run make install"):
        LambdaPackage("detector", handlers_root=tmp_path, deps_dir=tmp_path / "no-deps").code()
    with pytest.raises(LambdaPackageError, match=r"nothing/handler\.py is missing"):
        LambdaPackage("nothing", handlers_root=tmp_path).code()
    assert lambda_package.DEPS_DIR.name == "lambda-deps"


# --- config errors ------------------------------------------------------------------------------------------


def region_with(**options: Any) -> dict[str, Any]:
    return {"account": "111122223333", "regions": {"us-east-1": {"clusters": ["prod"], **options}}}


@pytest.mark.parametrize(
    ("raw", "path", "words"),
    [
        (
            region_with(findings={"central_bus_arn": "arn:aws:events:us-east-1:111122223333:rule/x"}),
            "regions.us-east-1.findings.central_bus_arn",
            ["malformed EventBridge bus ARN", "event-bus/BUS_NAME"],
        ),
        (
            region_with(findings={"central_bus_arn": "arn:aws-cn:events:cn-north-1:111122223333:event-bus/x"}),
            "regions.us-east-1.findings.central_bus_arn",
            ["partition aws-cn", "arn:aws:events:"],
        ),
        (
            region_with(findings={"central_bus_arn": "arn:aws:events:cn-north-1:111122223333:event-bus/x"}),
            "regions.us-east-1.findings.central_bus_arn",
            ["not in partition aws"],
        ),
        (
            region_with(findings={"notifications": {"email": ["security@example.com", "oncall at example.com"]}}),
            "regions.us-east-1.findings.notifications.email",
            ["'oncall at example.com' is not an email address"],
        ),
        (
            region_with(findings={"notifications": {"email": ["a@example.com", "a@example.com"]}}),
            "regions.us-east-1.findings.notifications.email",
            ["duplicate address a@example.com"],
        ),
        (
            region_with(findings={"securityhub": {"min_severity": "SEVERE"}}),
            "regions.us-east-1.findings.securityhub.min_severity",
            ["must be one of", "'CRITICAL'", "Fix"],
        ),
        (
            region_with(findings={"notifications": {"min_severity": "high"}}),
            "regions.us-east-1.findings.notifications.min_severity",
            ["must be one of", "'HIGH'"],
        ),
        (
            region_with(findings={"notifications": {"sns_topic_arn": "arn:aws:sns:eu-west-1:111122223333:alerts"}}),
            "regions.us-east-1.findings.notifications.sns_topic_arn",
            ["topic is in eu-west-1", "use a topic in us-east-1"],
        ),
        (
            region_with(findings={"notifications": {"sns_topic_arn": "arn:aws:sns:us-east-1:444455556666:alerts"}}),
            "regions.us-east-1.findings.notifications.sns_topic_arn",
            ["account 444455556666", "central_bus_arn"],
        ),
        (
            region_with(
                findings={
                    "notifications": {
                        "email": ["a@example.com"],
                        "sns_topic_arn": "arn:aws:sns:us-east-1:111122223333:alerts",
                    }
                }
            ),
            "regions.us-east-1.findings.notifications",
            ["remove email", "or remove sns_topic_arn"],
        ),
        (region_with(detector={"timeout_seconds": 901}), "regions.us-east-1.detector.timeout_seconds", ["≤ 900"]),
        (region_with(detector={"memory_mb": 128}), "regions.us-east-1.detector.memory_mb", ["≥ 512"]),
        (
            region_with(detector={"reserved_concurrency": 1}),
            "regions.us-east-1.detector.reserved_concurrency",
            ["below 2", "dead-letter queue", "use 2 or more"],
        ),
        (
            region_with(findings={"archive_retention_days": 0}),
            "regions.us-east-1.findings.archive_retention_days",
            ["≥ 1"],
        ),
        ({**region_with(), "detection": {"learning_days": 91}}, "detection.learning_days", ["≤ 90"]),
        (
            region_with(findings={"securityhub": {"enable": False}}),
            "regions.us-east-1.findings.securityhub.enable",
            ["Did you mean 'enabled'?"],
        ),
    ],
)
def test_findings_config_errors_name_the_field_and_the_fix(raw: dict[str, Any], path: str, words: list[str]) -> None:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(raw)
    messages = dict(caught.value.problems)
    assert path in messages, caught.value.problems
    assert "Fix" in messages[path]
    for word in words:
        assert word in messages[path], messages[path]


def test_findings_defaults_apply_to_every_region_and_a_region_may_override() -> None:
    deployment = config.parse(
        {
            "defaults": {"findings": {"notifications": {"email": ["sec@example.com"]}}},
            "regions": {
                "us-east-1": {"clusters": ["a"]},
                "eu-west-1": {"clusters": ["b"], "findings": {"notifications": {"min_severity": "LOW"}}},
            },
        }
    )
    by_region = {r.region: r for r in deployment.regions}
    assert by_region["us-east-1"].findings.notifications.email == ["sec@example.com"]
    assert by_region["eu-west-1"].findings.notifications.email == ["sec@example.com"]
    assert by_region["eu-west-1"].findings.notifications.min_severity == "LOW"
    assert by_region["us-east-1"].detection_stack_name == "eksight-detection-us-east-1"
    assert by_region["us-east-1"].detection.learning_days == 7


def test_options_config_is_what_the_options_stack_was_built_from() -> None:
    # Guards the shared config against edits that would quietly stop exercising an option.
    region = config.parse(OPTIONS_CONFIG).regions[0]
    assert not region.findings.securityhub.enabled and region.findings.notifications.sns_topic_arn
    assert region.detector.reserved_concurrency == 4


def test_detector_may_read_exactly_the_configured_network_lists_object(
    options: dict[str, Any], minimal: dict[str, Any]
) -> None:
    _, detector = function_by_service(options, "eksight-detector")
    policy = role_statements(options, detector)
    grants = [s for s in policy if s.get("Sid") == "ReadNetworkLists"]
    intel = render(only(grants)["Resource"]).rsplit(":::", 1)[0] + ":::acme-threat-intel"
    assert allowed(policy, "s3:GetObject", f"{intel}/eksight/networks.json")
    for action, key in [
        ("s3:GetObject", "eksight/networks.json.bak"),
        ("s3:GetObject", "eksight/other.json"),
        ("s3:GetObjectVersion", "eksight/networks.json"),
        ("s3:PutObject", "eksight/networks.json"),
    ]:
        assert not allowed(policy, action, f"{intel}/{key}"), (action, key)
    assert not allowed(policy, "s3:ListBucket", intel)
    _, plain = function_by_service(minimal, "eksight-detector")
    assert not [s for s in role_statements(minimal, plain) if s.get("Sid") == "ReadNetworkLists"]
