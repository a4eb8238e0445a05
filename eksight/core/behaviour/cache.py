"""Warm profiles kept between batches (the detector Lambda keeps one cache per container), and when a changed
profile is worth writing back.

Without a cache every profile a batch touched is written back after it (an archive object: ~60 s of events).
With one, a profile is read once per container and written back only when it changed *materially* for
scoring elsewhere (`Cached.material`) or on the way out of the cache; in between, its learning lives in this
container's memory only. The rules (docs/baselines.md has them with the reasons):

- Idempotency travels with the learning: a batch's id is in a profile's `applied` list in every copy (cached or
  stored) that holds its learning, so a redelivered batch is skipped wherever its learning is, and folded in
  (once) wherever it is not.
- Losing the cache (a new container, an eviction that loses its race) loses at most the deferred learning:
  under-counting, never double-counting. So does a conflicting writer: a conditional write on the cached
  version that fails re-reads and re-merges only the current batch (its events are at hand; older deferred
  events are not kept), and the cache then holds the re-merged stored version.
- A batch that fails half-way drops the profiles it touched from the cache (they may hold part of it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from eksight.core.behaviour.profile import ClusterState, Profile, dumps
from eksight.core.behaviour.scoring import is_mature
from eksight.core.state import Key, Merge, StateStore, StoredItem, apply_updates

REFRESH_SECONDS = 3600.0  # event time: a changed profile is written back at least this often
RATE_MOVE = 0.2  # relative change of the hourly request rate that is worth a write
# Profiles per container. Measured: 6 KB of Python objects per profile on average (a simulated cluster at 2,000
# events/s has ~4,800 profiles after two minutes), so ~100 MB when full; a profile at its value caps is ~100 KB.
DEFAULT_CAPACITY = 16384


@dataclass(slots=True)
class Cached:
    """One profile (or cluster state) as this container knows it, and what the store holds of it."""

    state: Profile | ClusterState
    stored: StoredItem | None  # the version last read or written (None: not in the store yet)
    dirty: bool = False  # learned batches that are not in the store yet
    # Snapshot of the stored version, for `material`:
    stored_last_seen: float = 0.0
    stored_maturity: tuple[bool, bool] = (False, False)
    stored_day: int = -1
    stored_rate: float = 0.0

    def synced(self, stored: StoredItem | None) -> None:
        """`stored` is now what the store holds and what `state` is."""
        self.stored, self.dirty = stored, False
        if isinstance(self.state, Profile):
            profile = self.state
            self.stored_last_seen, self.stored_maturity = profile.last_seen, _maturity(profile)
            self.stored_day, self.stored_rate = profile.last_day, profile.rate_mean

    def material(self) -> bool:
        """Has the profile changed in a way scoring elsewhere would notice? (New values and reported anomalies
        are caught by the analyzer as they are learned.) It became mature (or stopped being), a new active day
        began, the hourly rate moved, or its newest stored event is over REFRESH_SECONDS of event time old."""
        profile = self.state
        if self.stored is None or not isinstance(profile, Profile):
            return True
        return (
            _maturity(profile) != self.stored_maturity
            or profile.last_day != self.stored_day
            or abs(profile.rate_mean - self.stored_rate) > RATE_MOVE * max(self.stored_rate, 1.0)
            or profile.last_seen - self.stored_last_seen >= REFRESH_SECONDS
        )


class ProfileCache:
    """A bounded LRU of `Cached` entries. Not thread-safe: one per container (the Lambda handles one object at a
    time)."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[Key, Cached] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> Cached | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
        else:
            self.hits += 1
            self._entries.move_to_end(key)
        return entry

    def put(self, key: Key, entry: Cached) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)

    def discard(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def overflow(self) -> dict[Key, Cached]:
        """Removes and returns the least recently used entries beyond the capacity (the dirty ones still need
        writing: `write_as_is`)."""
        evicted: dict[Key, Cached] = {}
        while len(self._entries) > self.capacity:
            key, entry = self._entries.popitem(last=False)
            evicted[key] = entry
        return evicted

    def dirty(self) -> dict[Key, Cached]:
        return {key: entry for key, entry in self._entries.items() if entry.dirty}

    def write_back(self, store: StateStore, expires_at: int) -> int:
        """Write every deferred profile now (a test's or a benchmark's end of run; what the hourly refresh
        costs). Returns the profiles written."""
        dirty = self.dirty()
        written = write_as_is(store, dirty, expires_at)
        for key, entry in dirty.items():
            if key in written:
                entry.synced(written[key])
            else:
                self._entries.pop(key, None)  # someone else wrote it meanwhile: re-read when next needed
        return len(written)


def write_as_is(store: StateStore, entries: dict[Key, Cached], expires_at: int) -> dict[Key, StoredItem]:
    """Write the dirty entries' profiles if the store still holds the version they were read at; one that lost
    a race keeps the other writer's version (its deferred learning is lost: an under-count)."""

    def unchanged_or_skip(entry: Cached, ours: bytes) -> Merge:
        loaded = entry.stored.blob if entry.stored else None
        return lambda current: ours if current == loaded else None

    merges = {
        key: unchanged_or_skip(entry, dumps(entry.state))
        for key, entry in entries.items()
        if entry.dirty and isinstance(entry.state, Profile)
    }
    known = {key: entries[key].stored for key in merges}
    return apply_updates(store, merges, expires_at=expires_at, known=known)


def _maturity(profile: Profile) -> tuple[bool, bool]:
    """What scoring asks of a profile's size (behaviour.scoring.is_mature: as its own reference, as a peer
    group's); between these steps, counts' ratios move slowly and the hourly refresh carries them."""
    return is_mature(profile), is_mature(profile, peer=True)
