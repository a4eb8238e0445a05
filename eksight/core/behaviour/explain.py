"""Anomalies in words a person reads once: who did what to which object, where and when, what was unusual
compared with how much history, what is normal for them, and what to check next.

"At 2025-03-05 14:03:12 UTC in cluster prod (Wednesday; usually active on weekdays 16–05 UTC), bianca@globex.io
ran a command (exec) in pod inventory/web-1 from 24.112.244.9 (outside the cluster's network) with kubectl 1.30.
Unusual, compared with its 193 requests over 7 days: its first exec/attach/port-forward; ..."

Feature names, profile labels and decayed counts stay in `details.anomaly.profile` (the console shows them);
the text says the same things in plain words. "Never" and "first" are only said of values the reference profile
holds no count of; a value first seen minutes ago (still on probation for scoring) is "first used N minutes ago".
"""

from __future__ import annotations

from dataclasses import dataclass

from eksight.core.behaviour.features import (
    ACTION,
    CLASS,
    CLASS_NAMESPACE,
    CLUSTER_SCOPE,
    HOUR,
    IMAGE,
    INSIDE,
    NAMESPACE,
    NETWORK,
    PERMISSION,
    SITE,
    TOOL,
    TOOL_VERSION,
    ZONE,
    EventFeatures,
)
from eksight.core.behaviour.profile import DAY, Profile
from eksight.core.behaviour.scoring import NOTABLE_BITS, EventScore, FeatureAssessment
from eksight.core.findings import iso, when_and_where

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
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
_PAST = {
    "get": "read",
    "list": "listed",
    "watch": "watched",
    "create": "created",
    "update": "updated",
    "patch": "patched",
    "delete": "deleted",
    "deletecollection": "deleted all",
    "impersonate": "impersonated",
    "bind": "bound",
    "escalate": "escalated",
}
# Subresources that are an action of their own: "opened a shell (exec) in pod ns/name".
_SUBRESOURCE_ACTIONS = {
    "exec": "ran a command (exec) in",
    "attach": "attached to",
    "portforward": "port-forwarded to",
    "proxy": "proxied requests through",
    "log": "read the logs of",
    "token": "requested a token for",
    "ephemeralcontainers": "added a debug container to",
}
_ZONE_WORDS = {INSIDE: "inside the cluster's network", "outside": "outside the cluster's network"}
_SIGNALS = {
    "credential_outside_cluster": "a workload or node credential was used from outside the cluster's network",
    "new_tool_for_workload_identity": "a workload identity used a client it never used",
    "request_rate_spike": "its request rate this hour is far above its hourly norm",
    "failure_burst": "a burst of its requests were denied (HTTP 401/403)",
    "novelty_burst_namespace": "it touched many namespaces it never worked in before, far beyond its daily rate of "
    "new ones",
    "novelty_burst_action": "it made many kinds of request it never made before, far beyond its daily rate of new ones",
    "other_teams_secrets_from_new_network": "it read secrets where neither it nor the others in its group ever work, "
    "from a network new to it",
}
# What to check first, by the security-relevant class of the request (features.action_class).
_CHECKS = {
    "secrets": "Ask {who} whether they needed these secrets; if not, rotate the secrets listed in Resources.",
    "exec": "Ask {who} whether they opened this session, and review what ran in the pods listed in Resources "
    "(other findings for the same pods, container logs).",
    "rbac": "Review the RBAC objects listed in Resources: who they grant what; remove grants nobody asked for.",
    "token": "Find out who asked for the token or certificate and why; tokens work from anywhere until they expire.",
    "webhook": "Review the webhook configurations listed in Resources (what they intercept and where they call).",
    "permission_check": "Find out which client asked what it may do; a stolen token is usually probed this way first.",
    "cluster_list": "Ask {who} why it listed the whole cluster; such lists collect every object's data at once.",
    "node_proxy": "Review what was requested through the node proxy; it reaches the kubelet API directly.",
    "identity_map": "Compare aws-auth with its previous version and remove mappings nobody asked for.",
    "event_delete": "Find out why events were deleted; deleting them hides activity from people watching the cluster.",
    "risky_workload": "Review the workloads listed in Resources: their images, privileges and service accounts.",
    "workload": "Review the workloads listed in Resources: their images and who asked for the change.",
    "": "Ask {who} whether they made these requests.",
}
_COMPROMISED = (
    " If the owner did not make them from this network and tool, treat the credentials as compromised: revoke the "
    "IAM session or rotate the service-account token, and review everything else it read or changed."
)


