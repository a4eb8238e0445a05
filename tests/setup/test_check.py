"""`eksight check` against moto: clusters with and without audit logging, missing log groups, taken subscription
slots, stacks missing or deployed and delivering, `--fix`, exit codes. Where moto lacks an API
(iam:SimulatePrincipalPolicy) the check must say UNKNOWN, not crash; its logic is tested with a stub."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws

from eksight.core import archive_layout
from eksight.tools.cli import main
from eksight.tools.setup import check as checks
from eksight.tools.setup.check import FAIL, OK, UNKNOWN, WARN

ACCOUNT = "123456789012"  # moto's
REGION = "eu-west-1"
OTHER_REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture(params=["moto-replaces", "eks-merges"])
def eks_semantics(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """UpdateClusterConfig as moto does it (the request replaces the whole logging config) or as EKS documents
    it (only the named log types change); --fix must end with the same clusters either way."""
    if request.param == "eks-merges":
        from moto.eks.models import EKSBackend

        original = EKSBackend.update_cluster_config

        def merge(self: Any, name: str, resources_vpc_config: Any, logging: Any = None, **kwargs: Any) -> Any:
            if logging and name in self.clusters:
                state = {t: s["enabled"] for s in self.clusters[name].logging["clusterLogging"] for t in s["types"]}
                state |= {t: s["enabled"] for s in logging["clusterLogging"] for t in s["types"]}
                logging = {
                    "clusterLogging": [
                        {"types": [t for t, on in state.items() if on is value], "enabled": value}
                        for value in (True, False)
                        if any(on is value for on in state.values())
                    ]
                }
            return original(self, name, resources_vpc_config, logging, **kwargs)

        monkeypatch.setattr(EKSBackend, "update_cluster_config", merge)
    return request.param


def write_config(tmp_path: Path, clusters: dict[str, list[str]], **options: Any) -> Path:
    path = tmp_path / "eksight.config.json"
    path.write_text(json.dumps({**options, "regions": {r: {"clusters": c} for r, c in clusters.items()}}))
    return path


def create_cluster(name: str, log_types: tuple[str, ...] = (), region: str = REGION) -> None:
    eks = boto3.client("eks", region_name=region)
    logging = {"clusterLogging": [{"types": list(log_types), "enabled": True}]} if log_types else None
    eks.create_cluster(
        name=name,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        **({"logging": logging} if logging else {}),
    )


def create_log_group(cluster: str, filters: tuple[str, ...] = (), region: str = REGION) -> None:
    logs = boto3.client("logs", region_name=region)
    group = f"/aws/eks/{cluster}/cluster"
    logs.create_log_group(logGroupName=group)
    if filters:
        firehose = boto3.client("firehose", region_name=region)
        boto3.client("s3", region_name=region).create_bucket(
            Bucket=f"sink-{cluster}", CreateBucketConfiguration={"LocationConstraint": region}
        )
        stream = firehose.create_delivery_stream(
            DeliveryStreamName=f"sink-{cluster}",
            ExtendedS3DestinationConfiguration={
                "RoleARN": f"arn:aws:iam::{ACCOUNT}:role/fh",
                "BucketARN": f"arn:aws:s3:::sink-{cluster}",
            },
        )
        for name in filters:
            logs.put_subscription_filter(
                logGroupName=group,
                filterName=name,
                filterPattern="",
                destinationArn=stream["DeliveryStreamARN"],
                roleArn=f"arn:aws:iam::{ACCOUNT}:role/cwl",
            )


def deploy_stacks(region: str = REGION, bucket: str = "eksight-archive-euw1", prefix: str = "eksight") -> None:
    """Stand-ins for the deployed stacks: the outputs `eksight check` reads, and the archive bucket."""
    cfn = boto3.client("cloudformation", region_name=region)
    ingestion = {
        "Resources": {"Archive": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": bucket}}},
        "Outputs": {
            "ArchiveBucketName": {"Value": {"Ref": "Archive"}},
            "SubscriptionFilterName": {"Value": f"{prefix}-audit"},
        },
    }
    cfn.create_stack(StackName=f"{prefix}-ingestion-{region}", TemplateBody=json.dumps(ingestion))
    detection = {"Resources": {"Bus": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "findings"}}}}
    cfn.create_stack(StackName=f"{prefix}-detection-{region}", TemplateBody=json.dumps(detection))


def put_archive_object(cluster: str, when: datetime, bucket: str = "eksight-archive-euw1") -> str:
    key = (
        archive_layout.cluster_prefix(ACCOUNT, REGION, cluster)
        + f"year={when:%Y}/month={when:%m}/day={when:%d}/hour={when:%H}/delivery-1.gz"
    )
    boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=key, Body=gzip.compress(b"{}\n"))
    return key


def clients(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


def statuses(rows: list[checks.Check]) -> dict[tuple[str, str], str]:
    return {(row.cluster or row.region or "-", row.name): row.status for row in rows}


def table(stdout: str) -> dict[tuple[str, str], str]:
    """(cluster, check) → status, read from the printed table (columns are 2+ spaces apart)."""
    rows = [re.split(r"\s{2,}", line) for line in stdout.splitlines()]
    return {(row[1], row[2]): row[3] for row in rows if len(row) >= 4 and row[3] in (OK, WARN, FAIL, UNKNOWN)}


def run_check(config: Path, *args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["check", "--config", str(config), *args], input=input, catch_exceptions=False)


# ---- before deploying ---------------------------------------------------------------------------------------------


def test_clusters_before_deploy(tmp_path: Path, aws: None) -> None:
    create_cluster("audited", ("api", "audit"))
    create_log_group("audited", ("datadog",))
    create_cluster("quiet", ("api",))
    create_log_group("quiet")
    create_cluster("nogroup", ("audit",))
    create_cluster("full", ("audit",))
    create_log_group("full", ("datadog", "splunk"))
    config = write_config(tmp_path, {REGION: ["audited", "quiet", "nogroup", "full", "ghost"]})

    from eksight.config import load

    rows = checks.run_checks(load(config), clients)
    assert statuses(rows) == {
        ("-", "credentials"): OK,
        ("-", "deploy permissions"): UNKNOWN,  # moto cannot simulate policies: unknown, not a failure
        (REGION, "stack eksight-ingestion-eu-west-1"): WARN,
        (REGION, "stack eksight-detection-eu-west-1"): WARN,
        ("audited", "cluster"): OK,
        ("audited", "audit logging"): OK,
        ("audited", "log group"): OK,
        ("audited", "subscription slot"): OK,
        ("audited", "delivery"): UNKNOWN,
        ("quiet", "cluster"): OK,
        ("quiet", "audit logging"): FAIL,
        ("quiet", "log group"): OK,
        ("quiet", "subscription slot"): OK,
        ("quiet", "delivery"): UNKNOWN,
        ("nogroup", "cluster"): OK,
        ("nogroup", "audit logging"): OK,
        ("nogroup", "log group"): FAIL,
        ("nogroup", "subscription slot"): UNKNOWN,
        ("nogroup", "delivery"): UNKNOWN,
        ("full", "cluster"): OK,
        ("full", "audit logging"): OK,
        ("full", "log group"): OK,
        ("full", "subscription slot"): FAIL,
        ("full", "delivery"): UNKNOWN,
        ("ghost", "cluster"): FAIL,
    }
    by_key = {(r.cluster, r.name): r for r in rows}
    assert by_key["audited", "subscription slot"].detail == "1 of 2 free (used by datadog)"
    assert "both slots taken by other filters (datadog, splunk)" in by_key["full", "subscription slot"].detail
    assert "--filter-name datadog" in by_key["full", "subscription slot"].fix
    quiet = by_key["quiet", "audit logging"]
    assert quiet.detail == "off (log types on: api)"
    assert '"types":["api", "audit"]' in quiet.fix  # the manual command keeps api on
    assert "not deployed" in by_key["", "stack eksight-ingestion-eu-west-1"].detail

    result = run_check(config)
    assert result.exit_code == 1
    assert "ghost" in result.stdout and "fix: correct the name in the config" in result.stdout
    summary = result.stdout.splitlines()[-1]
    assert summary == (
        f"{sum(s == OK for s in statuses(rows).values())} OK, 2 WARN, 4 FAIL, "
        f"{sum(s == UNKNOWN for s in statuses(rows).values())} UNKNOWN"
    )


def test_audit_logging_left_to_the_stack_is_a_warning_until_deployed(tmp_path: Path, aws: None) -> None:
    create_cluster("later", ("api",))
    config = write_config(tmp_path, {REGION: ["later"]}, defaults={"enable_audit_logging": True})
    result = run_check(config, "--json")
    assert result.exit_code == 0, result.stdout
    document = json.loads(result.stdout)
    rows = {(c["cluster"], c["name"]): c for c in document["checks"]}
    assert rows["later", "audit logging"]["status"] == WARN
    assert "turns it on when deployed" in rows["later", "audit logging"]["detail"]
    assert rows["later", "log group"]["status"] == WARN
    assert document["ok"] is True


# ---- deployed ------------------------------------------------------------------------------------------------------


def test_deployed_and_delivering(tmp_path: Path, aws: None) -> None:
    create_cluster("prod", ("audit", "api"))
    create_log_group("prod", ("eksight-audit", "datadog"))
    deploy_stacks()
    now = datetime.now(UTC)
    put_archive_object("prod", now)
    config = write_config(tmp_path, {REGION: ["prod"]})
    result = run_check(config, "--json")
    document = json.loads(result.stdout)
    rows = {(c["cluster"] or c["region"] or "-", c["name"]): c for c in document["checks"]}
    assert {key: row["status"] for key, row in rows.items()} == {
        ("-", "credentials"): OK,
        ("-", "deploy permissions"): UNKNOWN,
        (REGION, "stack eksight-ingestion-eu-west-1"): OK,
        (REGION, "stack eksight-detection-eu-west-1"): OK,
        ("prod", "cluster"): OK,
        ("prod", "audit logging"): OK,
        ("prod", "log group"): OK,
        ("prod", "subscription slot"): OK,
        ("prod", "delivery"): OK,
    }
    assert rows["prod", "subscription slot"]["detail"] == "eksight's filter 'eksight-audit' in place (used by datadog)"
    assert rows["prod", "delivery"]["detail"].startswith(
        "1 object(s) in the last 24 h under s3://eksight-archive-euw1/audit/account=123456789012/region=eu-west-1/"
        "cluster=prod/"
    )
    assert result.exit_code == 0 and document["ok"] is True
    # the progress of the AWS calls goes to stderr (a spinner on a terminal), stdout stays pure JSON
    assert "Checking 1 cluster(s) in 1 region(s)… done in " in result.stderr


def test_deployed_but_silent(tmp_path: Path, aws: None) -> None:
    create_cluster("prod", ("audit",))
    create_log_group("prod", ("datadog",))  # eksight's filter is gone
    deploy_stacks()
    put_archive_object("prod", datetime.now(UTC))
    from eksight.config import load

    later = datetime.now(UTC) + timedelta(days=2)  # the stack is old by then, and the object is two days old
    rows = {
        (r.cluster, r.name): r
        for r in checks.run_checks(load(write_config(tmp_path, {REGION: ["prod"]})), clients, now=later)
    }
    assert rows["prod", "subscription slot"].status == FAIL
    assert "eksight's filter 'eksight-audit' is missing" in rows["prod", "subscription slot"].detail
    assert rows["prod", "delivery"].status == FAIL
    assert rows["prod", "delivery"].detail.startswith("no objects in the last 24 h")
    soon = {
        (r.cluster, r.name): r
        for r in checks.run_checks(
            load(tmp_path / "eksight.config.json"), clients, now=datetime.now(UTC) + timedelta(minutes=5)
        )
    }
    assert soon["prod", "delivery"].status == OK  # the object is recent: today's partition is listed


def test_a_brand_new_stack_gets_time_to_deliver(aws: None) -> None:
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket="empty-archive", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    now = datetime.now(UTC)
    fresh = checks.check_delivery(
        clients("s3", REGION),
        REGION,
        "prod",
        account=ACCOUNT,
        bucket="empty-archive",
        now=now,
        stack_created=now - timedelta(minutes=10),
    )
    old = checks.check_delivery(
        clients("s3", REGION),
        REGION,
        "prod",
        account=ACCOUNT,
        bucket="empty-archive",
        now=now,
        stack_created=now - timedelta(days=3),
    )
    assert (fresh.status, old.status) == (WARN, FAIL)


def test_a_failed_stack_fails(aws: None) -> None:
    class RolledBack:
        def describe_stacks(self, StackName: str) -> dict[str, Any]:
            return {
                "Stacks": [
                    {
                        "StackName": StackName,
                        "StackStatus": "ROLLBACK_COMPLETE",
                        "StackStatusReason": "The following resource(s) failed to create: [Bucket]",
                    }
                ]
            }

    row, state = checks.check_stack(RolledBack(), REGION, "eksight-ingestion-eu-west-1", "deploy")
    assert (row.status, state.deployed) == (FAIL, True)
    assert "failed to create" in row.detail


# ---- --fix -------------------------------------------------------------------------------------------------------


def enabled(cluster: str) -> set[str]:
    settings = boto3.client("eks", region_name=REGION).describe_cluster(name=cluster)["cluster"]["logging"]
    return {t for s in settings["clusterLogging"] if s["enabled"] for t in s["types"]}


def test_fix_turns_on_audit_and_keeps_the_other_types(tmp_path: Path, aws: None, eks_semantics: str) -> None:
    create_cluster("prod", ("api", "authenticator"))
    create_log_group("prod")
    create_cluster("fresh")  # nothing enabled, no log group yet
    create_cluster("done", ("audit", "scheduler"))
    create_log_group("done")
    config = write_config(tmp_path, {REGION: ["prod", "fresh", "done"]})
    result = run_check(config, "--fix", "--yes")

    assert enabled("prod") == {"api", "authenticator", "audit"}
    assert enabled("fresh") == {"audit"}
    assert enabled("done") == {"audit", "scheduler"}  # untouched
    assert "prod (eu-west-1): audit logging on" in result.stdout
    assert "done (eu-west-1)" not in result.stdout  # nothing to do there
    rows = table(result.stdout)
    assert rows["prod", "audit logging"] == OK  # the table after --fix is the re-check
    assert rows["fresh", "log group"] == WARN  # EKS creates it a few minutes after logging is on
    assert result.exit_code == 0, result.stdout


def test_fix_asks_first_and_no_changes_nothing(tmp_path: Path, aws: None) -> None:
    create_cluster("prod", ("api",))
    create_log_group("prod")
    config = write_config(tmp_path, {REGION: ["prod"]})
    declined = run_check(config, "--fix", input="n\n")
    assert "Turn on the EKS audit log type of prod (eu-west-1)? Other log types stay as they are." in declined.stdout
    assert "Nothing changed." in declined.stdout
    assert enabled("prod") == {"api"}
    assert declined.exit_code == 1  # audit logging is still off
    accepted = run_check(config, "--fix", input="y\n")
    assert enabled("prod") == {"api", "audit"}
    assert accepted.exit_code == 0, accepted.stdout


def test_waiting_for_the_update_is_bounded() -> None:
    class Pending:
        def describe_update(self, name: str, updateId: str) -> dict[str, Any]:
            return {"update": {"status": "InProgress"}}

        def describe_cluster(self, name: str) -> dict[str, Any]:
            return {"cluster": {"logging": {"clusterLogging": []}}}

    slept: list[float] = []
    problem = checks.wait_for_audit_logging(Pending(), "prod", "u-1", timeout=60, poll=15, sleep=slept.append)
    assert problem == "still not on after 60 s (update u-1)"
    assert slept == [15, 15, 15, 15]

    class Failed(Pending):
        def describe_update(self, name: str, updateId: str) -> dict[str, Any]:
            return {"update": {"status": "Failed", "errors": [{"errorMessage": "AccessDenied on logs"}]}}

    assert checks.wait_for_audit_logging(Failed(), "prod", "u-1", sleep=slept.append) == (
        "update failed: AccessDenied on logs"
    )


# ---- the caller -----------------------------------------------------------------------------------------------


class StubIam:
    """iam:SimulatePrincipalPolicy answering from a set of allowed actions."""

    def __init__(self, allowed: set[str], roles: dict[str, str] | None = None) -> None:
        self.allowed, self.roles, self.calls = allowed, roles or {}, []

    def get_role(self, RoleName: str) -> dict[str, Any]:
        return {"Role": {"Arn": self.roles[RoleName]}}

    def get_paginator(self, _name: str) -> Any:
        stub = self

        class Paginator:
            def paginate(self, PolicySourceArn: str, ActionNames: list[str], **kwargs: Any) -> list[dict[str, Any]]:
                stub.calls.append((PolicySourceArn, ActionNames, kwargs.get("ResourceArns")))
                return [
                    {
                        "EvaluationResults": [
                            {"EvalActionName": a, "EvalDecision": "allowed" if a in stub.allowed else "implicitDeny"}
                            for a in ActionNames
                        ]
                    }
                ]

        return Paginator()


def test_permissions_of_an_assumed_role_are_simulated_on_the_role() -> None:
    iam = StubIam(set(checks.DEPLOY_ACTIONS), roles={"Deployer": "arn:aws:iam::111122223333:role/ci/Deployer"})
    identity = {"Account": "111122223333", "Arn": "arn:aws:sts::111122223333:assumed-role/Deployer/session-1"}
    row = checks.check_permissions(iam, identity, [REGION])
    assert row.status == OK
    assert iam.calls[0][0] == "arn:aws:iam::111122223333:role/ci/Deployer"  # the role's ARN, with its path


def test_permissions_through_bootstrap_roles_or_denied() -> None:
    identity = {"Account": "111122223333", "Arn": "arn:aws:iam::111122223333:user/dev"}
    via_cdk = StubIam({"sts:AssumeRole"})
    assert checks.check_permissions(via_cdk, identity, [REGION, OTHER_REGION]).status == OK
    assert via_cdk.calls[1][2] == [
        f"arn:aws:iam::111122223333:role/cdk-hnb659fds-deploy-role-111122223333-{r}" for r in (REGION, OTHER_REGION)
    ]
    denied = checks.check_permissions(StubIam({"s3:CreateBucket"}), identity, [REGION], audit_logging=True)
    assert denied.status == FAIL
    assert "eks:UpdateClusterConfig" in denied.detail and "s3:CreateBucket" not in denied.detail


def test_permissions_simulation_refused_is_unknown(aws: None) -> None:
    identity = boto3.client("sts").get_caller_identity()
    row = checks.check_permissions(boto3.client("iam"), identity, [REGION])
    assert row.status == UNKNOWN
    assert "could not simulate" in row.detail


def test_the_config_account_must_match_the_credentials(tmp_path: Path, aws: None) -> None:
    create_cluster("prod", ("audit",))
    create_log_group("prod")
    result = run_check(write_config(tmp_path, {REGION: ["prod"]}, account="111122223333"))
    assert result.exit_code == 1
    assert "the config targets account 111122223333, these credentials are for 123456789012" in result.stdout


# ---- exit codes without AWS -------------------------------------------------------------------------------------


def test_invalid_config_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"mars-east-1": ["prod"]})
    result = run_check(config)
    assert result.exit_code == 2
    assert "regions.mars-east-1: unknown AWS region" in result.stderr
    as_json = run_check(config, "--json")
    assert as_json.exit_code == 2 and "unknown AWS region" in json.loads(as_json.stdout)["error"]


def test_no_credentials_exits_2_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = run_check(write_config(tmp_path, {REGION: ["prod"]}))
    assert result.exit_code == 2
    assert "no working AWS credentials" in result.stderr
    as_json = run_check(write_config(tmp_path, {REGION: ["prod"]}), "--json")
    assert as_json.exit_code == 2
    document = json.loads(as_json.stdout)  # --json always prints JSON, also when the checks could not run
    assert document["ok"] is False and "no working AWS credentials" in document["error"]
    assert document["checks"] == []


def test_a_missing_config_names_this_commands_flag(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    for extra in ((), ("--json",)):
        result = run_check(missing, *extra)
        assert result.exit_code == 2
        assert "pass --config PATH" in result.stderr and "-c config=" not in result.stderr
    assert json.loads(result.stdout)["error"].startswith(f"eksight check: {missing} not found")


# ---- suppressions in the config ---------------------------------------------------------------------------------------


def test_expired_suppressions_are_reported_with_commands_that_renew_or_remove_them(tmp_path: Path, aws: None) -> None:
    from eksight.config import load

    suppressions = [
        {"rule": "EKS-301", "principal": "alice", "reason": "node debugging", "expires": "2026-12-01"},
        {"rule": "EKS-102", "namespace": "ci", "reason": "CI deploys", "expires": "2027-06-01"},
    ]
    config = write_config(tmp_path, {REGION: ["ghost"]}, detection={"suppressions": suppressions})
    now = datetime(2026, 12, 7, tzinfo=UTC)

    rows = [r for r in checks.run_checks(load(config), clients, now=now, config_hint=str(config)) if not r.region]
    expired = [r for r in rows if r.name == "suppression expired"]
    assert len(expired) == 1 and expired[0].status == WARN
    assert "EKS-301 principal=alice expired on 2026-12-01" in expired[0].detail
    renew = re.search(r"renew: (eksight suppress .*?) ; or remove: (eksight suppress .*?) ;", expired[0].fix)
    assert renew, expired[0].fix

    # The printed commands work as printed (with a new date filled in): renewed, the entry is active again.
    import shlex

    command = shlex.split(renew.group(1).replace("YYYY-MM-DD", "2027-03-01"))[2:]
    result = CliRunner().invoke(main, ["suppress", *command, "--today", "2026-12-07"])
    assert result.exit_code == 0, result.output
    renewed = checks.check_suppressions(load(config).file.detection, now.date(), str(config))
    assert [(r.name, r.status, r.detail) for r in renewed] == [("suppressions", OK, "2 active, none expired")]
    removed = CliRunner().invoke(main, ["suppress", *shlex.split(renew.group(2))[2:]])
    assert removed.exit_code == 0, removed.output
    assert [s.rule for s in load(config).file.detection.suppressions] == ["EKS-102"]


def test_no_suppression_row_without_suppressions(tmp_path: Path) -> None:
    from eksight.core.detection_options import DetectionOptions

    assert checks.check_suppressions(DetectionOptions(), datetime(2026, 12, 7, tzinfo=UTC).date(), "c.json") == []
