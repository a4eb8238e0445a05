"""The audit-logging custom resource: enables only `audit`, treats "No changes needed" as success, never
disables on delete, and completes only when the update succeeded and the log group exists."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "lambdas" / "audit_logging"))
import handler

REGION = "eu-west-1"


def event(request: str, cluster: str = "prod", **extra: Any) -> dict[str, Any]:
    return {"RequestType": request, "ResourceProperties": {"ClusterName": cluster}, **extra}


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield boto3.client("eks", region_name=REGION), boto3.client("logs", region_name=REGION)


def create_cluster(eks: Any, name: str, types: list[str]) -> None:
    eks.create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": ["subnet-1"]},
        logging={"clusterLogging": [{"types": types, "enabled": True}]} if types else {"clusterLogging": []},
    )


def enabled_types(eks: Any, name: str) -> set[str]:
    settings = eks.describe_cluster(name=name)["cluster"]["logging"]["clusterLogging"]
    return {kind for s in settings if s["enabled"] for kind in s["types"]}


def test_create_turns_audit_on_and_keeps_the_other_log_types(aws: Any) -> None:
    eks, _ = aws
    create_cluster(eks, "prod", ["api", "authenticator"])
    result = handler.on_event(event("Create"), eks=eks)
    assert result["PhysicalResourceId"] == "prod/audit-logging"
    assert enabled_types(eks, "prod") == {"api", "authenticator", "audit"}


def test_already_enabled_is_success_not_an_error() -> None:
    eks = boto3.client("eks", region_name=REGION)
    with Stubber(eks) as stub:
        stub.add_response(
            "describe_cluster",
            {"cluster": {"name": "prod", "logging": {"clusterLogging": [{"types": ["audit"], "enabled": True}]}}},
            {"name": "prod"},
        )
        stub.add_client_error(
            "update_cluster_config",
            service_error_code="InvalidParameterException",
            service_message="No changes needed for the logging config provided",
        )
        assert handler.on_event(event("Update"), eks=eks)["Data"] == {"UpdateId": ""}


def test_other_errors_fail_the_deploy_with_the_cluster_name() -> None:
    eks = boto3.client("eks", region_name=REGION)
    with Stubber(eks) as stub:
        stub.add_client_error(
            "describe_cluster",
            service_error_code="ResourceNotFoundException",
            service_message="No cluster found for name: prod.",
        )
        with pytest.raises(RuntimeError, match=r"cluster 'prod': No cluster found"):
            handler.on_event(event("Create"), eks=eks)
    with Stubber(eks) as stub:
        stub.add_response(
            "describe_cluster", {"cluster": {"name": "prod", "logging": {"clusterLogging": []}}}, {"name": "prod"}
        )
        stub.add_client_error(
            "update_cluster_config",
            service_error_code="InvalidParameterException",
            service_message="Subnet subnet-1 does not have enough free IP addresses",
        )
        with pytest.raises(RuntimeError, match="free IP"):
            handler.on_event(event("Create"), eks=eks)


def test_the_update_sends_audit_with_the_types_already_on(aws: Any) -> None:
    eks, _ = aws
    create_cluster(eks, "prod", ["scheduler"])
    with Stubber(eks) as stub:
        stub.add_response(
            "describe_cluster",
            {
                "cluster": {
                    "name": "prod",
                    "logging": {
                        "clusterLogging": [
                            {"types": ["scheduler"], "enabled": True},
                            {"types": ["api"], "enabled": False},
                        ]
                    },
                }
            },
            {"name": "prod"},
        )
        stub.add_response(
            "update_cluster_config",
            {"update": {"id": "u-9", "status": "InProgress"}},
            {"name": "prod", "logging": {"clusterLogging": [{"types": ["audit", "scheduler"], "enabled": True}]}},
        )
        assert handler.on_event(event("Update"), eks=eks)["Data"] == {"UpdateId": "u-9"}


def test_delete_never_touches_the_cluster() -> None:
    eks = boto3.client("eks", region_name=REGION)
    with Stubber(eks):  # no responses queued: any EKS call would raise
        result = handler.on_event(event("Delete", PhysicalResourceId="prod/audit-logging"), eks=eks)
        assert result == {"PhysicalResourceId": "prod/audit-logging"}
        assert handler.is_complete(event("Delete"), eks=eks, logs=object()) == {"IsComplete": True}


def complete(eks: Any, logs: Any, update_id: str) -> bool:
    return bool(handler.is_complete(event("Create", Data={"UpdateId": update_id}), eks=eks, logs=logs)["IsComplete"])


def _update(status: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"update": {"id": "u-1", "status": status, "type": "LoggingUpdate", "errors": errors or []}}


def test_completion_waits_for_the_update_then_for_the_log_group(aws: Any) -> None:
    eks_moto, logs = aws
    create_cluster(eks_moto, "prod", ["api"])
    handler.on_event(event("Create"), eks=eks_moto)
    with Stubber(eks_moto) as stub:
        stub.add_response("describe_update", _update("InProgress"), {"name": "prod", "updateId": "u-1"})
        assert complete(eks_moto, logs, "u-1") is False
    with Stubber(eks_moto) as stub:
        stub.add_response("describe_update", _update("Successful"), {"name": "prod", "updateId": "u-1"})
        stub.add_response(
            "describe_cluster",
            {
                "cluster": {
                    "name": "prod",
                    "logging": {"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]},
                }
            },
            {"name": "prod"},
        )
        assert complete(eks_moto, logs, "u-1") is False  # no log group yet
    logs.create_log_group(logGroupName="/aws/eks/prod/cluster")
    logs.create_log_group(logGroupName="/aws/eks/prod/cluster-other")
    assert handler.is_complete(event("Create", Data={"UpdateId": ""}), eks=eks_moto, logs=logs) == {"IsComplete": True}


def test_a_log_group_of_a_similarly_named_cluster_does_not_count(aws: Any) -> None:
    eks, logs = aws
    create_cluster(eks, "prod", ["audit"])
    logs.create_log_group(logGroupName="/aws/eks/prod/cluster-archive")
    assert complete(eks, logs, "") is False


def test_a_failed_update_fails_the_deploy_with_its_reason(aws: Any) -> None:
    eks, logs = aws
    with Stubber(eks) as stub:
        stub.add_response(
            "describe_update",
            _update("Failed", [{"errorCode": "InsufficientFreeAddresses", "errorMessage": "subnet-1 has 0 free IPs"}]),
            {"name": "prod", "updateId": "u-1"},
        )
        with pytest.raises(RuntimeError, match="failed: InsufficientFreeAddresses: subnet-1 has 0 free IPs"):
            complete(eks, logs, "u-1")
