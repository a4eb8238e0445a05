"""What one big archive object costs the detector Lambda, and how long its cold start imports take.

    .venv/bin/python -m bench.detector_object [--mb 100] [--keep DIR] [--no-trace] [--cold-runs 5] [--json FILE]

1. Builds a CloudWatch-shaped archive object of about `--mb` MB uncompressed (newline-delimited DATA_MESSAGE
   envelopes, gzipped once, as Firehose stores them) from the dev-cluster dataset, repeated as needed with fresh
   auditIDs so the detector's per-request de-duplication does not discard the repeats.
2. In a fresh interpreter (so nothing of step 1 counts), runs `eksight.core.archive_object.process_object` over it with a
   local file reader, a publisher that only counts and no quarantine sink: wall time, peak RSS (getrusage) and,
   in a second fresh run, the peak of Python allocations (tracemalloc, which slows the run down).
3. Cold start: `import handler` of lambdas/detector in fresh interpreters (median of 5), with the environment the
   Lambda gets (clients are created, nothing is called), plus the biggest imports from `python -X importtime`.
   And what the first notification then waits for: `import handler` + one small object (one envelope, 200 events)
   through the handler's `process_object` (`first_object_ms` in the JSON), so that work the handler defers to its
   first object is counted, not hidden.
4. The deployed asset itself, when a python3.12 interpreter is at hand (stacks/constructs/lambda_package.py):
   `import handler` of the bundled detector asset with the runtime's Python and nothing written
   (`cold_start_asset_ms`), and the same while ignoring the asset's bytecode (`cold_start_asset_no_bytecode_ms`:
   what every cold start cost when assets shipped sources only).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eksight.core.findings import Finding

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT.parent / "shared" / "datasets" / "dev-scenarios" / "audit.jsonl.gz"
KEY = (
    "audit/account=828750217432/region=eu-north-1/cluster=prod-core-eks2/year=2024/month=09/day=15/hour=20/"
    "eksight-prod-core-eks2-1-2024-09-15-20-00-00-bench.gz"
)
PER_ENVELOPE = 200
HANDLER_ENV = {
    "FINDINGS_BUS_NAME": "eksight-findings",
    "ARCHIVE_BUCKET": "eksight-archive",
    "STATE_TABLE": "eksight-baselines",
    "POWERTOOLS_METRICS_NAMESPACE": "eksight",
    "POWERTOOLS_SERVICE_NAME": "eksight-detector",
    "AWS_REGION": "eu-north-1",
    "AWS_DEFAULT_REGION": "eu-north-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_LAMBDA_FUNCTION_NAME": "eksight-detector",
    # Set by Lambda: without it the X-Ray SDK (Powertools' Tracer) believes it runs outside Lambda and builds a
    # centralized-sampling X-Ray client at import, which the function never does.
    "LAMBDA_TASK_ROOT": str(ROOT / "lambdas" / "detector"),
}
SMALL_OBJECT_MB = 0.05  # one envelope of PER_ENVELOPE events


def build(path: Path, megabytes: float) -> tuple[int, int, int]:
    """Write the object; returns (uncompressed bytes, compressed bytes, events)."""
    lines = gzip.decompress(DATASET.read_bytes()).splitlines()
    target, written, events = int(megabytes * 1_000_000), 0, 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb", compresslevel=6) as sink:
        while written < target:
            for start in range(0, len(lines), PER_ENVELOPE):
                batch = []
                for line in lines[start : start + PER_ENVELOPE]:
                    event = json.loads(line)
                    event["auditID"] = str(uuid.uuid4())
                    stamp = event.get("stageTimestamp") or "2024-09-15T20:00:00.000000Z"
                    millis = int(time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) * 1000)
                    batch.append({"id": str(events), "timestamp": millis, "message": json.dumps(event)})
                    events += 1
                envelope = (
                    json.dumps(
                        {
                            "messageType": "DATA_MESSAGE",
                            "owner": "828750217432",
                            "logGroup": "/aws/eks/prod-core-eks2/cluster",
                            "logStream": "kube-apiserver-audit-1abdea6d0f764575b219b884cf596055",
                            "subscriptionFilters": ["eksight-audit"],
                            "logEvents": batch,
                        }
                    ).encode()
                    + b"\n"
                )
                sink.write(envelope)
                written += len(envelope)
                if written >= target:
                    break
    return written, path.stat().st_size, events


def measure(root: Path, trace: bool) -> dict[str, object]:
    """One process_object run (called in a fresh interpreter)."""
    import resource
    import tracemalloc

    from eksight.core.archive_object import LocalFileReader, process_object
    from eksight.core.state import MemoryStateStore

    class Counting:
        published = 0

        def publish(self, findings: Sequence[Finding]) -> None:
            self.published += len(findings)

    before = _vm("VmHWM")
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    # Baselines included (as in the Lambda), with the in-memory store: DynamoDB round trips are not measured here
    # (bench/baselines_dynamodb.py counts their capacity).
    result = process_object(LocalFileReader(root), KEY, publisher=Counting(), baselines=MemoryStateStore())
    seconds = time.perf_counter() - started
    out: dict[str, object] = {
        "seconds": seconds,
        "events": result.events,
        "records": result.records,
        "findings": result.published,
        "bytes_decoded": result.bytes_decoded,
        "rss_before_mb": before / 1024,
        "rss_peak_mb": _vm("VmHWM") / 1024,
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if trace:
        out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
    return out


def _vm(field: str) -> int:
    """A /proc/self/status figure in KiB (VmHWM: this process's peak RSS; unlike getrusage's ru_maxrss it is not
    inherited from the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def fresh(*args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    ).stdout


def handler_env(config: Path | None) -> dict[str, str]:
    """The detector's environment, with lambdas/detector as the code root (as in its asset)."""
    return {
        **HANDLER_ENV,
        "PYTHONPATH": f"{HANDLER_ENV['LAMBDA_TASK_ROOT']}{os.pathsep}{ROOT}",
        **({"EKSIGHT_DETECTION_CONFIG": str(config)} if config else {}),
    }


# What a container's first notification waits for: the cold start, then one object through the handler's
# process_object (the S3 reader replaced by a local one, baselines in memory; no AWS call is made).
FIRST_OBJECT = """
import sys, time
started = time.perf_counter()
import handler
from eksight.core.archive_object import LocalFileReader
from eksight.core.state import MemoryStateStore

class Discard:
    def publish(self, findings):
        return None

app = handler.app
handler.process_object(
    LocalFileReader(sys.argv[1]), sys.argv[2], publisher=Discard(), detection=app.detection,
    baselines=MemoryStateStore(), profile_cache=app.profiles,
)
print(time.perf_counter() - started)
"""


def first_object(root: Path, runs: int = 5, config: Path | None = None) -> float:
    """Median seconds of `import handler` + the small object under `root` at KEY, in fresh interpreters."""
    code = [FIRST_OBJECT, str(root), KEY]
    return statistics.median(float(fresh("-c", *code, env=handler_env(config))) for _ in range(runs))


def cold_start(runs: int = 5, config: Path | None = None) -> tuple[float, list[tuple[int, str]]]:
    """Median seconds of `import handler` in fresh interpreters, and the biggest cumulative imports of one run.
    `config`: an EKSIGHT_DETECTION_CONFIG file (as deployed), or none (eksight's defaults)."""
    env = handler_env(config)
    code = "import time; t = time.perf_counter(); import handler; print(time.perf_counter() - t)"
    times = [float(fresh("-c", code, env=env)) for _ in range(runs)]
    report = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import handler"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    ).stderr
    top: list[tuple[int, str]] = []
    for line in report.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _own, cumulative, name = line.split(":", 1)[1].split("|", 2)
            top.append((int(cumulative), name.strip()))
    wanted = (
        "handler",
        "aws_lambda_powertools",
        "boto3",
        "eksight.core.archive_object",
        "eksight.core.detector",
        "eksight.core.behaviour.analyzer",
        "numpy",
        "eksight.core.decode",
        "eksight.core.rules",
        "eksight.adapters.eventbridge",
        "aws_xray_sdk.core",
        "aws_lambda_powertools.utilities.idempotency",
        "aws_lambda_powertools.utilities.batch",
        "eksight.config",
        "pydantic",
        "msgspec",
    )
    return statistics.median(times), sorted((c, n) for c, n in top if n in wanted)[::-1]


def asset_cold_start(runs: int, config: Path) -> dict[str, float]:
    """Median ms of `import handler` in the bundled detector asset with the Lambda runtime's Python (read-only, as
    in Lambda: -B), with and without its bytecode; empty without such an interpreter."""
    from stacks.constructs.lambda_package import LambdaPackage, runtime_python

    python = runtime_python()
    if python is None:
        return {}
    code = "import time; t = time.perf_counter(); import handler; print(time.perf_counter() - t)"
    with tempfile.TemporaryDirectory() as temp:
        asset = Path(temp) / "asset"
        LambdaPackage("detector", extra_files={"detection.json": config.read_text()}).bundle(asset)
        env = {**HANDLER_ENV, "PATH": os.environ.get("PATH", ""), "LAMBDA_TASK_ROOT": str(asset)}
        env |= {"PYTHONPATH": str(asset), "EKSIGHT_DETECTION_CONFIG": "detection.json"}
        figures: dict[str, float] = {}
        for name, options in (("", ()), ("_no_bytecode", ("-X", f"pycache_prefix={temp}/none"))):
            times = [
                float(
                    subprocess.run(
                        [python, "-B", *options, "-c", code],
                        cwd=asset,
                        env=env,
                        check=True,
                        capture_output=True,
                        text=True,
                    ).stdout
                )
                for _ in range(runs)
            ]
            figures[f"cold_start_asset{name}_ms"] = statistics.median(times) * 1000
    return figures


def client_creation(runs: int = 3) -> float:
    """Seconds to create the handler's three clients as it does (after the imports), median of fresh interpreters."""
    code = (
        "import time, boto3; from eksight.adapters.botocore_session import botocore_session; "
        "t = time.perf_counter(); session = boto3.Session(botocore_session=botocore_session()); "
        "[session.client(n) for n in ('s3', 'events', 'dynamodb')]; print(time.perf_counter() - t)"
    )
    return statistics.median(float(fresh("-c", code, env=HANDLER_ENV)) for _ in range(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run")
    parser.add_argument("--cold-runs", type=int, default=5, help="fresh interpreters per cold-start median")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--keep", type=Path, help="build the object in DIR and keep it (default: a temp dir)")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.trace)))
        return 0
    if not DATASET.exists():
        print(f"bench: {DATASET} not found (it ships with the shared datasets)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as temp:
        root = args.keep or Path(temp)
        path = root / KEY
        if not path.exists():
            started = time.perf_counter()
            raw, packed, events = build(path, args.mb)
            print(
                f"object: {raw / 1e6:.1f} MB uncompressed, {packed / 1e6:.1f} MB gzip, {events:,} events "
                f"(built in {time.perf_counter() - started:.1f} s)"
            )
        packed = path.stat().st_size
        plain = json.loads(fresh("-m", "bench.detector_object", "--measure", str(root)))
        traced = (
            {} if args.no_trace else json.loads(fresh("-m", "bench.detector_object", "--measure", str(root), "--trace"))
        )
    print(
        f"process_object: {plain['seconds']:.1f} s, {plain['events']:,} events "
        f"({plain['events'] / plain['seconds']:,.0f}/s), {plain['findings']} findings, "
        f"{plain['bytes_decoded'] / 1e6:.1f} MB decoded"
    )
    traced_note = f"{traced['tracemalloc_peak_mb']:.0f} MB" if traced else "not measured"
    print(
        f"peak RSS: {plain['rss_peak_mb']:.0f} MB (VmHWM; interpreter + imports before the run: "
        f"{plain['rss_before_mb']:.0f} MB); peak Python allocations during the run (tracemalloc): {traced_note}"
    )
    print(
        f"cold start (import handler, median of {args.cold_runs} fresh interpreters; creating its 3 clients "
        f"alone: {client_creation() * 1000:.0f} ms):"
    )
    figures: dict[str, float] = {
        "rss_mb": plain["rss_peak_mb"],
        "events": plain["events"],
        "ms_per_event": plain["seconds"] / max(plain["events"], 1) * 1000,
        "object_bytes": packed,
    }
    with tempfile.TemporaryDirectory() as temp:
        small = Path(temp) / "small"
        build(small / KEY, SMALL_OBJECT_MB)
        config = Path(temp) / "detection.json"  # what the stack ships: the validated `detection` section
        config.write_text(
            json.dumps(
                {
                    "allow": {"principals": [], "namespaces": [], "images": []},
                    "rule_allow": {"EKS-100": {"principals": ["sa:monitoring/*"]}},
                }
            )
        )
        # The summary's cold_start_ms is the deployed case: the stack always ships a detection config.
        cases = (("no detection config", None, "_no_config"), ("with EKSIGHT_DETECTION_CONFIG", config, ""))
        for label, path, suffix in cases:
            median, top = cold_start(args.cold_runs, config=path)
            then_object = first_object(small, args.cold_runs, config=path)
            figures[f"cold_start{suffix}_ms"] = median * 1000
            figures[f"first_object{suffix}_ms"] = then_object * 1000
            print(
                f"  {label}: {median * 1000:.0f} ms (import + a first small object: {then_object * 1000:.0f} ms); "
                "cumulative imports (-X importtime, one run):"
            )
            for cumulative, name in top:
                print(f"    {cumulative / 1000:>7.0f} ms  {name}")
        asset = asset_cold_start(args.cold_runs, config)
        figures |= asset
        print(
            "  the bundled asset with the runtime's python3.12: "
            + (
                f"{asset['cold_start_asset_ms']:.0f} ms ({asset['cold_start_asset_no_bytecode_ms']:.0f} ms without "
                "its bytecode)"
                if asset
                else "not measured (no python3.12: set EKSIGHT_LAMBDA_PYTHON)"
            )
        )
    if args.json:
        args.json.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
