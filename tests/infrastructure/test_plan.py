"""The deploy summary (`make synth` / `make demo`) describes what the templates really contain."""

from __future__ import annotations

from pathlib import Path

import pytest

from eksight.tools import plan
from stacks.app_builder import synthesize

ROOT = Path(__file__).resolve().parents[2]


def test_summary_of_the_multi_region_example(tmp_path: Path) -> None:
    synthesize(ROOT / "examples" / "multi-region.json", tmp_path)

    all_plans = {p.name: p for p in plan.load_plans(tmp_path)}
    assert set(all_plans) == {
        "eksight-ingestion-us-east-1",
        "eksight-ingestion-eu-west-1",
        "eksight-detection-us-east-1",
        "eksight-detection-eu-west-1",
    }
    plans = {name: p for name, p in all_plans.items() if "-ingestion-" in name}
    byo, new = plans["eksight-ingestion-us-east-1"], plans["eksight-ingestion-eu-west-1"]
    assert byo.clusters == ["prod-api", "prod-batch", "staging"]
    assert new.clusters == ["eu-prod", "eu-batch", "eu-staging"]
    lines = {stack: dict(p.lines) for stack, p in plans.items()}
    assert lines[byo.name]["bucket"].startswith("existing bucket acme-security-eks-audit-use1")
    assert "existing KMS key arn:aws:kms:us-east-1:111122223333:key/" in lines[byo.name]["key"]
    assert lines[new.name]["bucket"] == (
        "new, KMS, versioned, expire after 400 d, GLACIER_IR after 30 d, access logs to a separate bucket"
    )
    assert lines[new.name]["key"] == "new KMS key, rotation every 365 d, deletion window 14 d"
    assert "enabled by this stack" in lines[new.name]["clusters"]
    assert "must already be on" in lines[byo.name]["clusters"]
    streams = [text for label, text in new.lines if label == "stream"]
    assert len(streams) == 3 and all(
        "[60 s / 16 MiB, Decompression+AppendDelimiterToRecord, GZIP]" in s for s in streams
    )
    assert new.resource_counts["AWS::Logs::SubscriptionFilter"] == 3
    detection = {stack: dict(p.lines) for stack, p in all_plans.items() if "-detection-" in stack}
    eu = [text for label, text in all_plans["eksight-detection-eu-west-1"].lines if label == "route"]
    assert eu == [
        "HIGH/CRITICAL → SQS queue → Lambda eksight-securityhub-forwarder",
        "MEDIUM/HIGH/CRITICAL → alert topic (readable text)",
        "every finding → event bus arn:aws:events:us-east-1:999988887777:event-bus/security-findings",
    ]
    us = detection["eksight-detection-us-east-1"]
    assert us["detector"] == ("python3.12 x86_64, 1024 MB, 300 s, unreserved; SQS batches of 5 (≤ 10 s), learning 7 d")
    assert us["baselines"].startswith(
        "DynamoDB, pay-per-request, key pk/sk, point-in-time recovery, TTL on "
        "expires_at, KMS arn:aws:kms:us-east-1:111122223333:key/"
    )
    assert us["bus"] == "custom EventBridge bus, archive kept 90 d"
    assert "alerts" not in us and us["alarms"] == "7 CloudWatch alarms (0 notify SNS), 1 dashboard"
    assert detection["eksight-detection-eu-west-1"]["alerts"] == "new SNS topic, KMS, 1 email subscription(s)"
    assert all_plans["eksight-detection-eu-west-1"].clusters == []
    text = plan.render(list(all_plans.values()), plan.deploy_command("examples/multi-region.json"))
    assert text.endswith(
        "4 stack(s). Deploy all with `npx cdk deploy --all -c config=examples/multi-region.json` "
        "(one: `npx cdk deploy -c config=examples/multi-region.json STACK`)."
    )


def test_the_printed_deploy_command_names_the_config_or_the_assembly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert plan.deploy_command("my configs/prod.json") == "npx cdk deploy --all -c config='my configs/prod.json'"
    assert plan.deploy_command(None, "cdk.out") == "npx cdk deploy --all --app cdk.out"
    (tmp_path / "manifest.json").write_text('{"artifacts": {}}')  # no stacks: the summary is the command line
    assert plan.main([str(tmp_path), "eksight.config.json"]) == 0
    assert "`npx cdk deploy --all -c config=eksight.config.json`" in capsys.readouterr().out


def test_values_imported_from_another_stack_read_as_imports() -> None:
    from eksight.tools.plan import _text

    assert _text({"Fn::ImportValue": "eksight-ingestion-eu-west-1:ArchiveKeyArn"}) == (
        "${import eksight-ingestion-eu-west-1:ArchiveKeyArn}"
    )


def test_the_plan_lists_the_packaged_suppressions_and_network_lists(tmp_path: Path) -> None:
    from eksight.config import parse
    from stacks.constructs.detector_function import DETECTION_CONFIG_FILE, detection_config_json

    detection = parse(
        {
            "regions": {"us-east-1": {"clusters": ["prod"]}},
            "detection": {
                "threat_networks": ["198.51.100.0/24", "203.0.113.7"],
                "networks_object": {"bucket": "acme-intel", "key": "eksight/networks.json"},
                "suppressions": [
                    {"rule": "EKS-301", "principal": "alice", "reason": "node debugging", "expires": "2027-01-31"},
                    {"rule": "EKS-102", "all_principals": True, "reason": "lab cluster"},
                ],
            },
        }
    ).file.detection
    asset = tmp_path / "asset.abc123"
    asset.mkdir()
    (asset / DETECTION_CONFIG_FILE).write_text(detection_config_json(detection))
    detector = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Code": {"S3Bucket": "cdk-assets", "S3Key": "abc123.zip"},
            "Environment": {"Variables": {"STATE_TABLE": "t", "EKSIGHT_DETECTION_CONFIG": DETECTION_CONFIG_FILE}},
        },
    }
    template = {"Resources": {"Bus": {"Type": "AWS::Events::EventBus", "Properties": {}}, "Detector": detector}}

    lines = plan.describe("eksight-detection-us-east-1", "aws://1/us-east-1", template, tmp_path).lines
    assert [line for line in lines if line[0] in ("networks", "suppress")] == [
        ("networks", "2 threat, 0 trusted + s3://acme-intel/eksight/networks.json (read at cold start)"),
        ("suppress", "EKS-301 principal=alice (until 2027-01-31): node debugging"),
        ("suppress", "EKS-102 (all principals) (no expiry): lab cluster"),
    ]
    assert not [line for line in plan.describe("s", "e", template).lines if line[0] == "suppress"]  # no assembly
