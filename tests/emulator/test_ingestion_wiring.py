"""The synthesized ingestion stacks, provisioned into moto, carry real EKS audit events end to end.

Every test provisions what `cdk synth` produced (eksight.tools.emulator.provision walks the template), plays EKS
(creates the cluster's log group, writes audit events into a `kube-apiserver-audit-*` stream) and reads
back what reached the archive bucket and the notification queue.

Where moto differs from AWS (the tests only rely on what holds for both):
- Firehose ignores the processors and compression: one object per PutLogEvents, one gzip of the CloudWatch
  envelope (AWS: newline-delimited envelopes, gzipped once; `envelopes` reads both). It does not expand
  `!{timestamp:...}` and appends its own `YYYY/MM/DD/HH/`, so only the static cluster prefix is asserted.
- Subscription filter patterns are not evaluated, so only events the synthesized pattern keeps are sent
  (checked with eksight.config.filter_pattern): the expected archive content is then the same on AWS.
- EKS never creates /aws/eks/<cluster>/cluster; UpdateClusterConfig returns no update and REPLACES the
  logging config instead of changing only the named log types (the audit-logging test runs both ways).
- S3 bucket policies: moto evaluates only StringEquals conditions and counts any other operator (Bool,
  NumericLessThan, ...) as satisfied, so CDK's TLS-only Deny (aws:SecureTransport false, s3:TlsVersion < 1.2)
  denies every PutObject/GetObject, even over HTTPS.
- IAM knows AWS managed policies only with load_aws_managed_policies.
The `aws` fixture gives moto AWS's semantics for the last two; the test_moto_quirk_* tests pin the raw
behaviour, so they fail (and tell you to drop a fix) once moto changes.
"""

from __future__ import annotations

import gzip
import json
import secrets
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from eksight.config import filter_pattern
from eksight.core import archive_layout
from eksight.tools.emulator import ProvisionError, provision
from eksight.tools.emulator.moto_fixes import tls_only_denies_are_neutral

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
DATASET = ROOT.parent / "shared" / "datasets" / "dev-scenarios" / "audit.jsonl.gz"
MOTO_ACCOUNT = "123456789012"
MULTI_REGION_ACCOUNT = "111122223333"  # examples/multi-region.json pins this account
BYO_BUCKET = "acme-security-eks-audit-use1"  # examples/multi-region.json, us-east-1
AUDIT_ONLY = {"clusterLogging": [{"types": ["audit"], "enabled": True}]}


@pytest.fixture
def raw_moto() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def aws() -> Iterator[None]:
    """moto, with AWS's semantics where these tests need them (each fix pinned by a test_moto_quirk_* test)."""
    with tls_only_denies_are_neutral(), mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        yield  # (CDK roles attach AWS managed policies)


