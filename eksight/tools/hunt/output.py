"""Printing query results: an aligned table for people, JSON lines or CSV for tools."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TextIO

FORMATS = ("table", "json", "csv")
MAX_CELL = 60  # table cells are cut here (json and csv carry the full value)


def cell(value: Any) -> str:
    """A value as text: times as ISO 8601 UTC, lists comma-separated, NULL as empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds") + "Z" if value.tzinfo is None else value.isoformat()
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    return str(value)


def write(rows: Iterable[Sequence[Any]], columns: Sequence[str], fmt: str, out: TextIO) -> int:
    """Write `rows` to `out` in `fmt`; returns the number of rows."""
    rows = list(rows)
    if fmt == "json":
        for row in rows:
            out.write(json.dumps({c: _jsonable(v) for c, v in zip(columns, row, strict=True)}) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell(v) for v in row] for row in rows)
    elif fmt == "table":
        _table(rows, columns, out)
    else:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    return len(rows)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return cell(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _table(rows: list[Sequence[Any]], columns: Sequence[str], out: TextIO) -> None:
    text = [[_cut(cell(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in text)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in text:
        out.write("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")


def _cut(text: str) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"
