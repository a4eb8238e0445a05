"""`make bench`: every benchmark in one run, then one summary line (the last line printed) and the same as JSON.

    python -m bench [--json test-artifacts/bench.json] [--smoke]

1. bench.throughput (in this process): the rules path and the full path (rules + baselines) against the raw typed
   parse of the same events: ratios, so machines compare.
2. bench.baselines_dynamodb (subprocess: DynamoDB Local): request units per 1,000 events at 100, 500 and 2,000
   simulated events/s with eksight's default buffering; the summary line uses 500 events/s.
3. bench.detector_object (fresh interpreters): peak RSS on a 100 MB archive object, cold start of the handler.
4. bench.cost: cost per million events from those figures and bench/prices.json.

--smoke: tiny inputs (seconds, not minutes) for the test suite; its figures only show that everything runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import cost, throughput

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_RATE = 500
KEYS = (
    "throughput_ratio",
    "full_ratio",
    "ev_per_s",
    "wru_per_1k",
    "rru_per_1k",
    "rss_mb",
    "cold_start_ms",
    "cost_per_million",
)


def run_module(module: str, *args: str) -> dict[str, Any]:
    """`python -m module args... --json FILE` in a fresh interpreter; its JSON output."""
    with tempfile.TemporaryDirectory() as temp:
        out = Path(temp) / "out.json"
        subprocess.run([sys.executable, "-m", module, *args, "--json", str(out)], cwd=ROOT, check=True)
        data: dict[str, Any] = json.loads(out.read_text())
        return data


def measure(smoke: bool = False) -> dict[str, Any]:
    began = time.perf_counter()
    speed = throughput.measure(limit=3000 if smoke else None, repeats=1 if smoke else throughput.REPEATS)
    rates: list[dict[str, Any]] = run_module(  # type: ignore[assignment]
        "bench.baselines_dynamodb", *(("--rates", str(SUMMARY_RATE), "--minutes", "0.2", "0.3") if smoke else ())
    )
    big = run_module("bench.detector_object", "--no-trace", *(("--mb", "2", "--cold-runs", "1") if smoke else ()))
    at_rate = next(r for r in rates if r["rate"] == SUMMARY_RATE)
    parts = sorted((throughput.DATASET / "cwl").glob("part-*.gz"))[: 1 if smoke else None]
    raw_bytes, payload_bytes, archive_bytes = cost.payload_bytes(p.read_bytes() for p in parts)
    inputs = cost.Measured(
        rate=SUMMARY_RATE,
        raw_bytes_per_event=raw_bytes,
        payload_bytes_per_event=payload_bytes,
        archive_bytes_per_event=archive_bytes,
        lambda_ms_per_event=big["ms_per_event"],
        wru_per_1k=at_rate["wru_per_1k"],
        rru_per_1k=at_rate["rru_per_1k"],
        findings_per_million=at_rate["findings"] / at_rate["events"] * 1e6,
        forwarded_per_million=at_rate["findings_high"] / at_rate["events"] * 1e6,
    )
    money = cost.summary(inputs)
    summary = {
        "throughput_ratio": speed["throughput_ratio"],
        "full_ratio": speed["full_ratio"],
        "ev_per_s": speed["ev_per_s"],
        "wru_per_1k": at_rate["wru_per_1k"],
        "rru_per_1k": at_rate["rru_per_1k"],
        "rss_mb": big["rss_mb"],
        "cold_start_ms": big["cold_start_ms"],
        "cost_per_million": money["cost_per_million"],
    }
    return {
        "summary": summary,
        "throughput": speed,
        "dynamodb": rates,
        "detector_object": big,
        "cost_inputs": money["measured"],
        "cost": money,
        "smoke": smoke,
        "seconds": time.perf_counter() - began,
    }


def line(summary: dict[str, float]) -> str:
    s = summary
    return (
        f"throughput_ratio={s['throughput_ratio']:.3f} full_ratio={s['full_ratio']:.3f} ev_per_s={s['ev_per_s']:.0f} "
        f"wru_per_1k={s['wru_per_1k']:.2f} rru_per_1k={s['rru_per_1k']:.2f} rss_mb={s['rss_mb']:.0f} "
        f"cold_start_ms={s['cold_start_ms']:.0f} cost_per_million=${s['cost_per_million']:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=ROOT / "test-artifacts" / "bench.json")
    parser.add_argument("--smoke", action="store_true", help="tiny inputs: checks that everything runs")
    args = parser.parse_args(argv)
    if not throughput.DATASET.is_dir():
        print(f"bench: {throughput.DATASET} not found (it ships with the shared datasets)", file=sys.stderr)
        return 2
    result = measure(args.smoke)
    money = result["cost"]
    print(
        f"cost per million audit events: eksight ${money['cost_per_million']:.4f}; CloudWatch Logs ingestion of the "
        f"audit logs (a prerequisite) ${money['cloudwatch_ingest_per_million']:.2f}; GuardDuty "
        f"${money['guardduty_per_million']:.2f}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(line(result["summary"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