@pytest.fixture(params=["moto-replaces", "eks-merges"])
def eks_logging_semantics(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """UpdateClusterConfig as moto does it (replace the whole logging config) or as EKS documents it (change
    only the log types named); eksight must end with the same result under both."""
    if request.param == "eks-merges":
        from moto.eks.models import EKSBackend

        update_cluster_config = EKSBackend.update_cluster_config

        def update_only_named_log_types(
            self: Any, name: str, resources_vpc_config: Any, logging: Any = None, **kwargs: Any
        ) -> Any:
            if logging and name in self.clusters:
                logging = _merge_logging(self.clusters[name].logging, logging)
            return update_cluster_config(self, name, resources_vpc_config, logging, **kwargs)

        monkeypatch.setattr(EKSBackend, "update_cluster_config", update_only_named_log_types)
    return request.param


@pytest.fixture
def multi_region_account(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MOTO_ACCOUNT_ID", MULTI_REGION_ACCOUNT)
    return MULTI_REGION_ACCOUNT


# ---- helpers -------------------------------------------------------------------------------------------


def _subscription_pattern(template: dict[str, Any]) -> str:
    patterns = {
        r["Properties"]["FilterPattern"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Logs::SubscriptionFilter"
    }
    assert len(patterns) == 1, patterns
    return patterns.pop()


@cache
def _kept_audit_lines(pattern: str, count: int) -> tuple[str, ...]:
    """The first `count` real audit events (raw lines) that `pattern` forwards."""
    keep, lines = filter_pattern.parse(pattern), []
    with gzip.open(DATASET, "rt", encoding="utf-8") as dataset:
        for line in dataset:
            if keep.matches(line.rstrip("\n")):
                lines.append(line.rstrip("\n"))
                if len(lines) == count:
                    break
    assert len(lines) == count, f"only {len(lines)} events of {DATASET} pass the pattern"
    return tuple(lines)


def audit_lines(template: dict[str, Any], count: int) -> tuple[str, ...]:
    if not DATASET.exists():
        pytest.skip(f"dataset {DATASET} is absent")
    return _kept_audit_lines(_subscription_pattern(template), count)


def play_eks(logs: Any, cluster: str, messages: list[str] | tuple[str, ...]) -> str:
    """Write events as EKS does: into the cluster's log group, stream kube-apiserver-audit-<hex>."""
    stream = f"kube-apiserver-audit-{secrets.token_hex(16)}"
    logs.create_log_stream(logGroupName=eks_log_group(cluster), logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=eks_log_group(cluster),
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )
    return stream


def eks_log_group(cluster: str) -> str:
    return f"/aws/eks/{cluster}/cluster"


def objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, bytes]:
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for o in page.get("Contents", [])
    ]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def envelopes(body: bytes) -> list[dict[str, Any]]:
    """CloudWatch Logs envelopes of one archive object (gzip; one or more JSON envelopes per line)."""
    return [json.loads(line) for line in gzip.decompress(body).decode().splitlines() if line.strip()]


def created_keys(sqs: Any, queue_url: str) -> list[str]:
    """Object keys of the ObjectCreated notifications in the queue (S3's s3:TestEvent messages skipped)."""
    keys = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            body = json.loads(message["Body"])
            keys += [
                unquote_plus(r["s3"]["object"]["key"])
                for r in body.get("Records", [])
                if r["eventName"].startswith("ObjectCreated:")
            ]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return keys


def enabled_log_types(eks: Any, cluster: str) -> set[str]:
    settings = eks.describe_cluster(name=cluster)["cluster"]["logging"]["clusterLogging"]
    return {t for s in settings if s.get("enabled") for t in s["types"]}


def create_eks_cluster(eks: Any, name: str, logging: dict[str, Any] | None = None) -> None:
    eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1", "subnet-2"]},
        **({"logging": logging} if logging else {}),
    )


