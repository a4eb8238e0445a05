"""DynamoDB cost of behavioural baselines and the finding ledger, counted in consumed capacity on DynamoDB Local.

A simulated cluster at a given rate (eksight.tools.simulator; about 0.3 audit events/s per unit of --scale) is cut
into archive objects the way Firehose cuts them (eksight's default buffering: 16 MiB or 60 s, whichever first).
Each object goes through what the detector Lambda does with it (`process_object`: rules, baselines with the
container's profile cache, the finding ledger) against a DynamoDB Local table. DynamoDB Local reports
ConsumedCapacity as DynamoDB computes it (1 WRU per KB written, 1 RRU per 4 KB strongly read, half that
eventually consistent), so units per 1,000 events are what an on-demand table bills.

Steady state, not a new deployment: the cluster is assumed to keep doing what it did. The warm-up (not counted)
is the simulated traffic (WARMUP + WINDOW minutes); the measured window is its last WINDOW minutes once more,
right after it (shifted in time, new auditIDs). So the table holds profiles that know the window's values, and
what the window writes is what a cluster repeating itself costs: maturity thresholds crossed, rates moving, the
hourly refresh. A new deployment costs more in its first hours (every profile and value is new: --no-history
measures the window as the simulated minutes after the warm-up). The window starts in a new container (an empty
cache). Counted per 1,000 events of the window:
  wru: the window's writes + its share (window / 1 h) of the hourly refresh of every deferred profile
       (measured: the write-back of all deferred profiles at the end of the window);
  rru: the window's reads, except that filling the empty cache (the first object's reads) counts once per hour
       (a container is assumed to live at least an hour at one object a minute).

    python -m bench.baselines_dynamodb [--rates 100,500,2000] [--json FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from eksight.core.events import AuditEvent

OBJECT_BYTES, OBJECT_SECONDS = 16 * 1024 * 1024, 60.0
EVENTS_PER_SECOND_PER_SCALE = 534 / 150  # measured with seed 17 (the simulator's rate is linear in --scale)
# event-time minutes (warm-up, measured window) per rate: enough objects, a bounded run time
WINDOWS = {100: (2.0, 6.0), 500: (1.0, 3.0), 2000: (0.5, 1.5)}
TABLE = "eksight-bench-baselines"


@dataclass
class RateResult:
    rate: int
    events: int
    objects: int
    items: int
    wru_window: float
    wru_refresh: float
    wru_ledger: float
    rru_window: float
    rru_cold_cache: float
    wru_per_1k: float
    rru_per_1k: float
    ledger_share: float
    deferred: int
    written: int
    findings: int  # published by the window's objects (every publication of a growing finding counts)
    findings_high: int  # of which HIGH or CRITICAL: what Security Hub gets by default (securityhub.min_severity)
    ev_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def measure(
    rate: int, warmup_minutes: float, window_minutes: float, *, cache: bool = True, history: bool = True
) -> RateResult:
    """One rate, end to end (simulation, DynamoDB Local); `cache=False`: every object writes every profile it
    touched (eksight before the profile cache); `history=False`: no day-before traffic in the warm-up."""
    from eksight.adapters.dynamodb import DynamoStateStore, create_table
    from eksight.core.archive_object import process_object
    from eksight.core.behaviour.cache import ProfileCache
    from eksight.core.events import event_time, parse_event
    from eksight.tools.emulator.dynamodb_local import DynamoDBLocal
    from eksight.tools.simulator import Config, generate

    minutes = warmup_minutes + window_minutes
    with tempfile.TemporaryDirectory(prefix="eksight-bench-") as tmp:
        generate(
            Config(
                out=Path(tmp),
                days=minutes / 1440,
                seed=17,
                scale=rate / EVENTS_PER_SECOND_PER_SCALE,
                attacks="none",
                cwl=False,
                learning_days=0,
                cluster="bench",
            )
        )
        lines = gzip.decompress((Path(tmp) / "audit.jsonl.gz").read_bytes()).splitlines()
    objects = firehose_objects(lines, parse_event, event_time)
    warmup_end = event_time(parse_event(lines[0])) + warmup_minutes * 60
    warmup = [blob for blob, opened in objects if opened < warmup_end]
    window = [blob for blob, opened in objects if opened >= warmup_end]
    if history:
        warmup += window
        again = [_shifted(line, window_minutes * 60) for line in lines if event_time(parse_event(line)) >= warmup_end]
        window = [blob for blob, _ in firehose_objects(again, parse_event, event_time)]

    with DynamoDBLocal() as local:
        client = local.client()
        create_table(client, TABLE)
        profiles, ledger = DynamoStateStore(client, TABLE), DynamoStateStore(client, TABLE)
        reader = _Reader({})
        expires = int(time.time() + 86400)

        published = high = 0

        def run(blobs: list[bytes], container: ProfileCache | None, prefix: str) -> tuple[int, float]:
            nonlocal published, high
            events, first_reads = 0, 0.0
            for index, blob in enumerate(blobs):
                key = f"audit/cluster=bench/{prefix}-{index}.jsonl"
                reader.objects[key] = blob
                result = process_object(
                    reader,
                    key,
                    publisher=_Discard(),
                    baselines=_Split(profiles, ledger),
                    profile_cache=container,
                )
                events += result.events
                published += result.published
                high += result.findings_by_severity["HIGH"] + result.findings_by_severity["CRITICAL"]
                if index == 0:
                    first_reads = profiles.read_units
            return events, first_reads

        warm = ProfileCache() if cache else None
        run(warmup, warm, "warmup")
        if warm is not None:
            warm.write_back(profiles, expires)
        for store in (profiles, ledger):
            store.read_units = store.write_units = 0.0
        published = high = 0
        began = time.perf_counter()
        container = ProfileCache() if cache else None
        events, cold_reads = run(window, container, "window")
        seconds = time.perf_counter() - began
        wru_window, rru_window = profiles.write_units, profiles.read_units
        deferred = 0
        if container is not None:
            deferred = len(container.dirty())
            container.write_back(profiles, expires)
        wru_refresh = profiles.write_units - wru_window
        pages = client.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT")
        items = sum(page["Count"] for page in pages)
    share = window_minutes * 60 / 3600
    wru = wru_window + ledger.write_units + wru_refresh * share
    rru = rru_window - cold_reads + cold_reads * share + ledger.read_units
    return RateResult(
        rate=rate,
        events=events,
        objects=len(window),
        items=items,
        wru_window=wru_window,
        wru_refresh=wru_refresh,
        wru_ledger=ledger.write_units,
        rru_window=rru_window + ledger.read_units,
        rru_cold_cache=cold_reads,
        wru_per_1k=wru / events * 1000,
        rru_per_1k=rru / events * 1000,
        ledger_share=(ledger.write_units + ledger.read_units) / max(wru + rru, 1e-9),
        deferred=deferred,
        written=profiles.writes,
        findings=published,
        findings_high=high,
        ev_per_s=events / seconds,
    )


def _shifted(line: bytes, seconds: float) -> bytes:
    """The same request `seconds` later (a new auditID, so it is not taken for a duplicate)."""
    event = orjson.loads(line)
    for field in ("requestReceivedTimestamp", "stageTimestamp"):
        if event.get(field):
            when = datetime.fromisoformat(event[field].replace("Z", "+00:00")) + timedelta(seconds=seconds)
            event[field] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    event["auditID"] = f"{event.get('auditID', '')}-again"
    return orjson.dumps(event)


class _Split:
    """Profiles and ledger entries on one table, counted apart: the ledger's keys end in "|finding"."""

    def __init__(self, profiles: Any, ledger: Any) -> None:
        self.profiles, self.ledger = profiles, ledger

    def _for(self, key: tuple[str, str]) -> Any:
        return self.ledger if key[0].endswith("|finding") else self.profiles

    def get_many(self, keys: Any, consistent: bool = True) -> Any:
        found = {}
        for store in (self.profiles, self.ledger):
            mine = [key for key in keys if self._for(key) is store]
            if mine:
                found.update(store.get_many(mine, consistent))
        return found

    def put_if(self, key: Any, blob: bytes, expected_version: int | None, expires_at: int = 0) -> bool:
        return bool(self._for(key).put_if(key, blob, expected_version, expires_at))


