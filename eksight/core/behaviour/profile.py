"""A behavioural profile: what one principal (or one peer group) normally does, in compact decayed counts.

Every value keeps [count, first_seen, last_seen] in event time. Counts decay with a half-life, so a profile
follows a principal whose habits change and forgets what it stopped doing (values unseen for FORGET_DAYS
are dropped). How often a principal produces *new* values is learned too (new values per active day), so a
busy CI identity that touches a new namespace every day is not surprising when it does it again.

Values seen in flagged activity are held in `pending`, not learned, until they have recurred after
HOLD_DAYS: an attacker repeating an action does not make it normal (no self-poisoning).
"""

from __future__ import annotations

import math
import zlib

import msgspec
import numpy as np

from eksight.core.behaviour.features import FEATURES, HOUR, EventFeatures

DAY = 86400.0
HALF_LIFE_DAYS = 14.0
FORGET_DAYS = 45.0
HOLD_DAYS = 7.0
SCHEMA = 1
# Values kept per feature (lowest decayed counts are evicted first; up to 25 % more between compactions);
# bounds the item to a few KB.
MAX_VALUES = {
    "action": 160,
    "namespace": 80,
    "network": 40,
    "site": 16,
    "zone": 2,
    "tool": 16,
    "tool_version": 24,
    "image": 80,
    "permission": 40,
    "class_namespace": 60,
}
MAX_PENDING = 64
PRIOR_RATE, PRIOR_DAYS = 0.5, 2.0
MAX_APPLIED = 32
RATE_ALPHA = 0.1  # EWMA weight of each active hour's request count
_DECAY = math.log(2) / (HALF_LIFE_DAYS * DAY)
_NO_VALUES: dict[str, list[float]] = {}


