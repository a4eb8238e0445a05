"""The attacker's-review fixes, on the synthesized templates: who may publish findings, who may write or destroy
archive objects, confused-deputy conditions, keys, retention and protection, and the generated cdk-nag table.

(EventBridge bus policies and S3 bucket policies are not evaluated by moto, so they are checked here as policy
documents; the forwarder's own account/region check is exercised in tests/lambdas/test_securityhub_forwarder.py.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stacks import nag_report
from tests.infrastructure.shared import Synth, only, props, render, resources, stacks_of_kind

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def minimal(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth(EXAMPLES / "minimal.json")


@pytest.fixture(scope="module")
def multi(synth: Synth) -> dict[str, dict[str, Any]]:
    return synth(EXAMPLES / "multi-region.json")


def detection(templates: dict[str, dict[str, Any]], region: str = "us-east-1") -> dict[str, Any]:
    return only([t for name, t in stacks_of_kind(templates, "detection").items() if name.endswith(f"-{region}")])


def ingestion(templates: dict[str, dict[str, Any]], region: str = "us-east-1") -> dict[str, Any]:
    return only([t for name, t in stacks_of_kind(templates, "ingestion").items() if name.endswith(f"-{region}")])


def findings_key_id(template: dict[str, Any]) -> str:
    return only([k for k, r in resources(template, "AWS::KMS::Key").items() if k.startswith("FindingsKey")])


# --- 1. forged findings ---------------------------------------------------------------------------------------


def test_only_the_detector_role_may_put_events_on_the_findings_bus(minimal: dict[str, dict[str, Any]]) -> None:
    template = detection(minimal)
    policy = only(props(template, "AWS::Events::EventBusPolicy"))
    bus_id = only(list(resources(template, "AWS::Events::EventBus")))
    assert policy["EventBusName"] == {"Ref": bus_id}
    statement = policy["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == (
        "Deny",
        {"AWS": "*"},
        "events:PutEvents",
    )
    detector_role = {
        "Fn::GetAtt": [
            r["Properties"]["Role"]["Fn::GetAtt"][0]
            for r in resources(template, "AWS::Lambda::Function").values()
            if r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "eksight-detector"
        ]
        + ["Arn"]
    }
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": detector_role}}
    role = template["Resources"][detector_role["Fn::GetAtt"][0]]["Properties"]
    assert "RoleName" not in role  # no physical name: the archive bucket policy singles it out by its tags
    assert {"Key": "eksight:role", "Value": "detector"} in role["Tags"]
    assert {"Key": "eksight:deployment", "Value": "eksight-us-east-1"} in role["Tags"]


def test_no_role_has_a_physical_name(minimal: dict[str, dict[str, Any]], multi: dict[str, dict[str, Any]]) -> None:
    templates = {**minimal, **multi}
    roles = [r["Properties"] for t in templates.values() for r in resources(t, "AWS::IAM::Role").values()]
    assert roles and all("RoleName" not in role for role in roles)


def test_every_rule_on_the_bus_matches_only_the_detectors_source_and_detail_type(
    multi: dict[str, dict[str, Any]],
) -> None:
    template = detection(multi, "eu-west-1")
    rules = props(template, "AWS::Events::Rule")
    assert len(rules) == 3  # Security Hub, alerts, central bus
    for rule in rules:
        assert rule["EventPattern"]["source"] == ["io.github.eksight"]
        assert rule["EventPattern"]["detail-type"] == ["eksight Finding"]


def test_bus_and_archive_use_the_findings_key_which_eventbridge_may_use_for_this_account_only(
    minimal: dict[str, dict[str, Any]],
) -> None:
    template = detection(minimal)
    key_id = findings_key_id(template)
    key_arn = {"Fn::GetAtt": [key_id, "Arn"]}
    assert only(props(template, "AWS::Events::EventBus"))["KmsKeyIdentifier"] == key_arn
    assert only(props(template, "AWS::Events::Archive"))["KmsKeyIdentifier"] == key_arn
    key = template["Resources"][key_id]
    assert key["DeletionPolicy"] == "Retain" and key["Properties"]["EnableKeyRotation"] is True
    [events] = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s.get("Sid") == "EventBridgeOfThisAccount"]
    assert events["Principal"] == {"Service": "events.amazonaws.com"}
    assert events["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    assert "kms:Decrypt" in events["Action"] and "kms:GenerateDataKey" in events["Action"]


def test_events_roles_can_only_be_assumed_by_rules_of_this_bus_in_this_account(
    multi: dict[str, dict[str, Any]],
) -> None:
    template = detection(multi, "eu-west-1")
    roles = {
        name: r["Properties"]
        for name, r in resources(template, "AWS::IAM::Role").items()
        if "events.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    }
    assert len(roles) == 2  # alert topic, central bus
    bus_id = only(list(resources(template, "AWS::Events::EventBus")))
    for role in roles.values():
        trust = only(role["AssumeRolePolicyDocument"]["Statement"])
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "111122223333"}
        assert (
            render(trust["Condition"]["ArnLike"]["aws:SourceArn"])
            == f"arn:aws:events:eu-west-1:111122223333:rule/<{bus_id}>/*"
        )
    # the central bus policy admits the forwarding role by its tags (docs/findings.md), the alert role has none
    central = only([r for r in roles.values() if {"Key": "eksight:role", "Value": "findings-to-central"} in r["Tags"]])
    assert {"Key": "eksight:deployment", "Value": "eksight-eu-west-1"} in central["Tags"]
    assert "RoleName" not in central


# --- 2. archive integrity ---------------------------------------------------------------------------------------


def archive_policy(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    bucket_id = only([k for k in resources(template, "AWS::S3::Bucket") if k.startswith("ArchiveBucket")])
    policy = only([p for p in props(template, "AWS::S3::BucketPolicy") if p["Bucket"] == {"Ref": bucket_id}])
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"] if "Sid" in s}


def test_archive_writes_are_reserved_to_firehose_and_the_detector_per_prefix(
    minimal: dict[str, dict[str, Any]],
) -> None:
    template = ingestion(minimal)
    statements = archive_policy(template)
    firehose_role = only([k for k in resources(template, "AWS::IAM::Role") if k.startswith("DeliveryRole")])

    deliveries = statements["DeliveriesOnlyByFirehose"]
    assert (deliveries["Effect"], deliveries["Action"]) == ("Deny", "s3:PutObject")
    assert sorted(render(r).rsplit("/", 1)[0].split(">")[-1] for r in deliveries["Resource"]) == [
        "/audit",
        "/delivery-errors",
    ]
    assert deliveries["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [{"Fn::GetAtt": [firehose_role, "Arn"]}]}}

    # The detector role of this deployment and account, by its tags: one Deny per key, so differing in any one
    # key is denied (the conditions of one statement must all hold for it to apply).
    detector = {
        sid: statement for sid, statement in statements.items() if sid.startswith("DetectorOutputOnlyByTheDetector")
    }
    for statement in detector.values():
        assert (statement["Effect"], statement["Action"]) == ("Deny", "s3:PutObject")
        assert sorted(render(r).split(">")[-1] for r in statement["Resource"]) == ["/findings/*", "/quarantine/*"]
    assert {sid: statement["Condition"] for sid, statement in detector.items()} == {
        "DetectorOutputOnlyByTheDetector": {"StringNotEquals": {"aws:PrincipalTag/eksight:role": "detector"}},
        "DetectorOutputOnlyByTheDetectorOfThisDeployment": {
            "StringNotEquals": {"aws:PrincipalTag/eksight:deployment": "eksight-us-east-1"}
        },
        "DetectorOutputOnlyByTheDetectorOfThisAccount": {
            "StringNotEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}
        },
    }

    elsewhere = statements["NoWritesOutsideTheLayout"]
    assert "Condition" not in elsewhere  # nobody writes outside the layout
    assert sorted(render(r).split(">")[-1] for r in elsewhere["NotResource"]) == [
        "/athena-results/*",
        "/audit/*",
        "/delivery-errors/*",
        "/findings/*",
        "/quarantine/*",
    ]


def test_deleting_evidence_and_loosening_the_bucket_are_denied_but_to_break_glass_and_cloudformation(
    minimal: dict[str, dict[str, Any]],
) -> None:
    tampering = archive_policy(ingestion(minimal))["NoTamperingButBreakGlass"]
    assert tampering["Effect"] == "Deny"
    assert {
        "s3:DeleteObject",
        "s3:DeleteObjectVersion",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:PutObjectRetention",
        "s3:BypassGovernanceRetention",
    } <= set(tampering["Action"])
    assert [render(p) for p in tampering["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]] == [
        "arn:aws:iam::<AWS::AccountId>:root",
        "arn:aws:iam::<AWS::AccountId>:role/cdk-hnb659fds-cfn-exec-role-<AWS::AccountId>-us-east-1",
    ]


def test_break_glass_principal_and_object_lock_are_configurable(synth: Synth, tmp_path: Path) -> None:
    config = json.loads((EXAMPLES / "minimal.json").read_text())
    break_glass = "arn:aws:iam::111122223333:role/security-break-glass"
    config["regions"]["us-east-1"]["archive"] = {"break_glass_principal_arn": break_glass, "object_lock_days": 30}
    path = tmp_path / "locked.json"
    path.write_text(json.dumps(config))
    template = ingestion(synth(path))
    tampering = archive_policy(template)["NoTamperingButBreakGlass"]
    assert tampering["Condition"]["ArnNotEquals"]["aws:PrincipalArn"][0] == break_glass
    bucket = only(
        [r["Properties"] for k, r in resources(template, "AWS::S3::Bucket").items() if k.startswith("ArchiveBucket")]
    )
    assert bucket["ObjectLockEnabled"] is True
    assert bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": 30}


def test_a_brought_bucket_gets_no_policy_from_eksight(synth: Synth, tmp_path: Path) -> None:
    config = json.loads((EXAMPLES / "minimal.json").read_text())
    config["regions"]["us-east-1"]["archive"] = {"existing_bucket_arn": "arn:aws:s3:::their-audit-archive"}
    path = tmp_path / "brought.json"
    path.write_text(json.dumps(config))
    template = ingestion(synth(path))
    assert resources(template, "AWS::S3::BucketPolicy") == {}


# --- 4. smaller items -----------------------------------------------------------------------------------------


def test_s3_may_notify_the_queue_only_for_buckets_of_this_account(minimal: dict[str, dict[str, Any]]) -> None:
    template = ingestion(minimal)
    queue_id = only([k for k in resources(template, "AWS::SQS::Queue") if k.startswith("NotificationsQueue")])
    policy = only([p for p in props(template, "AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]])
    deny = only([s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "OnlyThisAccountsBuckets"])
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == (
        "Deny",
        {"Service": "s3.amazonaws.com"},
        "sqs:SendMessage",
    )
    assert deny["Condition"] == {"StringNotEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_function_logs_are_retained_and_encrypted_with_the_findings_key(minimal: dict[str, dict[str, Any]]) -> None:
    template = detection(minimal)
    key_arn = {"Fn::GetAtt": [findings_key_id(template), "Arn"]}
    log_groups = resources(template, "AWS::Logs::LogGroup")
    assert len(log_groups) == 2  # detector, forwarder
    for log_group in log_groups.values():
        assert (log_group["DeletionPolicy"], log_group["UpdateReplacePolicy"]) == ("Retain", "Retain")
        assert log_group["Properties"]["KmsKeyId"] == key_arn
        assert log_group["Properties"]["RetentionInDays"] == 30
    [logs] = [
        s
        for s in template["Resources"][findings_key_id(template)]["Properties"]["KeyPolicy"]["Statement"]
        if "logs." in json.dumps(s["Principal"])
    ]
    # generated log group names start with the stack name: the key serves this stack's log groups only
    assert render(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]) == (
        "arn:aws:logs:us-east-1:<AWS::AccountId>:log-group:eksight-detection-us-east-1-*"
    )


def test_state_table_is_protected_from_deletion(minimal: dict[str, dict[str, Any]]) -> None:
    table = only(list(resources(detection(minimal), "AWS::DynamoDB::Table").values()))
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"


def test_security_md_acknowledgement_table_matches_the_templates() -> None:
    """docs/security.md's table is generated (`make docs`); it must not drift from what the stacks acknowledge."""
    document = (DOCS / "security.md").read_text()
    start, end = document.index(nag_report.BEGIN), document.index(nag_report.END) + len(nag_report.END)
    assert document[start:end] == nag_report.report(), "docs/security.md is stale: run `make docs`"