def _merge_logging(current: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """EKS's documented semantics: only the log types named in the request change."""
    state = {t: s["enabled"] for s in current.get("clusterLogging", []) for t in s["types"]}
    state |= {t: s["enabled"] for s in request.get("clusterLogging", []) for t in s["types"]}
    return {
        "clusterLogging": [
            {"types": [t for t, on in state.items() if on is value], "enabled": value}
            for value in (True, False)
            if any(on is value for on in state.values())
        ]
    }


def single(stacks: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """The one ingestion stack of a single-region config (its detection stack is tested elsewhere)."""
    ingestion = {name: template for name, template in stacks.items() if "-ingestion-" in name}
    assert len(ingestion) == 1, list(stacks)
    return next(iter(ingestion.items()))


# ---- minimal config -------------------------------------------------------------------------------------


def test_minimal_events_round_trip_to_archive_and_queue(synth: Any, aws: None) -> None:
    """Real audit events → log group → subscription filter → Firehose → S3 under the cluster prefix → SQS."""
    stack_name, template = single(synth(EXAMPLES / "minimal.json"))
    session = boto3.Session(region_name="us-east-1")
    logs, s3, sqs = session.client("logs"), session.client("s3"), session.client("sqs")
    logs.create_log_group(logGroupName=eks_log_group("prod"))  # EKS creates it once logging is on
    stack = provision(template, session=session, region="us-east-1", stack_name=stack_name)
    sent = audit_lines(template, 5)

    stream = play_eks(logs, "prod", sent)

    bucket = stack.outputs["ArchiveBucketName"]
    everything = objects(s3, bucket)
    delivered = objects(s3, bucket, archive_layout.cluster_prefix(MOTO_ACCOUNT, "us-east-1", "prod"))
    assert delivered, f"nothing under the cluster prefix; bucket holds {sorted(everything)}"
    assert everything.keys() == delivered.keys(), "objects outside the cluster's audit/ prefix"
    assert all(key.startswith(archive_layout.AUDIT_ROOT) for key in everything)
    received = [envelope for body in delivered.values() for envelope in envelopes(body)]
    assert {(e["messageType"], e["logGroup"], e["logStream"], e["owner"]) for e in received} == {
        ("DATA_MESSAGE", "/aws/eks/prod/cluster", stream, MOTO_ACCOUNT)
    }
    assert all(e["subscriptionFilters"] == [stack.outputs["SubscriptionFilterName"]] for e in received)
    assert [event["message"] for e in received for event in e["logEvents"]] == list(sent)
    assert [json.loads(m)["auditID"] for m in sent] == [
        json.loads(event["message"])["auditID"] for e in received for event in e["logEvents"]
    ]

    assert sorted(created_keys(sqs, stack.outputs["NotificationQueueUrl"])) == sorted(delivered)


def test_subscription_filter_without_the_eks_log_group_fails_clearly(synth: Any, aws: None) -> None:
    """Without /aws/eks/prod/cluster (audit logging never enabled) provisioning stops at the filter."""
    stack_name, template = single(synth(EXAMPLES / "minimal.json"))
    with pytest.raises(
        ProvisionError,
        match=r"Subscriptionsprod\w*: log group /aws/eks/prod/cluster does not "
        r"exist.*'audit' log type",
    ):
        provision(template, session=boto3.Session(region_name="us-east-1"), region="us-east-1", stack_name=stack_name)


def test_outputs_name_resources_that_exist(synth: Any, aws: None) -> None:
    stack_name, template = single(synth(EXAMPLES / "minimal.json"))
    session = boto3.Session(region_name="us-east-1")
    session.client("logs").create_log_group(logGroupName=eks_log_group("prod"))
    out = provision(template, session=session, region="us-east-1", stack_name=stack_name).outputs
    s3, sqs, kms = session.client("s3"), session.client("sqs"), session.client("kms")
    firehose, logs = session.client("firehose"), session.client("logs")

    s3.head_bucket(Bucket=out["ArchiveBucketName"])
    assert out["ArchiveBucketArn"] == f"arn:aws:s3:::{out['ArchiveBucketName']}"
    assert kms.describe_key(KeyId=out["ArchiveKeyArn"])["KeyMetadata"]["Arn"] == out["ArchiveKeyArn"]
    queue = sqs.get_queue_attributes(QueueUrl=out["NotificationQueueUrl"], AttributeNames=["All"])["Attributes"]
    assert queue["QueueArn"] == out["NotificationQueueArn"]
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": out["DeadLetterQueueArn"],
        "maxReceiveCount": 5,
    }
    streams = json.loads(out["DeliveryStreamArns"])
    assert list(streams) == ["prod"]
    description = firehose.describe_delivery_stream(DeliveryStreamName=streams["prod"].rsplit("/", 1)[1])
    assert description["DeliveryStreamDescription"]["DeliveryStreamARN"] == streams["prod"]
    destination = description["DeliveryStreamDescription"]["Destinations"][0]["ExtendedS3DestinationDescription"]
    assert destination["BucketARN"] == out["ArchiveBucketArn"]
    assert destination["Prefix"] == archive_layout.delivery_prefix(MOTO_ACCOUNT, "us-east-1", "prod")
    assert logs.describe_log_groups(logGroupNamePrefix=out["DeliveryErrorLogGroup"])["logGroups"]
    for group in out["SubscribedLogGroups"].split(","):
        (subscription,) = logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]
        assert (subscription["filterName"], subscription["destinationArn"]) == (
            out["SubscriptionFilterName"],
            streams["prod"],
        )
        assert subscription["filterPattern"] == _subscription_pattern(template)