class Profile(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    schema: int = SCHEMA
    kind: str = ""
    name: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    events: int = 0  # lifetime count (not decayed)
    first_day: int = -1
    last_day: int = -1
    active_days: float = 0.0  # decayed count of active days after the first
    values: dict[str, dict[str, list[float]]] = {}  # feature -> value -> [count, first_seen, last_seen]
    totals: dict[str, list[float]] = {}  # feature -> [decayed sum of its value counts, as of time]
    new_values: dict[str, float] = {}  # feature -> decayed count of new values seen after the first day
    new_today: dict[str, int] = {}  # feature -> new values seen on last_day
    new_hour: dict[str, int] = {}  # feature -> new values seen in the hour new_hour_at (epoch hours)
    new_hour_at: int = -1
    days_seen: int = 0  # distinct active days (not decayed)
    hours: list[float] = []  # 168 decayed counts, hour of week (humans only)
    hours_at: float = 0.0
    rate_hour: int = -1  # current hour bucket (epoch hours)
    rate_count: int = 0  # requests in it
    fail_count: int = 0  # 401/403 in it
    rate_mean: float = 0.0  # EWMA of requests per active hour
    rate_var: float = 0.0
    fail_mean: float = 0.0  # EWMA of 401/403 per active hour
    active_hours: int = 0
    pending: dict[str, list[float]] = {}  # "feature\x1fvalue" -> [first_flagged, count, last_seen, last_reported]
    applied: list[str] = []  # ids of the latest batches folded in: a redelivered batch is not counted twice
    reported: dict[str, float] = {}  # "feature\x1fvalue" -> when it was last part of a reported anomaly

    # --- reading -----------------------------------------------------------------------------------------

    @property
    def span_days(self) -> float:
        return (self.last_seen - self.first_seen) / DAY if self.events else 0.0

    def count(self, feature: str, value: str, now: float) -> float:
        entry = self.values.get(feature, _NO_VALUES).get(value)
        return _decayed(entry[0], entry[2], now) if entry else 0.0

    def total(self, feature: str, now: float) -> float:
        entry = self.totals.get(feature)
        return _decayed(entry[0], entry[1], now) if entry else 0.0

    def novelty_rate(self, feature: str, prior: float | None = None) -> float:
        """Expected new values per active day (Poisson mean). The prior — the peer group's rate when known,
        else one new value in two days — counts as PRIOR_DAYS days of evidence (empirical Bayes): a young
        profile leans on its peers, an old one on itself."""
        rate = PRIOR_RATE if prior is None else prior
        return (self.new_values.get(feature, 0.0) + rate * PRIOR_DAYS) / (self.active_days + PRIOR_DAYS)

    @property
    def hours_per_day(self) -> float:
        """Active hours on an active day (1-16): turns a daily novelty rate into an hourly one."""
        return min(16.0, max(1.0, self.active_hours / max(1, self.days_seen)))

    def first_seen_of(self, feature: str, value: str) -> float:
        entry = self.values.get(feature, _NO_VALUES).get(value)
        return entry[1] if entry else 0.0

    def top(self, feature: str, now: float, n: int = 3) -> list[tuple[str, float]]:
        entries = self.values.get(feature, _NO_VALUES)
        ranked = sorted(((v, _decayed(e[0], e[2], now)) for v, e in entries.items()), key=lambda x: (-x[1], x[0]))
        return ranked[:n]

    def knows(self, features: EventFeatures) -> bool:
        """Every value of this event is learned or held already: learning it would change counts, not the set
        of values scoring asks about."""
        for feature in FEATURES:
            value = features.values.get(feature, "")
            if (
                value
                and feature != HOUR
                and value not in self.values.get(feature, ())
                and not self.is_pending(feature, value)
            ):
                return False
        return True

    def is_pending(self, feature: str, value: str) -> bool:
        return f"{feature}\x1f{value}" in self.pending

    def hour_share(self, hour_of_week: int) -> float:
        """Share of activity in this hour of the week relative to uniform (1.0 = average), smoothed over the
        neighbouring hours and the same hour on other weekdays/weekend days."""
        if not self.hours:
            return 1.0
        hist = np.asarray(self.hours)
        total = hist.sum()
        if total <= 0:
            return 1.0
        hour = hour_of_week % 24
        day = hour_of_week // 24
        same_kind_days = range(5) if day < 5 else range(5, 7)
        around = sum(hist[(d * 24 + h) % 168] for d in same_kind_days for h in (hour - 1, hour, hour + 1))
        expected = total * 3 * len(same_kind_days) / 168
        return float((around + 0.5) / (expected + 0.5))

    # --- learning ----------------------------------------------------------------------------------------

    def learn(
        self, features: EventFeatures, hold: frozenset[str] = frozenset(), humans: bool = False, reported: bool = False
    ) -> None:
        """Fold one event in. Values of the features named in `hold` (the event was flagged) that the profile
        does not know yet go to `pending` instead of being learned."""
        self._count_event(features)
        time = features.time
        totals, known = self.totals, self.values
        # Most counts were last touched by the same earlier event: one exp per distinct last-seen time.
        decayed_from, factor = None, 1.0
        for feature, value in features.learned_values():
            entries = known.get(feature)
            entry = entries.get(value) if entries is not None else None
            if entry is None and feature in hold:
                self._hold(feature, value, time, reported)
                continue
            total = totals.get(feature)
            if total is None:
                totals[feature] = [1.0, time]
            elif time > total[1]:  # the decay of `_decayed`, with the factor shared
                if total[1] != decayed_from:
                    decayed_from, factor = total[1], math.exp(-_DECAY * (time - total[1]))
                total[0] = total[0] * factor + 1.0
                total[1] = time
            else:
                total[0] += 1.0
            if entry is None:
                self._add_new(feature, value, time, features.day)
            elif time > entry[2]:
                if entry[2] != decayed_from:
                    decayed_from, factor = entry[2], math.exp(-_DECAY * (time - entry[2]))
                entry[0] = entry[0] * factor + 1.0
                entry[2] = time
            else:
                entry[0] += 1.0
        if reported:
            self._mark_reported(features, hold)
        self._count_activity(features, humans)

    def counters(self, features: EventFeatures) -> list[list[float]] | None:
        """What learning an event adds to — each value's count and its feature's total — when the profile has
        learned all its values already (see `learn_counted`); None when one is new to it."""
        counters: list[list[float]] = []
        for feature, value in features.learned_values():
            entry = self.values.get(feature, _NO_VALUES).get(value)
            total = self.totals.get(feature)
            if entry is None or total is None:
                return None
            counters += (total, entry)
        return counters

    def learn_counted(self, features: EventFeatures, counters: list[list[float]], humans: bool = False) -> None:
        """`learn` for an event whose values the profile has learned, with their `counters` at hand (they stay
        valid until the profile learns a new value: that may evict others)."""
        self._count_event(features)
        time = features.time
        decayed_from, factor = math.nan, 1.0  # equal to no time
        for counter in counters:  # [count, last seen] or [count, first seen, last seen]: as in `learn`
            last = counter[-1]
            if last == decayed_from:  # the common case: last touched by the same event as the one before
                counter[0] = counter[0] * factor + 1.0
                counter[-1] = time
            elif time > last:
                decayed_from, factor = last, math.exp(-_DECAY * (time - last))
                counter[0] = counter[0] * factor + 1.0
                counter[-1] = time
            else:
                counter[0] += 1.0
        self._count_activity(features, humans)

    def _count_event(self, features: EventFeatures) -> None:
        """The event's share of `learn` before its values: lifetime counts and the day and hour it opens."""
        time, day = features.time, features.day
        if not self.events:
            self.first_seen, self.first_day = time, day
        self.events += 1
        if time > self.last_seen:
            self.last_seen = time
        if day != self.last_day:
            if self.last_day >= 0 and day > self.last_day:
                self.active_days = self.active_days * _day_factor(day - self.last_day) + 1.0
                self.new_values = {f: c * _day_factor(day - self.last_day) for f, c in self.new_values.items()}
            self.last_day = max(self.last_day, day)
            self.new_today = {}
            self.days_seen += 1
        hour = int(time // 3600)
        if hour != self.new_hour_at:
            self.new_hour, self.new_hour_at = {}, hour

    def _count_activity(self, features: EventFeatures, humans: bool) -> None:
        """The event's share of `learn` after its values: the hour of week (humans) and the hourly rates."""
        time = features.time
        if humans:
            self._learn_hour(features.hour_of_week, time)
        if int(time // 3600) == self.rate_hour:  # the common case of `_learn_rate`
            self.rate_count += 1
            self.fail_count += features.failed
        else:
            self._learn_rate(time, features.failed)

    def _add_new(self, feature: str, value: str, time: float, day: int) -> None:
        if day > self.first_day:  # the first day is all new: it says nothing about the novelty rate
            self.new_values[feature] = self.new_values.get(feature, 0.0) + 1.0
        self._count_new(feature)
        entries = self.values.setdefault(feature, {})
        entries[value] = [1.0, time, time]
        limit = MAX_VALUES.get(feature, 64)
        if len(entries) > limit + limit // 4:  # evict in bulk: amortized O(1) per new value
            _keep_heaviest(entries, limit, time)

    def _count_new(self, feature: str) -> None:
        self.new_today[feature] = self.new_today.get(feature, 0) + 1
        self.new_hour[feature] = self.new_hour.get(feature, 0) + 1

    def _hold(self, feature: str, value: str, time: float, reported: bool) -> None:
        key = f"{feature}\x1f{value}"
        held = self.pending.get(key)
        if held is None:
            self._count_new(feature)  # still novelty, just not learned
            if len(self.pending) >= MAX_PENDING:
                oldest = min(self.pending, key=lambda k: self.pending[k][2])
                del self.pending[oldest]
            self.pending[key] = [time, 1.0, time, time if reported else 0.0]
            return
        held[1] += 1
        held[2] = max(held[2], time)
        if reported:
            held[3] = max(held[3], time)

    def reported_between(self, feature: str, value: str, start: float, end: float) -> bool:
        """Was this value last part of a reported anomaly in [start, end)?"""
        return start <= self.reported.get(f"{feature}\x1f{value}", -1.0) < end

    def _mark_reported(self, features: EventFeatures, anomalous: frozenset[str]) -> None:
        for feature in anomalous:
            self.reported[f"{feature}\x1f{features.values.get(feature, '')}"] = features.time
        if len(self.reported) > MAX_PENDING:
            for key in sorted(self.reported, key=self.reported.__getitem__)[: len(self.reported) - MAX_PENDING]:
                del self.reported[key]

    def promote_aged(self, now: float) -> None:
        """Held values that kept recurring for HOLD_DAYS become normal; others are forgotten after FORGET_DAYS."""
        for key, (first, count, last, _reported) in list(self.pending.items()):
            if last - first >= HOLD_DAYS * DAY and count >= 2:
                feature, _, value = key.partition("\x1f")
                self.values.setdefault(feature, {})[value] = [count, first, last]
                del self.pending[key]
            elif now - last > FORGET_DAYS * DAY:
                del self.pending[key]

    def _learn_hour(self, hour_of_week: int, time: float) -> None:
        if not self.hours:
            self.hours, self.hours_at = [0.0] * 168, time
        elif time - self.hours_at >= DAY:  # decay the whole week once a day, not per request
            factor = math.exp(-_DECAY * (time - self.hours_at))
            self.hours = [round(h * factor, 4) for h in self.hours]
            self.hours_at = time
        self.hours[hour_of_week % 168] += 1.0

    def _learn_rate(self, time: float, failed: bool) -> None:
        hour = int(time // 3600)
        if hour > self.rate_hour:
            if self.rate_hour >= 0 and self.rate_count:
                self._close_hour()
            self.rate_hour, self.rate_count, self.fail_count = hour, 0, 0
        self.rate_count += 1
        self.fail_count += failed

    def _close_hour(self) -> None:
        count, fails = float(self.rate_count), float(self.fail_count)
        if not self.active_hours:
            self.rate_mean, self.rate_var, self.fail_mean = count, 0.0, fails
        else:
            delta = count - self.rate_mean
            self.rate_mean += RATE_ALPHA * delta
            self.rate_var = (1 - RATE_ALPHA) * (self.rate_var + RATE_ALPHA * delta * delta)
            self.fail_mean += RATE_ALPHA * (fails - self.fail_mean)
        self.active_hours += 1

    def mark_applied(self, batch_id: str) -> None:
        self.applied = [*self.applied, batch_id][-MAX_APPLIED:]

    def compact(self, now: float) -> None:
        """Forget values unseen for FORGET_DAYS; promote or drop held values."""
        horizon = now - FORGET_DAYS * DAY
        for feature, entries in self.values.items():
            for value in [v for v, e in entries.items() if e[2] < horizon]:
                del entries[value]
            limit = MAX_VALUES.get(feature, 64)
            if len(entries) > limit:
                _keep_heaviest(entries, limit, now)
        self.promote_aged(now)
        self._recount(now)

    def _recount(self, now: float) -> None:
        """Exact decayed totals (evictions and forgetting make the running sums drift), with numpy."""
        self.totals = {}
        for feature, entries in self.values.items():
            if entries:
                counts = np.fromiter((e[0] for e in entries.values()), float, len(entries))
                lasts = np.fromiter((e[2] for e in entries.values()), float, len(entries))
                total = float(np.sum(counts * np.exp(-_DECAY * np.maximum(now - lasts, 0.0))))
                self.totals[feature] = [total, now]


def _decayed(count: float, last: float, now: float) -> float:
    return count * math.exp(-_DECAY * (now - last)) if now > last else count


def _day_factor(days: int) -> float:
    return math.exp(-_DECAY * DAY * days)


def _keep_heaviest(entries: dict[str, list[float]], limit: int, now: float) -> None:
    """Drop all but the `limit` values with the highest decayed counts (ties: most recent, then name)."""
    ranked = sorted(entries, key=lambda v: (-_decayed(entries[v][0], entries[v][2], now), -entries[v][2], v))
    for value in ranked[limit:]:
        del entries[value]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(Profile)


def dumps(profile: Profile) -> bytes:
    return zlib.compress(_ENCODER.encode(profile), 6)


def loads(blob: bytes) -> Profile:
    profile = _DECODER.decode(zlib.decompress(blob))
    if profile.schema != SCHEMA:
        return Profile(kind=profile.kind, name=profile.name)  # an incompatible baseline starts over
    return profile


class ClusterState(msgspec.Struct, omit_defaults=True):
    """Per cluster: when eksight first saw it (event time), which starts its learning period."""

    first_seen: float = 0.0


_CLUSTER_DECODER = msgspec.msgpack.Decoder(ClusterState)


def dumps_cluster(state: ClusterState) -> bytes:
    return _ENCODER.encode(state)


def loads_cluster(blob: bytes) -> ClusterState:
    return _CLUSTER_DECODER.decode(blob)
