"""The Athena runner and `eksight hunt --athena` against moto: the statement and execution parameters that
reach Athena, the stack outputs read, and the error paths. (moto does not run SQL: results are canned.)"""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner
from moto import mock_aws
from moto.athena.models import QueryResults, athena_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager

from eksight.adapters import athena
from eksight.queries import get
from eksight.tools.cli import main

REGION = "us-east-1"
STACK = "eksight-detection-us-east-1"


def _stack(cloudformation, outputs: dict[str, str], name: str = STACK) -> None:  # type: ignore[no-untyped-def]
    template = {
        "Resources": {"Handle": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def _canned(rows: list[list[str]], columns: list[str]) -> None:
    results = [{"Data": [{"VarCharValue": v} for v in row]} for row in [columns, *rows]]
    info = [{"Name": c, "Type": "varchar"} for c in columns]
    athena_backends[DEFAULT_ACCOUNT_ID][REGION].query_results_queue.append(QueryResults(results, info))


@pytest.fixture
def aws():  # type: ignore[no-untyped-def]
    with mock_aws():
        client = boto3.client("athena", region_name=REGION)
        client.create_work_group(Name="eksight-hunting", Configuration={"BytesScannedCutoffPerQuery": 10_000_000})
        yield client, boto3.client("cloudformation", region_name=REGION)


def test_read_target_reads_the_detection_stack_outputs(aws) -> None:  # type: ignore[no-untyped-def]
    _athena, cloudformation = aws
    _stack(cloudformation, {"AthenaWorkGroupName": "eksight-hunting", "GlueDatabaseName": "eksight_audit"})
    assert athena.read_target(cloudformation, STACK) == athena.Target(STACK, "eksight-hunting", "eksight_audit")


def test_missing_stack_or_outputs_name_the_stack_to_deploy(aws) -> None:  # type: ignore[no-untyped-def]
    _athena, cloudformation = aws
    with pytest.raises(athena.MissingDeployment, match=f"stack {STACK} not found: deploy the detection stack"):
        athena.read_target(cloudformation, STACK)
    _stack(cloudformation, {"AthenaWorkGroupName": "eksight-hunting"})
    with pytest.raises(athena.MissingDeployment, match=f"stack {STACK} has no output GlueDatabaseName"):
        athena.read_target(cloudformation, STACK)


def test_run_query_passes_the_statement_and_parameters_and_reads_rows(aws) -> None:  # type: ignore[no-untyped-def]
    client, _cloudformation = aws
    query = get("principal-activity")
    sql, parameters = query.athena_sql("eksight_audit"), query.athena_parameters({"principal": "x' OR 1=1 --"})
    _canned([["2025-03-03 18:16:13.904", "list"], ["2025-03-03 18:17:44.755", None]], ["time", "verb"])
    states: list[str] = []
    run = athena.run_query(
        client,
        athena.Target(STACK, "eksight-hunting", "eksight_audit"),
        sql,
        parameters,
        progress=lambda state, _s, _b: states.append(state),
        sleep=lambda _s: None,
    )
    assert run.columns == ["time", "verb"]
    assert run.rows == [("2025-03-03 18:16:13.904", "list"), ("2025-03-03 18:17:44.755", None)]
    sent = client.get_query_execution(QueryExecutionId=run.execution_id)["QueryExecution"]
    assert sent["Query"] == sql and sent["WorkGroup"] == "eksight-hunting"
    assert sent["QueryExecutionContext"]["Database"] == "eksight_audit"
    assert sent["ExecutionParameters"] == parameters and "'x'' OR 1=1 --'" in parameters
    assert states[-1] == "SUCCEEDED"


def test_a_cancelled_query_is_an_error(aws) -> None:  # type: ignore[no-untyped-def]
    client, _cloudformation = aws
    pending: list[str] = []

    def cancel(_seconds: float) -> None:  # the user (or the workgroup) stops the query while we wait
        client.stop_query_execution(QueryExecutionId=pending[0])

    def remember(state: str, _seconds: float, _bytes: int) -> None:
        if not pending:
            pending.append(client.list_query_executions(WorkGroup="eksight-hunting")["QueryExecutionIds"][0])

    # Keep executions QUEUED/RUNNING for a few polls, as a real query is, so there is time to stop it.
    state_manager.set_transition(model_name="athena::execution", transition={"progression": "manual", "times": 3})
    try:
        with pytest.raises(athena.AthenaError, match="query cancelled"):
            athena.run_query(
                client, athena.Target(STACK, "eksight-hunting", "db"), "SELECT 1", [], progress=remember, sleep=cancel
            )
    finally:
        state_manager.unset_transition("athena::execution")
    assert pending


def test_a_scan_limit_cancellation_is_reported_as_such() -> None:
    # GetQueryExecution's shape when the workgroup's BytesScannedCutoffPerQuery stops a query.
    execution = {
        "Status": {"State": "CANCELLED", "StateChangeReason": "Query cancelled! : Bytes scanned limit was exceeded"},
        "Statistics": {"DataScannedInBytes": 10_485_760},
    }
    error = athena.failure(execution, cutoff=10_000_000)
    assert isinstance(error, athena.ScanLimitExceeded)
    assert "scan limit of 10 MB" in str(error) and error.bytes_scanned == 10_485_760
    no_reason = {"Status": {"State": "CANCELLED"}, "Statistics": {"DataScannedInBytes": 12_000_000}}
    assert isinstance(athena.failure(no_reason, cutoff=10_000_000), athena.ScanLimitExceeded)
    by_user = {"Status": {"State": "CANCELLED"}, "Statistics": {"DataScannedInBytes": 1_000}}
    assert not isinstance(athena.failure(by_user, cutoff=10_000_000), athena.ScanLimitExceeded)


def test_cost_is_five_dollars_per_terabyte_with_a_ten_megabyte_minimum() -> None:
    assert athena.cost_dollars(0) == athena.cost_dollars(10 * 1024 * 1024) == pytest.approx(5 * 10 * 1024 * 1024 / 1e12)
    assert athena.cost_dollars(10**12) == pytest.approx(5.0, rel=1e-5)


def test_hunt_athena_end_to_end(aws) -> None:  # type: ignore[no-untyped-def]
    client, cloudformation = aws
    _stack(cloudformation, {"AthenaWorkGroupName": "eksight-hunting", "GlueDatabaseName": "eksight_audit"})
    _canned([["2025-03-03 18:16:13.904", "prod", "create"]], ["time", "cluster", "verb"])
    args = ["hunt", "rbac-changes", "--athena", "--region", REGION, "--cluster", "prod", "--format", "csv"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "time,cluster,verb\n2025-03-03 18:16:13.904,prod,create\n" in result.output
    assert "MB scanned, about $" in result.output  # stderr, mixed in by CliRunner
    execution_id = client.list_query_executions(WorkGroup="eksight-hunting")["QueryExecutionIds"][0]
    sent = client.get_query_execution(QueryExecutionId=execution_id)["QueryExecution"]
    assert sent["ExecutionParameters"].count("'prod'") == 2
    assert sent["Query"] == get("rbac-changes").athena_sql("eksight_audit")


def test_hunt_athena_without_the_stack_says_what_to_deploy(aws) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["hunt", "rbac-changes", "--athena", "--region", REGION])
    assert result.exit_code == 1 and f"deploy the detection stack {STACK}" in result.output
