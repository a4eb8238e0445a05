"""Detection the way the Lambda runs it: an audit log cut into archive objects like eksight's default Firehose
buffering (16 MiB or 60 s of event time), each object through `process_object` with one profile store and one
container's profile cache (or none: every changed profile written after every object). `eksight replay` instead
runs one detector over the whole log.

    python -m bench.per_object AUDIT.jsonl.gz -o FINDINGS.jsonl [--cluster C --account A --region R] [--no-cache]

Writes the latest total of every finding id published (what a consumer deduplicating on the id ends up with);
prints the profile store's reads and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
from pathlib import Path
from typing import Any

from bench.baselines_dynamodb import firehose_objects
from eksight.core.archive_object import process_object
from eksight.core.behaviour.cache import ProfileCache
from eksight.core.events import event_time, parse_event
from eksight.core.findings import Finding, to_json_line
from eksight.core.state import MemoryStateStore


class _Objects:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def open(self, key: str, version_id: str | None = None) -> Any:
        return contextlib.nullcontext(io.BytesIO(self.objects.pop(key)))


class _Latest:
    def __init__(self) -> None:
        self.findings: dict[str, Finding] = {}

    def publish(self, findings: Any) -> int:
        for finding in findings:
            self.findings[finding.id] = finding
        return len(findings)


def detect(
    lines: list[bytes], *, cluster: str, account: str, region: str, cache: bool = True
) -> tuple[list[Finding], MemoryStateStore]:
    store, reader, latest = MemoryStateStore(), _Objects(), _Latest()
    container = ProfileCache() if cache else None
    for index, (blob, _opened) in enumerate(firehose_objects(lines, parse_event, event_time)):
        key = f"audit/account={account}/region={region}/cluster={cluster}/object-{index}.jsonl"
        reader.objects[key] = blob
        process_object(reader, key, publisher=latest, baselines=store, profile_cache=container)
    return sorted(latest.findings.values(), key=lambda f: (f.first_seen, f.id)), store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("audit", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--cluster", default="cluster")
    parser.add_argument("--account", default="000000000000")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    lines = gzip.decompress(args.audit.read_bytes()).splitlines()
    findings, store = detect(
        lines, cluster=args.cluster, account=args.account, region=args.region, cache=not args.no_cache
    )
    args.output.write_bytes(b"".join(to_json_line(f) for f in findings))
    print(f"{len(findings)} findings; profile store: {store.reads} reads, {store.writes} writes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
