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
    """Loaded on the first lookup, once per process (15,000 ranges)."""
    rows: dict[int, list[tuple[int, int, ProviderRange]]] = {4: [], 6: []}
    with gzip.open(TABLE, "rt") as lines:
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            provider, cidr = line.split()
            version, first, last = _bounds(cidr)
            rows[version].append((first, last, ProviderRange(provider, cidr)))
    table = {}
    for version, entries in rows.items():
        entries.sort(key=lambda row: row[0])
        table[version] = _Ranges(
            tuple(e[0] for e in entries), tuple(e[1] for e in entries), tuple(e[2] for e in entries)
        )
    return table


def _bounds(cidr: str) -> tuple[int, int, int]:
    """(IP version, first, last address) of a network such as ``192.0.2.0/24``: ipaddress.ip_network's reading
    (strict: host bits must be zero), without building a network object per line (three quarters of the load time)."""
    address, _, length = cidr.partition("/")
    family, bits, version = (socket.AF_INET6, 128, 6) if ":" in address else (socket.AF_INET, 32, 4)
    try:
        first, prefix = int.from_bytes(socket.inet_pton(family, address)), int(length) if length else bits
    except (OSError, ValueError):
        raise ValueError(f"{cidr!r} is not an IPv{version} network") from None
    host = (1 << (bits - prefix)) - 1 if 0 <= prefix <= bits else -1
    if host < 0 or first & host:
        raise ValueError(f"{cidr!r} is not an IPv{version} network (prefix length, or host bits set)")
    return version, first, first | host


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
