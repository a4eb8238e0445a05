"""`python -m bench.hunt`: how fast `eksight hunt --local` answers principal-activity over ~1M audit events in
archive-shaped objects (CloudWatch Logs envelopes, gzip, as Firehose writes them), against `eksight replay` of
the same files in the same run; and what Athena would scan (and charge) per query per million events.

Data: a simulated cluster (eksight.tools.simulator, every API call kept), generated once into BENCH_DIR.
Athena reads every object of the partitions a query selects, whatever the query (JSON has no column pruning),
so bytes scanned per query are the compressed bytes of those objects.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from eksight.adapters.athena import cost_dollars
from eksight.queries import all_queries, get
from eksight.tools.hunt import local
from eksight.tools.simulator import Config, generate

BENCH_DIR = Path(os.environ.get("EKSIGHT_BENCH_HUNT", "/tmp/eksight-bench-hunt"))
DAYS = 1.2  # ~1M events at the simulator's full rate


def main() -> None:
    cwl = _data()
    objects = sorted(cwl.iterdir())
    compressed = sum(p.stat().st_size for p in objects)
    con = local.connect([cwl])
    events = con.execute("SELECT count(*) FROM audit_events").fetchone()[0]  # type: ignore[index]
    principal = _busiest_person(con)
    print(f"data: {events:,} audit events in {len(objects)} objects, {compressed / 1e6:,.1f} MB gzip")

    started = time.perf_counter()
    con = local.connect([cwl])  # a fresh connection: nothing cached from the count above
    rows = local.run(con, get("principal-activity"), {"principal": principal}).rows
    hunt_seconds = time.perf_counter() - started
    print(
        f"hunt principal-activity ({principal}): {len(rows):,} rows in {hunt_seconds:.1f}s, "
        f"{events / hunt_seconds:,.0f} events/s scanned"
    )

    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "eksight.tools.cli", "replay", str(cwl), "-o", os.devnull],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    replay_seconds = time.perf_counter() - started
    print(f"replay (detection, same files): {replay_seconds:.1f}s, {events / replay_seconds:,.0f} events/s")
    print(f"hunt / replay time: {hunt_seconds / replay_seconds:.2f}")

    per_million = compressed / events * 1e6
    print(
        f"athena: every query scans the selected partitions' objects: {per_million / 1e6:,.1f} MB per million "
        f"events, ${cost_dollars(int(per_million)):.4f} per query per million events at $5/TB "
        f"(10 MB minimum: ${cost_dollars(0):.5f})"
    )
    print("queries (same scan each): " + ", ".join(all_queries()))


def _data() -> Path:
    cwl = BENCH_DIR / "cwl"
    if not cwl.is_dir():
        print(f"generating {DAYS} days of a simulated cluster into {BENCH_DIR} (once)…", file=sys.stderr)
        generate(Config(out=BENCH_DIR, days=DAYS, seed=11, rate="full"))
    return cwl


def _busiest_person(con: object) -> str:
    rows = con.execute(  # type: ignore[attr-defined]
        "SELECT principal_name FROM audit_events WHERE starts_with(actor_user_name, 'arn:')"
    ).fetchall()
    return Counter(r[0] for r in rows).most_common(1)[0][0]


if __name__ == "__main__":
    main()
