"""`make bench`: throughput of eksight's detection path against raw JSON parsing, on the same data, in
the same run (machines are noisy: compare the ratios, not the absolute numbers).

Data: the generated dev cluster in ../shared/datasets/dev-scenarios (105k EKS audit events), both as
JSON lines and as the CloudWatch-envelope objects Firehose delivers.
"""

from __future__ import annotations

import gc
import gzip
import json
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import orjson

from eksight.core.decode import decode_bytes
from eksight.core.detector import Detector
from eksight.core.events import AuditEvent, parse_event
from eksight.core.identity import _resolve, resolve_principal

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "dev-scenarios"
REPEATS = 3


def best_of(run: Callable[[], int]) -> tuple[float, int]:
    """Best wall time of REPEATS runs (the least disturbed by other load) and the item count."""
    best, count = float("inf"), 0
    for _ in range(REPEATS):
        gc.collect()
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def main() -> int:
    if not DATASET.is_dir():
        print(f"bench: {DATASET} not found (it ships with the shared datasets)", file=sys.stderr)
        return 2
    jsonl_gz = (DATASET / "audit.jsonl.gz").read_bytes()
    lines = gzip.decompress(jsonl_gz).splitlines()
    cwl_parts = [p.read_bytes() for p in sorted((DATASET / "cwl").glob("part-*.gz"))]
    typed = msgspec.json.Decoder(AuditEvent)
    events = [parse_event(line) for line in lines]

    def resolve_all() -> int:
        _resolve.cache_clear()
        for event in events:
            resolve_principal(event)
        return len(events)

    def pipeline(blobs: list[bytes], source: str) -> Callable[[], int]:
        def run() -> int:
            detector = Detector(cluster="bench")
            for i, blob in enumerate(blobs):
                detector.run(decode_bytes(blob, source=f"{source}-{i}"))
            return detector.stats.events

        return run

    cases: list[tuple[str, Callable[[], int]]] = [
        ("json.loads per line", lambda: sum(1 for line in lines if json.loads(line))),
        ("orjson.loads per line", lambda: sum(1 for line in lines if orjson.loads(line))),
        ("msgspec typed decode per line", lambda: sum(1 for line in lines if typed.decode(line) is not None)),
        ("parse_event (typed + checks)", lambda: sum(1 for line in lines if parse_event(line) is not None)),
        ("resolve_principal (cold cache)", resolve_all),
        ("decode+detect: audit.jsonl.gz", pipeline([jsonl_gz], "jsonl")),
        ("decode+detect: cwl/ envelopes", pipeline(cwl_parts, "cwl")),
    ]
    results = {}
    print(f"{len(lines):,} events, {len(gzip.decompress(jsonl_gz)) / 1e6:.1f} MB of JSON; best of {REPEATS}")
    for name, run in cases:
        seconds, count = best_of(run)
        results[name] = count / seconds
        print(f"  {name:<34} {count / seconds:>12,.0f} events/s")
    raw = results["msgspec typed decode per line"]
    print("ratios (same run):")
    stdlib = results["json.loads per line"]
    print(f"  orjson / json                       {results['orjson.loads per line'] / stdlib:.2f}x")
    print(f"  msgspec typed / json                {raw / stdlib:.2f}x")
    for name in ("decode+detect: audit.jsonl.gz", "decode+detect: cwl/ envelopes"):
        print(f"  {name} / raw typed parse   {results[name] / raw:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB (includes the data held in memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