def test_archive_bucket_is_configured_as_synthesized(synth: Any, aws: None) -> None:
    stack_name, template = single(synth(EXAMPLES / "minimal.json"))
    session = boto3.Session(region_name="us-east-1")
    session.client("logs").create_log_group(logGroupName=eks_log_group("prod"))
    stack = provision(template, session=session, region="us-east-1", stack_name=stack_name)
    s3, bucket = session.client("s3"), stack.outputs["ArchiveBucketName"]

    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": stack.outputs["ArchiveKeyArn"],
    }
    assert rule["BucketKeyEnabled"] is True
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())
    (lifecycle,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (lifecycle["ID"], lifecycle["Expiration"], lifecycle["Transitions"]) == (
        "archive-retention",
        {"Days": 365},
        [{"Days": 90, "StorageClass": "GLACIER_IR"}],
    )
    access_logs = s3.get_bucket_logging(Bucket=bucket)["LoggingEnabled"]
    assert access_logs["TargetPrefix"] == "archive/"
    assert "logging.s3.amazonaws.com" in s3.get_bucket_policy(Bucket=access_logs["TargetBucket"])["Policy"]
    assert {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}} in [
        {"Effect": st["Effect"], "Condition": st.get("Condition")}
        for st in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    ]
    (notification,) = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert notification["QueueArn"] == stack.outputs["NotificationQueueArn"]
    assert notification["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "audit/"}]
    assert [(s.type, s.reason) for s in stack.skipped] == [
        ("AWS::Lambda::Function", "Lambda functions are not run; the custom resources they back run in-process")
    ]
    assert stack.notes == []


# ---- bring-your-own bucket ------------------------------------------------------------------------------


def test_imported_bucket_keeps_its_own_notifications(synth: Any, write_config: Any, aws: None) -> None:
    config = write_config(
        {
            "regions": {
                "us-east-1": {
                    "clusters": ["prod"],
                    "archive": {"existing_bucket_arn": "arn:aws:s3:::byo-audit-archive"},
                }
            }
        }
    )
    stack_name, template = single(synth(config))
    session = boto3.Session(region_name="us-east-1")
    s3, sqs, logs = session.client("s3"), session.client("sqs"), session.client("logs")
    s3.create_bucket(Bucket="byo-audit-archive")
    user_queue = sqs.create_queue(QueueName="user-other-objects")["QueueUrl"]
    user_queue_arn = sqs.get_queue_attributes(QueueUrl=user_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    users_notification = {
        "Id": "user-other",
        "QueueArn": user_queue_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "other/"}]}},
    }
    s3.put_bucket_notification_configuration(
        Bucket="byo-audit-archive", NotificationConfiguration={"QueueConfigurations": [users_notification]}
    )
    logs.create_log_group(logGroupName=eks_log_group("prod"))

    stack = provision(template, session=session, region="us-east-1", stack_name=stack_name)

    assert stack.outputs["ArchiveBucketName"] == "byo-audit-archive"
    assert not any(r["Type"] == "AWS::S3::Bucket" for r in template["Resources"].values())
    configured = s3.get_bucket_notification_configuration(Bucket="byo-audit-archive")["QueueConfigurations"]
    by_queue = {n["QueueArn"]: n for n in configured}
    assert by_queue.keys() == {user_queue_arn, stack.outputs["NotificationQueueArn"]}
    assert by_queue[user_queue_arn]["Id"] == "user-other"
    assert by_queue[user_queue_arn]["Filter"]["Key"]["FilterRules"][0]["Value"] == "other/"
    assert by_queue[stack.outputs["NotificationQueueArn"]]["Filter"]["Key"]["FilterRules"][0]["Value"] == "audit/"

    play_eks(logs, "prod", audit_lines(template, 2))
    s3.put_object(Bucket="byo-audit-archive", Key="other/report.csv", Body=b"user data")

    delivered = objects(s3, "byo-audit-archive", archive_layout.cluster_prefix(MOTO_ACCOUNT, "us-east-1", "prod"))
    assert delivered
    assert sorted(created_keys(sqs, stack.outputs["NotificationQueueUrl"])) == sorted(delivered)
    assert created_keys(sqs, user_queue) == ["other/report.csv"]