class _Reader:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def open(self, key: str, version_id: str | None = None) -> Any:
        import contextlib
        import io

        return contextlib.nullcontext(io.BytesIO(self.objects.pop(key)))


class _Discard:
    def publish(self, findings: Any) -> int:
        return len(findings)


def firehose_objects(
    lines: list[bytes],
    parse_event: Callable[[bytes], AuditEvent],
    event_time: Callable[[AuditEvent], float],
) -> list[tuple[bytes, float]]:
    """(JSON-lines object, event time it opened at), cut at 16 MiB or 60 s of event time like eksight's default
    Firehose buffering."""
    objects: list[tuple[bytes, float]] = []
    current: list[bytes] = []
    size, opened = 0, 0.0
    for line in lines:
        when = event_time(parse_event(line))
        if current and (size + len(line) > OBJECT_BYTES or when - opened >= OBJECT_SECONDS):
            objects.append((b"\n".join(current), opened))
            current, size = [], 0
        if not current:
            opened = when
        current.append(line)
        size += len(line) + 1
    if current:
        objects.append((b"\n".join(current), opened))
    return objects


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="100,500,2000", help="simulated events/s, comma-separated")
    parser.add_argument("--minutes", type=float, nargs=2, metavar=("WARMUP", "WINDOW"), help="override WINDOWS")
    parser.add_argument("--no-cache", action="store_true", help="write every touched profile per object")
    parser.add_argument("--no-history", action="store_true", help="no day-before traffic: a new deployment")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    results = []
    for rate in (int(r) for r in args.rates.split(",")):
        warmup, window = args.minutes or WINDOWS.get(rate, (2.0, 5.0))
        result = measure(rate, warmup, window, cache=not args.no_cache, history=not args.no_history)
        results.append(result.as_dict())
        print(
            f"{rate:>5} events/s: {result.events:,} events in {result.objects} objects, {result.items} items; "
            f"per 1,000 events {result.wru_per_1k:.2f} WRU, {result.rru_per_1k:.2f} RRU "
            f"(ledger {result.ledger_share:.0%}; {result.written} profile writes, {result.deferred} deferred "
            f"at the end; {result.ev_per_s:,.0f} events/s incl. DynamoDB Local)",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
