"""`eksight replay` end to end on real fixtures, through the click command."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from eksight.tools.cli import main

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
needs_datasets = pytest.mark.skipif(not DATASETS.is_dir(), reason="../shared/datasets is not beside the checkout")


@needs_datasets
def test_replay_writes_findings_and_a_summary(tmp_path: Path) -> None:
    out, rejected = tmp_path / "findings.jsonl", tmp_path / "rejected.jsonl"
    result = CliRunner().invoke(
        main,
        [
            "replay",
            str(DATASETS / "falco-k8s-audit"),
            "--cluster",
            "lab",
            "--account",
            "111122223333",
            "--region",
            "eu-west-1",
            "-o",
            str(out),
            "--quarantine",
            str(rejected),
        ],
    )
    assert result.exit_code == 0, result.output
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert findings and all(f["cluster"] == "lab" and f["account"] == "111122223333" for f in findings)
    assert any(f["rule_id"] == "EKS-301" and f["resources"] for f in findings)  # privileged pod traces
    quarantined = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert any("fal_01_003.json" in q["source"] for q in quarantined)  # the malformed trace, kept with its reason
    assert "eksight replay:" in result.stderr and "quarantined" in result.stderr


@needs_datasets
def test_min_severity_filters_the_output(tmp_path: Path) -> None:
    out = tmp_path / "high.jsonl"
    result = CliRunner().invoke(
        main, ["replay", str(DATASETS / "falco-k8s-audit"), "--min-severity", "high", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    severities = {json.loads(line)["severity"] for line in out.read_text().splitlines()}
    assert severities and severities <= {"HIGH", "CRITICAL"}


@needs_datasets
def test_cloudwatch_objects_carry_their_cluster_without_flags(tmp_path: Path) -> None:
    out = tmp_path / "f.jsonl"
    labels = json.loads((DATASETS / "dev-scenarios" / "labels.json").read_text())
    result = CliRunner().invoke(
        main, ["replay", str(DATASETS / "dev-scenarios" / "cwl" / "part-00010.gz"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert findings and {(f["cluster"], f["account"]) for f in findings} == {(labels["cluster"], labels["account"])}


def test_missing_paths_are_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 2 and "no such file or directory" in result.output


def test_unreadable_inputs_fail_with_the_reason(tmp_path: Path) -> None:
    good = tmp_path / "logs" / "a.jsonl.gz"
    good.parent.mkdir()
    good.write_bytes(gzip.compress(b""))
    (tmp_path / "logs" / "broken.jsonl").symlink_to(tmp_path / "gone.jsonl")
    result = CliRunner().invoke(main, ["replay", str(tmp_path / "logs")])
    assert result.exit_code == 1
    assert "could not read" in result.output and "broken.jsonl" in result.output


@needs_datasets
def test_config_allow_lists_silence_exactly_what_they_name(tmp_path: Path) -> None:
    trace = DATASETS / "falco-k8s-audit" / "exec_pod.json"

    def rules_fired(*extra: str) -> set[str]:
        out = tmp_path / "f.jsonl"
        result = CliRunner().invoke(main, ["replay", str(trace), "-o", str(out), *extra])
        assert result.exit_code == 0, result.output
        return {json.loads(line)["rule_id"] for line in out.read_text().splitlines()}

    assert "EKS-110" in rules_fired()
    user = json.loads(trace.read_text().splitlines()[0])["user"]["username"]
    config = tmp_path / "eksight.config.json"
    config.write_text(
        json.dumps(
            {
                "regions": {"us-east-1": {"clusters": ["lab"]}},
                "detection": {"rule_allow": {"EKS-110": {"principals": [user]}}},
            }
        )
    )
    assert "EKS-110" not in rules_fired("--config", str(config))
    config.write_text(
        json.dumps(
            {
                "regions": {"us-east-1": {"clusters": ["lab"]}},
                "detection": {"rule_allow": {"EKS-999": {"principals": [user]}}},
            }
        )
    )
    result = CliRunner().invoke(main, ["replay", str(trace), "--config", str(config)])
    assert result.exit_code == 1 and "unknown rule id EKS-999" in result.output
