"""eksight.core.cloud_ranges loading: the table's networks read without ipaddress objects, as ipaddress reads them."""

from __future__ import annotations

import gzip
import ipaddress

import pytest

from eksight.core import cloud_ranges


def shipped_networks() -> list[str]:
    with gzip.open(cloud_ranges.TABLE, "rt") as lines:
        return [line.split()[1] for line in lines if line.strip() and not line.startswith("#")]


def test_every_shipped_network_has_the_bounds_ipaddress_gives_it() -> None:
    networks = shipped_networks()
    assert len(networks) > 10_000 and any(":" in n for n in networks) and any("." in n for n in networks)
    for cidr in networks:
        network = ipaddress.ip_network(cidr)
        assert cloud_ranges._bounds(cidr) == (
            network.version,
            int(network.network_address),
            int(network.broadcast_address),
        ), cidr


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("0.0.0.0/0", (4, 0, 2**32 - 1)),
        ("203.0.113.7/32", (4, 3405803783, 3405803783)),
        ("203.0.113.7", (4, 3405803783, 3405803783)),  # no length: one address, as ipaddress reads it
        ("2001:db8::/32", (6, 0x20010DB8 << 96, (0x20010DB8 << 96) | (2**96 - 1))),
    ],
)
def test_edges_of_the_prefix_range(cidr: str, expected: tuple[int, int, int]) -> None:
    assert cloud_ranges._bounds(cidr) == expected


@pytest.mark.parametrize("cidr", ["192.0.2.1/24", "192.0.2.0/33", "192.0.2.0/-1", "2001:db8::1/32", "not-an-ip/8"])
def test_what_ipaddress_rejects_is_rejected(cidr: str) -> None:
    with pytest.raises(ValueError):
        ipaddress.ip_network(cidr)
    with pytest.raises(ValueError):
        cloud_ranges._bounds(cidr)


def test_lookups_find_the_range_holding_an_address() -> None:
    aws = next(c for c in shipped_networks() if c.startswith("1.178.4."))
    found = cloud_ranges.provider_of("1.178.4.9")
    assert found is not None and (found.provider, found.network) == ("aws", aws)
    assert cloud_ranges.provider_of("10.0.0.1") is None
