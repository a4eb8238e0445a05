"""Helpers for the Lambda handler tests: load a handler module fresh (after the environment is set, so its
module-scope clients are created inside moto), a Lambda context, and the EMF metric blobs Powertools prints."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksight.tools.emulator.handlers import load_handler  # noqa: F401 - the handler tests import it from here

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@dataclass
class LambdaContext:
    function_name: str = "eksight-detector"
    region: str = "us-east-1"
    account: str = "123456789012"
    partition: str = "aws"
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/eksight-detector"
    log_stream_name: str = "2026/11/26/[$LATEST]0123456789abcdef"
    remaining_ms: int = 300_000

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def emf_blobs(stdout: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format objects among the printed lines (Logger lines are skipped)."""
    blobs = []
    for line in stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and "_aws" in value:
            blobs.append(value)
    return blobs


def metric_totals(blobs: list[dict[str, Any]]) -> dict[str, float]:
    """Metric name → sum of its values over the blobs (EMF keeps repeated values of one metric as a list)."""
    totals: dict[str, float] = {}
    for blob in blobs:
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + (
                    sum(value) if isinstance(value, list) else value
                )
    return totals


def metric_values(blobs: list[dict[str, Any]], name: str) -> list[float]:
    values: list[float] = []
    for blob in blobs:
        if name in blob:
            value = blob[name]
            values.extend(value if isinstance(value, list) else [value])
    return values
