"""Where behavioural profiles live between batches: one interface, two implementations.

A profile is an opaque, already-serialized blob (the baseline layer owns its format) stored under a
(partition, sort) key with a version number. Writers use optimistic concurrency: read a batch of items,
merge the batch's changes into each, then write each back *only if* its version is still the one read. A
writer that loses the race re-reads and re-merges its own delta (`apply_updates`), so two concurrent Lambda
invocations never lose each other's updates. Cost per principal per batch: one read (batched) and one
conditional write (plus one read and one write per lost race).

`MemoryStateStore` backs `eksight replay` and tests; `eksight.adapters.dynamodb.DynamoStateStore` backs the Lambda.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

Key = tuple[str, str]  # (partition key, sort key): e.g. ("prod|sa:team-a/api", "profile")
MAX_ATTEMPTS = 8


@dataclass(frozen=True, slots=True)
class StoredItem:
    blob: bytes
    version: int  # 1 for the first write, +1 per successful write
    expires_at: int = 0  # epoch seconds after which the store may drop the item (0 = never)


class ConflictError(RuntimeError):
    """An item kept changing under us for MAX_ATTEMPTS rounds."""


class StateStore(Protocol):
    def get_many(self, keys: Sequence[Key], consistent: bool = True) -> dict[Key, StoredItem]:
        """The items that exist among `keys` (missing ones are absent from the result). `consistent=False`
        may return a slightly stale version (half the read cost on DynamoDB): a conditional write on it then
        fails and `apply_updates` re-reads consistently, so no update is lost either way."""
        ...

    def put_if(self, key: Key, blob: bytes, expected_version: int | None, expires_at: int = 0) -> bool:
        """Write `blob` as version expected_version + 1 if the stored version is `expected_version`
        (None: only if the item does not exist). False, and nothing written, when that condition fails."""
        ...


# current blob (None if absent) → new blob, or None when nothing needs writing; must be pure (it may re-run)
Merge = Callable[[bytes | None], bytes | None]


def apply_updates(
    store: StateStore,
    merges: Mapping[Key, Merge],
    expires_at: Callable[[Key], int] | int = 0,
    max_attempts: int = MAX_ATTEMPTS,
    known: Mapping[Key, StoredItem | None] | None = None,
) -> dict[Key, StoredItem]:
    """Apply every merge with optimistic concurrency; returns the items written (blob and new version, so a
    caller that keeps them can write again conditionally without a read). `known`: items the caller
    already read (None = read as absent), so the first round needs no read; only lost races re-read.
    Raises ConflictError if an item keeps losing races (the caller's batch then fails and SQS redelivers it)."""
    pending = dict(merges)
    written: dict[Key, StoredItem] = {}
    for attempt in range(max_attempts):
        if not pending:
            return written
        if attempt == 0 and known is not None and all(key in known for key in pending):
            current = {key: item for key, item in known.items() if key in pending and item is not None}
        else:
            current = store.get_many(list(pending))
        lost: dict[Key, Merge] = {}
        for key, merge in pending.items():
            item = current.get(key)
            blob = merge(item.blob if item else None)
            if blob is None:
                continue
            ttl = expires_at(key) if callable(expires_at) else expires_at
            version = item.version if item else None
            if store.put_if(key, blob, version, ttl):
                written[key] = StoredItem(blob, (version or 0) + 1, ttl)
            else:
                lost[key] = merge
        pending = lost
    if pending:
        raise ConflictError(f"{len(pending)} profile(s) kept changing concurrently: {sorted(pending)[:3]}")
    return written


class MemoryStateStore:
    """A thread-safe in-process store with DynamoStateStore's semantics. Like DynamoDB TTL, expiry never hides
    an item from reads (DynamoDB deletes expired items lazily, within days); the baseline layer ages data
    itself, by event time."""

    def __init__(self) -> None:
        self._items: dict[Key, StoredItem] = {}
        self._lock = threading.Lock()
        self.reads = 0
        self.writes = 0
        self.conflicts = 0

    def get_many(self, keys: Sequence[Key], consistent: bool = True) -> dict[Key, StoredItem]:
        with self._lock:
            self.reads += len(keys)
            return {key: self._items[key] for key in keys if key in self._items}

    def put_if(self, key: Key, blob: bytes, expected_version: int | None, expires_at: int = 0) -> bool:
        with self._lock:
            current = self._items.get(key)
            if (current.version if current else None) != expected_version:
                self.conflicts += 1
                return False
            self._items[key] = StoredItem(bytes(blob), (expected_version or 0) + 1, expires_at)
            self.writes += 1
            return True

    def __len__(self) -> int:
        return len(self._items)
