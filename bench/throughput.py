"""Throughput of eksight's detection path against raw JSON parsing, on the same data, in the same run (machines
are noisy: compare the ratios, not the absolute numbers). Part of `make bench` (`python -m bench`).

    python -m bench.throughput [--limit N] [--repeats N]

throughput_ratio: the rules path (decode + detect, no baselines) over the raw typed parse (msgspec into
AuditEvent); full_ratio: rules + baselines (in-memory store, a warm profile cache, one batch per object) over
the same; both on the CloudWatch-envelope objects Firehose delivers.

floor_ratio: the least any reader of those objects must do (gunzip each object with the decompressor the detector
uses, split its CloudWatch envelopes with msgspec, typed-decode each message into AuditEvent: native code only, no
checks, no accounting) over the raw typed parse: the ceiling of throughput_ratio for a detector written in Python.

Data: the generated dev cluster in ../shared/datasets/dev-scenarios (105k EKS audit events), both as
JSON lines and as the CloudWatch-envelope objects Firehose delivers.
"""

from __future__ import annotations

import argparse
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

from eksight.core.archive_object import build_detector
from eksight.core.behaviour.cache import ProfileCache
from eksight.core.decode import decode_bytes
from eksight.core.decode.inflate import gzip_member
from eksight.core.events import AuditEvent, parse_event
from eksight.core.identity import clear_resolved, resolve_principal
from eksight.core.state import MemoryStateStore

DATASET = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "dev-scenarios"
REPEATS = 3


class _LogMessage(msgspec.Struct):
    message: str


class _Envelope(msgspec.Struct, rename="camel"):
    message_type: str
    log_events: list[_LogMessage] = []


def floor(objects: list[bytes]) -> Callable[[], int]:
    """The floor case: every audit event of the CloudWatch-envelope ``objects`` typed, with nothing else done."""
    envelope, typed = msgspec.json.Decoder(_Envelope), msgspec.json.Decoder(AuditEvent)

    def run() -> int:
        count = 0
        for data in objects:
            while data:  # one envelope per gzip member, as CloudWatch Logs hands them to Firehose
                member = gzip_member()
                text = member.decompress(data)
                data = member.unused_data
                parsed = envelope.decode(text)
                if parsed.message_type == "DATA_MESSAGE":
                    for log_event in parsed.log_events:
                        typed.decode(log_event.message)
                    count += len(parsed.log_events)
        return count

    return run


def best_of(run: Callable[[], int], repeats: int = REPEATS) -> tuple[float, int]:
    """Best wall time of `repeats` runs (the least disturbed by other load) and the item count."""
    best, count = float("inf"), 0
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        count = run()
        best = min(best, time.perf_counter() - start)
    return best, count


def measure(limit: int | None = None, repeats: int = REPEATS, echo: bool = True) -> dict[str, float]:
    """Events per second of each case, and the ratios; `limit`: the first N events only (a smoke run)."""
    jsonl = gzip.decompress((DATASET / "audit.jsonl.gz").read_bytes())
    lines = jsonl.splitlines()[:limit]
    jsonl_gz = gzip.compress(b"\n".join(lines), 1)
    cwl_parts = [p.read_bytes() for p in sorted((DATASET / "cwl").glob("part-*.gz"))]
    if limit is not None:
        cwl_parts = cwl_parts[:1]
    typed = msgspec.json.Decoder(AuditEvent)
    events = [parse_event(line) for line in lines]

    def resolve_all() -> int:
        clear_resolved()
        for event in events:
            resolve_principal(event)
        return len(events)

    def pipeline(blobs: list[bytes], source: str, baselines: bool = False) -> Callable[[], int]:
        def run() -> int:
            store, cache = (MemoryStateStore(), ProfileCache()) if baselines else (None, None)
            count = 0
            for i, blob in enumerate(blobs):  # one detector per object, as in the Lambda
                detector = build_detector(baselines=store, profile_cache=cache)
                detector.run(decode_bytes(blob, source=f"{source}-{i}"))
                detector.flush(f"{source}-{i}")
                count += detector.stats.events
            return count

        return run

    cases: list[tuple[str, Callable[[], int]]] = [
        ("json.loads per line", lambda: sum(1 for line in lines if json.loads(line))),
        ("orjson.loads per line", lambda: sum(1 for line in lines if orjson.loads(line))),
        ("msgspec typed decode per line", lambda: sum(1 for line in lines if typed.decode(line) is not None)),
        ("parse_event (typed + checks)", lambda: sum(1 for line in lines if parse_event(line) is not None)),
        ("resolve_principal (cold cache)", resolve_all),
        ("floor: gunzip+split+typed, cwl/", floor(cwl_parts)),
        ("decode+detect: audit.jsonl.gz", pipeline([jsonl_gz], "jsonl")),
        ("decode+detect: cwl/ envelopes", pipeline(cwl_parts, "cwl")),
        ("decode+detect+baselines: cwl/", pipeline(cwl_parts, "cwl", baselines=True)),
    ]
    results: dict[str, float] = {}
    say = print if echo else (lambda *args, **kwargs: None)
    say(f"{len(lines):,} events, {sum(map(len, lines)) / 1e6:.1f} MB of JSON; best of {repeats}")
    for name, run in cases:
        seconds, count = best_of(run, repeats)
        results[name] = count / seconds
        say(f"  {name:<34} {count / seconds:>12,.0f} events/s", flush=True)
    raw = results["msgspec typed decode per line"]
    stdlib = results["json.loads per line"]
    say("ratios (same run):")
    say(f"  orjson / json                       {results['orjson.loads per line'] / stdlib:.2f}x")
    say(f"  msgspec typed / json                {raw / stdlib:.2f}x")
    for name in ("decode+detect: audit.jsonl.gz", "decode+detect: cwl/ envelopes", "decode+detect+baselines: cwl/"):
        say(f"  {name} / raw typed parse   {results[name] / raw:.2f}")
    say(
        f"  floor (gunzip + split + typed decode) / raw typed parse   {results['floor: gunzip+split+typed, cwl/'] / raw:.2f}"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"peak RSS {peak:.0f} MB (includes the data held in memory)")
    return {
        "throughput_ratio": results["decode+detect: cwl/ envelopes"] / raw,
        "full_ratio": results["decode+detect+baselines: cwl/"] / raw,
        "ev_per_s": results["decode+detect+baselines: cwl/"],
        "raw_typed_ev_per_s": raw,
        "floor_ratio": results["floor: gunzip+split+typed, cwl/"] / raw,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, help="the first N events only")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args(argv)
    if not DATASET.is_dir():
        print(f"bench: {DATASET} not found (it ships with the shared datasets)", file=sys.stderr)
        return 2
    figures = measure(args.limit, args.repeats)
    if args.json:
        args.json.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
