"""The one spelling of an EKS cluster's control-plane log group, both ways."""

from __future__ import annotations

import pytest

from eksight.core.eks import cluster_from_log_group, cluster_log_group


def test_a_clusters_log_group_is_named_after_it() -> None:
    assert cluster_log_group("prod-eks") == "/aws/eks/prod-eks/cluster"


@pytest.mark.parametrize("cluster", ["prod", "prod-eks-2", "a_b"])
def test_the_cluster_is_read_back_from_its_log_group(cluster: str) -> None:
    assert cluster_from_log_group(cluster_log_group(cluster)) == cluster


@pytest.mark.parametrize(
    "log_group",
    [
        "/aws/eks/prod/cluster-archive",  # another group that merely starts like one
        "/aws/eks/team/prod/cluster",  # cluster names have no "/"
        "/aws/eks//cluster",
        "x/aws/eks/prod/cluster",
        "/aws/lambda/prod",
        "",
    ],
)
def test_other_log_groups_name_no_cluster(log_group: str) -> None:
    assert cluster_from_log_group(log_group) is None