@pytest.mark.parametrize(
    ("archive", "words"),
    [
        ({"object_lock_days": 30, "versioning": False}, ["object_lock_days needs versioning", "versioning to true"]),
        ({"break_glass_principal_arn": "arn:aws:iam::111122223333:group/admins"}, ["malformed IAM principal ARN"]),
    ],
)
def test_archive_hardening_options_are_validated(archive: dict[str, Any], words: list[str]) -> None:
    from pydantic import ValidationError

    from eksight.config import ArchiveOptions

    with pytest.raises(ValidationError) as raised:
        ArchiveOptions(**archive)
    for word in words:
        assert word in str(raised.value)


def test_audit_logging_enabler_logs_are_retained_and_encrypted_with_the_archive_key(
    multi: dict[str, dict[str, Any]],
) -> None:
    template = ingestion(multi, "eu-west-1")  # enable_audit_logging, key created by eksight
    key_id = only(list(resources(template, "AWS::KMS::Key")))
    log_groups = {k: r for k, r in resources(template, "AWS::Logs::LogGroup").items() if k.startswith("AuditLogging")}
    assert len(log_groups) == 4  # OnEvent, IsComplete, the Provider framework, its waiter state machine
    for log_group in log_groups.values():
        assert log_group["DeletionPolicy"] == "Retain"
        assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
