"""`make bench` end to end on tiny inputs (`python -m bench --smoke`): every benchmark runs (DynamoDB Local, fresh
interpreters for RSS and cold start), the last line carries every key, and the JSON says the same. Values are
checked for sanity only, never for speed."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import KEYS, ROOT, line
from bench.throughput import DATASET

pytestmark = pytest.mark.skipif(not DATASET.is_dir(), reason="the shared dev dataset is not present")


def test_bench_smoke_run_prints_the_summary_line_last(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    last = run.stdout.strip().splitlines()[-1]
    pairs = dict(pair.split("=", 1) for pair in last.split())
    assert tuple(pairs) == KEYS
    assert re.fullmatch(r"\$\d+\.\d{4}", pairs["cost_per_million"])
    values = {key: float(value.lstrip("$")) for key, value in pairs.items()}
    assert last == line(json.loads(out.read_text())["summary"])  # the JSON holds the same figures
    assert 0 < values["full_ratio"] <= values["throughput_ratio"] < 1  # detection is slower than a bare parse
    assert values["ev_per_s"] > 0 and values["cold_start_ms"] > 0
    assert 20 < values["rss_mb"] < 2000
    assert values["rru_per_1k"] >= 0 and 0 < values["wru_per_1k"] < 1000
    assert 0 < values["cost_per_million"] < 1.60  # below GuardDuty's list price even on tiny, noisy inputs