@dataclass(frozen=True, slots=True)
class AnomalyText:
    title: str
    description: str
    reasons: list[str]  # each unusual aspect, in words (joined into details.anomaly.deviation)
    baseline: str
    remediation: str


@dataclass(frozen=True, slots=True)
class Reference:
    """The profile an event was scored against: the principal's own, or (when it is new) its peer group's."""

    profile: Profile
    own: Profile
    peer_label: str = ""  # "service accounts of shop" when the reference is a peer group

    @property
    def it(self) -> str:
        return "its peers" if self.peer_label else "it"

    @property
    def whose(self) -> str:
        return "its peers'" if self.peer_label else "its"


def describe_anomaly(
    features: EventFeatures,
    result: EventScore,
    reference: Reference,
    *,
    who: str,
    cluster: str,
    humans: bool,
    person: bool,
    what: str,
    class_words: dict[str, str],
) -> AnomalyText:
    """`humans`: people or automation roles (whose hours are learned); `person`: someone to ask directly.
    `what`: the request's class in words ("secrets access"); `class_words`: every class in words."""
    now = features.time
    profile = reference.profile
    if reference.peer_label:
        subject = f"its peers ({reference.peer_label})"
        earlier = reference.own.events
        peer_label = f"{who} is new ({earlier:,} earlier request{_s(earlier)})"
        baseline = baseline_sentence(subject, profile, now, humans, peer_label=peer_label)
        history = f"compared with the {_volume(profile)} of {subject}"
    else:
        baseline = baseline_sentence(who, profile, now, humans)
        history = f"compared with its {_volume(profile)}"
    reasons = _reasons(features, result, reference, what, class_words)
    hour_is_a_reason = any(a.feature == HOUR and a.bits >= NOTABLE_BITS for a in result.assessments)
    own_hours = humans and not reference.peer_label and not hour_is_a_reason
    usual_hours = _active_hours(reference.own) if own_hours and reference.own.hours else ""
    usual = f"{_WEEKDAYS[int(features.time // DAY + 3) % 7]}; usually active {usual_hours}" if usual_hours else ""
    description = (
        f"{when_and_where(features.time, cluster, usual)}, {who} {_deed(features)}{_origin(features)}. "
        f"Unusual, {history}: {'; '.join(reasons) or _small_differences(result)}. "
        f"For comparison, {baseline}"
    )
    title = f"Unusual {what} by {who.split(' (')[0]}"  # the role or session is in the text and the principal
    owner = who.split(" ")[0] if person else f"the team that runs {who.split(' ')[0]}"
    check = _CHECKS.get(features.action_class, _CHECKS[""]).format(who=owner)
    return AnomalyText(title, description, reasons, baseline, check + _COMPROMISED)


def _small_differences(result: EventScore) -> str:
    """When no single aspect stands out: the modest ones that together did."""
    aspects = sorted({_ASPECTS.get(a.feature, "request") for a in result.assessments if a.bits > 0})
    return f"several small differences together (its {_join(aspects)})" if aspects else "its overall pattern"


_ASPECTS = {
    ACTION: "request",
    NAMESPACE: "namespace",
    NETWORK: "network",
    SITE: "network",
    ZONE: "network",
    TOOL: "client",
    TOOL_VERSION: "client",
    HOUR: "hour",
    IMAGE: "image",
    PERMISSION: "permission check",
    CLASS: "kind of request",
    CLASS_NAMESPACE: "kind of request in this namespace",
}


