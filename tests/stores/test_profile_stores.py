"""One contract for every StateStore (MemoryStateStore and DynamoStateStore on DynamoDB Local), plus what only
DynamoStateStore has: consumed capacity, the item-size limit, unprocessed-key retries and error propagation."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from eksight.adapters.dynamodb import (
    MAX_BLOB_BYTES,
    TTL_ATTRIBUTE,
    DynamoStateStore,
    DynamoStoreError,
    item_size,
    read_capacity_units,
    write_capacity_units,
)
from eksight.adapters.retry import Backoff
from eksight.core.state import ConflictError, Key, StoredItem, apply_updates

KEY: Key = ("prod|sa:team-a/api", "profile")
IN_30_DAYS = int(time.time()) + 30 * 86400


# ---- the contract, for both stores -------------------------------------------------------------------------


def test_missing_keys_are_absent(backend):
    assert backend.store.get_many([]) == {}
    assert backend.store.get_many([KEY, ("prod|user:alice", "profile")]) == {}
    assert backend.store.put_if(KEY, b"a", None)
    assert backend.store.get_many([KEY, ("prod|user:alice", "profile")]) == {KEY: StoredItem(b"a", 1, 0)}


def test_first_write_requires_absence(backend):
    store = backend.store
    assert store.put_if(KEY, b"first", None)
    assert not store.put_if(KEY, b"second", None)
    assert store.get_many([KEY]) == {KEY: StoredItem(b"first", 1, 0)}
    assert store.conflicts == 1


def test_version_increments_with_each_write(backend):
    store = backend.store
    assert store.put_if(KEY, b"v1", None)
    assert store.put_if(KEY, b"v2", 1)
    assert store.put_if(KEY, b"v3", 2)
    assert store.get_many([KEY]) == {KEY: StoredItem(b"v3", 3, 0)}
    assert store.writes == 3


def test_stale_write_is_refused_and_changes_nothing(backend):
    store = backend.store
    assert store.put_if(KEY, b"v1", None, expires_at=IN_30_DAYS)
    assert store.put_if(KEY, b"v2", 1, expires_at=IN_30_DAYS)
    assert not store.put_if(KEY, b"stale", 1, expires_at=IN_30_DAYS + 1)  # someone else wrote version 2
    assert not store.put_if(KEY, b"future", 5)
    assert store.get_many([KEY]) == {KEY: StoredItem(b"v2", 2, IN_30_DAYS)}
    other = ("prod|user:bob", "profile")
    assert not store.put_if(other, b"x", 1)  # expecting a version of an item that does not exist
    assert store.get_many([other]) == {}
    assert store.conflicts == 3


def test_get_many_over_100_keys_in_chunks(backend):
    store = backend.store
    keys = [(f"prod|sa:ns-{i % 7}/app-{i}", "profile" if i % 3 else "peers") for i in range(250)]
    present = keys[::8]  # 32 items, spread over all three chunks
    for key in present:
        assert store.put_if(key, key[0].encode(), None)
    keys.append(present[0])  # a duplicate: BatchGetItem would reject it, the store must not
    assert store.get_many(keys) == {key: StoredItem(key[0].encode(), 1, 0) for key in present}
    if backend.name == "dynamo":
        assert backend.calls["batch_get_item"] == 3  # 250 distinct keys → 100 + 100 + 50


@pytest.mark.parametrize(
    "blob",
    [
        bytes(range(256)),
        bytes(range(255, -1, -1)) * 3,
        b"",
        b"\x00",
        b"\xff" * 7,
        random.Random(7).randbytes(300_000),
    ],
    ids=["all-256-bytes", "all-bytes-reversed", "empty", "nul", "ff", "300KB-random"],
)
def test_binary_round_trip(backend, blob):
    assert backend.store.put_if(KEY, blob, None)
    item = backend.new_store().get_many([KEY])[KEY]
    assert type(item.blob) is bytes
    assert item.blob == blob
    assert item.version == 1


def test_expires_at_is_persisted(backend):
    store = backend.store
    forever = ("prod|user:carol", "profile")
    assert store.put_if(KEY, b"x", None, expires_at=IN_30_DAYS)
    assert store.put_if(forever, b"y", None)
    assert store.get_many([KEY, forever]) == {KEY: StoredItem(b"x", 1, IN_30_DAYS), forever: StoredItem(b"y", 1, 0)}
    assert store.put_if(KEY, b"x2", 1, expires_at=IN_30_DAYS + 60)
    assert store.get_many([KEY])[KEY].expires_at == IN_30_DAYS + 60
    if backend.name == "dynamo":
        table = backend.table
        ttl = table.client.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": TTL_ATTRIBUTE}
        raw = table.client.get_item(TableName=table.name, Key={"pk": {"S": KEY[0]}, "sk": {"S": KEY[1]}})["Item"]
        assert raw[TTL_ATTRIBUTE] == {"N": str(IN_30_DAYS + 60)}
        raw = table.client.get_item(TableName=table.name, Key={"pk": {"S": forever[0]}, "sk": {"S": forever[1]}})
        assert TTL_ATTRIBUTE not in raw["Item"]  # 0 = never: no TTL attribute (a 0 would mean "expired in 1970")
    assert store.put_if(KEY, b"x3", 2)  # a write without TTL drops the old one
    assert store.get_many([KEY])[KEY].expires_at == 0


def test_apply_updates_merges_with_the_current_blob(backend):
    store = backend.store
    new = ("prod|user:dave", "profile")
    assert store.put_if(KEY, b"old", None)
    seen: dict[Key, bytes | None] = {}

    def append(key: Key) -> Any:
        def merge(current: bytes | None) -> bytes:
            seen[key] = current
            return (current or b"") + b"+batch"

        return merge

    written = apply_updates(store, {KEY: append(KEY), new: append(new)}, expires_at=lambda key: IN_30_DAYS)
    assert seen == {KEY: b"old", new: None}
    assert written == {KEY: StoredItem(b"old+batch", 2, IN_30_DAYS), new: StoredItem(b"+batch", 1, IN_30_DAYS)}
    assert store.get_many([KEY, new]) == {
        KEY: StoredItem(b"old+batch", 2, IN_30_DAYS),
        new: StoredItem(b"+batch", 1, IN_30_DAYS),
    }
    assert store.conflicts == 0


def test_apply_updates_retries_after_losing_a_race(backend):
    store, intruder = backend.store, backend.new_store()
    assert store.put_if(KEY, b"base", None)
    seen: list[bytes | None] = []

    def merge(current: bytes | None) -> bytes:
        seen.append(current)
        if len(seen) == 1:  # another writer lands between our read and our conditional write
            assert current is not None
            assert intruder.put_if(KEY, current + b"+them", 1)
        return (current or b"") + b"+us"

    assert apply_updates(store, {KEY: merge}) == {KEY: StoredItem(b"base+them+us", 3, 0)}
    assert seen == [b"base", b"base+them"]  # re-read, re-merged: their update is kept
    assert store.get_many([KEY]) == {KEY: StoredItem(b"base+them+us", 3, 0)}
    assert store.conflicts == 1


def test_conflict_error_after_max_attempts(backend):
    store, intruder = backend.store, backend.new_store()
    assert store.put_if(KEY, b"0", None)
    calls = 0

    def merge(current: bytes | None) -> bytes:
        nonlocal calls
        calls += 1
        item = intruder.get_many([KEY])[KEY]
        assert intruder.put_if(KEY, item.blob + b"!", item.version)  # always one step ahead of us
        return (current or b"") + b"+us"

    with pytest.raises(ConflictError, match="kept changing"):
        apply_updates(store, {KEY: merge}, max_attempts=3)
    assert calls == 3
    assert store.get_many([KEY]) == {KEY: StoredItem(b"0!!!", 4, 0)}  # only the intruder's writes landed


class _SlowReader:
    """Widens the read → conditional-write window so two writers really interleave."""

    def __init__(self, store: Any, pause: float) -> None:
        self.store, self.pause = store, pause

    def get_many(self, keys: Any) -> Any:
        items = self.store.get_many(keys)
        time.sleep(self.pause)
        return items

    def put_if(self, *args: Any, **kwargs: Any) -> bool:
        return self.store.put_if(*args, **kwargs)


def test_two_concurrent_writers_lose_no_update(backend):
    n = 50
    stores = [backend.new_store(), backend.new_store()]  # Dynamo: each writer with its own boto3 client
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def increment(current: bytes | None) -> bytes:
        return str(int(current or b"0") + 1).encode()

    def writer(store: Any) -> None:
        try:
            barrier.wait(timeout=60)
            for _ in range(n):
                # Each lost race is a win of the other writer, which wins at most n times: n + 1 attempts
                # can never run out, so a ConflictError here would be a real bug.
                apply_updates(_SlowReader(store, 0.002), {KEY: increment}, max_attempts=n + 1)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    assert stores[0].get_many([KEY]) == {KEY: StoredItem(str(2 * n).encode(), 2 * n, 0)}
    distinct = {id(store): store for store in stores}.values()  # MemoryStateStore: both handles are one store
    assert sum(store.writes for store in distinct) == 2 * n
    conflicts = sum(store.conflicts for store in distinct)
    print(f"{backend.name}: {2 * n} increments, {conflicts} lost races")
    assert conflicts > 0, "the writers never raced: the test proves nothing"


# ---- DynamoStateStore only --------------------------------------------------------------------------------------


def _blob_for(key: Key, size: int, version: int = 1, expires_at: int = 0) -> bytes:
    """A blob making the item exactly `size` bytes as DynamoDB bills it."""
    blob = b"\xa5" * (size - item_size(key, b"", version, expires_at))
    assert item_size(key, blob, version, expires_at) == size
    return blob


@pytest.mark.parametrize(
    ("size", "units"),
    [(1024, 1.0), (1025, 2.0), (5 * 1024, 5.0), (5 * 1024 + 1, 6.0), (100, 1.0), (MAX_BLOB_BYTES, 350.0)],
)
def test_write_capacity_units(dynamo_table, size, units):
    store = dynamo_table.store()
    key = (f"prod|sa:team-a/api-{size}", "profile")
    assert store.put_if(key, _blob_for(key, size, expires_at=IN_30_DAYS), None, expires_at=IN_30_DAYS)
    assert store.write_units == units == write_capacity_units(size)
    assert (store.writes, store.read_units, store.estimated_write_units) == (1, 0.0, 0.0)


def test_overwrite_bills_the_larger_item(dynamo_table):
    store = dynamo_table.store()
    assert store.put_if(KEY, _blob_for(KEY, 5 * 1024), None)
    assert store.put_if(KEY, _blob_for(KEY, 1024, version=2), 1)
    assert store.write_units == 5.0 + 5.0  # replacing a 5 KB item with a 1 KB one still costs 5 WCU


def test_read_capacity_units_are_strongly_consistent(dynamo_table):
    writer, reader = dynamo_table.store(), dynamo_table.store()
    sizes = {1024: 1.0, 4096: 1.0, 4097: 2.0, 300_000: 74.0}
    keys = {size: (f"prod|sa:team-a/api-{size}", "profile") for size in sizes}
    for size, key in keys.items():
        assert writer.put_if(key, _blob_for(key, size), None)
    for size, units in sizes.items():
        before = reader.read_units
        assert len(reader.get_many([keys[size]])) == 1
        # an eventually consistent read would be half of this: 1.0 for a 4 KB item proves ConsistentRead
        assert reader.read_units - before == units == read_capacity_units(size)
    before = reader.read_units
    reader.get_many([keys[1024], keys[4096]])  # each item of a batch is rounded up on its own
    assert reader.read_units - before == 2.0
    assert reader.reads == len(sizes) + 2
    assert read_capacity_units(4096, consistent=False) == 0.5
    before = reader.read_units
    assert len(reader.get_many([keys[1024], keys[4096]], consistent=False)) == 2  # what the baselines batch uses
    assert reader.read_units - before == 1.0


def test_lost_race_counts_an_estimated_write(dynamo_table):
    store = dynamo_table.store()
    assert store.put_if(KEY, _blob_for(KEY, 2048), None)
    assert not store.put_if(KEY, _blob_for(KEY, 3000, version=2), None)
    assert (store.writes, store.conflicts) == (1, 1)
    assert store.estimated_write_units == 3.0  # the error carries no ConsumedCapacity: sized from our item
    assert store.write_units == 2.0 + 3.0


def test_oversized_blob_is_refused(dynamo_table):
    store = dynamo_table.store()
    with pytest.raises(ValueError, match=r"at most 358,400 bytes per profile \(DynamoDB items are limited"):
        store.put_if(KEY, b"x" * (MAX_BLOB_BYTES + 1), None)
    assert store.get_many([KEY]) == {}
    assert store.put_if(KEY, b"x" * MAX_BLOB_BYTES, None)  # the cap itself fits in a DynamoDB item
    assert len(store.get_many([KEY])[KEY].blob) == MAX_BLOB_BYTES


def test_other_errors_propagate(dynamodb_local):
    store = DynamoStateStore(dynamodb_local.client(), "eksight-no-such-table")
    with pytest.raises(ClientError) as raised:
        store.put_if(KEY, b"x", None)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError):
        store.get_many([KEY])
    assert (store.writes, store.conflicts) == (0, 0)


class _ThrottlingClient:
    """A stub BatchGetItem that leaves all but the first key unprocessed for `throttled` calls."""

    def __init__(self, table: str, throttled: int) -> None:
        self.table, self.throttled = table, throttled
        self.requests: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any], ReturnConsumedCapacity: str) -> dict[str, Any]:
        assert ReturnConsumedCapacity == "TOTAL"
        self.requests.append(RequestItems)
        request = RequestItems[self.table]
        keys = request["Keys"]
        served = keys if len(self.requests) > self.throttled else keys[:1]
        items = [{**key, "blob": {"B": key["pk"]["S"].encode()}, "version": {"N": "1"}} for key in served]
        response: dict[str, Any] = {
            "Responses": {self.table: items},
            "ConsumedCapacity": [{"TableName": self.table, "CapacityUnits": float(len(items))}],
            "UnprocessedKeys": {},
        }
        if len(served) < len(keys):
            response["UnprocessedKeys"] = {self.table: {**request, "Keys": keys[len(served) :]}}
        return response


def test_unprocessed_keys_are_retried_with_exponential_backoff():
    client, delays = _ThrottlingClient("t", throttled=3), []
    store = DynamoStateStore(
        client, "t", backoff=Backoff(attempts=8, base=0.05, sleep=delays.append, random=lambda: 1.0)
    )
    keys = [(f"p{i}", "s") for i in range(5)]
    assert store.get_many(keys) == {key: StoredItem(key[0].encode(), 1, 0) for key in keys}
    assert delays == [0.05, 0.1, 0.2]
    assert [len(request["t"]["Keys"]) for request in client.requests] == [5, 4, 3, 2]
    assert all(request["t"]["ConsistentRead"] and request["t"]["ProjectionExpression"] for request in client.requests)
    assert store.read_units == 5.0


def test_unprocessed_keys_give_up_after_bounded_attempts():
    client, delays = _ThrottlingClient("t", throttled=100), []
    backoff = Backoff(attempts=4, base=0.05, cap=0.06, sleep=delays.append, random=lambda: 0.5)
    store = DynamoStateStore(client, "t", backoff=backoff)
    with pytest.raises(DynamoStoreError, match="2 unprocessed key"):
        store.get_many([("a", "s"), ("b", "s"), ("c", "s"), ("d", "s"), ("e", "s"), ("f", "s")])
    assert len(client.requests) == 4
    assert delays == [0.025, 0.03, 0.03]  # full jitter (x0.5) of 0.05, 0.1, 0.2 capped at 0.06
