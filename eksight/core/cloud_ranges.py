"""Which hosting or cloud provider an address belongs to, from the table shipped in eksight/core/data
(rebuilt by scripts/update_cloud_ranges.py; never downloaded at run time). Sorted, non-overlapping ranges
per IP version, so a lookup is one bisect."""

from __future__ import annotations

import bisect
import gzip
import socket
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from eksight.core.rules.common import parse_address

TABLE = Path(__file__).with_name("data") / "cloud-ranges.txt.gz"

# Rented servers anyone can have within minutes; the hyperscalers (aws, gcp, azure, oracle) also carry
# corporate egress (NAT gateways, VPN concentrators), so an address there says less about who is behind it.
HOSTING_PROVIDERS = frozenset({"digitalocean", "hetzner", "ovh", "vultr", "linode"})


@dataclass(frozen=True, slots=True)
class ProviderRange:
    provider: str
    network: str


@dataclass(frozen=True, slots=True)
class _Ranges:
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    labels: tuple[ProviderRange, ...]


@cache
def _table() -> dict[int, _Ranges]:
    rows: dict[int, list[tuple[int, int, ProviderRange]]] = {4: [], 6: []}
    with gzip.open(TABLE, "rt") as lines:
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            provider, cidr = line.split()
            first, last = _bounds(cidr)
            rows[6 if ":" in cidr else 4].append((first, last, ProviderRange(provider, cidr)))
    table = {}
    for version, entries in rows.items():
        entries.sort(key=lambda row: row[0])
        table[version] = _Ranges(
            tuple(e[0] for e in entries), tuple(e[1] for e in entries), tuple(e[2] for e in entries)
        )
    return table


def _bounds(cidr: str) -> tuple[int, int]:
    """First and last address of a CIDR block, as integers. (`ipaddress.ip_network` reads the same, but the
    table's ~15k blocks took it a fifth of a second: a cold start's worth.)"""
    address, _, length = cidr.partition("/")
    packed = socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
    bits = 8 * len(packed)
    host = (1 << (bits - int(length or bits))) - 1
    first = int.from_bytes(packed, "big")
    return first & ~host, first | host


@lru_cache(maxsize=16384)
def provider_of(address: str) -> ProviderRange | None:
    """The provider range holding `address` (IPv4, IPv6 or IPv4-mapped IPv6), or None."""
    ip = parse_address(address)  # the rules' own reading: stripped, IPv4-mapped IPv6 as IPv4
    if ip is None:
        return None
    ranges = _table()[ip.version]
    value = int(ip)
    index = bisect.bisect_right(ranges.starts, value) - 1
    if index >= 0 and value <= ranges.ends[index]:
        return ranges.labels[index]
    return None
