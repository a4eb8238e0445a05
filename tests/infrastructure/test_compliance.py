"""cdk-nag (AwsSolutions, v3 Validations API) and cfn-lint gate every example config."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from cfnlint.api import ManualArgs, lint

from stacks.app_builder import build_app, cdk_json_context
from stacks.constructs.nag import SHOW_ALL_FINDINGS
from tests.infrastructure.shared import region_of

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
Synth = Callable[[Any], dict[str, dict[str, Any]]]


def violations(
    config: Path, context: dict[str, Any], extend: Callable[[list[cdk.Stack]], None] = lambda _: None
) -> set[str]:
    """Synthesize with cdk-nag and return the ids of the findings that stopped synthesis."""
    app = cdk.App(context={**cdk_json_context(), **context})
    extend(build_app(app, config))
    try:
        app.synth()
    except RuntimeError as error:
        report_path = re.search(r"found in: (\S+)", str(error))
        assert report_path, error
        report = json.loads(Path(report_path.group(1)).read_text())
        return {v["ruleName"] for plugin in report["pluginReports"] for v in plugin["violations"]}
    return set()


def acknowledged(template: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for resource in template["Resources"].values():
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            found.setdefault(rule["id"], set()).add(rule["reason"])
    return found


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_examples_synthesize_with_zero_unacknowledged_nag_findings(config: Path, synth: Synth) -> None:
    assert synth(config)  # synthesis raises on any unacknowledged finding


def test_the_nag_gate_stops_an_insecure_resource() -> None:
    def add_sloppy_bucket(stacks: list[cdk.Stack]) -> None:
        s3.Bucket(stacks[0], "Sloppy")

    found = violations(ROOT / "examples" / "minimal.json", {}, add_sloppy_bucket)
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= found


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_every_acknowledgement_answers_a_real_finding_with_a_specific_reason(config: Path, synth: Synth) -> None:
    raw_findings = violations(config, {SHOW_ALL_FINDINGS: True})
    for template in synth(config).values():
        for rule, reasons in acknowledged(template).items():
            assert rule in raw_findings, f"stale acknowledgement {rule}"
            for reason in reasons:
                assert len(reason) >= 40 and "TODO" not in reason, reason


@pytest.mark.parametrize("config", EXAMPLES, ids=lambda p: p.name)
def test_cfn_lint_finds_nothing(config: Path, synth: Synth) -> None:
    for name, template in synth(config).items():
        region = region_of(name)
        # W3005: CDK adds a DependsOn next to a GetAtt on the same resource: redundant, harmless, not ours.
        matches = lint(json.dumps(template), config=ManualArgs(ignore_checks=["W3005"], regions=[region]))
        assert not matches, f"{name}: " + "\n".join(str(m) for m in matches)
