"""CloudFormation custom resource (Provider framework): turn on the EKS `audit` log type of one cluster.

The update keeps every type already enabled on (eksight.adapters.eks_logging); Delete never turns logging off
(the audit trail is the point). Completion waits until the update succeeded and the cluster's log group
exists, because the subscription filter that follows fails on a missing log group.
"""

from __future__ import annotations

import logging
from typing import Any

import boto3
from botocore.exceptions import ClientError

from eksight.adapters.eks_logging import audit_logging_on, cluster_log_group_exists, enable_audit_logging

logger = logging.getLogger("eksight.audit_logging")
logger.setLevel(logging.INFO)


def on_event(event: dict[str, Any], _context: Any = None, eks: Any = None) -> dict[str, Any]:
    cluster = event["ResourceProperties"]["ClusterName"]
    physical_id = f"{cluster}/audit-logging"
    if event["RequestType"] == "Delete":
        logger.info("leaving audit logging of %s as it is", cluster)
        return {"PhysicalResourceId": event.get("PhysicalResourceId", physical_id)}
    eks = eks or boto3.client("eks")
    try:
        update_id = enable_audit_logging(eks, cluster)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        raise RuntimeError(f"could not enable audit logging on EKS cluster {cluster!r}: {message or error}") from error
    logger.info("audit logging of %s: %s", cluster, f"update {update_id}" if update_id else "already on")
    return {"PhysicalResourceId": physical_id, "Data": {"UpdateId": update_id}}


def is_complete(event: dict[str, Any], _context: Any = None, eks: Any = None, logs: Any = None) -> dict[str, Any]:
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    cluster = event["ResourceProperties"]["ClusterName"]
    update_id = (event.get("Data") or {}).get("UpdateId", "")
    eks = eks or boto3.client("eks")
    logs = logs or boto3.client("logs")
    # A failed update raises LoggingUpdateFailed (a RuntimeError naming the cluster and EKS's reasons).
    ready = audit_logging_on(eks, cluster, update_id) and cluster_log_group_exists(logs, cluster)
    return {"IsComplete": ready}
