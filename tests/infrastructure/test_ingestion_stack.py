"""The synthesized ingestion stacks have the properties that matter (not just resource counts)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from eksight.config.filter_pattern import DEFAULT_FILTER_PATTERN
from eksight.core import archive_layout
from tests.infrastructure.shared import as_list, only, props, render, resources, stacks_of_kind, statements

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
Synth = Callable[[Any], dict[str, dict[str, Any]]]


def ingestion(templates: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return stacks_of_kind(templates, "ingestion")


@pytest.fixture(scope="module")
def minimal(synth: Synth) -> dict[str, Any]:
    return only(ingestion(synth(EXAMPLES / "minimal.json")))


@pytest.fixture(scope="module")
def multi(synth: Synth) -> dict[str, dict[str, Any]]:
    return ingestion(synth(EXAMPLES / "multi-region.json"))


@pytest.fixture(scope="module")
def options_stack(options_templates: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return only(ingestion(options_templates))


# --- archive bucket ------------------------------------------------------------------------------------


def archive_bucket(template: dict[str, Any]) -> dict[str, Any]:
    return only([p for p in props(template, "AWS::S3::Bucket") if "KMSMasterKeyID" in json.dumps(p)])


def test_archive_bucket_is_private_kms_encrypted_versioned_and_expires(minimal: dict[str, Any]) -> None:
    bucket = archive_bucket(minimal)
    sse = only(bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"])
    assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_id = only(list(resources(minimal, "AWS::KMS::Key")))
    assert render(sse["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == f"<{key_id}.Arn>"
    assert sse["BucketKeyEnabled"] is True
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = only(bucket["LifecycleConfiguration"]["Rules"])
    assert rule["ExpirationInDays"] == 365
    assert rule["Transitions"] == [{"StorageClass": "GLACIER_IR", "TransitionInDays": 90}]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "archive/"
    archive = next(n for n, r in resources(minimal, "AWS::S3::Bucket").items() if "KMSMasterKeyID" in json.dumps(r))
    assert minimal["Resources"][archive]["DeletionPolicy"] == "Retain"


def test_archive_and_access_log_buckets_deny_plain_http_and_old_tls(minimal: dict[str, Any]) -> None:
    policies = props(minimal, "AWS::S3::BucketPolicy")
    assert len(policies) == 2
    for policy in policies:
        denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        conditions = [s.get("Condition") for s in denies]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions
        assert {"NumericLessThan": {"s3:TlsVersion": 1.2}} in conditions


def test_access_log_bucket_is_separate_sse_s3_and_expires(minimal: dict[str, Any]) -> None:
    archive = archive_bucket(minimal)
    log_bucket_id = archive["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    log_bucket = minimal["Resources"][log_bucket_id]["Properties"]
    assert log_bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert only(log_bucket["LifecycleConfiguration"]["Rules"])["ExpirationInDays"] == 365
    assert "LoggingConfiguration" not in log_bucket


def test_options_turn_off_versioning_transition_and_access_logging(options_stack: dict[str, Any]) -> None:
    assert len(resources(options_stack, "AWS::S3::Bucket")) == 1  # no access-log bucket
    bucket = archive_bucket(options_stack)
    assert "LoggingConfiguration" not in bucket
    assert "VersioningConfiguration" not in bucket
    rule = only(bucket["LifecycleConfiguration"]["Rules"])
    assert rule["ExpirationInDays"] == 30
    assert "Transitions" not in rule and "NoncurrentVersionExpiration" not in rule


# --- KMS key -------------------------------------------------------------------------------------------


def test_new_key_rotates_and_lets_only_cloudwatch_logs_in_for_the_error_log_group(minimal: dict[str, Any]) -> None:
    name, key = only(list(resources(minimal, "AWS::KMS::Key").items()))
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == 30
    assert key["DeletionPolicy"] == "Retain"
    service_statements = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    statement = only(service_statements)
    assert render(statement["Principal"]["Service"]) == "logs.us-east-1.<AWS::URLSuffix>"
    arn = render(statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
    assert arn.endswith(":log-group:/aws/kinesisfirehose/eksight-audit-delivery")
    others = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s not in service_statements]
    assert [render(s["Principal"]["AWS"]).split(":", 2)[2] for s in others] == ["iam::<AWS::AccountId>:root"]
    log_group = only(props(minimal, "AWS::Logs::LogGroup"))
    assert render(log_group["KmsKeyId"]) == f"<{name}.Arn>"


def test_key_options_are_applied(options_stack: dict[str, Any]) -> None:
    key = only(props(options_stack, "AWS::KMS::Key"))
    assert (key["PendingWindowInDays"], key["RotationPeriodInDays"]) == (7, 180)


# --- Firehose ------------------------------------------------------------------------------------------


def streams_by_cluster(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for stream in props(template, "AWS::KinesisFirehose::DeliveryStream"):
        prefix = stream["ExtendedS3DestinationConfiguration"]["Prefix"]
        out[archive_layout.parse_cluster_key(render(prefix))["cluster"]] = stream
    return out


def test_one_stream_per_cluster_keeps_the_envelope_and_partitions_by_cluster_and_hour(minimal: dict[str, Any]) -> None:
    stream = streams_by_cluster(minimal)["prod"]
    assert stream["DeliveryStreamName"] == "eksight-prod"
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] == "CUSTOMER_MANAGED_CMK"
    destination = stream["ExtendedS3DestinationConfiguration"]
    processors = destination["ProcessingConfiguration"]["Processors"]
    assert [p["Type"] for p in processors] == ["Decompression", "AppendDelimiterToRecord"]
    assert processors[0]["Parameters"] == [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}]
    assert "DataMessageExtraction" not in json.dumps(destination), "message extraction would drop logGroup"
    assert destination["CompressionFormat"] == "GZIP"
    assert render(destination["Prefix"]) == (
        "audit/account=<AWS::AccountId>/region=us-east-1/cluster=prod/"
        "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/"
        "hour=!{timestamp:HH}/"
    )
    assert "!{firehose:error-output-type}" in render(destination["ErrorOutputPrefix"])
    assert destination["BufferingHints"] == {"IntervalInSeconds": 60, "SizeInMBs": 16}
    logging = destination["CloudWatchLoggingOptions"]
    assert logging["Enabled"] is True
    assert render(logging["LogStreamName"]).startswith("<DeliveryErrorLogStreamprod")
    kms = destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"]
    assert render(kms) == render(stream["DeliveryStreamEncryptionConfigurationInput"]["KeyARN"])


def test_buffering_and_retention_options_are_applied(options_stack: dict[str, Any]) -> None:
    streams = streams_by_cluster(options_stack)
    assert set(streams) == {"alpha", "beta_2"}
    assert {s["DeliveryStreamName"] for s in streams.values()} == {"acme-sec-alpha", "acme-sec-beta_2"}
    for stream in streams.values():
        assert stream["ExtendedS3DestinationConfiguration"]["BufferingHints"] == {
            "IntervalInSeconds": 300,
            "SizeInMBs": 64,
        }
    assert only(props(options_stack, "AWS::Logs::LogGroup"))["RetentionInDays"] == 90


def test_firehose_role_can_write_exactly_the_delivery_and_error_prefixes(minimal: dict[str, Any]) -> None:
    """The FortiCNAPP module's error prefix lay outside its role's permission; ours must be covered."""
    policy = statements(minimal, "DeliveryRoleDefaultPolicy")
    put = only([s for s in policy if "s3:PutObject" in as_list(s["Action"])])
    allowed = [render(r) for r in as_list(put["Resource"])]
    stream = streams_by_cluster(minimal)["prod"]["ExtendedS3DestinationConfiguration"]
    bucket = render(stream["BucketARN"])
    for prefix in (stream["Prefix"], stream["ErrorOutputPrefix"]):
        example_key = (
            render(prefix)
            .replace("!{firehose:error-output-type}", "processing-failed")
            .replace("!{timestamp:yyyy}", "2026")
            .replace("!{timestamp:MM}", "11")
            .replace("!{timestamp:dd}", "26")
            .replace("!{timestamp:HH}", "14")
            + "eksight-prod-1-2026-11-26.gz"
        )
        assert any(fnmatch.fnmatchcase(f"{bucket}/{example_key}", pattern) for pattern in allowed), example_key
    # ...and nothing else in the bucket: not the quarantine, not another region's deliveries.
    for other in (f"{bucket}/quarantine/x", f"{bucket}/audit/account=<AWS::AccountId>/region=eu-west-1/x"):
        assert not any(fnmatch.fnmatchcase(other, pattern) for pattern in allowed)
    assert all(render(r) != "*" for s in policy for r in as_list(s["Resource"]))
    kms = only([s for s in policy if "kms:GenerateDataKey" in as_list(s["Action"])])
    assert render(kms["Condition"]["StringEquals"]["kms:ViaService"]) == "s3.us-east-1.<AWS::URLSuffix>"


def test_firehose_role_trusts_firehose_for_this_account_only(minimal: dict[str, Any]) -> None:
    role = only([r for n, r in resources(minimal, "AWS::IAM::Role").items() if n.startswith("DeliveryRole")])
    statement = only(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert statement["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}


# --- subscription filters --------------------------------------------------------------------------------


def test_one_subscription_filter_per_cluster_to_its_own_stream(multi: dict[str, dict[str, Any]]) -> None:
    for template in multi.values():
        streams = resources(template, "AWS::KinesisFirehose::DeliveryStream")
        filters = props(template, "AWS::Logs::SubscriptionFilter")
        assert len(filters) == 3 == len(streams)
        for subscription in filters:
            cluster = subscription["LogGroupName"].split("/")[3]
            assert subscription["LogGroupName"] == f"/aws/eks/{cluster}/cluster"
            assert subscription["FilterPattern"] == DEFAULT_FILTER_PATTERN
            assert subscription["FilterName"] == "eksight-audit"
            stream_id = subscription["DestinationArn"]["Fn::GetAtt"][0]
            destination = template["Resources"][stream_id]["Properties"]["ExtendedS3DestinationConfiguration"]
            prefix = render(destination["Prefix"])
            assert f"/cluster={cluster}/" in prefix


def test_subscription_role_trusts_regional_logs_and_puts_only_into_these_streams(minimal: dict[str, Any]) -> None:
    role_id, role = only(
        [(n, r) for n, r in resources(minimal, "AWS::IAM::Role").items() if n.startswith("SubscriptionsRole")]
    )
    trust = only(role["Properties"]["AssumeRolePolicyDocument"]["Statement"])
    assert render(trust["Principal"]["Service"]) == "logs.us-east-1.<AWS::URLSuffix>"
    assert render(trust["Condition"]["StringLike"]["aws:SourceArn"]).endswith(":log-group:/aws/eks/*")
    statement = only(statements(minimal, "SubscriptionsRoleDefaultPolicy"))
    assert sorted(statement["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    stream_ids = set(resources(minimal, "AWS::KinesisFirehose::DeliveryStream"))
    assert {r["Fn::GetAtt"][0] for r in as_list(statement["Resource"])} == stream_ids
    policy_id = only([n for n in resources(minimal, "AWS::IAM::Policy") if n.startswith("SubscriptionsRoleDefault")])
    for subscription in resources(minimal, "AWS::Logs::SubscriptionFilter").values():
        assert render(subscription["Properties"]["RoleArn"]) == f"<{role_id}.Arn>"
        assert policy_id in subscription["DependsOn"], "CloudWatch test-delivers through the role at creation"


def test_custom_filter_pattern_is_used(synth: Synth) -> None:
    template = only(ingestion(synth(EXAMPLES / "existing-roles.json")))
    assert (
        only(props(template, "AWS::Logs::SubscriptionFilter"))["FilterPattern"]
        == '{ ($.kind = "Event") && ($.stage = "ResponseComplete") }'
    )


# --- notifications ---------------------------------------------------------------------------------------


def test_new_objects_under_audit_notify_the_queue_which_has_a_dead_letter_queue(minimal: dict[str, Any]) -> None:
    notification = only(props(minimal, "Custom::S3BucketNotifications"))
    queue_config = only(notification["NotificationConfiguration"]["QueueConfigurations"])
    assert queue_config["Events"] == ["s3:ObjectCreated:*"]
    assert queue_config["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "audit/"}]}}
    queue_id = queue_config["QueueArn"]["Fn::GetAtt"][0]
    queue = minimal["Resources"][queue_id]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    dlq = minimal["Resources"][queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 86400
    queue_policy = only([p for p in props(minimal, "AWS::SQS::QueuePolicy") if {"Ref": queue_id} in p["Queues"]])
    send = only([s for s in queue_policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"])
    assert send["Principal"] == {"Service": "s3.amazonaws.com"}
    bucket_id = notification["BucketName"]["Ref"]
    assert render(send["Condition"]["ArnLike"]["aws:SourceArn"]) == f"<{bucket_id}.Arn>"
    deny = [s for s in queue_policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bring_your_own_bucket_and_key_are_used_not_created_and_still_notify(multi: dict[str, dict[str, Any]]) -> None:
    byo = multi["eksight-ingestion-us-east-1"]
    assert resources(byo, "AWS::S3::Bucket") == {}
    assert resources(byo, "AWS::KMS::Key") == {}
    notification = only(props(byo, "Custom::S3BucketNotifications"))
    assert notification["BucketName"] == "acme-security-eks-audit-use1"
    assert notification["Managed"] is False, "an imported bucket's other notifications must be kept"
    key_arn = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    for stream in props(byo, "AWS::KinesisFirehose::DeliveryStream"):
        destination = stream["ExtendedS3DestinationConfiguration"]
        assert destination["BucketARN"] == "arn:aws:s3:::acme-security-eks-audit-use1"
        assert destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"] == key_arn
        assert stream["DeliveryStreamEncryptionConfigurationInput"]["KeyARN"] == key_arn
    # An imported key's policy is not ours to edit: the error log group keeps CloudWatch's default encryption.
    assert "KmsKeyId" not in only(props(byo, "AWS::Logs::LogGroup"))


def test_existing_roles_are_used_and_no_roles_are_created_for_them(synth: Synth) -> None:
    template = only(ingestion(synth(EXAMPLES / "existing-roles.json")))
    assert resources(template, "AWS::IAM::Role").keys() <= {
        n for n in template["Resources"] if n.startswith("BucketNotificationsHandler")
    }
    stream = only(props(template, "AWS::KinesisFirehose::DeliveryStream"))
    assert (
        stream["ExtendedS3DestinationConfiguration"]["RoleARN"] == "arn:aws:iam::444455556666:role/eks-audit-firehose"
    )
    assert (
        only(props(template, "AWS::Logs::SubscriptionFilter"))["RoleArn"]
        == "arn:aws:iam::444455556666:role/eks-audit-cwl-to-firehose"
    )


# --- audit logging prerequisite ----------------------------------------------------------------------------


def test_audit_logging_custom_resource_per_cluster_gates_its_subscription(multi: dict[str, dict[str, Any]]) -> None:
    template = multi["eksight-ingestion-eu-west-1"]
    enablers = resources(template, "Custom::EksAuditLogging")
    assert sorted(r["Properties"]["ClusterName"] for r in enablers.values()) == ["eu-batch", "eu-prod", "eu-staging"]
    by_cluster = {r["Properties"]["ClusterName"]: n for n, r in enablers.items()}
    for subscription in resources(template, "AWS::Logs::SubscriptionFilter").values():
        cluster = subscription["Properties"]["LogGroupName"].split("/")[3]
        assert by_cluster[cluster] in subscription["DependsOn"]
    update = only(
        [s for s in statements(template, "AuditLoggingOnEvent") if "eks:UpdateClusterConfig" in as_list(s["Action"])]
    )
    assert sorted(render(r) for r in update["Resource"]) == sorted(
        [f"arn:aws:eks:eu-west-1:111122223333:cluster/{c}" for c in ("eu-prod", "eu-batch", "eu-staging")]
        + [f"arn:aws:eks:eu-west-1:111122223333:cluster/{c}/update/*" for c in ("eu-prod", "eu-batch", "eu-staging")]
    )
    handlers = [p for p in props(template, "AWS::Lambda::Function") if p.get("Handler", "").startswith("handler.")]
    assert sorted(h["Handler"] for h in handlers) == ["handler.is_complete", "handler.on_event"]
    assert all(h["Runtime"] == "python3.12" for h in handlers)


def test_without_audit_logging_the_stack_says_which_clusters_need_it(multi: dict[str, dict[str, Any]]) -> None:
    template = multi["eksight-ingestion-us-east-1"]
    assert resources(template, "Custom::EksAuditLogging") == {}
    output = template["Outputs"]["AuditLoggingRequired"]
    assert output["Value"] == "prod-api,prod-batch,staging"
    assert "NOT enabled by this stack" in output["Description"]


# --- whole-stack properties --------------------------------------------------------------------------------


def test_multi_region_config_yields_an_ingestion_and_a_detection_stack_per_region(synth: Synth) -> None:
    assert set(synth(EXAMPLES / "multi-region.json")) == {
        "eksight-ingestion-us-east-1",
        "eksight-detection-us-east-1",
        "eksight-ingestion-eu-west-1",
        "eksight-detection-eu-west-1",
    }


def test_outputs_have_stable_names(minimal: dict[str, Any]) -> None:
    assert set(minimal["Outputs"]) >= {
        "ArchiveBucketName",
        "ArchiveBucketArn",
        "ArchiveKeyArn",
        "NotificationQueueArn",
        "NotificationQueueUrl",
        "DeadLetterQueueArn",
        "DeliveryStreamArns",
        "DeliveryErrorLogGroup",
        "SubscriptionFilterName",
        "SubscribedLogGroups",
        "AuditLoggingRequired",
    }
    streams = minimal["Outputs"]["DeliveryStreamArns"]["Value"]
    assert render(streams).startswith('{"prod":"<Deliveryprod')


def test_arns_follow_the_partition_of_the_region(options_stack: dict[str, Any]) -> None:
    text = json.dumps(options_stack)  # a GovCloud stack: any commercial-partition ARN would be a bug
    assert "arn:aws:" not in text
    assert "arn:aws-us-gov:" in text or "AWS::Partition" in text


def test_account_is_left_to_deploy_time_when_not_configured(minimal: dict[str, Any]) -> None:
    prefix = render(
        only(props(minimal, "AWS::KinesisFirehose::DeliveryStream"))["ExtendedS3DestinationConfiguration"]["Prefix"]
    )
    assert prefix.startswith("audit/account=<AWS::AccountId>/")


def test_name_prefix_is_applied_everywhere_it_names_something(options_stack: dict[str, Any]) -> None:
    assert (
        only(props(options_stack, "AWS::Logs::LogGroup"))["LogGroupName"]
        == "/aws/kinesisfirehose/acme-sec-audit-delivery"
    )
    assert {f["FilterName"] for f in props(options_stack, "AWS::Logs::SubscriptionFilter")} == {"acme-sec-audit"}
    assert options_stack["Outputs"]["SubscriptionFilterName"]["Value"] == "acme-sec-audit"


def test_config_tags_reach_every_taggable_resource(options_stack: dict[str, Any]) -> None:
    taggable = {
        "AWS::S3::Bucket",
        "AWS::KMS::Key",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::Logs::LogGroup",
        "AWS::Lambda::Function",
    }
    checked = 0
    for name, resource in options_stack["Resources"].items():
        if resource["Type"] in taggable:
            tags = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            assert tags.get("team") == "platform" and tags.get("data-class") == "audit", name
            assert tags.get("eksight:component") == "ingestion", name
            checked += 1
    assert checked >= 8
