"""DynamoDB cost of behavioural baselines, counted in consumed capacity on DynamoDB Local.

A simulated cluster busy enough for ≥ 500 audit events/s (eksight.tools.simulator at a large --scale) is cut into
archive objects the way Firehose cuts them (eksight's default buffering: 16 MiB or 60 s, whichever first), and
each object goes through what the detector Lambda does with it: rules + baselines (one profile read and at most
one conditional write per principal and peer group per object) and the finding ledger. DynamoDB Local reports
ConsumedCapacity exactly as DynamoDB computes it (1 WCU per KB written, 1 RCU per 4 KB strongly read), so the
units per 1,000 events are what an on-demand table would bill.

    python -m bench.baselines_dynamodb [--scale 120] [--minutes 6]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eksight.core.events import AuditEvent

# us-east-1 on-demand list prices (USD per million request units) used for the monthly estimate only.
PRICE_PER_MILLION_WRU, PRICE_PER_MILLION_RRU = 0.625, 0.125
OBJECT_BYTES, OBJECT_SECONDS = 16 * 1024 * 1024, 60.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=150.0)  # ≈ 0.4 events/s per node: ≥ 500 events/s
    parser.add_argument("--minutes", type=float, default=7.2)
    args = parser.parse_args(argv)

    from eksight.adapters.dynamodb import DynamoStateStore, create_table
    from eksight.core import ledger
    from eksight.core.behaviour.analyzer import BehaviourAnalyzer
    from eksight.core.decode import SourceContext, decode_bytes
    from eksight.core.detector import Detector
    from eksight.core.events import event_time, parse_event
    from eksight.core.rules import default_engine
    from eksight.tools.emulator.dynamodb_local import DynamoDBLocal
    from eksight.tools.simulator import Config, generate

    with tempfile.TemporaryDirectory(prefix="eksight-bench-") as tmp:
        began = time.perf_counter()
        summary = generate(
            Config(
                out=Path(tmp),
                days=args.minutes / 1440,
                seed=17,
                scale=args.scale,
                attacks="none",
                cwl=False,
                learning_days=0,
                cluster="bench",
            )
        )
        lines = gzip.decompress((Path(tmp) / "audit.jsonl.gz").read_bytes()).splitlines()
        print(
            f"simulated {summary.events:,} events in {args.minutes:g} min of event time "
            f"({summary.events / (args.minutes * 60):,.0f} events/s) in {time.perf_counter() - began:.0f} s"
        )

    objects = _firehose_objects(lines, parse_event, event_time)
    context = SourceContext(cluster="bench", account="123456789012", region="us-east-1")
    with DynamoDBLocal() as local:
        client = local.client()
        create_table(client, "eksight-bench-baselines")
        store = DynamoStateStore(client, "eksight-bench-baselines")
        began = time.perf_counter()
        events = 0
        for index, blob in enumerate(objects):
            detector = Detector(default_engine(), baselines=BehaviourAnalyzer(store), baseline_batch=10**9)
            detector.run(decode_bytes(blob, source=f"object-{index}", defaults=context))
            detector.flush(f"object-{index}")
            ledger.fold(store, detector.findings(), f"object-{index}")
            events += detector.stats.events
        seconds = time.perf_counter() - began
        items = client.scan(TableName="eksight-bench-baselines", Select="COUNT")["Count"]
    per_thousand_w = store.write_units / events * 1000
    per_thousand_r = store.read_units / events * 1000
    thousands_per_month = 500 * 86400 * 30 / 1000
    per_million_units = per_thousand_w * PRICE_PER_MILLION_WRU + per_thousand_r * PRICE_PER_MILLION_RRU
    cost = thousands_per_month * per_million_units / 1e6
    print(
        f"{len(objects)} archive objects, {events:,} events, {items} items in the table, "
        f"{store.writes} writes ({store.conflicts} lost races), {store.reads} item reads"
    )
    print(
        f"DynamoDB per 1,000 events: {per_thousand_w:.2f} WCU, {per_thousand_r:.2f} RCU "
        f"(detection incl. DynamoDB Local round trips: {events / seconds:,.0f} events/s)"
    )
    print(
        f"at 500 events/s around the clock: ≈ ${cost:,.2f}/month on-demand (us-east-1 list prices "
        f"${PRICE_PER_MILLION_WRU}/M WRU, ${PRICE_PER_MILLION_RRU}/M RRU)"
    )
    return 0


def _firehose_objects(
    lines: list[bytes],
    parse_event: Callable[[bytes], AuditEvent],
    event_time: Callable[[AuditEvent], float],
) -> list[bytes]:
    """JSON-lines objects cut at 16 MiB or 60 s of event time, like eksight's default Firehose buffering."""
    objects: list[bytes] = []
    current: list[bytes] = []
    size, opened = 0, None
    for line in lines:
        when = event_time(parse_event(line))
        if current and (size + len(line) > OBJECT_BYTES or (opened is not None and when - opened >= OBJECT_SECONDS)):
            objects.append(b"\n".join(current))
            current, size, opened = [], 0, None
        current.append(line)
        size += len(line) + 1
        opened = when if opened is None else opened
    if current:
        objects.append(b"\n".join(current))
    return objects


if __name__ == "__main__":
    raise SystemExit(main())
