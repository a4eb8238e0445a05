"""Turning on an EKS cluster's `audit` control-plane log type and telling when it is on; used by the deploy-time
custom resource (lambdas/audit_logging) and by `eksight check --fix`.

The update names `audit` together with every type already enabled, so no type is turned off whether the service
replaces the whole logging config (moto) or changes only the named types (EKS). Nothing here turns logging off.
The eks and logs clients are injected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from eksight.adapters.retry import error_code
from eksight.core.eks import cluster_log_group

AUDIT = "audit"


class LoggingUpdateFailed(RuntimeError):
    """EKS reported the logging update as Failed or Cancelled."""

    def __init__(self, cluster: str, status: str, errors: list[dict[str, Any]]) -> None:
        self.status = status.lower()
        self.details = (
            "; ".join(
                f"{e['errorCode']}: {e.get('errorMessage')}" if e.get("errorCode") else str(e.get("errorMessage", ""))
                for e in errors
            )
            or "no details"
        )
        super().__init__(f"enabling audit logging on {cluster!r} {self.status}: {self.details}")


def enabled_log_types(cluster_description: Mapping[str, Any]) -> set[str]:
    """The enabled log types of a DescribeCluster ``cluster``."""
    settings = cluster_description.get("logging", {}).get("clusterLogging", [])
    return {kind for setting in settings if setting.get("enabled") for kind in setting.get("types", [])}


def enable_audit_logging(eks: Any, cluster: str) -> str:
    """Start the update; its id, or "" when EKS had nothing to change. Other errors (no such cluster, no
    permission, ...) raise botocore's ClientError."""
    wanted = enabled_log_types(eks.describe_cluster(name=cluster)["cluster"]) | {AUDIT}
    try:
        response = eks.update_cluster_config(
            name=cluster, logging={"clusterLogging": [{"types": sorted(wanted), "enabled": True}]}
        )
    except ClientError as error:
        message = str(error.response.get("Error", {}).get("Message", ""))
        if error_code(error) == "InvalidParameterException" and "No changes needed" in message:
            return ""
        raise
    return str((response.get("update") or {}).get("id", ""))


def audit_logging_on(eks: Any, cluster: str, update_id: str) -> bool:
    """True once the update (when one was started) succeeded and `audit` is enabled; False while pending.
    Raises LoggingUpdateFailed when EKS gave up on the update."""
    if update_id:
        update = eks.describe_update(name=cluster, updateId=update_id)["update"]
        if update["status"] in ("Failed", "Cancelled"):
            raise LoggingUpdateFailed(cluster, update["status"], update.get("errors", []))
        if update["status"] != "Successful":
            return False
    return AUDIT in enabled_log_types(eks.describe_cluster(name=cluster)["cluster"])


def cluster_log_group_exists(logs: Any, cluster: str) -> bool:
    """Whether EKS has created the cluster's log group yet (listed by prefix: similarly named groups don't count)."""
    group = cluster_log_group(cluster)
    found = logs.describe_log_groups(logGroupNamePrefix=group).get("logGroups", [])
    return any(g["logGroupName"] == group for g in found)
