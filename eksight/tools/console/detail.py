"""What the console shows about one finding: its evidence events and their context, the anomaly explanation,
the principal's timeline (eksight.tools.hunt.timeline's bursts) and the data of its three plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from eksight.queries import parse_time
from eksight.tools.console.archive import ArchiveIndex, ArchiveUnavailable, Row
from eksight.tools.hunt import timeline
from eksight.tools.hunt.output import cell

CONTEXT_MINUTES = 30  # finding-context window
TIMELINE_HOURS = 12  # the timeline shows ± this around the finding
MAX_ROWS = 500  # context rows and timeline bursts sent to the page
MAX_BUCKETS = 400  # points of the activity plot
PROFILE_ORDER = ("UNSEEN", "RARE", "INFREQUENT", "FREQUENT")


def finding_detail(
    finding: Mapping[str, Any], archive: ArchiveIndex | None, related: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The page's payload for one finding; `related` are the source's findings about the same principal."""
    anomaly = (finding.get("details") or {}).get("anomaly") or {}
    payload: dict[str, Any] = {
        "finding": finding,
        "anomaly": _anomaly(anomaly) if anomaly else None,
        "archive": archive.status() if archive else None,
        "evidence": None,
        "context": None,
        "timeline": None,
        "activity": None,
        "heatmap": None,
        "problem": "" if archive else "no audit events to look in: start eksight ui with --archive PATH",
    }
    if archive is None:
        return payload
    try:
        context = archive.finding_context(finding, CONTEXT_MINUTES)
        principal = (finding.get("principal") or {}).get("name") or ""
        requests = archive.activity(principal, str(finding.get("cluster") or "")) if principal else []
    except ArchiveUnavailable as error:
        payload["problem"] = str(error)
        return payload
    evidence = [r for r in context if r["is_evidence"]]
    found = {r["audit_id"] for r in evidence}
    first, last = parse_time(finding["first_seen"]), parse_time(finding["last_seen"])
    payload.update(
        evidence=[_jsonable(r) for r in evidence],
        missing_evidence=[a for a in finding.get("evidence", []) if a not in found],
        context=[_jsonable(r) for r in context if not r["is_evidence"]][:MAX_ROWS],
        context_truncated=len(context) - len(evidence) > MAX_ROWS,
        context_minutes=CONTEXT_MINUTES,
        timeline=_timeline(requests, related, first, last),
        activity=_activity(requests, first, last),
        heatmap=_heatmap(requests),
        requests=len(requests),
    )
    return payload


def _anomaly(anomaly: Mapping[str, Any]) -> dict[str, Any]:
    profile = anomaly.get("profile") or {}
    features = [
        {"feature": name, **{k: entry.get(k) for k in ("value", "profile", "observed", "total", "surprise_bits")}}
        for name, entry in profile.items()
        if isinstance(entry, Mapping)
    ]
    rank = {p: i for i, p in enumerate(PROFILE_ORDER)}
    features.sort(key=lambda f: (rank.get(str(f["profile"]), len(rank)), f["feature"]))
    return {
        "score": anomaly.get("score"),
        "baseline": anomaly.get("baseline"),
        "deviation": anomaly.get("deviation"),
        "signals": anomaly.get("signals") or [],
        "training_period": anomaly.get("training_period"),
        "features": features,
    }


def _timeline(
    requests: Sequence[Row], related: Sequence[Mapping[str, Any]], first: datetime, last: datetime
) -> dict[str, Any]:
    """Bursts (first-seen marks computed over all the principal's requests) and the principal's findings
    within ± TIMELINE_HOURS of this one."""
    low, high = first - timedelta(hours=TIMELINE_HOURS), last + timedelta(hours=TIMELINE_HOURS)
    shown = [b for b in timeline.bursts(requests) if b.end >= low and b.start <= high]
    return {
        "hours": TIMELINE_HOURS,
        "findings": [f for f in related if low <= parse_time(f["first_seen"]) <= high],
        "truncated": len(shown) > MAX_ROWS,
        "bursts": [
            {
                "start": cell(b.start),
                "end": cell(b.end),
                "verb": b.verb,
                "resource": b.resource,
                "namespace": b.namespace,
                "names": sorted(b.names)[:5],
                "objects": len(b.names),
                "count": b.count,
                "failed": b.failed,
                "src_ips": sorted(b.src_ips)[:5],
                "firsts": b.firsts,
                "during_finding": b.end >= first and b.start <= last,
            }
            for b in _around(shown, first, MAX_ROWS)
        ],
    }


def _around(bursts: Sequence[timeline.Burst], moment: datetime, limit: int) -> Sequence[timeline.Burst]:
    """At most `limit` bursts, centred on the one nearest `moment`."""
    if len(bursts) <= limit:
        return bursts
    nearest = min(range(len(bursts)), key=lambda i: abs(bursts[i].start - moment))
    start = max(0, min(nearest - limit // 2, len(bursts) - limit))
    return bursts[start : start + limit]


def _activity(requests: Sequence[Row], first: datetime, last: datetime) -> dict[str, Any]:
    """Requests per bucket (an hour, or longer when the span needs more than MAX_BUCKETS hours); times are
    epoch seconds (UTC), the plot's x axis."""
    if not requests:
        return {"bucket_seconds": 3600, "times": [], "requests": [], "failed": [], "marks": []}
    start = min(requests[0]["time"], first).replace(minute=0, second=0, microsecond=0)
    end = max(requests[-1]["time"], last)
    hours = int((end - start).total_seconds() // 3600) + 1
    bucket_hours = max(1, -(-hours // MAX_BUCKETS))
    size = timedelta(hours=bucket_hours)
    buckets = int((end - start) / size) + 1
    counts, failed = [0] * buckets, [0] * buckets
    for request in requests:
        index = int((request["time"] - start) / size)
        counts[index] += 1
        failed[index] += (request["response_code"] or 0) >= 400
    base = _epoch(start)
    return {
        "bucket_seconds": int(size.total_seconds()),
        "times": [base + i * int(size.total_seconds()) for i in range(buckets)],
        "requests": counts,
        "failed": failed,
        "marks": [_epoch(first), _epoch(last)],
    }


def _heatmap(requests: Sequence[Row]) -> dict[str, Any]:
    """Requests per (weekday, hour of day), UTC; weekday 0 is Monday."""
    cells = [[0] * 24 for _ in range(7)]
    for request in requests:
        cells[request["time"].weekday()][request["time"].hour] += 1
    return {"cells": cells, "max": max(max(row) for row in cells)}


def _epoch(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1)).total_seconds())


def _jsonable(row: Row) -> dict[str, Any]:
    return {k: cell(v) if isinstance(v, datetime) else v for k, v in row.items()}
