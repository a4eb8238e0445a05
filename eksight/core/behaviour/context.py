"""A signature rule's severity in the light of what its principal normally does.

Decided per event, against the principal's own profile as it stood before that event was learned (event time,
so a replay decides what the Lambda decided):
- lowered one step when the rule may be routine (its `routine` reason is set) and this principal has done the
  same thing for at least ROUTINE_DAYS, at least twice, and does it again with a tool (people: from a /24) it has
  used as long, in no context new to it, with nothing flagged in the past hour ("routine for alice: at least 14
  exec, attach or port-forward sessions to pods in kube-system over 30 days, from the same network and tool");
  for a person, also when the others of its IAM Identity Center role have done it routinely for as long (a
  platform team's weekly shells into kube-system) and this person does it from its own usual network and tool;
- raised one step when a rule at MEDIUM or above fires in a context new to the principal (never used, or first
  used less than a day before): a site or network zone, a client tool, an hour outside its usual ones;
- unchanged while the principal's profile is young or the cluster is still in its learning period ("no
  baseline yet"), and for the rules that stand on their own (no `routine` reason), which are never lowered.
The decision is said in the description and recorded in details["severity_context"].
"""

from __future__ import annotations

from dataclasses import replace

from eksight.core.behaviour.explain import hour_label
from eksight.core.behaviour.features import (
    ACTION,
    CLASS,
    CLASS_NAMESPACE,
    CLUSTER_SCOPE,
    EXEC,
    HOUR,
    NETWORK,
    PERMISSION_CHECK,
    SITE,
    TOOL,
    TOOL_VERSION,
    WEBHOOK,
    WORKLOAD,
    ZONE,
    EventFeatures,
)
from eksight.core.behaviour.profile import DAY, HOLD_DAYS, Profile
from eksight.core.behaviour.scoring import (
    COMMON_CLIENTS,
    CONTEXT_BY_CLASS,
    HUMAN,
    MATURE_DAYS,
    MATURE_EVENTS,
    PEER_ROUTINE,
    is_mature,
)
from eksight.core.findings import SEVERITY_CONTEXT, Observation, Severity

# A habit needs a history: a value first seen within the last week is not one yet (a flagged one is still held
# out of the profile for HOLD_DAYS anyway, so an attacker repeating an action cannot make it routine sooner).
ROUTINE_DAYS = HOLD_DAYS
# Decayed count of earlier uses: at least two (a raw count is never below its decayed count).
ROUTINE_TIMES = 1.5
# An hour of the week with less than this share of the principal's activity (relative to uniform) is outside its
# usual hours: scoring's "unseen" cut.
ODD_HOUR_SHARE = 0.05
# A routine step right after something flagged (a privileged pod, then a shell into it) is part of what was flagged.
FLAGGED_WITHIN = 3600.0
NEW_FOR = DAY  # a context value first used less than this before the event is still new
# What "a context new to it" means: scoring's context features for the class, without the /24 network and the
# tool version (a new subnet of a known site, or a client's version bump, is too fine to raise a rule).
NEW_CONTEXT = {cls: features - {NETWORK, TOOL_VERSION} for cls, features in CONTEXT_BY_CLASS.items()}
_CLASS_WORDS = {
    EXEC: "exec, attach or port-forward sessions to pods",
    WEBHOOK: "admission webhook changes",
    WORKLOAD: "workload deployments",
    PERMISSION_CHECK: "permission checks",
}


def in_context(
    observation: Observation,
    profile: Profile,
    features: EventFeatures,
    principal_class: str,
    who: str,
    *,
    learning: bool = False,
    role: Profile | None = None,
) -> Observation:
    """`observation` (a signature rule's, on the event described by `features`) with its severity adjusted to
    `profile`, the principal's own baseline before this event; `learning`: the cluster's learning period; `role`:
    a person's IAM Identity Center role's profile (its peers, the principal included), if it has one."""
    original = observation.severity
    raisable = Severity.MEDIUM <= original < Severity.CRITICAL
    if observation.detector != "rule" or not (observation.routine or raisable):
        return observation
    if learning:
        return _record(observation, original, "no baseline yet: the cluster is in its learning period")
    if not is_mature(profile):
        # No counts here: a redelivered object is judged against a profile that already holds part of it, and
        # the reason must read the same on every delivery.
        why = f"no baseline yet for {who} (fewer than {MATURE_DAYS:g} active days or {MATURE_EVENTS} requests)"
        return _record(observation, original, why)
    unusual = _unusual_context(profile, features, principal_class)
    if unusual:
        if not raisable:
            return observation
        return _record(observation, Severity(original + 1), f"for {who} this came {_join(unusual)}")
    if observation.routine and original > Severity.INFORMATIONAL:
        routine = _routine(profile, features, principal_class)
        if not routine and role is not None and principal_class == HUMAN:
            routine = _role_routine(role, profile, features)
        if routine and _flagged_since(profile, features.time - FLAGGED_WITHIN):
            return _record(observation, original, f"not lowered: {who} did something flagged within the hour")
        if routine:
            return _record(observation, Severity(original - 1), f"routine for {who}: {routine}")
    return observation


