"""Athena: run a hunting query in the detection stack's workgroup, and find that workgroup.

The detection stack exports its workgroup and Glue database as CloudFormation outputs; `read_target` reads
them. `run_query` starts the statement with execution parameters, polls until it ends (reporting progress),
and returns the rows with the bytes scanned. Clients are injected (boto3 `athena`, `cloudformation`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

WORKGROUP_OUTPUT = "AthenaWorkGroupName"
DATABASE_OUTPUT = "GlueDatabaseName"
DOLLARS_PER_TB = 5.0
MIN_BILLED_BYTES = 10 * 1024 * 1024  # Athena bills at least 10 MB per query, rounded up to whole MB
_SCAN_LIMIT = re.compile(r"bytes scanned limit|BytesScannedCutoff|data scanned limit", re.IGNORECASE)
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaError(RuntimeError):
    """A query that failed or was cancelled, or a deployment that cannot run queries."""


class MissingDeployment(AthenaError):
    pass


class ScanLimitExceeded(AthenaError):
    """The workgroup's BytesScannedCutoffPerQuery cancelled the query (it is still billed)."""

    def __init__(self, message: str, bytes_scanned: int) -> None:
        super().__init__(message)
        self.bytes_scanned = bytes_scanned


@dataclass(frozen=True)
class Target:
    stack: str
    workgroup: str
    database: str


@dataclass(frozen=True)
class QueryRun:
    execution_id: str
    columns: list[str]
    rows: list[tuple[str | None, ...]]
    bytes_scanned: int
    seconds: float

    @property
    def dollars(self) -> float:
        return cost_dollars(self.bytes_scanned)


Progress = Callable[[str, float, int], None]  # state, seconds elapsed, bytes scanned so far


def read_target(cloudformation: Any, stack: str) -> Target:
    """The workgroup and Glue database from the detection stack's outputs."""
    deploy = f"deploy the detection stack {stack} (eksight deploy) with Athena hunting enabled"
    try:
        stacks = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ValidationError":
            raise MissingDeployment(f"stack {stack} not found: {deploy}") from None
        raise
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = [name for name in (WORKGROUP_OUTPUT, DATABASE_OUTPUT) if not outputs.get(name)]
    if missing:
        raise MissingDeployment(f"stack {stack} has no output {', '.join(missing)}: {deploy}")
    return Target(stack, outputs[WORKGROUP_OUTPUT], outputs[DATABASE_OUTPUT])


def run_query(
    athena: Any,
    target: Target,
    sql: str,
    parameters: Sequence[str],
    *,
    progress: Progress | None = None,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> QueryRun:
    """Run `sql` with positional execution `parameters` in the target's workgroup; wait for the rows."""
    request: dict[str, Any] = {
        "QueryString": sql,
        "QueryExecutionContext": {"Database": target.database},
        "WorkGroup": target.workgroup,
    }
    if parameters:
        request["ExecutionParameters"] = list(parameters)
    started = time.monotonic()
    execution_id = athena.start_query_execution(**request)["QueryExecutionId"]
    while True:
        execution = athena.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
        state = execution["Status"]["State"]
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
        if progress:
            progress(state, time.monotonic() - started, scanned)
        if state in _DONE:
            break
        sleep(poll_seconds)
    if state != "SUCCEEDED":
        raise failure(execution, _cutoff(athena, target.workgroup) if state == "CANCELLED" else None)
    columns, rows = _results(athena, execution_id)
    return QueryRun(execution_id, columns, rows, scanned, time.monotonic() - started)


def failure(execution: dict[str, Any], cutoff: int | None = None) -> AthenaError:
    """The error for a query that did not succeed; a cancellation by the workgroup's scan limit says so."""
    status = execution["Status"]
    reason = status.get("StateChangeReason", "") or status.get("AthenaError", {}).get("ErrorMessage", "")
    scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0))
    if status["State"] == "CANCELLED" and (_SCAN_LIMIT.search(reason) or (cutoff and scanned >= cutoff)):
        limit = f" of {cutoff / 1e6:,.0f} MB" if cutoff else ""
        return ScanLimitExceeded(
            f"cancelled by the workgroup's scan limit{limit} after {scanned / 1e6:,.1f} MB "
            f"(billed ${cost_dollars(scanned):.4f}); narrow --since/--until or --cluster",
            scanned,
        )
    return AthenaError(f"query {status['State'].lower()}: {reason or 'no reason given'}")


def cost_dollars(bytes_scanned: int) -> float:
    megabytes = -(-max(bytes_scanned, MIN_BILLED_BYTES) // (1024 * 1024))
    return megabytes * 1024 * 1024 / 1e12 * DOLLARS_PER_TB


def _cutoff(athena: Any, workgroup: str) -> int | None:
    try:
        configuration = athena.get_work_group(WorkGroup=workgroup)["WorkGroup"].get("Configuration", {})
    except ClientError:
        return None
    value = configuration.get("BytesScannedCutoffPerQuery")
    return int(value) if value else None


def _results(athena: Any, execution_id: str) -> tuple[list[str], list[tuple[str | None, ...]]]:
    columns: list[str] = []
    rows: list[tuple[str | None, ...]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution_id):
        result = page["ResultSet"]
        if not columns:
            columns = [c["Name"] for c in result.get("ResultSetMetadata", {}).get("ColumnInfo", [])]
        for row in result.get("Rows", []):
            values = tuple(d.get("VarCharValue") for d in row.get("Data", []))
            if not rows and values == tuple(columns):
                continue  # a SELECT's first row repeats the column names
            rows.append(values)
    return columns, rows
