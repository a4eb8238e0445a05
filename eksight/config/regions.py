"""AWS regions where EKS runs, and the partition each belongs to.

Read from botocore's bundled endpoint data (no network, no credentials), imported lazily so the domain
package stays import-light.
"""

from __future__ import annotations

import difflib
from functools import cache

PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@cache
def eks_regions() -> dict[str, str]:
    """Map every region that offers EKS to its partition."""
    import botocore.session  # lazy: only config validation needs it

    session = botocore.session.get_session()
    return {
        region: partition
        for partition in PARTITIONS
        for region in session.get_available_regions("eks", partition_name=partition)
    }


def partition_of(region: str) -> str:
    try:
        return eks_regions()[region]
    except KeyError:
        raise ValueError(f"unknown AWS region {region!r}") from None


def closest_regions(region: str, count: int = 3) -> list[str]:
    return difflib.get_close_matches(region, eks_regions(), n=count, cutoff=0.5)
