"""Shared fixtures: synthesizing configs the same way `cdk synth` does, offline."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"
EXAMPLES = ROOT / "examples"

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Never let a test reach real AWS: fake credentials and a default region for every boto3 client.
for name, value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ[name] = value


@cache
def _synth(config_path: str) -> dict[str, dict[str, Any]]:
    from stacks.app_builder import synthesize

    return synthesize(config_path)


@pytest.fixture(scope="session")
def synth() -> Callable[[str | Path], dict[str, dict[str, Any]]]:
    """synth(config_path) -> {stack name: CloudFormation template}; cdk-nag runs and must pass."""
    return lambda path: _synth(str(Path(path).resolve()))


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(content: dict[str, Any]) -> Path:
        path = tmp_path / f"config-{len(list(tmp_path.iterdir()))}.json"
        path.write_text(json.dumps(content))
        return path

    return write