# ---- multi-region ---------------------------------------------------------------------------------------


def test_multi_region_each_cluster_lands_in_its_region_and_prefix(
    synth: Any, multi_region_account: str, aws: None
) -> None:
    stacks = {n: t for n, t in synth(EXAMPLES / "multi-region.json").items() if "-ingestion-" in n}
    regions = {"us-east-1": ("prod-api", "prod-batch", "staging"), "eu-west-1": ("eu-prod", "eu-batch", "eu-staging")}
    assert {name: t["Outputs"]["SubscribedLogGroups"]["Value"] for name, t in stacks.items()} == {
        f"eksight-ingestion-{r}": ",".join(map(eks_log_group, c)) for r, c in regions.items()
    }
    boto3.Session(region_name="us-east-1").client("s3").create_bucket(Bucket=BYO_BUCKET)  # the user's bucket
    provisioned, sent = {}, {}
    for region, clusters in regions.items():
        session = boto3.Session(region_name=region)
        for cluster in clusters:
            if region == "eu-west-1":  # enable_audit_logging: the stack turns on `audit` of existing clusters
                create_eks_cluster(session.client("eks"), cluster)
            session.client("logs").create_log_group(logGroupName=eks_log_group(cluster))
        name = f"eksight-ingestion-{region}"
        provisioned[region] = provision(
            stacks[name], session=session, region=region, account=multi_region_account, stack_name=name
        )
    lines = iter(audit_lines(stacks["eksight-ingestion-eu-west-1"], 12))
    for region, clusters in regions.items():
        logs = boto3.Session(region_name=region).client("logs")
        for cluster in clusters:
            sent[cluster] = [next(lines), next(lines)]
            play_eks(logs, cluster, sent[cluster])

    s3 = boto3.Session(region_name="us-east-1").client("s3")
    assert provisioned["us-east-1"].outputs["ArchiveBucketName"] == BYO_BUCKET
    for region, clusters in regions.items():
        bucket = provisioned[region].outputs["ArchiveBucketName"]
        assert (s3.get_bucket_location(Bucket=bucket)["LocationConstraint"] or "us-east-1") == region
        archive = objects(s3, bucket)
        for cluster in clusters:
            prefix = archive_layout.cluster_prefix(multi_region_account, region, cluster)
            mine = [e for key, body in archive.items() if key.startswith(prefix) for e in envelopes(body)]
            assert {e["logGroup"] for e in mine} == {eks_log_group(cluster)}, (region, cluster)
            assert [ev["message"] for e in mine for ev in e["logEvents"]] == sent[cluster]
        assert all(
            any(key.startswith(archive_layout.cluster_prefix(multi_region_account, region, c)) for c in clusters)
            for key in archive
        ), f"foreign objects in {bucket}"
        sqs = boto3.Session(region_name=region).client("sqs")
        assert sorted(created_keys(sqs, provisioned[region].outputs["NotificationQueueUrl"])) == sorted(archive)


# ---- enabling audit logging (Custom::EksAuditLogging) ----------------------------------------------------


def test_moto_quirk_eks_update_replaces_logging_config(raw_moto: None) -> None:
    """Pins the "moto-replaces" case of eks_logging_semantics (if this fails, moto now merges like EKS)."""
    eks = boto3.Session(region_name="eu-west-1").client("eks")
    create_eks_cluster(eks, "c", {"clusterLogging": [{"types": ["api"], "enabled": True}]})
    assert eks.update_cluster_config(name="c", logging=AUDIT_ONLY).get("update") is None  # no update to poll
    assert enabled_log_types(eks, "c") == {"audit"}  # EKS would report {"api", "audit"}


