"""The operator's network lists as the rules read them: threat intel (EKS-150) and trusted public egress (EKS-131,
EKS-136), from the deployment config's `detection` section (and its optional S3 object), passed to the engine.

A list may hold thousands of networks and EKS-150 looks at every event, so membership is one set lookup per
prefix length present in the list, not a scan of the list."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class NetworkSet:
    """Addresses and CIDRs (host bits ignored); entries that do not parse are left out (the config validates
    them before they get here)."""

    __slots__ = ("_masked",)

    def __init__(self, entries: Iterable[str] = ()) -> None:
        masked: dict[tuple[int, int], set[int]] = {}  # (IP version, prefix length) → network addresses
        for entry in entries:
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except (ValueError, TypeError, AttributeError):
                continue
            masked.setdefault((network.version, network.prefixlen), set()).add(int(network.network_address))
        self._masked = masked

    def __contains__(self, address: Address | None) -> bool:
        if address is None or not self._masked:
            return False
        value, version = int(address), address.version
        bits = address.max_prefixlen
        for (list_version, prefix), networks in self._masked.items():
            if list_version == version and (value >> (bits - prefix)) << (bits - prefix) in networks:
                return True
        return False

    def __bool__(self) -> bool:
        return bool(self._masked)

    def __len__(self) -> int:
        return sum(len(networks) for networks in self._masked.values())


@dataclass(frozen=True)
class OperatorNetworks:
    threat: NetworkSet
    trusted_public: NetworkSet

    @classmethod
    def of(cls, threat: Iterable[str] = (), trusted_public: Iterable[str] = ()) -> OperatorNetworks:
        return cls(NetworkSet(threat), NetworkSet(trusted_public))


NO_NETWORKS = OperatorNetworks.of()
