"""The optional S3 object of network lists (`detection.networks_object`), read once when the detector starts.

The object is a JSON object ``{"threat_networks": [...], "trusted_networks": [...]}`` (either key optional) of at
most `MAX_OBJECT_BYTES`. Anything else raises `NetworkListsUnavailable` with the reason; the caller keeps the
config's own lists then (a bad feed must not stop detection)."""

from __future__ import annotations

from typing import Any

import msgspec

MAX_OBJECT_BYTES = 1024 * 1024  # ~10,000 CIDRs per list fit in well under this


class NetworkLists(msgspec.Struct, forbid_unknown_fields=True):
    threat_networks: list[str] = []
    trusted_networks: list[str] = []


class NetworkListsUnavailable(Exception):
    """The object could not be read or is not a network-lists document; the message says which."""


def read_network_lists(client: Any, bucket: str, key: str) -> NetworkLists:
    """The lists in s3://`bucket`/`key` (shape only: the caller validates the entries with the config's rules)."""
    where = f"s3://{bucket}/{key}"
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        with response["Body"] as body:
            data: bytes = body.read(MAX_OBJECT_BYTES + 1)
    except Exception as error:  # botocore's errors and the transport's: all mean "not available now"
        raise NetworkListsUnavailable(f"{where}: {type(error).__name__}: {error}") from error
    if len(data) > MAX_OBJECT_BYTES:
        raise NetworkListsUnavailable(f"{where}: larger than {MAX_OBJECT_BYTES} bytes")
    try:
        return msgspec.json.decode(data, type=NetworkLists)
    except msgspec.DecodeError as error:  # ValidationError is a DecodeError
        raise NetworkListsUnavailable(f"{where}: not a network-lists document: {error}") from error
