"""CloudFormation custom resource (Provider framework): turn on the EKS `audit` log type of one cluster.

The update names `audit` together with every type already enabled, so nothing that is on gets turned off
(whether or not an implementation merges per type); Delete never turns logging off (the audit trail is
the point). Completion waits until the update succeeded and the cluster's log group
exists, because the subscription filter that follows fails on a missing log group.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.exceptions import ClientError

logger = logging.getLogger("eksight.audit_logging")
logger.setLevel(logging.INFO)


def on_event(event: dict[str, Any], _context: Any = None, eks: Any = None) -> dict[str, Any]:
    cluster = event["ResourceProperties"]["ClusterName"]
    physical_id = f"{cluster}/audit-logging"
    if event["RequestType"] == "Delete":
        logger.info("leaving audit logging of %s as it is", cluster)
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    eks = eks or boto3.client("eks")
    return {"PhysicalResourceId": physical_id, "Data": {"UpdateId": enable_audit_logging(eks, cluster)}}


def enable_audit_logging(eks: Any, cluster: str) -> str:
    """Start the update; returns its id, or "" when audit logging was already on."""
    try:
        wanted = enabled_log_types(eks, cluster) | {"audit"}
        response = eks.update_cluster_config(
            name=cluster, logging={"clusterLogging": [{"types": sorted(wanted), "enabled": True}]}
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        if code == "InvalidParameterException" and "No changes needed" in message:
            logger.info("audit logging of %s is already on", cluster)
            return ""
        raise RuntimeError(f"could not enable audit logging on EKS cluster {cluster!r}: {message or error}") from error
    update_id = (response.get("update") or {}).get("id", "")
    logger.info("enabling audit logging of %s (update %s)", cluster, update_id or "applied")
    return update_id


def is_complete(event: dict[str, Any], _context: Any = None, eks: Any = None, logs: Any = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    cluster = event["ResourceProperties"]["ClusterName"]
    update_id = (event.get("Data") or {}).get("UpdateId", "")
    eks = eks or boto3.client("eks")
    logs = logs or boto3.client("logs")
    return {"IsComplete": audit_logging_ready(eks, logs, cluster, update_id)}


def audit_logging_ready(eks: Any, logs: Any, cluster: str, update_id: str) -> bool:
    if update_id:
        update = eks.describe_update(name=cluster, updateId=update_id)["update"]
        status = update["status"]
        if status in ("Failed", "Cancelled"):
            errors = "; ".join(f"{e.get('errorCode')}: {e.get('errorMessage')}" for e in update.get("errors", []))
            raise RuntimeError(f"enabling audit logging on {cluster!r} {status.lower()}: {errors or 'no details'}")
        if status != "Successful":
            return False
    if "audit" not in enabled_log_types(eks, cluster):
        return False
    group = f"/aws/eks/{cluster}/cluster"
    found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
    return any(g["logGroupName"] == group for g in found)


def enabled_log_types(eks: Any, cluster: str) -> set[str]:
    settings = eks.describe_cluster(name=cluster)["cluster"].get("logging", {}).get("clusterLogging", [])
    return {kind for setting in settings if setting.get("enabled") for kind in setting.get("types", [])}
