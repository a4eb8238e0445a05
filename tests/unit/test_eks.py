"""The one spelling of an EKS cluster's control-plane log group, both ways."""

from __future__ import annotations

import pytest

from eksight.core.eks import cluster_from_log_group, cluster_from_path, cluster_log_group


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


@pytest.mark.parametrize(
    ("path", "cluster"),
    [
        ("exports/aws/eks/prod-eks/cluster/audit.jsonl.gz", "prod-eks"),
        ("/data/aws/eks/prod/cluster/2025/03/part-0.gz", "prod"),
        (r"C:\exports\aws\eks\lab\cluster\f.json", "lab"),
        ("exports/aws/eks/prod/cluster-archive/f.gz", None),
        ("exports/aws/eks/prod/f.gz", None),
        ("audit.jsonl.gz", None),
    ],
)
def test_a_file_kept_under_its_log_groups_name_names_its_cluster(path: str, cluster: str | None) -> None:
    assert cluster_from_path(path) == cluster
