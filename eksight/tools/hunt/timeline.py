"""`eksight timeline`: one principal's activity as a readable story.

Requests (principal-activity rows) are folded into bursts: consecutive requests with the same verb and
resource (kind, subresource, namespace), each within `burst_minutes` of the previous one, become one line with a
count. A line is marked when it holds the principal's first use, in the whole input, of a verb on a resource,
of a source IP or of a user agent. Findings about the principal appear at their first event time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from eksight.queries import parse_time

DEFAULT_BURST_MINUTES = 5


@dataclass
class Burst:
    start: datetime
    end: datetime
    verb: str
    resource: str  # kind[/subresource]
    namespace: str
    names: set[str] = field(default_factory=set)
    count: int = 0
    failed: int = 0
    src_ips: set[str] = field(default_factory=set)
    firsts: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.verb, self.resource, self.namespace)


@dataclass(frozen=True)
class FindingMark:
    time: datetime
    severity: str
    title: str
    id: str


def bursts(requests: Iterable[Mapping[str, Any]], burst_minutes: float = DEFAULT_BURST_MINUTES) -> list[Burst]:
    """Requests (in time order) folded into bursts, with first-seen marks computed over all of them."""
    gap = timedelta(minutes=burst_minutes)
    seen_actions: set[tuple[str, str]] = set()
    seen_ips: set[str] = set()
    seen_agents: set[str] = set()
    folded: list[Burst] = []
    for request in requests:
        verb, resource = request["verb"] or "", _resource(request)
        namespace, time = request["namespace"] or "", request["time"]
        current = folded[-1] if folded else None
        if current is None or current.key != (verb, resource, namespace) or time - current.end > gap:
            current = Burst(time, time, verb, resource, namespace)
            folded.append(current)
        current.end = time
        current.count += 1
        current.failed += (request["response_code"] or 0) >= 400
        if request["name"]:
            current.names.add(request["name"])
        ip, agent = request["src_ip"] or "", request["user_agent"] or ""
        if ip:
            current.src_ips.add(ip)
        if (verb, resource) not in seen_actions:
            seen_actions.add((verb, resource))
            current.firsts.append(f"first {verb} {resource}")
        if ip and ip not in seen_ips:
            seen_ips.add(ip)
            current.firsts.append(f"first IP {ip}")
        if agent and agent not in seen_agents:
            seen_agents.add(agent)
            current.firsts.append(f"first agent {_short(agent, 40)}")
    return folded


def findings_about(path: Path, principal: str, audit_ids: set[str]) -> list[FindingMark]:
    """Findings in a replay's findings file whose principal is `principal` or whose evidence is its requests."""
    marks = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            finding = json.loads(line)
            who = finding.get("principal", {})
            if principal in (who.get("name"), who.get("key")) or audit_ids.intersection(finding.get("evidence", [])):
                marks.append(
                    FindingMark(parse_time(finding["first_seen"]), finding["severity"], finding["title"], finding["id"])
                )
    return sorted(marks, key=lambda m: m.time)


def render(
    principal: str,
    folded: Sequence[Burst],
    findings: Sequence[FindingMark] = (),
    *,
    around: datetime | None = None,
    hours: float = 2.0,
) -> str:
    """The story as text; with `around`, only what happened within ± `hours` of it."""
    if around is not None:
        low, high = around - timedelta(hours=hours), around + timedelta(hours=hours)
        folded = [b for b in folded if b.end >= low and b.start <= high]
        findings = [f for f in findings if low <= f.time <= high]
    if not folded and not findings:
        return f"No activity of {principal} in the input" + (" around that time." if around else ".")
    requests = sum(b.count for b in folded)
    span = f"{_time(folded[0].start)} → {_time(folded[-1].end)} UTC" if folded else ""
    lines = [f"{principal}: {requests} requests in {len(folded)} bursts, {span}"]
    items: list[tuple[datetime, int, str]] = [(b.start, 0, _burst_line(b)) for b in folded]
    items += [(f.time, 1, f"{_time(f.time)}  ⚑ [{f.severity}] {f.title} (finding {f.id})") for f in findings]
    lines += [text for _time_, _order, text in sorted(items, key=lambda i: (i[0], i[1]))]
    return "\n".join(lines)


def _burst_line(burst: Burst) -> str:
    where = burst.namespace + "/" if burst.namespace else ""
    if len(burst.names) == 1:
        target = f"{burst.resource} {where}{next(iter(burst.names))}"
    elif burst.names:
        target = f"{burst.resource} {where}({len(burst.names)} objects)"
    else:
        target = f"{burst.resource} in {burst.namespace}" if burst.namespace else burst.resource
    count = f"×{burst.count}" + (f" over {_duration(burst.end - burst.start)}" if burst.count > 1 else "")
    failed = f", {burst.failed} denied/failed" if burst.failed else ""
    ips = ",".join(sorted(burst.src_ips)[:3]) + ("…" if len(burst.src_ips) > 3 else "")
    marks = f"  ★ {'; '.join(burst.firsts)}" if burst.firsts else ""
    return f"{_time(burst.start)}  {burst.verb} {target}  {count}{failed}  from {ips or '?'}{marks}"


def _resource(request: Mapping[str, Any]) -> str:
    resource = request["resource"] or "(non-resource)"
    return f"{resource}/{request['subresource']}" if request["subresource"] else resource


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    return f"{seconds}s" if seconds < 120 else f"{seconds // 60}m"


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
