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


@pytest.mark.parametrize("where", ["a directory", "in a missing directory"])
def test_output_paths_are_checked_before_any_work(tmp_path: Path, where: str) -> None:
    logs = tmp_path / "audit.jsonl"
    logs.write_text('{"kind":"Event"}\n')
    target = tmp_path if where == "a directory" else tmp_path / "missing" / "findings.jsonl"
    for option in ("-o", "--quarantine"):
        result = CliRunner().invoke(main, ["replay", str(logs), option, str(target)])
        assert result.exit_code == 2, result.output
        assert option in result.stderr and "Traceback" not in result.output
        assert "eksight replay:" not in result.stderr  # refused before decoding anything


@pytest.mark.parametrize(
    ("content", "seen"),
    [(b"", "the inputs are empty"), (bytes(range(256)) * 20, "invalid_json=1")],
)
def test_inputs_without_audit_events_exit_3_naming_what_was_read(tmp_path: Path, content: bytes, seen: str) -> None:
    logs = tmp_path / "logs.jsonl"
    logs.write_bytes(content)
    result = CliRunner().invoke(main, ["replay", str(logs), "-o", str(tmp_path / "f.jsonl")])
    assert result.exit_code == 3, result.output
    assert "no audit events found" in result.stderr and seen in result.stderr
    assert f"{len(content):,} bytes read" in result.stderr


def test_exit_codes_are_documented_in_help() -> None:
    text = CliRunner().invoke(main, ["replay", "--help"]).output
    assert "3 no audit event found" in " ".join(text.split())


@needs_datasets
def test_findings_without_a_cluster_warn_and_name_the_flag(tmp_path: Path) -> None:
    trace = DATASETS / "falco-k8s-audit" / "exec_pod.json"
    out = tmp_path / "f.jsonl"
    bare = CliRunner().invoke(main, ["replay", str(trace), "-o", str(out)])
    assert bare.exit_code == 0, bare.output
    unnamed = [f for f in map(json.loads, out.read_text().splitlines()) if f["cluster"] == "unknown"]
    assert unnamed and f"warning: {len(unnamed)} finding(s) name no cluster" in bare.stderr
    assert "--cluster NAME" in bare.stderr
    named = CliRunner().invoke(main, ["replay", str(trace), "--cluster", "lab", "-o", str(out)])
    assert named.exit_code == 0 and "warning" not in named.stderr


@needs_datasets
def test_raw_files_kept_under_their_log_group_name_their_cluster(tmp_path: Path) -> None:
    kept = tmp_path / "aws" / "eks" / "lab" / "cluster" / "exec_pod.json"
    kept.parent.mkdir(parents=True)
    kept.write_bytes((DATASETS / "falco-k8s-audit" / "exec_pod.json").read_bytes())
    out = tmp_path / "f.jsonl"
    result = CliRunner().invoke(main, ["replay", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 0 and "warning" not in result.stderr, result.output
    findings = [json.loads(line) for line in out.read_text().splitlines()]
    assert findings and {f["cluster"] for f in findings} == {"lab"}
    assert all("in cluster lab" in f["description"] for f in findings)


def test_no_color_removes_the_colours(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    args = ["replay", str(empty), "-o", str(tmp_path / "f.jsonl")]
    coloured = CliRunner().invoke(main, args, color=True, env={"NO_COLOR": ""})
    plain = CliRunner().invoke(main, args, color=True, env={"NO_COLOR": "1"})
    assert coloured.exit_code == plain.exit_code == 3
    assert "\x1b[" in coloured.stderr and "\x1b[" not in plain.stderr
    assert "no audit events found" in plain.stderr


@needs_datasets
def test_a_replay_of_a_few_seconds_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    import os
    import sys

    import pexpect

    root = Path(__file__).resolve().parents[2]
    audit = DATASETS / "dev-scenarios" / "audit.jsonl.gz"  # 9.7 MB of gzip: several seconds of work
    child = pexpect.spawn(
        sys.executable,
        ["-m", "eksight.tools.cli", "replay", str(audit), "-o", str(tmp_path / "f.jsonl")],
        env={**os.environ, "PYTHONPATH": str(root)},
        cwd=str(root),
        encoding="utf-8",
        timeout=120,
    )
    child.expect(r"replay: +[\d.]+k? records")  # the bar, redrawn while the records are processed
    child.expect("eksight replay: ")  # then the summary
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