def _reasons(
    features: EventFeatures, result: EventScore, reference: Reference, what: str, class_words: dict[str, str]
) -> list[str]:
    """Each notable assessment and signal once, strongest first; what one reason implies is not repeated."""
    notable = {a.feature: a for a in sorted(result.assessments, key=lambda a: -a.bits) if a.bits >= NOTABLE_BITS}
    signals = list(result.signals)
    reasons: list[str] = []
    first_use = "first_use_of_sensitive_action" in signals
    if first_use:
        reasons.append(f"its first {what}")
        notable.pop(CLASS, None)
        notable.pop(CLASS_NAMESPACE, None)
        if (action := notable.get(ACTION)) and _never(action):
            notable.pop(ACTION)
    namespace = notable.get(NAMESPACE)
    if namespace is not None and _never(namespace):
        notable.pop(CLASS_NAMESPACE, None)  # a namespace it never touched holds no earlier secrets reads either
    network_words = zone_words = _network_reason(features, notable, reference)
    for feature, assessment in list(notable.items()):
        text = _feature_reason(assessment, features, reference, class_words)
        if feature in (NETWORK, SITE, ZONE):
            text, network_words = network_words, ""
        if feature == TOOL_VERSION and TOOL in notable:
            text = ""  # "a client it never used" covers its version
        if text:
            reasons.append(text)
    # A signal already said by the reason it stands on adds only what it means.
    implied = {"first_use_of_sensitive_action"}
    if "credential_outside_cluster" in signals and ZONE in notable:
        implied.add("credential_outside_cluster")
        combined = (
            f"{_CREDENTIAL_OUTSIDE}, which it had never been before"
            if _never(notable[ZONE])
            else f"{_CREDENTIAL_OUTSIDE}: {zone_words}"
        )
        reasons = [combined if r == zone_words else r for r in reasons]
    if TOOL in notable or TOOL_VERSION in notable:
        implied.add("new_tool_for_workload_identity")
    reasons.extend(_SIGNALS.get(s, s.replace("_", " ")) for s in signals if s not in implied)
    return reasons


_CREDENTIAL_OUTSIDE = "this workload or node credential was used from outside the cluster's network"


def _feature_reason(
    a: FeatureAssessment, features: EventFeatures, reference: Reference, class_words: dict[str, str]
) -> str:
    value, profile, now, it = a.value, reference.profile, features.time, reference.it
    if a.feature == ACTION:
        return _novel(a, reference, now, f"'{value}' is a request {it} never made", f"'{value}' requests")
    if a.feature == NAMESPACE:
        place = "cluster-wide (not namespaced) requests" if value == CLUSTER_SCOPE else f"namespace {value}"
        if value == CLUSTER_SCOPE:
            return _novel(a, reference, now, f"{it} never made cluster-wide (not namespaced) requests", place)
        return _novel(a, reference, now, f"{it} never worked in {place}", f"requests in {place}")
    if a.feature == CLASS:
        words = class_words.get(value, value)
        return _novel(a, reference, now, f"{it} never did any {words}", words)
    if a.feature == CLASS_NAMESPACE:
        action_class, _, namespace = value.partition("@")
        words = class_words.get(action_class, action_class)
        place = "cluster-wide" if namespace == CLUSTER_SCOPE else f"in namespace {namespace}"
        return _novel(a, reference, now, f"{it} never did any {words} {place} before", f"{words} {place}")
    if a.feature in (TOOL, TOOL_VERSION):
        agent = f" (user agent '{_short(features.user_agent)}')" if features.user_agent else ""
        return _novel(a, reference, now, f"{value}{agent} is a client {it} never used", f"requests with {value}{agent}")
    if a.feature == HOUR:
        label = hour_label(int(value))
        usual = _active_hours(profile)
        return f"{label} is an hour {it} is rarely active" + (f" (usually {usual})" if usual else "")
    if a.feature == IMAGE:
        return _novel(a, reference, now, f"{it} never deployed an image from {value}", f"images from {value}")
    if a.feature == PERMISSION:
        return _novel(a, reference, now, f"{it} never asked whether it may '{value}'", f"checks of '{value}'")
    return ""


def _network_reason(features: EventFeatures, notable: dict[str, FeatureAssessment], reference: Reference) -> str:
    """One reason for the source network, at the coarsest level that is new: zone, then site (/16), then /24."""
    zone, site, network = notable.get(ZONE), notable.get(SITE), notable.get(NETWORK)
    profile, now = reference.profile, features.time
    if zone is not None:
        usual = [z for z, _ in profile.top(ZONE, features.time, 2) if z != zone.value]
        where = _ZONE_WORDS.get(zone.value, zone.value)
        if _never(zone) and usual:
            return f"its requests came from {where}; before, only from {_ZONE_WORDS.get(usual[0], usual[0])}"
        return _novel(
            zone, reference, now, f"{reference.it} never made requests from {where}", f"requests from {where}"
        )
    zone_words = _ZONE_WORDS.get(features.values.get(ZONE, ""), "")
    for assessment in (site, network):
        if assessment is not None:
            named = f"network {assessment.value}" + (f" ({zone_words})" if zone_words else "")
            return _novel(
                assessment, reference, now, f"{reference.it} never used {named} before", f"requests from {named}"
            )
    return ""


