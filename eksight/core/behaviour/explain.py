"""Baselines and deviations in words: "alice normally gets pods and lists deployments in team-a from
198.51.100.0/24 with kubectl 1.29 on weekdays 08–18 UTC (1,204 requests over 21 days)"."""

from __future__ import annotations

from eksight.core.behaviour.features import (
    ACTION,
    CLUSTER_SCOPE,
    HOUR,
    INSIDE,
    NAMESPACE,
    NETWORK,
    TOOL,
    TOOL_VERSION,
    ZONE,
)
from eksight.core.behaviour.profile import DAY, Profile
from eksight.core.behaviour.scoring import NOTABLE_BITS, FeatureAssessment

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_VERBS = {
    "get": "gets",
    "list": "lists",
    "watch": "watches",
    "create": "creates",
    "update": "updates",
    "patch": "patches",
    "delete": "deletes",
    "deletecollection": "deletes collections of",
}
_NAMES = {
    ACTION: "action",
    NAMESPACE: "namespace",
    NETWORK: "network",
    ZONE: "network zone",
    "tool": "tool",
    TOOL_VERSION: "tool version",
    HOUR: "hour",
    "image": "image",
    "permission": "permission checked",
}


def baseline_sentence(subject: str, profile: Profile, now: float, humans: bool, peer_label: str = "") -> str:
    """One sentence describing `profile` (`subject` is who it describes: a principal or its peer group)."""
    actions = _join([_action_phrase(a) for a, _ in profile.top(ACTION, now, 3)]) or "makes requests"
    namespaces = [n for n, _ in profile.top(NAMESPACE, now, 3)]
    where = ""
    if namespaces:
        named = [n for n in namespaces if n != CLUSTER_SCOPE]
        cluster_scoped = CLUSTER_SCOPE in namespaces
        parts = ([f"in {_join(named)}"] if named else []) + (["cluster-wide"] if cluster_scoped else [])
        where = " " + " and ".join(parts) if parts else ""
    networks = [n for n, _ in profile.top(NETWORK, now, 2)]
    zones = [z for z, _ in profile.top(ZONE, now, 2)]
    origin = ""
    if networks:
        inside = zones == [INSIDE]
        origin = f" from {_join(networks)}" + (" (inside the cluster's network)" if inside else "")
    tools = [t for t, _ in profile.top(TOOL_VERSION, now, 2)] or [t for t, _ in profile.top(TOOL, now, 2)]
    tool = f" with {_join(tools)}" if tools else ""
    when = f" {_active_hours(profile)}" if humans and profile.hours else ""
    days = max(1, round(profile.span_days))
    volume = f" ({profile.events:,} requests over {days} day{'s' if days != 1 else ''})"
    prefix = f"{peer_label}: " if peer_label else ""
    return f"{prefix}{subject} normally {actions}{where}{origin}{tool}{when}{volume}."


def deviation_sentence(
    assessments: list[FeatureAssessment], signals: list[str], what: str = "", history_days: float = 0.0
) -> str:
    """What was unusual this time: 'namespace payments UNSEEN (0 of 312), tool curl UNSEEN, hour Sun 03 RARE'."""
    parts = []
    for a in sorted(assessments, key=lambda x: -x.bits):
        if a.bits < NOTABLE_BITS:
            continue
        value = _hour_label(int(a.value)) if a.feature == HOUR else a.value
        counts = "" if a.feature == HOUR else f" ({a.observed:.0f} of {a.total:.0f} before)"
        parts.append(f"{_NAMES.get(a.feature, a.feature)} {value} {a.label}{counts}")
    for signal in signals:
        if signal == "first_use_of_sensitive_action":
            parts.insert(0, f"its first {what or 'sensitive request'} in {max(1, round(history_days))} days of history")
        else:
            parts.append(_SIGNAL_TEXT.get(signal, signal.replace("_", " ")))
    return "; ".join(parts)


_SIGNAL_TEXT = {
    "credential_outside_cluster": "a workload or node credential used from outside the cluster's network",
    "new_tool_for_workload_identity": "a workload identity using a client it never used",
    "request_rate_spike": "request rate far above its hourly norm",
    "failure_burst": "burst of denied (401/403) requests",
    "novelty_burst_namespace": "many namespaces it never touched, far beyond its daily rate of new ones",
    "novelty_burst_action": "many kinds of request it never made, far beyond its daily rate of new ones",
}


def _action_phrase(action: str) -> str:
    verb, _, resource = action.partition(" ")
    return f"{_VERBS.get(verb, verb)} {resource}"


def _active_hours(profile: Profile) -> str:
    """'on weekdays 08–18 UTC' from the hour-of-week histogram (hours holding 90 % of the activity)."""
    hist = profile.hours
    total = sum(hist)
    if total <= 0:
        return ""
    weekday = sum(hist[: 5 * 24])
    days = "on weekdays" if weekday / total >= 0.9 else "every day"
    by_hour = [sum(hist[d * 24 + h] for d in range(7)) for h in range(24)]
    ranked = sorted(range(24), key=lambda h: -by_hour[h])
    kept, acc = [], 0.0
    for hour in ranked:
        kept.append(hour)
        acc += by_hour[hour]
        if acc >= 0.9 * total:
            break
    start, end = _window(sorted(kept))
    return f"{days} {start:02d}–{end:02d} UTC"


def _window(hours: list[int]) -> tuple[int, int]:
    """Smallest circular window covering the hours: (start, end exclusive)."""
    if len(hours) >= 24:
        return 0, 24
    gaps = [((hours[(i + 1) % len(hours)] - hours[i]) % 24, i) for i in range(len(hours))]
    _, widest = max(gaps)
    start = hours[(widest + 1) % len(hours)]
    end = (hours[widest] + 1) % 24 or 24
    return start, end


def _hour_label(hour_of_week: int) -> str:
    return f"{_DAYS[hour_of_week // 24 % 7]} {hour_of_week % 24:02d}:00 UTC"


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def training_period(profile: Profile) -> dict[str, object]:
    from eksight.core.findings import iso

    return {
        "start": iso(profile.first_seen),
        "end": iso(profile.last_seen),
        "days": round(profile.span_days, 1),
        "events": profile.events,
        "active_days": round(profile.active_days + (1 if profile.events else 0), 1),
    }


__all__ = ["DAY", "baseline_sentence", "deviation_sentence", "training_period"]
