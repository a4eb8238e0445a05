"""The deploy summary (`make synth` / `make demo`) describes what the templates really contain."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk

from eksight import plan
from stacks.app_builder import build_app, cdk_json_context

ROOT = Path(__file__).resolve().parents[2]


def test_summary_of_the_multi_region_example(tmp_path: Path) -> None:
    app = cdk.App(context=cdk_json_context(), outdir=str(tmp_path))
    build_app(app, ROOT / "examples" / "multi-region.json")
    app.synth()

    plans = {p.name: p for p in plan.load_plans(tmp_path)}
    assert set(plans) == {"eksight-ingestion-us-east-1", "eksight-ingestion-eu-west-1"}
    byo, new = plans["eksight-ingestion-us-east-1"], plans["eksight-ingestion-eu-west-1"]
    assert byo.clusters == ["prod-api", "prod-batch", "staging"]
    assert new.clusters == ["eu-prod", "eu-batch", "eu-staging"]
    lines = {stack: dict(p.lines) for stack, p in plans.items()}
    assert lines[byo.name]["bucket"].startswith("existing bucket acme-security-eks-audit-use1")
    assert "existing KMS key arn:aws:kms:us-east-1:111122223333:key/" in lines[byo.name]["key"]
    assert lines[new.name]["bucket"] == ("new, KMS, versioned, expire after 400 d, GLACIER_IR after 30 d, "
                                         "access logs to a separate bucket")
    assert lines[new.name]["key"] == "new KMS key, rotation every 365 d, deletion window 14 d"
    assert "enabled by this stack" in lines[new.name]["clusters"]
    assert "must already be on" in lines[byo.name]["clusters"]
    streams = [text for label, text in new.lines if label == "stream"]
    assert len(streams) == 3 and all("[60 s / 16 MiB, Decompression+AppendDelimiterToRecord, GZIP]" in s
                                     for s in streams)
    assert new.resource_counts["AWS::Logs::SubscriptionFilter"] == 3
    text = plan.render(list(plans.values()))
    assert text.endswith("2 stack(s). Deploy one with `npx cdk deploy STACK`, all with `npx cdk deploy --all`.")
