"""`StateStore` on one DynamoDB table, for the Lambda (and DynamoDB Local in tests and the demo).

Single-table design, one item per profile:

    pk (S, HASH) | sk (S, RANGE) | blob (B) | version (N) | expires_at (N, the table's TTL attribute)

`expires_at` is omitted when it is 0 ("never"): DynamoDB TTL reads any number as epoch seconds, so a stored 0
would mean "expired in 1970".

Reads are strongly consistent BatchGetItems (optimistic concurrency needs the latest version); writes are
conditional PutItems. Every call asks for ReturnConsumedCapacity="TOTAL" and the store accumulates what it
used (`read_units`, `write_units`, `reads`, `writes`, `conflicts`) so the benchmark can report capacity per
1,000 events. DynamoDB does not return ConsumedCapacity with a ConditionalCheckFailedException although it
charges the write, so a lost race adds an *estimate* (the attempted item's size, see `item_size`) to
`write_units` and to `estimated_write_units`; DynamoDB actually charges the larger of the stored and the
attempted item.

boto3 is not imported here: callers inject a client (``boto3.client("dynamodb")``), so tests can pass a stub.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from eksight.adapters.retry import Backoff, Pending, retry_failed
from eksight.core.state import Key, StoredItem

if TYPE_CHECKING:
    from botocore.client import BaseClient

PARTITION_KEY = "pk"
SORT_KEY = "sk"
BLOB_ATTRIBUTE = "blob"
VERSION_ATTRIBUTE = "version"
TTL_ATTRIBUTE = "expires_at"

TABLE_KEY_SCHEMA: tuple[dict[str, str], ...] = (
    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
)
TABLE_ATTRIBUTE_DEFINITIONS: tuple[dict[str, str], ...] = (
    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
    {"AttributeName": SORT_KEY, "AttributeType": "S"},
)

MAX_BLOB_BYTES = 350 * 1024  # DynamoDB items are limited to 400 KB; the baseline layer caps profiles far below
BATCH_GET_LIMIT = 100  # keys per BatchGetItem request (a DynamoDB limit)
# BatchGetItem calls per chunk before unprocessed keys are an error, and the pauses between them
BATCH_GET_BACKOFF = Backoff(attempts=8, base=0.05, cap=2.0)

_NAMES = {
    "#pk": PARTITION_KEY,
    "#sk": SORT_KEY,
    "#blob": BLOB_ATTRIBUTE,
    "#v": VERSION_ATTRIBUTE,
    "#exp": TTL_ATTRIBUTE,
}
_PROJECTION = ", ".join(_NAMES)


def table_definition(name: str) -> dict[str, Any]:
    """Keyword arguments for CreateTable (on-demand billing). Enable TTL with `time_to_live_specification`."""
    return {
        "TableName": name,
        "KeySchema": [dict(key) for key in TABLE_KEY_SCHEMA],
        "AttributeDefinitions": [dict(attribute) for attribute in TABLE_ATTRIBUTE_DEFINITIONS],
        "BillingMode": "PAY_PER_REQUEST",
    }


def time_to_live_specification(name: str) -> dict[str, Any]:
    """Keyword arguments for UpdateTimeToLive: expire items by `expires_at`."""
    return {"TableName": name, "TimeToLiveSpecification": {"Enabled": True, "AttributeName": TTL_ATTRIBUTE}}


def create_table(client: BaseClient, name: str) -> None:
    """Create the profile table, wait until it is ACTIVE and enable TTL (tests and the local demo)."""
    client.create_table(**table_definition(name))
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    client.update_time_to_live(**time_to_live_specification(name))


class DynamoStoreError(RuntimeError):
    """DynamoDB kept returning unprocessed keys (throttling) past the retry budget."""


def number_size(value: int) -> int:
    """Bytes DynamoDB counts for a number value: 1 + one per significant base-100 digit (+1 if negative)."""
    if value == 0:
        return 1
    digits = str(abs(value))
    if len(digits) % 2:
        digits = "0" + digits
    pairs = [digits[i : i + 2] for i in range(0, len(digits), 2)]
    while pairs and pairs[-1] == "00":
        pairs.pop()
    return 1 + len(pairs) + (value < 0)


def item_size(key: Key, blob: bytes, version: int, expires_at: int = 0) -> int:
    """Size DynamoDB bills for one profile item: attribute names plus values (UTF-8 strings, raw binary,
    numbers as `number_size`)."""
    size = len(PARTITION_KEY) + len(key[0].encode()) + len(SORT_KEY) + len(key[1].encode())
    size += len(BLOB_ATTRIBUTE) + len(blob) + len(VERSION_ATTRIBUTE) + number_size(version)
    if expires_at:
        size += len(TTL_ATTRIBUTE) + number_size(expires_at)
    return size


def write_capacity_units(size: int) -> float:
    """WCU of one standard write of an item of `size` bytes: one per started KB, at least one."""
    return float(max(1, math.ceil(size / 1024)))


def read_capacity_units(size: int, consistent: bool = True) -> float:
    """RCU of reading one item of `size` bytes: one per started 4 KB if strongly consistent, else half."""
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


class DynamoStateStore:
    """A `StateStore` on a table created from `table_definition`. Thread-safe if the client is (boto3
    clients are); the usage counters are shared by all threads using this instance."""

    def __init__(self, client: BaseClient, table_name: str, *, backoff: Backoff = BATCH_GET_BACKOFF) -> None:
        self.client = client
        self.table_name = table_name
        self.backoff = backoff
        self._lock = threading.Lock()
        self.read_units = 0.0
        self.write_units = 0.0
        self.estimated_write_units = 0.0  # the part of write_units estimated for lost races
        self.reads = 0  # keys requested
        self.writes = 0  # successful writes
        self.conflicts = 0  # conditional writes refused

    # ---- StateStore ----------------------------------------------------------------------------------

    def get_many(self, keys: Sequence[Key], consistent: bool = True) -> dict[Key, StoredItem]:
        unique = list(dict.fromkeys(keys))  # BatchGetItem rejects duplicate keys
        with self._lock:
            self.reads += len(keys)
        found: dict[Key, StoredItem] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            found.update(self._get_chunk(unique[start : start + BATCH_GET_LIMIT], consistent))
        return found

    def put_if(self, key: Key, blob: bytes, expected_version: int | None, expires_at: int = 0) -> bool:
        blob = bytes(blob)
        if len(blob) > MAX_BLOB_BYTES:
            raise ValueError(
                f"profile {key} is {len(blob):,} bytes; DynamoStateStore stores at most {MAX_BLOB_BYTES:,} "
                "bytes per profile (DynamoDB items are limited to 400 KB): cap the profile before "
                "writing it"
            )
        if expected_version is not None and expected_version < 1:
            raise ValueError(f"expected_version must be None or >= 1, got {expected_version}")
        if expires_at < 0:
            raise ValueError(f"expires_at must be epoch seconds or 0 (never), got {expires_at}")
        version = (expected_version or 0) + 1
        item: dict[str, Any] = {
            PARTITION_KEY: {"S": key[0]},
            SORT_KEY: {"S": key[1]},
            BLOB_ATTRIBUTE: {"B": blob},
            VERSION_ATTRIBUTE: {"N": str(version)},
        }
        if expires_at:
            item[TTL_ATTRIBUTE] = {"N": str(expires_at)}
        request: dict[str, Any] = {"TableName": self.table_name, "Item": item, "ReturnConsumedCapacity": "TOTAL"}
        if expected_version is None:
            request.update(
                ConditionExpression="attribute_not_exists(#pk)", ExpressionAttributeNames={"#pk": PARTITION_KEY}
            )
        else:
            request.update(
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": VERSION_ATTRIBUTE},
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
            )

        try:
            response = self.client.put_item(**request)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            reported = _capacity_units(error.response.get("ConsumedCapacity"))
            estimate = write_capacity_units(item_size(key, blob, version, expires_at)) if reported is None else 0.0
            with self._lock:
                self.conflicts += 1
                self.write_units += estimate if reported is None else reported
                self.estimated_write_units += estimate
            return False
        with self._lock:
            self.writes += 1
            self.write_units += _capacity_units(response.get("ConsumedCapacity")) or 0.0
        return True

    # ---- internals -------------------------------------------------------------------------------------

    def _get_chunk(self, keys: list[Key], consistent: bool) -> dict[Key, StoredItem]:
        found: dict[Key, StoredItem] = {}

        def batch_get(item_keys: list[dict[str, Any]]) -> list[Pending[dict[str, Any]]]:
            request = {
                self.table_name: {
                    "Keys": item_keys,
                    "ConsistentRead": consistent,
                    "ProjectionExpression": _PROJECTION,
                    "ExpressionAttributeNames": dict(_NAMES),
                }
            }
            response = self.client.batch_get_item(RequestItems=request, ReturnConsumedCapacity="TOTAL")
            units = _capacity_units(response.get("ConsumedCapacity"))
            if units:
                with self._lock:
                    self.read_units += units
            for raw in response.get("Responses", {}).get(self.table_name, []):
                key, item = _decode(raw)
                found[key] = item
            unprocessed = (response.get("UnprocessedKeys") or {}).get(self.table_name, {}).get("Keys") or []
            return [Pending(item_key, "unprocessed") for item_key in unprocessed]

        # Unprocessed keys (throttling) are asked for again after a backoff with full jitter, as AWS recommends.
        item_keys = [{PARTITION_KEY: {"S": pk}, SORT_KEY: {"S": sk}} for pk, sk in keys]
        left = retry_failed(batch_get, item_keys, self.backoff)
        if left:
            raise DynamoStoreError(
                f"BatchGetItem on {self.table_name} still had {len(left)} unprocessed key(s) after "
                f"{self.backoff.attempts} attempts (throttled?), e.g. {left[0].item}"
            )
        return found


def _decode(raw: Mapping[str, Any]) -> tuple[Key, StoredItem]:
    key = (raw[PARTITION_KEY]["S"], raw[SORT_KEY]["S"])
    expires = raw.get(TTL_ATTRIBUTE)
    return key, StoredItem(
        blob=bytes(raw[BLOB_ATTRIBUTE]["B"]),
        version=int(Decimal(raw[VERSION_ATTRIBUTE]["N"])),
        expires_at=int(Decimal(expires["N"])) if expires else 0,
    )


def _capacity_units(consumed: Any) -> float | None:
    """CapacityUnits from a ConsumedCapacity value (a dict for PutItem, a list for BatchGetItem)."""
    if consumed is None:
        return None
    entries = consumed if isinstance(consumed, list) else [consumed]
    return float(sum(entry.get("CapacityUnits", 0.0) for entry in entries))