def _unusual_context(profile: Profile, features: EventFeatures, principal_class: str) -> list[str]:
    """Each context feature of this event new to the principal (or an hour outside its usual ones), in words."""
    found = []
    for feature in sorted(NEW_CONTEXT.get(principal_class, frozenset())):
        value = features.values.get(feature, "")
        if not value:
            continue
        if feature == HOUR:
            if profile.hours and profile.hour_share(features.hour_of_week) < ODD_HOUR_SHARE:
                found.append(f"at {hour_label(features.hour_of_week)}, outside its usual hours")
        elif not _known(profile, feature, value, features.time - NEW_FOR):
            if feature == TOOL and principal_class == HUMAN and value in COMMON_CLIENTS:
                continue  # people switch between kubectl, helm and k9s: scoring does not count it either
            found.append(
                f"from {value}, a site new to it"
                if feature == SITE
                else f"with {value}, a client new to it"
                if feature == TOOL
                else f"from {value} the cluster's network, which is new for it"
                if feature == ZONE
                else f"with {feature} {value}, new to it"
            )
    return found


def _routine(profile: Profile, features: EventFeatures, principal_class: str) -> str:
    """Why this event is routine for the principal (empty: it is not): the same request and activity (class of
    action in its namespace), learned at least ROUTINE_DAYS before and done at least twice, with a tool (people:
    from a /24 network) learned as long ago."""
    now, values = features.time, features.values
    activity = _activity(values)
    habit = now - ROUTINE_DAYS * DAY
    for feature in {ACTION, activity}:
        value = values.get(feature, "")
        if not _known(profile, feature, value, habit) or profile.count(feature, value, now) < ROUTINE_TIMES:
            return ""
    network, tool = values.get(NETWORK, ""), values.get(TOOL, "")
    if not tool or not _known(profile, TOOL, tool, habit):
        return ""
    if principal_class == HUMAN and not (network and _known(profile, NETWORK, network, habit)):
        return ""
    value = values[activity]
    times = -int(-profile.count(activity, value, now) // 1)  # ceil: a raw count is never below its decayed count
    days = max(1, round((now - profile.first_seen_of(activity, value)) / DAY))
    place = f"network ({network}) and tool ({tool})" if network else f"tool ({tool})"
    return f"at least {times} {_activity_words(values, activity)} over {days} days, from the same {place}"


def _role_routine(role: Profile, profile: Profile, features: EventFeatures) -> str:
    """Why this event is routine in the principal's role (empty: it is not): the others of the role have done the
    same activity at least PEER_ROUTINE times (decayed), learned at least ROUTINE_DAYS before, and the principal
    does it from a /24 and with a tool it has used as long."""
    now, values = features.time, features.values
    activity = _activity(values)
    value, habit = values.get(activity, ""), now - ROUTINE_DAYS * DAY
    others = role.count(activity, value, now) - profile.count(activity, value, now)
    if not value or others < PEER_ROUTINE or not _known(role, activity, value, habit):
        return ""
    network, tool = values.get(NETWORK, ""), values.get(TOOL, "")
    if not (tool and network and _known(profile, TOOL, tool, habit) and _known(profile, NETWORK, network, habit)):
        return ""
    days = max(1, round((now - role.first_seen_of(activity, value)) / DAY))
    return (
        f"at least {int(others)} {_activity_words(values, activity)} by others of its IAM Identity Center role over "
        f"{days} days, and this came from its own usual network ({network}) and tool ({tool})"
    )


def _activity(values: dict[str, str]) -> str:
    """What a habit is judged on: the class of action in its namespace, else the request itself."""
    return CLASS_NAMESPACE if values.get(CLASS_NAMESPACE) else ACTION


def _activity_words(values: dict[str, str], activity: str) -> str:
    if activity == CLASS_NAMESPACE:
        namespace = values[CLASS_NAMESPACE].partition("@")[2]
        where = "" if namespace == CLUSTER_SCOPE else f" in {namespace}"
        return f"{_CLASS_WORDS.get(values[CLASS], values[CLASS] + ' requests')}{where}"
    return f"'{values[ACTION]}' requests"


def _flagged_since(profile: Profile, since: float) -> bool:
    """Did flagged activity bring this principal new values (held back from the profile) since `since`?"""
    return any(held[2] >= since for held in profile.pending.values())


def _known(profile: Profile, feature: str, value: str, since: float) -> bool:
    """Learned as normal no later than `since`. Held values (seen in flagged activity, not yet recurring) are not
    learned; and a stolen session's unflagged requests teach the profile its network within minutes, so a value
    counts only once it has some age."""
    entry = profile.values.get(feature, {}).get(value)
    return entry is not None and entry[1] <= since


def _record(observation: Observation, severity: Severity, why: str) -> Observation:
    original = observation.severity
    direction = "raised" if severity > original else "lowered" if severity < original else "unchanged"
    context = {"original": original.name, "severity": severity.name, "direction": direction, "reason": why}
    details = {**(observation.details or {}), SEVERITY_CONTEXT: context}
    if direction == "unchanged":
        return replace(observation, details=details)
    said = f"Severity {direction} from {original.name} to {severity.name}: {why}."
    return replace(observation, severity=severity, description=f"{observation.description} {said}", details=details)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
