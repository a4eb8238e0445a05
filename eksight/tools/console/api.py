"""The console's JSON API, mounted by the wizard's server under /api/console/ (which checks Host and token):

* ``GET /api/console/source``: the findings source (size, cap, filter menus) and the archive's state;
* ``GET /api/console/findings?severity=HIGH,CRITICAL&type=&principal=&cluster=&since=&until=&limit=``;
* ``GET /api/console/finding/<id>``: one finding with its evidence, timeline and plot data.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote

from eksight.tools.console import API_PREFIX
from eksight.tools.console.archive import ArchiveIndex
from eksight.tools.console.detail import finding_detail
from eksight.tools.console.source import FilterError, Filters, FindingsSource

_FINDING_ID = re.compile(r"[A-Za-z0-9._:/-]{1,256}")
_MAX_QUERY = 4096  # bytes of query string


class Console:
    def __init__(self, source: FindingsSource, archive: ArchiveIndex | None = None) -> None:
        self.source = source
        self.archive = archive

    def start(self) -> None:
        if self.archive is not None:
            self.archive.start()

    def handle(self, path: str, query: str) -> tuple[HTTPStatus, dict[str, Any]]:
        """The answer to GET `path` (under API_PREFIX) with the raw `query` string."""
        route = path.removeprefix(API_PREFIX)
        if len(query) > _MAX_QUERY:
            return _error(HTTPStatus.BAD_REQUEST, f"query string longer than {_MAX_QUERY} bytes")
        if route == "source":
            return HTTPStatus.OK, {
                "ok": True,
                "source": self.source.describe(),
                "archive": self.archive.status() if self.archive else None,
            }
        if route == "findings":
            try:
                filters = Filters.parse(parse_qs(query, keep_blank_values=True, max_num_fields=20))
            except (FilterError, ValueError) as error:
                return _error(HTTPStatus.BAD_REQUEST, str(error))
            page = self.source.page(filters)
            return HTTPStatus.OK, {
                "ok": True,
                "findings": page.findings,
                "matched": page.matched,
                "truncated": page.truncated,
                "limit": filters.limit,
            }
        if route.startswith("finding/"):
            finding_id = unquote(route.removeprefix("finding/"))
            if not _FINDING_ID.fullmatch(finding_id):
                return _error(HTTPStatus.BAD_REQUEST, "not a finding id")
            finding = self.source.get(finding_id)
            if finding is None:
                return _error(HTTPStatus.NOT_FOUND, f"no finding {finding_id} in {self.source.name}")
            principal = (finding.get("principal") or {}).get("name") or ""
            related = self.source.about_principal(principal) if principal else []
            return HTTPStatus.OK, {"ok": True, **finding_detail(finding, self.archive, related)}
        return _error(HTTPStatus.NOT_FOUND, "not found")


def _error(status: HTTPStatus, message: str) -> tuple[HTTPStatus, dict[str, Any]]:
    return status, {"ok": False, "error": message}
