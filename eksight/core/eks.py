"""Where EKS writes a cluster's control-plane logs: the CloudWatch Logs group ``/aws/eks/<cluster>/cluster``.

EKS creates that group once a log type is enabled and names it after the cluster; eksight subscribes to it,
waits for it, and reads the cluster's name back from a subscription envelope's ``logGroup``.
"""

from __future__ import annotations

import re

# Matches (fullmatch) one cluster's group; group 1 is the cluster name (EKS cluster names contain no "/").
CLUSTER_LOG_GROUP = re.compile(r"/aws/eks/([^/]+)/cluster")
# The same group as directories of a path: raw files saved under their log group's name keep their cluster.
_CLUSTER_LOG_GROUP_IN_PATH = re.compile(r"(?:^|/)aws/eks/([^/]+)/cluster(?:/|$)")
# Every cluster's group, as an IAM resource or condition pattern (``arn:…:log-group:/aws/eks/*``).
ANY_CLUSTER_LOG_GROUP = "/aws/eks/*"


def cluster_log_group(cluster: str) -> str:
    return f"/aws/eks/{cluster}/cluster"


def cluster_from_log_group(log_group: str) -> str | None:
    """The cluster whose control-plane log group this is, or None for any other group."""
    match = CLUSTER_LOG_GROUP.fullmatch(log_group)
    return match.group(1) if match else None


def cluster_from_path(path: str) -> str | None:
    """The cluster of a file kept under its log group's name (``exports/aws/eks/prod/cluster/…``), or None."""
    match = _CLUSTER_LOG_GROUP_IN_PATH.search(path.replace("\\", "/"))
    return match.group(1) if match else None
