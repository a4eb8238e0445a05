"""The hunting query library: one SQL file per query in ``sql/``, written once in DuckDB's dialect over two views,
``audit_events`` and ``findings``, and rendered for both engines.

A file starts with a header::

    -- description: what the query answers
    -- param: NAME  TYPE  required|optional  [DEFAULT]  help text

TYPE is ``string``, ``time`` (ISO 8601, UTC), ``int`` or ``resource`` (KIND/NS/NAME or KIND/NAME; the SQL uses
``$resource_kind``, ``$resource_kind_plural``, ``$resource_namespace`` and ``$resource_name``). The SQL names its
parameters ``$name``. Rendering turns each occurrence into a positional ``?`` and remembers the order, so values
are always bound (DuckDB) or passed as execution parameters (Athena), never pasted into the SQL text. Athena
accepts ``?`` only in WHERE clauses, so queries put their parameters there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from importlib import resources

import sqlglot
from sqlglot import exp

from eksight.queries import sources

TYPES = ("string", "time", "int", "resource")
MAX_STRING = 1000  # Athena caps an execution parameter at 1,024 characters, quotes included
MAX_INT = 1_000_000

# A comment, a string literal, a quoted identifier, or a named parameter ($name in DuckDB, :name in Athena).
_TOKEN = re.compile(r"""/\*.*?\*/|--[^\n]*|'(?:[^']|'')*'|"(?:[^"]|"")*"|(?<![:\w])[:$]([A-Za-z_]\w*)""", re.DOTALL)
_HEADER = re.compile(r"^--\s*(description|param):\s*(.*)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_KIND = re.compile(r"^[a-z][a-z0-9.]{0,62}$")
_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_OBJECT_NAME = re.compile(r"^[A-Za-z0-9@:._-]{1,253}$")  # DNS subdomains, plus RBAC names like system:node


class QueryError(ValueError):
    """An unknown query or parameter, or an invalid value (the message lists what is valid)."""


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    required: bool
    default: str | None
    help: str


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    parameters: tuple[Parameter, ...]
    sql: str  # DuckDB dialect over the views, with $name parameters

    # --- values ---------------------------------------------------------------------------------------------

    def bind(self, values: Mapping[str, object | None]) -> dict[str, str | int]:
        """Validated, canonical values of every placeholder, from the user's values (None = not given)."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(k for k, v in values.items() if v is not None and k not in known)
        if unknown:
            raise QueryError(
                f"{self.name} takes no parameter {', '.join(unknown)}; valid: {', '.join(known) or '(none)'}"
            )
        bound: dict[str, str | int] = {}
        for parameter in self.parameters:
            value = values.get(parameter.name)
            if value is None:
                if parameter.required:
                    raise QueryError(f"{self.name} needs --{parameter.name.replace('_', '-')}: {parameter.help}")
                value = parameter.default
            bound.update(_canonical(parameter, value))
        bound.update(_partition_window(bound))
        return bound

    def duckdb_parameters(self, values: Mapping[str, object | None]) -> list[str | int]:
        bound = self.bind(values)
        return [bound[name] for name in self._duckdb[1]]

    def athena_parameters(self, values: Mapping[str, object | None]) -> list[str]:
        """Execution parameters: Athena pastes each into the statement, so strings carry their own quotes."""
        bound = self.bind(values)
        return [_athena_literal(bound[name]) for name in self._athena[1]]

    # --- SQL --------------------------------------------------------------------------------------------------

    def duckdb_sql(self) -> str:
        """The query over the DuckDB views `audit_events` and `findings`, with `?` placeholders."""
        return self._duckdb[0]

    def athena_sql(self, database: str) -> str:
        """A self-contained Athena statement: the views as CTEs over the Glue tables of `database`, then the
        query, with `?` execution parameters (see `athena_parameters`)."""
        if not sources.GLUE_NAME.fullmatch(database):
            raise QueryError(f"not a Glue database name: {database!r}")
        return self._athena[0].replace(sources.DATABASE_PLACEHOLDER, database)

    @cached_property
    def _duckdb(self) -> tuple[str, tuple[str, ...]]:
        return self._positional(sqlglot.transpile(self.sql, read="duckdb", write="duckdb", comments=False)[0])

    @cached_property
    def _athena(self) -> tuple[str, tuple[str, ...]]:
        query = sqlglot.parse_one(self.sql, read="duckdb")
        if not isinstance(query, exp.Select):
            raise QueryError(f"{self.name}.sql must be one SELECT statement")
        views = sources.athena_views(referenced={t.name for t in query.find_all(exp.Table)})
        own = list(query.ctes)
        query.set("with_", None)
        for name, body in [*views, *((cte.alias, cte.this) for cte in own)]:
            query = query.with_(name, as_=body, copy=False)
        return self._positional(query.sql(dialect="athena", comments=False))

    def _positional(self, sql: str) -> tuple[str, tuple[str, ...]]:
        names: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(1) is None:
                return match.group(0)
            names.append(match.group(1))
            return "?"

        positional = _TOKEN.sub(replace, sql)
        placeholders = set(_placeholders(self.parameters))
        undeclared = sorted(set(names) - placeholders)
        if undeclared:
            raise QueryError(f"{self.name}: the SQL uses undeclared parameters {', '.join(undeclared)}")
        return positional, tuple(names)


# --- the library ----------------------------------------------------------------------------------------------


@cache
def all_queries() -> dict[str, Query]:
    """Every query of the library by name, in name order."""
    directory = resources.files("eksight.queries") / "sql"
    files = sorted((f for f in directory.iterdir() if f.name.endswith(".sql") and not f.name.startswith("_")), key=str)
    return {q.name: q for q in (_parse(f.name.removesuffix(".sql"), f.read_text("utf-8")) for f in files)}


def get(name: str) -> Query:
    queries = all_queries()
    if name not in queries:
        raise QueryError(f"unknown query {name!r}; valid: {', '.join(queries)}")
    return queries[name]


def _parse(name: str, text: str) -> Query:
    description = ""
    parameters: list[Parameter] = []
    body: list[str] = []
    for line in text.splitlines():
        header = _HEADER.match(line)
        if header and not body:
            kind, rest = header.groups()
            if kind == "description":
                description = rest.strip()
            else:
                parameters.append(_parameter(name, rest))
        elif body or line.strip():
            body.append(line)
    if not description:
        raise QueryError(f"{name}.sql: no '-- description:' header")
    return Query(name, description, tuple(parameters), "\n".join(body))


def _parameter(query: str, spec: str) -> Parameter:
    fields = spec.split(None, 4)
    if len(fields) < 3 or fields[1] not in TYPES or fields[2] not in ("required", "optional"):
        raise QueryError(f"{query}.sql: bad parameter header {spec!r} (NAME TYPE required|optional [DEFAULT] HELP)")
    name, type_, presence, *rest = fields
    if presence == "required":
        return Parameter(name, type_, True, None, " ".join(rest))
    if not rest:
        raise QueryError(f"{query}.sql: optional parameter {name} needs a default")
    default, help_ = rest[0], " ".join(rest[1:])
    return Parameter(name, type_, False, "" if default == "''" else default, help_)


def _placeholders(parameters: tuple[Parameter, ...]) -> list[str]:
    names = [*sources.PARTITION_WINDOW]
    for p in parameters:
        if p.type == "resource":
            names += [f"{p.name}_kind", f"{p.name}_kind_plural", f"{p.name}_namespace", f"{p.name}_name"]
        else:
            names.append(p.name)
    return names


# --- validation -----------------------------------------------------------------------------------------------


def _canonical(parameter: Parameter, value: object) -> dict[str, str | int]:
    name = parameter.name
    if parameter.type == "int":
        number = value if isinstance(value, int) else _int(name, value)
        if not 0 <= number <= MAX_INT:
            raise QueryError(f"--{name} must be between 0 and {MAX_INT}")
        return {name: number}
    text = str(value)
    if len(text) > MAX_STRING or _CONTROL.search(text):
        raise QueryError(f"--{name}: at most {MAX_STRING} characters, no control characters")
    if parameter.type == "time":
        return {name: parse_time(text, name).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]}  # Athena: millisecond precision
    if parameter.type == "resource":
        return _resource(name, text)
    return {name: text}


def _int(name: str, value: object) -> int:
    try:
        return int(str(value), 10)
    except ValueError:
        raise QueryError(f"--{name} must be a whole number, not {value!r}") from None


def parse_time(text: str, name: str = "time") -> datetime:
    """An ISO 8601 time as naive UTC (the views' times are UTC without a zone); no zone means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"--{name} is not an ISO 8601 time: {text!r} (e.g. 2025-03-03T09:00:00Z)") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _resource(name: str, text: str) -> dict[str, str | int]:
    parts = text.split("/")
    if len(parts) == 2:
        parts.insert(1, "")
    if len(parts) != 3:
        raise QueryError(f"--{name} must be KIND/NAMESPACE/NAME or KIND/NAME, not {text!r}")
    kind, namespace, object_name = parts[0].lower(), parts[1], parts[2]
    if not _KIND.match(kind) or (namespace and not _NAMESPACE.match(namespace)) or not _OBJECT_NAME.match(object_name):
        raise QueryError(f"--{name}: {text!r} is not a Kubernetes KIND/NAMESPACE/NAME")
    return {
        f"{name}_kind": kind,
        f"{name}_kind_plural": _plural(kind),
        f"{name}_namespace": namespace,
        f"{name}_name": object_name,
    }


def _plural(kind: str) -> str:
    """The API resource of a singular kind (secret → secrets, networkpolicy → networkpolicies)."""
    if kind.endswith("s"):
        return kind if not kind.endswith(("ss", "ress")) else kind + "es"
    if kind.endswith("y"):
        return kind[:-1] + "ies"
    if kind.endswith(("x", "ch", "sh")):
        return kind + "es"
    return kind + "s"


def _partition_window(bound: Mapping[str, str | int]) -> dict[str, str | int]:
    """Athena's partition bounds (YYYYMMDDHH of arrival) for the event-time window: partitions hold the arrival
    hour of an object's oldest record, never before the event, and at most the buffer interval plus delivery
    lag (well under an hour) after it."""
    since = datetime.fromisoformat(str(bound.get("since", "1970-01-01 00:00:00")))
    until = datetime.fromisoformat(str(bound.get("until", "2100-01-01 00:00:00")))
    since -= timedelta(days=int(bound.get("lookback_days", 0)))
    until += timedelta(hours=1)
    first, last = sources.PARTITION_WINDOW
    return {first: int(since.strftime("%Y%m%d%H")), last: int(until.strftime("%Y%m%d%H"))}


def _athena_literal(value: str | int) -> str:
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"