def _novel(a: FeatureAssessment, reference: Reference, now: float, never: str, thing: str) -> str:
    """`never` when the profile holds no count of the value, else how new or how rare it is, with counts."""
    if _never(a):
        return never
    profile = reference.profile
    first = profile.first_seen_of(a.feature, a.value)
    if a.label == "UNSEEN" and first:
        minutes = max(1, round((now - first) / 60))
        return f"{thing} began only {_duration(minutes)} earlier (not yet part of its routine)"
    share = a.observed / a.total if a.total else 0.0
    count = max(1, round(share * profile.events))
    return f"{thing} are rare: about {count:,} of {reference.whose} {profile.events:,} requests"


def _never(a: FeatureAssessment) -> bool:
    return a.observed < 0.5


def _duration(minutes: int) -> str:
    if minutes < 90:
        return f"{minutes} minute{_s(minutes)}"
    hours = round(minutes / 60)
    return f"{hours} hour{_s(hours)}" if hours < 48 else f"{round(hours / 24)} days"


def _deed(features: EventFeatures) -> str:
    """'read secret payments/db', 'listed secrets in monitoring', 'ran a command (exec) in pod shop/web-1'."""
    verb, _, rest = features.values.get(ACTION, "").partition(" ")
    namespace, resource, name = features.target
    if not resource:
        return f"requested {rest or 'the API'}" if verb in ("get", "") else f"sent {verb} {rest}"
    kind, _, subresource = resource.partition("/")
    singular = kind[:-1] if kind.endswith("s") else kind
    if subresource in _SUBRESOURCE_ACTIONS:
        return f"{_SUBRESOURCE_ACTIONS[subresource]} {_object(singular, namespace, name)}"
    past = _PAST.get(verb, verb)
    if subresource:
        return f"{past} the {subresource} of {_object(singular, namespace, name)}"
    if name or verb not in ("list", "watch", "deletecollection"):
        return f"{past} {_object(singular, namespace, name)}"
    return f"{past} {kind} in namespace {namespace}" if namespace else f"{past} all {kind} (cluster-wide)"


def _object(singular: str, namespace: str, name: str) -> str:
    """'pod shop/web-1', or 'a pod in namespace shop' when the record does not name it (creates)."""
    if not name:
        return f"a {singular} in namespace {namespace}" if namespace else f"a {singular}"
    return f"{singular} {namespace}/{name}" if namespace else f"{singular} {name}"


def _origin(features: EventFeatures) -> str:
    parts = []
    if features.source_ip:
        zone = _ZONE_WORDS.get(features.values.get(ZONE, ""), "")
        parts.append(f"from {features.source_ip}" + (f" ({zone})" if zone else ""))
    tool = features.values.get(TOOL_VERSION) or features.values.get(TOOL)
    if tool:
        parts.append(f"with {tool}")
    return " " + " ".join(parts) if parts else ""


def _volume(profile: Profile) -> str:
    days = max(1, round(profile.span_days))
    return f"{profile.events:,} request{_s(profile.events)} over {days} day{_s(days)}"


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _s(count: int) -> str:
    return "" if count == 1 else "s"


def baseline_sentence(subject: str, profile: Profile, now: float, humans: bool, peer_label: str = "") -> str:
    """One sentence describing `profile` (`subject` is who it describes: a principal or its peer group)."""
    plural = bool(peer_label)  # "its peers ... normally list"
    actions = _join([_action_phrase(a, plural) for a, _ in profile.top(ACTION, now, 3)])
    actions = actions or ("make requests" if plural else "makes requests")
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
    volume = f" ({_volume(profile)})"
    prefix = f"{peer_label}: " if peer_label else ""
    return f"{prefix}{subject} normally {actions}{where}{origin}{tool}{when}{volume}."


def _action_phrase(action: str, plural: bool = False) -> str:
    verb, _, resource = action.partition(" ")
    return f"{verb if plural else _VERBS.get(verb, verb)} {resource}"


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


def hour_label(hour_of_week: int) -> str:
    return f"{_WEEKDAYS[hour_of_week // 24 % 7]} {hour_of_week % 24:02d}:00 UTC"


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def training_period(profile: Profile) -> dict[str, object]:
    return {
        "start": iso(profile.first_seen),
        "end": iso(profile.last_seen),
        "days": round(profile.span_days, 1),
        "events": profile.events,
        "active_days": round(profile.active_days + (1 if profile.events else 0), 1),
    }


__all__ = ["DAY", "AnomalyText", "Reference", "baseline_sentence", "describe_anomaly", "training_period"]
