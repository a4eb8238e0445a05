"""Findings held in memory for filtering: from a findings file (JSON lines, as `eksight replay -o` writes them)
or from Security Hub (eksight.tools.console.securityhub).

The findings are streamed; at most `max_findings` of the newest (by first_seen) are kept, and the source says
when it dropped older ones. Filters are parsed from the page's query string and refused with a message
when they make no sense, so a typo never silently shows everything.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from eksight.core.findings import Severity
from eksight.queries import QueryError, parse_time

MAX_FINDINGS = 50_000  # findings kept in memory (a finding is ~2 KB of JSON; ~100 MB of Python objects at most)
MAX_PAGE = 500  # rows returned by one list request
DEFAULT_PAGE = 200
SEVERITIES = tuple(s.name for s in sorted(Severity, reverse=True))
FILTERS = ("severity", "type", "principal", "cluster", "since", "until", "limit")


class FilterError(ValueError):
    """A filter the console cannot apply (answered with 400)."""


@dataclass(frozen=True)
class Filters:
    severities: frozenset[str] = frozenset()
    type: str = ""  # substring, case-insensitive
    principal: str = ""  # substring of the principal's name, key or ARN, case-insensitive
    cluster: str = ""
    since: datetime | None = None
    until: datetime | None = None
    limit: int = DEFAULT_PAGE

    @classmethod
    def parse(cls, query: Mapping[str, list[str]]) -> Filters:
        """Filters from a parsed query string (urllib.parse.parse_qs): each filter at most once."""
        unknown = sorted(set(query) - set(FILTERS))
        if unknown:
            raise FilterError(f"unknown filter {', '.join(unknown)}; valid: {', '.join(FILTERS)}")
        repeated = sorted(name for name, values in query.items() if len(values) > 1)
        if repeated:
            raise FilterError(f"give {', '.join(repeated)} once")
        value = {name: values[0].strip() for name, values in query.items()}
        severities = frozenset(s.strip().upper() for s in value.get("severity", "").split(",") if s.strip())
        if severities - set(SEVERITIES):
            raise FilterError(
                f"unknown severity {', '.join(sorted(severities - set(SEVERITIES)))}; valid: {', '.join(SEVERITIES)}"
            )
        try:
            since = parse_time(value["since"], "since") if value.get("since") else None
            until = parse_time(value["until"], "until") if value.get("until") else None
        except QueryError as error:
            raise FilterError(str(error).replace("--", "")) from None
        if since and until and since >= until:
            raise FilterError("since must be before until")
        limit_text = value.get("limit", str(DEFAULT_PAGE))
        if not (limit_text.isascii() and limit_text.isdigit()) or not 1 <= int(limit_text) <= MAX_PAGE:
            raise FilterError(f"limit must be a whole number from 1 to {MAX_PAGE}")
        return cls(
            severities=severities,
            type=value.get("type", "").lower(),
            principal=value.get("principal", "").lower(),
            cluster=value.get("cluster", ""),
            since=since,
            until=until,
            limit=int(limit_text),
        )

    def match(self, finding: Mapping[str, Any], first_seen: datetime, last_seen: datetime) -> bool:
        """Whether a finding passes; a time window keeps findings that overlap it."""
        if self.severities and finding.get("severity") not in self.severities:
            return False
        if self.type and self.type not in str(finding.get("type", "")).lower():
            return False
        if self.cluster and finding.get("cluster") != self.cluster:
            return False
        if self.principal:
            who = finding.get("principal") or {}
            names = (who.get("name"), who.get("key"), who.get("arn"), who.get("session"))
            if not any(self.principal in str(name).lower() for name in names if name):
                return False
        if self.since and last_seen < self.since:
            return False
        return not (self.until and first_seen >= self.until)


@dataclass(order=True)
class _Held:
    first_seen: datetime
    last_seen: datetime = field(compare=False)
    finding: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class Page:
    findings: list[dict[str, Any]]  # summaries, newest first
    matched: int  # how many of the held findings pass the filters
    truncated: bool  # matched > len(findings)


class FindingsSource:
    """Findings, newest first. `findings` yields a finding dict, or None for an entry that is not one."""

    def __init__(
        self, findings: Iterable[dict[str, Any] | None], *, kind: str, name: str, max_findings: int = MAX_FINDINGS
    ) -> None:
        self.kind = kind
        self.name = name
        self.read = 0
        self.skipped = 0  # entries that are not a finding
        held: list[_Held] = []  # a min-heap on first_seen: the oldest kept finding is dropped first
        for finding in findings:
            if finding is None:
                self.skipped += 1
                continue
            self.read += 1
            item = _Held(parse_time(finding["first_seen"]), parse_time(finding["last_seen"]), finding)
            if len(held) < max_findings:
                heapq.heappush(held, item)
            else:
                heapq.heappushpop(held, item)
        self._held = sorted(held, reverse=True)
        self._by_id = {item.finding["id"]: item.finding for item in self._held}

    @property
    def capped(self) -> bool:
        return self.read > len(self._held)

    def describe(self) -> dict[str, Any]:
        """What the page says about the source, and the values its filter menus offer."""
        findings = [item.finding for item in self._held]
        return {
            "kind": self.kind,
            "name": self.name,
            "read": self.read,
            "held": len(self._held),
            "capped": self.capped,
            "skipped_lines": self.skipped,
            "severities": _counts(f.get("severity") for f in findings),
            "types": _counts(f.get("type") for f in findings),
            "clusters": _counts(f.get("cluster") for f in findings),
            "first_seen": self._held[-1].finding["first_seen"] if self._held else None,
            "last_seen": max((i.finding["last_seen"] for i in self._held), default=None),
        }

    def page(self, filters: Filters) -> Page:
        matched = [i.finding for i in self._held if filters.match(i.finding, i.first_seen, i.last_seen)]
        return Page([summary(f) for f in matched[: filters.limit]], len(matched), len(matched) > filters.limit)

    def get(self, finding_id: str) -> dict[str, Any] | None:
        return self._by_id.get(finding_id)

    def about_principal(self, name: str) -> list[dict[str, Any]]:
        """Summaries of the findings about one principal, oldest first (marks on its timeline)."""
        return [
            summary(i.finding) for i in reversed(self._held) if (i.finding.get("principal") or {}).get("name") == name
        ]


def from_file(path: Path, max_findings: int = MAX_FINDINGS) -> FindingsSource:
    """The findings of a JSON lines file, read line by line."""
    with path.open(encoding="utf-8") as lines:
        entries = (_finding(line) for line in lines if line.strip())
        return FindingsSource(entries, kind="file", name=path.name, max_findings=max_findings)


def summary(finding: Mapping[str, Any]) -> dict[str, Any]:
    """The columns of the findings list."""
    anomaly = (finding.get("details") or {}).get("anomaly") or {}
    return {
        "id": finding["id"],
        "severity": finding.get("severity"),
        "type": finding.get("type"),
        "title": finding.get("title"),
        "principal": (finding.get("principal") or {}).get("name"),
        "cluster": finding.get("cluster"),
        "first_seen": finding.get("first_seen"),
        "last_seen": finding.get("last_seen"),
        "count": finding.get("count"),
        "detector": finding.get("detector"),
        "score": anomaly.get("score"),
        "suppressed_by": finding.get("suppressed_by") or "",
    }


def _finding(line: str) -> dict[str, Any] | None:
    """A finding from one line, or None for a line that is not a finding."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return finding_or_none(value)


def finding_or_none(value: object) -> dict[str, Any] | None:
    """`value` if it has what the console needs of a finding (id and parsable first/last seen), else None."""
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("id", "first_seen", "last_seen")):
        return None
    try:
        parse_time(value["first_seen"])
        parse_time(value["last_seen"])
    except QueryError:
        return None
    return value


def _counts(values: Iterable[Any]) -> dict[str, int]:
    return dict(Counter(str(v) for v in values if v).most_common())
