"""Builds the CDK app from a config file, and synthesizes it offline; shared by app.py, the tests, the demo and
the setup tools (which all need the same context and checks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from eksight import config as config_module
from stacks.detection_stack import DetectionStack
from stacks.ingestion_stack import IngestionStack

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def build_app(app: cdk.App, config_path: str | Path, *, nag: bool = True) -> list[cdk.Stack]:
    """Per region, in this order: its IngestionStack, then the DetectionStack plugged into it."""
    path = Path(config_path)
    if not path.is_absolute():
        path = PROJECT_ROOT / path if not path.exists() else path
    deployment = config_module.load(path)
    stacks: list[cdk.Stack] = []
    for region in deployment.regions:
        ingestion = IngestionStack(app, region)
        detection = DetectionStack(
            app,
            region,
            bucket=ingestion.archive.bucket,
            key=ingestion.key.key,
            queue=ingestion.notifications.queue,
            dead_letter_queue=ingestion.notifications.dead_letter_queue,
        )
        stacks += [ingestion, detection]
    if nag:
        # Acknowledgements are also written into each resource's Metadata (cdk_nag.rules_to_suppress) as an
        # audit trail a reviewer can read in the template.
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))
    return stacks


def cdk_json_context() -> dict[str, object]:
    """The feature flags and defaults `cdk synth` would pass (plain Python apps don't read cdk.json)."""
    context: dict[str, object] = json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"]
    return context


def synthesize(config_path: str | Path, outdir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """{stack name: CloudFormation template} of a config, synthesized offline as `cdk synth` does (cdk.json's
    context; cdk-nag runs and an unacknowledged finding raises). The cloud assembly is written to outdir (a
    fresh temporary directory when None), where eksight.tools.plan can read it."""
    app = cdk.App(context=cdk_json_context(), outdir=str(outdir) if outdir is not None else None)
    stacks = build_app(app, config_path)
    assembly = app.synth()
    return {stack.stack_name: assembly.get_stack_by_name(stack.stack_name).template for stack in stacks}
