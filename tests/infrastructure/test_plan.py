"""The deploy summary (`make synth` / `make demo`) describes what the templates really contain."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from eksight.tools import plan
from stacks.app_builder import build_app, cdk_json_context

ROOT = Path(__file__).resolve().parents[2]


def test_summary_of_the_multi_region_example(tmp_path: Path) -> None:
    app = cdk.App(context=cdk_json_context(), outdir=str(tmp_path))
    build_app(app, ROOT / "examples" / "multi-region.json")
    app.synth()

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
    text = plan.render(list(all_plans.values()))
    assert text.endswith("4 stack(s). Deploy one with `npx cdk deploy STACK`, all with `npx cdk deploy --all`.")


def test_values_imported_from_another_stack_read_as_imports() -> None:
    from eksight.tools.plan import _text

    assert _text({"Fn::ImportValue": "eksight-ingestion-eu-west-1:ArchiveKeyArn"}) == (
        "${import eksight-ingestion-eu-west-1:ArchiveKeyArn}"
    )