def test_moto_quirk_conditional_deny_in_bucket_policy_always_denies(raw_moto: None) -> None:
    """If this fails, moto evaluates Bool conditions: drop that fix from `aws`."""
    s3 = boto3.Session(region_name="us-east-1").client("s3")
    s3.create_bucket(Bucket="tls-only")
    s3.put_bucket_policy(
        Bucket="tls-only",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "s3:*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        "Resource": "arn:aws:s3:::tls-only/*",
                    }
                ],
            }
        ),
    )
    with pytest.raises(ClientError, match=r"\(403\)"):  # boto3 uses HTTPS: S3 would accept this
        s3.put_object(Bucket="tls-only", Key="k", Body=b"x")


def test_audit_logging_is_enabled_and_provisioning_waits_for_the_log_group(
    synth: Any, multi_region_account: str, aws: None, eks_logging_semantics: str
) -> None:
    """A cluster with only `api` on ends with `api` and `audit`; no type is ever turned off; each custom
    resource waits until EKS (played by the provisioner's sleep) has created the log group."""
    template = synth(EXAMPLES / "multi-region.json")["eksight-ingestion-eu-west-1"]
    session = boto3.Session(region_name="eu-west-1")
    eks, logs = session.client("eks"), session.client("logs")
    initial = {"eu-prod": {"api"}, "eu-batch": {"api", "authenticator"}, "eu-staging": set()}
    for cluster, types in initial.items():
        create_eks_cluster(
            eks, cluster, {"clusterLogging": [{"types": sorted(types), "enabled": True}]} if types else None
        )
    requests: list[dict[str, Any]] = []
    session.events.register(
        "provide-client-params.eks.UpdateClusterConfig", lambda params, **_: requests.append(dict(params))
    )
    created_while_waiting: list[str] = []

    def eks_creates_log_groups(_seconds: float) -> None:
        """Plays EKS while the provisioner sleeps: the log group appears after audit logging is on."""
        for cluster in initial:
            group = eks_log_group(cluster)
            if (
                "audit" in enabled_log_types(eks, cluster)
                and not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
            ):
                assert not requests or requests[-1]["name"] == cluster  # only the one being waited for
                logs.create_log_group(logGroupName=group)
                created_while_waiting.append(cluster)

    stack = provision(
        template,
        session=session,
        region="eu-west-1",
        account=multi_region_account,
        stack_name="eksight-ingestion-eu-west-1",
        poll_interval=20,
        sleep=eks_creates_log_groups,
    )

    assert created_while_waiting == list(initial), "the provisioner did not wait for each log group"
    assert [r["name"] for r in requests] == list(initial)  # one update per cluster
    for request in requests:  # never turns a log type off; always turns audit on
        assert all(s["enabled"] is True for s in request["logging"]["clusterLogging"]), request
        assert "audit" in {t for s in request["logging"]["clusterLogging"] for t in s["types"]}, request
    assert {c: enabled_log_types(eks, c) for c in initial} == {c: t | {"audit"} for c, t in initial.items()}
    streams = json.loads(stack.outputs["DeliveryStreamArns"])
    for cluster in initial:
        (subscription,) = logs.describe_subscription_filters(logGroupName=eks_log_group(cluster))["subscriptionFilters"]
        assert subscription["destinationArn"] == streams[cluster]
    custom = {
        lid: ref
        for lid, ref in stack.physical_ids.items()
        if template["Resources"][lid]["Type"] == "Custom::EksAuditLogging"
    }
    assert sorted(custom.values()) == sorted(f"{c}/audit-logging" for c in initial)
    assert sorted(s.type for s in stack.skipped) == ["AWS::Lambda::Function"] * 6 + ["AWS::StepFunctions::StateMachine"]


def test_audit_logging_wait_gives_up_when_the_log_group_never_appears(
    synth: Any, multi_region_account: str, aws: None
) -> None:
    template = synth(EXAMPLES / "multi-region.json")["eksight-ingestion-eu-west-1"]
    session = boto3.Session(region_name="eu-west-1")
    for cluster in ("eu-prod", "eu-batch", "eu-staging"):
        create_eks_cluster(session.client("eks"), cluster)
    sleeps: list[float] = []
    with pytest.raises(ProvisionError, match=r"audit logging of EKS cluster 'eu-prod' not ready in time"):
        provision(
            template,
            session=session,
            region="eu-west-1",
            account=multi_region_account,
            stack_name="eksight-ingestion-eu-west-1",
            poll_interval=20,
            timeout=60,
            sleep=sleeps.append,
        )
    assert sleeps == [20] * 4  # timeout / poll_interval, plus the first check


def test_audit_logging_of_a_missing_cluster_fails_clearly(synth: Any, multi_region_account: str, aws: None) -> None:
    template = synth(EXAMPLES / "multi-region.json")["eksight-ingestion-eu-west-1"]
    with pytest.raises(
        ProvisionError,
        match=r"AuditLoggingeuprod\w*: could not enable audit logging on EKS "
        r"cluster 'eu-prod'",
    ):
        provision(
            template,
            session=boto3.Session(region_name="eu-west-1"),
            region="eu-west-1",
            account=multi_region_account,
            stack_name="eksight-ingestion-eu-west-1",
            sleep=pytest.fail,
        )


# ---- the provisioner itself ----------------------------------------------------------------------------


def test_intrinsics_resolve_and_unknown_types_are_skipped(aws: None) -> None:
    template = {
        "Parameters": {"Parts": {"Type": "String", "Default": "a,b,c"}},
        "Resources": {
            "Later": {
                "Type": "AWS::SQS::Queue",
                "DependsOn": "Thing",
                "Properties": {"QueueName": {"Fn::Join": ["-", [{"Ref": "AWS::StackName"}, "queue"]]}},
            },
            "Thing": {"Type": "AWS::Made::Up", "Properties": {}},
            "Group": {
                "Type": "AWS::Logs::LogGroup",
                "Properties": {
                    "LogGroupName": {"Fn::Join": ["/", ["", "x", {"Ref": "AWS::Region"}, {"Ref": "AWS::Partition"}]]}
                },
            },
        },
        "Outputs": {
            "Sub": {
                "Value": {
                    "Fn::Sub": [
                        "${AWS::AccountId}:${Part}:${!Literal}:${Later.QueueName}:${Group}",
                        {"Part": {"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Parts"}]}]}},
                    ]
                }
            },
            "GroupArn": {"Value": {"Fn::GetAtt": "Group.Arn"}},
            "QueueUrl": {"Value": {"Ref": "Later"}},
        },
    }
    session = boto3.Session(region_name="eu-west-1")
    stack = provision(template, session=session, region="eu-west-1", stack_name="demo")
    assert stack.outputs == {
        "Sub": f"{MOTO_ACCOUNT}:b:${{Literal}}:demo-queue:/x/eu-west-1/aws",
        "GroupArn": f"arn:aws:logs:eu-west-1:{MOTO_ACCOUNT}:log-group:/x/eu-west-1/aws:*",
        "QueueUrl": session.client("sqs").get_queue_url(QueueName="demo-queue")["QueueUrl"],
    }
    assert [(s.logical_id, s.type, s.reason) for s in stack.skipped] == [
        ("Thing", "AWS::Made::Up", "no local implementation of this type")
    ]
    assert list(stack.physical_ids) == ["Group", "Later"]  # dependency order; DependsOn a skipped one is fine


def test_a_value_from_a_skipped_resource_fails_clearly(aws: None) -> None:
    template = {
        "Resources": {
            "Thing": {"Type": "AWS::Made::Up"},
            "Group": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": {"Fn::GetAtt": ["Thing", "Name"]}}},
        }
    }
    with pytest.raises(ProvisionError, match=r"Thing\.Name \(skipped: no local implementation"):
        provision(template, session=boto3.Session(region_name="us-east-1"), region="us-east-1")


def test_the_endpoint_account_must_match_the_template(aws: None) -> None:
    with pytest.raises(ProvisionError, match="account is 123456789012, the template is for 111122223333"):
        provision(
            {"Resources": {}},
            session=boto3.Session(region_name="us-east-1"),
            region="us-east-1",
            account=MULTI_REGION_ACCOUNT,
        )
