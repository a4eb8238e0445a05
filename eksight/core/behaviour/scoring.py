"""How unusual one event is for its principal, feature by feature, in bits of surprise.

- A value the reference profile knows: its decayed share p. Only RARE values (p < 1 %) add surprise.
- An UNSEEN value: how unlikely it is to see k new values today (k counts this one) when the principal
  produces λ new values per active day — a Poisson tail. A CI identity that touches new namespaces daily
  has a large λ, so its k-th new namespace today is unremarkable; a developer who always works in two
  namespaces has λ ≈ 0.05, so a third namespace is 4 bits and a fifth is > 15.
- Hour of week (humans): the smoothed share of their activity in that hour relative to uniform.
- Request rate and 401/403 bursts: Poisson tail of this hour's count against the EWMA of active hours.

The reference is the principal's own profile once it is mature, else its peer group's (a new service
account of a namespace is compared with that namespace's other service accounts). A value unseen for the
principal but common among its peers counts half.

Per-feature surprise is weighted by principal class and summed; what exceeds FREE_BITS_PER_EVENT is
`excess`, and the score is 100·(1 − 2^(−excess/SCALE_BITS)). Evidence only about *what* was done (action,
namespace, image) from the principal's usual network, tool and hours is damped (CONTENT_ONLY) and capped at
LOW: admins and deployers legitimately do new things. A service-account or node credential used from outside
the cluster's network is a strong identity signal on its own (score ≥ IDENTITY_FLOOR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeGuard

import numpy as np

from eksight.core.behaviour.features import (
    ACTION,
    CLASS,
    CLASS_NAMESPACE,
    CLUSTER_LIST,
    CLUSTER_SCOPE,
    EVENT_DELETE,
    EXEC,
    FEATURES,
    HOUR,
    IDENTITY_MAP,
    IMAGE,
    INTERACTIVE_TOOLS,
    NAMESPACE,
    NETWORK,
    NODE_PROXY,
    OUTSIDE,
    PERMISSION,
    PERMISSION_CHECK,
    RBAC,
    READ_VERBS,
    RISKY_WORKLOAD,
    SECRETS,
    SITE,
    TOKEN,
    TOOL,
    TOOL_VERSION,
    WEBHOOK,
    WORKLOAD,
    ZONE,
    EventFeatures,
)
from eksight.core.behaviour.profile import Profile

HUMAN, AUTOMATION, WORKLOAD_IDENTITY, NODE_CLASS = "human", "automation", "workload", "node"

FREE_BITS_PER_EVENT = 4.0  # a 1-in-16 event is never evidence
NOTABLE_BITS = 1.0  # a feature (or the context together) with less surprise than this is unremarkable
SCALE_BITS = 5.0  # excess bits for a score of 50
CONTENT_ONLY = 0.6
CONTENT_ONLY_MAX = 59.0  # LOW: new things done from the usual network, tool and hours...
COLLECTION = frozenset({"secrets", "cluster_list"})  # ...except reads that collect credentials or enumerate,
IDENTITY_FLOOR, IDENTITY_FLOOR_SENSITIVE = 70.0, 80.0
FIRST_USE_FLOOR = 60.0  # MEDIUM: first exec / secret read / token request / node proxy / cluster-wide list
FIRST_USE_CLASSES = frozenset({EXEC, SECRETS, TOKEN, NODE_PROXY, CLUSTER_LIST})
SYSTEM_NAMESPACE = "kube-system"
# "First time" is evidence only after enough chances to have done it: a person seen on a handful of days (a new
# teammate, an on-call engineer paged now and then) has simply not needed it yet.
FIRST_USE_MIN_EVENTS, FIRST_USE_MIN_DAYS = 60, 4
SHELLS = ("create pods/exec", "create pods/attach", "get pods/exec", "get pods/attach")
# Forwarding a port of a pod where one works every day is how developers reach their own app (a debugger, a
# database console): a first one there is not evidence on its own, unlike a first shell.
PORT_FORWARDS = ("create pods/portforward", "get pods/portforward")
# Decayed requests by its peers that make an action routine in its group: several sessions, not one teammate's one.
PEER_ROUTINE = 10.0
MAX_BITS = 24.0
BURST_BITS = 16.0  # novelty this far beyond the principal's daily rate makes any request a candidate
RATE_MIN, FAIL_MIN = 60, 12  # requests / failures in an hour before a spike can count
RATE_SPIKE_BITS = 30.0
SHARED_NETWORK_PERSON_DAYS = 3.0  # other people's days on a network before it is the organisation's
MATURE_DAYS, MATURE_EVENTS = 2.0, 30  # decayed active days after the first, and requests
PEER_MATURE_DAYS, PEER_MATURE_EVENTS = 2.0, 100

CONTENT = frozenset({ACTION, CLASS_NAMESPACE, NAMESPACE, IMAGE, PERMISSION})
CONTEXT = frozenset({NETWORK, SITE, ZONE, TOOL, TOOL_VERSION, HOUR})
# What counts as "somewhere else" when telling context from content anomalies: for a workload or node only a
# new site or zone (pods move between subnets; an upgrade brings a new client library); for automation (CI
# runners come from big, changing address pools) a new zone or client; for people, all of it.
CONTEXT_BY_CLASS = {
    HUMAN: CONTEXT,
    AUTOMATION: frozenset({ZONE, TOOL, TOOL_VERSION, HOUR}),
    WORKLOAD_IDENTITY: frozenset({SITE, ZONE}),
    NODE_CLASS: frozenset({SITE, ZONE}),
}
# Kubernetes clients people commonly switch between (for humans, a new one of these is routine).
COMMON_CLIENTS = frozenset(
    {
        "kubectl",
        "helm",
        "k9s",
        "lens",
        "openlens",
        "kubectx",
        "kubens",
        "stern",
        "argocd",
        "flux",
        "eksctl",
        "kustomize",
        "skaffold",
        "tilt",
        "browser",
    }
)
_WEIGHT_COLUMNS = (ACTION, CLASS_NAMESPACE, NAMESPACE, NETWORK, SITE, ZONE, TOOL, TOOL_VERSION, HOUR, IMAGE, PERMISSION)
WEIGHTS: dict[str, dict[str, float]] = {  # how much each feature's surprise counts, per principal class
    principal_class: dict(zip(_WEIGHT_COLUMNS, row, strict=True))
    for principal_class, row in (
        #                   act  cls@ns  ns   net  site zone tool ver  hour image perm
        (HUMAN, (1.0, 1.0, 1.0, 0.8, 0.4, 0.6, 1.0, 0.3, 0.6, 0.8, 0.6)),
        (AUTOMATION, (1.0, 1.0, 0.8, 0.8, 0.4, 1.0, 1.0, 0.3, 0.3, 0.8, 0.6)),
        # Pods move between subnets and nodes come and go (network); an upgrade may bring a new client library
        # (tool): what matters is a new site or zone, and a person's tool (signals below).
        (WORKLOAD_IDENTITY, (1.0, 0.8, 0.8, 0.1, 1.5, 2.0, 0.5, 0.2, 0.0, 0.8, 0.6)),
        (NODE_CLASS, (0.8, 0.5, 0.3, 0.0, 1.5, 2.0, 0.5, 0.2, 0.0, 0.5, 0.6)),
    )
}
# How much an anomaly on each action class matters (security-relevant classes only; '' = ungated).
SENSITIVITY = {
    SECRETS: 1.0,
    EXEC: 1.0,
    TOKEN: 1.0,
    RBAC: 1.0,
    WEBHOOK: 1.0,
    IDENTITY_MAP: 1.0,
    NODE_PROXY: 1.0,
    PERMISSION_CHECK: 0.9,
    CLUSTER_LIST: 0.9,
    EVENT_DELETE: 0.9,
    RISKY_WORKLOAD: 0.9,
    WORKLOAD: 0.7,
    "": 0.8,
}

FREQUENT, INFREQUENT, RARE, UNSEEN = "FREQUENT", "INFREQUENT", "RARE", "UNSEEN"
# A value first seen less than PROBATION ago is still new: the ungated requests that open a session (list
# namespaces, get pods) must not make its new network or tool "known" before the sensitive ones arrive.
PROBATION = 6 * 3600.0


@dataclass(slots=True)
class FeatureAssessment:
    feature: str
    value: str
    label: str
    observed: float  # decayed count in the reference profile
    total: float
    peer_observed: float
    bits: float

    def as_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "profile": self.label,
            "observed": round(self.observed, 1),
            "total": round(self.total, 1),
            "peer_observed": round(self.peer_observed, 1),
            "surprise_bits": round(self.bits, 1),
        }


@dataclass(slots=True)
class EventScore:
    score: float
    excess: float
    candidate: bool
    reference: str  # "own" | "peer" | "" (not scored)
    assessments: list[FeatureAssessment] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)

    def anomalous(self) -> frozenset[str]:
        return frozenset(a.feature for a in self.assessments if a.bits >= NOTABLE_BITS)


NOT_SCORED = EventScore(0.0, 0.0, False, "")
# Scored against a reference and unremarkable without looking closer (shared, read-only).
_ONLY_LEARNED = {"own": EventScore(0.0, 0.0, False, "own"), "peer": EventScore(0.0, 0.0, False, "peer")}


def is_mature(profile: Profile | None, peer: bool = False) -> TypeGuard[Profile]:
    if profile is None:
        return False
    if peer:
        return profile.active_days >= PEER_MATURE_DAYS and profile.events >= PEER_MATURE_EVENTS
    return profile.active_days >= MATURE_DAYS and profile.events >= MATURE_EVENTS


def score_event(
    features: EventFeatures,
    own: Profile,
    peer: Profile | None,
    principal_class: str,
    home_namespace: str = "",
    crowd: Profile | None = None,
) -> EventScore:
    """`home_namespace`: a service account's own namespace (where its app reads its own secrets). `crowd`: the
    networks people of the cluster use, in person-days (see `_shared_network`)."""
    if is_mature(own):
        reference, other, which = own, peer, "own"
    elif is_mature(peer, peer=True):
        reference, other, which = peer, None, "peer"
    else:
        return NOT_SCORED
    assert reference is not None
    if not features.action_class and not _may_signal(features, reference, own, principal_class):
        return _ONLY_LEARNED[which]  # only learned: cannot raise a finding
    now = features.time
    weights = WEIGHTS[principal_class]
    assessments: list[FeatureAssessment] = []
    for feature in FEATURES:
        value = features.values.get(feature, "")
        if not value or not weights.get(feature):
            continue
        if feature == HOUR:
            assessment = _hour(reference, features.hour_of_week, value)
        else:
            # Whether a network is the organisation's is the crowd's call, in person-days (`_shared_network`): in
            # raw requests one busy colleague, or one intruder with two stolen sessions, would make it routine.
            peers_routine = not (principal_class == HUMAN and feature in (NETWORK, SITE))
            assessment = _assess(reference, other, feature, value, now, features.day, peers_routine)
            if assessment.bits and _shared_network(crowd, assessment, now):
                assessment.bits = 0.0
        assessments.append(assessment)
    signals = _signals(features, reference, own, assessments, principal_class, which, home_namespace, other)
    bits = np.array([a.bits for a in assessments])
    w = np.array([_weight(weights, a, principal_class) for a in assessments])
    weighted = _one_new_request_one_surprise(assessments, bits * w)
    # What counts as "somewhere else": for a workload or node only a new site or zone (its pods move between
    # subnets; an upgrade brings a new client library, and a person's tool is a signal of its own).
    context_features = CONTEXT_BY_CLASS[principal_class]
    context = np.array(
        [a.feature in context_features and not _common_client(a, principal_class) for a in assessments], bool
    )
    # A new /24 inside a new /16 is one new place, not two, when deciding whether it came from somewhere else.
    place = np.array([a.feature in (NETWORK, SITE) for a in assessments], bool)
    context_bits = float(weighted[context & ~place].sum()) + float(weighted[context & place].max(initial=0.0))
    # One allowance per event, not per feature: several modest surprises together (new network, new tool,
    # odd hour) are evidence that no single one of them is.
    excess = max(float(weighted.sum()) - FREE_BITS_PER_EVENT, 0.0)
    identity = "credential_outside_cluster" in signals or "new_tool_for_workload_identity" in signals
    # Context surprise that would not be evidence on its own (under the event's free allowance: a traveller's new
    # hotel network) does not make a new request "done from somewhere else".
    content_only = bool(excess) and not identity and context_bits < FREE_BITS_PER_EVENT
    usual_place = _usual_namespace(features, assessments, principal_class, home_namespace)
    collection = _collection(features, signals, usual_place, principal_class)
    if content_only and not collection:
        excess *= CONTENT_ONLY
    excess *= SENSITIVITY.get(features.action_class, 0.8)
    excess += sum(_signal_bits(s) for s in signals)
    score = 100.0 * (1.0 - 2.0 ** (-excess / SCALE_BITS))
    if (content_only and not collection) or _network_only(assessments, signals, principal_class):
        score = min(score, CONTENT_ONLY_MAX)
    if "credential_outside_cluster" in signals:  # HIGH when it is used for something security-relevant
        score = max(score, IDENTITY_FLOOR_SENSITIVE if features.action_class else IDENTITY_FLOOR)
    if "first_use_of_sensitive_action" in signals:
        score = max(score, FIRST_USE_FLOOR)
    candidate = bool(features.action_class) or bool(signals)
    return EventScore(round(score, 1), excess, candidate, which, assessments, signals)


def _assess(
    reference: Profile,
    peer: Profile | None,
    feature: str,
    value: str,
    now: float,
    day: int,
    peers_routine: bool = True,
) -> FeatureAssessment:
    observed = reference.count(feature, value, now)  # held (pending) values are not counted: still unseen
    total = reference.total(feature, now)
    # The peer group's profile learns the principal's own requests too: what matters is what the *others* did (a
    # developer's own first minutes in another team's namespace must not make it "routine among its peers").
    peer_observed = max(peer.count(feature, value, now) - observed, 0.0) if peer is not None else 0.0
    on_probation = observed >= 0.5 and now - reference.first_seen_of(feature, value) < PROBATION
    if observed < 0.5 or on_probation:
        # Unseen, or first seen minutes ago (by the unremarkable requests that opened this session): its own
        # first sighting is already counted. New values arrive in bursts when someone enumerates, so the
        # surprise is the larger of "k new values today" and "k new values this hour".
        mature_peer = peer if is_mature(peer, peer=True) else None
        this = 0 if on_probation else 1
        peer_rate = mature_peer.novelty_rate(feature) if mature_peer is not None else None
        bits = _novelty_bits(reference, feature, now, day, this, peer_rate)
        if mature_peer is not None and peer_observed < 0.5:
            # New to its peers as well (e.g. the whole team never read secrets there): their longer history
            # is the second opinion, and the stronger evidence counts.
            bits = max(bits, _novelty_bits(mature_peer, feature, now, day, this, None))
        label = UNSEEN
    else:
        share = observed / total if total else 1.0
        label = RARE if not _habitual(observed, total) else INFREQUENT if share < 0.1 else FREQUENT
        bits = max(0.0, -math.log2(share) - 4.0) * 0.5 if label == RARE else 0.0
    if peers_routine and peer is not None and bits and _habitual(peer_observed, peer.total(feature, now)):
        bits *= 0.5  # the principal's peers do this routinely
    return FeatureAssessment(feature, value, label, observed, total, peer_observed, min(bits, MAX_BITS))


def _network_only(assessments: list[FeatureAssessment], signals: list[str], principal_class: str) -> bool:
    """A person doing what they always do, where they always do it, with their usual tool at their usual hours, from
    a network they never used: the VPN's egress moved, a new home line, a hotel. LOW: a new network on its own is
    not evidence for people (a new tool or odd hour with it, or a new thing done, is)."""
    if principal_class != HUMAN or signals:
        return False
    notable = {a.feature for a in assessments if a.bits >= NOTABLE_BITS}
    return bool(notable) and notable <= {NETWORK, SITE}


def _one_new_request_one_surprise(assessments: list[FeatureAssessment], weighted: np.ndarray) -> np.ndarray:
    """A request the principal never made is necessarily new in its namespace (`class_namespace`) and asks about
    a new permission: that is one surprise, the largest of the three, not three (a traveller's first
    `kubectl auth can-i` is not triple evidence)."""
    features = [a.feature for a in assessments]
    if ACTION not in features or assessments[features.index(ACTION)].label != UNSEEN:
        return weighted
    implied = [i for i, feature in enumerate(features) if feature in (ACTION, CLASS_NAMESPACE, PERMISSION)]
    folded = weighted.copy()
    folded[implied] = 0.0
    folded[features.index(ACTION)] = weighted[implied].max()
    return folded


def _shared_network(crowd: Profile | None, assessment: FeatureAssessment, now: float) -> bool:
    """A network new to this person that several others already work from (the VPN's egress moved, an office
    got a new line) is the organisation's drift, not this person's anomaly. Person-days, not requests: one busy
    person, or one intruder, cannot make a network look shared."""
    if crowd is None or assessment.feature not in (NETWORK, SITE) or assessment.label != UNSEEN:
        return False
    own_days = 1.0 if assessment.observed >= 0.5 else 0.0  # on probation: this person's own first day counts
    return crowd.count(assessment.feature, assessment.value, now) - own_days >= SHARED_NETWORK_PERSON_DAYS


def _novelty_bits(profile: Profile, feature: str, now: float, day: int, this: int, prior: float | None) -> float:
    """Surprise of the k-th new value today, or this hour (the larger), given the profile's novelty rate."""
    daily = profile.novelty_rate(feature, prior)
    today = (profile.new_today.get(feature, 0) if profile.last_day == day else 0) + this
    this_hour = (profile.new_hour.get(feature, 0) if profile.new_hour_at == int(now // 3600) else 0) + this
    return max(poisson_tail_bits(today, daily), poisson_tail_bits(this_hour, daily / profile.hours_per_day))


def _hour(reference: Profile, hour_of_week: int, value: str) -> FeatureAssessment:
    share = reference.hour_share(hour_of_week)
    label = FREQUENT if share >= 0.5 else INFREQUENT if share >= 0.2 else RARE if share >= 0.05 else UNSEEN
    bits = min(-math.log2(max(share, 1e-3)), 8.0) if share < 0.2 else 0.0
    return FeatureAssessment(HOUR, value, label, share, 1.0, 0.0, bits)


_MAY_SIGNAL_FEATURES = (ZONE, SITE, TOOL, NAMESPACE, ACTION)
_NOTHING: dict[str, list[float]] = {}


def _may_signal(features: EventFeatures, reference: Profile, own: Profile, principal_class: str) -> bool:
    """Cheap pre-check for ungated events: could any identity, burst or rate signal fire?"""
    values, known = features.values, reference.values
    for feature in _MAY_SIGNAL_FEATURES:
        value = values.get(feature)
        if value and value not in known.get(feature, _NOTHING):
            return True
    requests, failures = _this_hour(own, features)
    return _rate_high(own, requests) or (features.failed and _failures_high(own, failures))


def _this_hour(own: Profile, features: EventFeatures) -> tuple[int, int]:
    """Requests and 401/403s of the principal in this event's hour, this event included (0, 0 when the profile's
    open hour is another one)."""
    if own.rate_hour != int(features.time // 3600):
        return 0, 0
    return own.rate_count + 1, own.fail_count + features.failed


def _rate_high(own: Profile, requests: int) -> bool:
    return requests >= max(RATE_MIN, 5 * own.rate_mean)


def _failures_high(own: Profile, failures: int) -> bool:
    return failures >= max(FAIL_MIN, 5 * own.fail_mean + 5)


def _signals(
    features: EventFeatures,
    reference: Profile,
    own: Profile,
    assessments: list[FeatureAssessment],
    principal_class: str,
    which: str,
    home_namespace: str = "",
    peer: Profile | None = None,
) -> list[str]:
    signals: list[str] = []
    by_feature = {a.feature: a for a in assessments}
    zone = by_feature.get(ZONE)
    if (
        principal_class in (WORKLOAD_IDENTITY, NODE_CLASS)
        and zone
        and zone.value == OUTSIDE
        and zone.label in (UNSEEN, RARE)
    ):
        signals.append("credential_outside_cluster")
    tool, site = by_feature.get(TOOL), by_feature.get(SITE)
    if (
        principal_class in (WORKLOAD_IDENTITY, NODE_CLASS)
        and tool
        and tool.label == UNSEEN
        and tool.bits > 4
        and (tool.value in INTERACTIVE_TOOLS or (zone and zone.value == OUTSIDE) or (site and site.label == UNSEEN))
    ):
        # An app upgrade may bring a new client library, from the usual pod network; a person's tool, or a
        # new client from somewhere else, means the credential left the workload.
        signals.append("new_tool_for_workload_identity")
    if (
        which == "own"
        and _first_use(features, own, peer, principal_class)
        and not (
            (features.action_class == SECRETS or features.values.get(ACTION, "") in PORT_FORWARDS)
            and _usual_namespace(features, assessments, principal_class, home_namespace)
        )
    ):
        signals.append("first_use_of_sensitive_action")
    if principal_class == HUMAN and _other_teams_secrets_from_new_network(features, by_feature):
        signals.append("other_teams_secrets_from_new_network")
    for feature in (NAMESPACE, ACTION):
        assessment = by_feature.get(feature)
        if assessment and assessment.label == UNSEEN and assessment.bits >= BURST_BITS:
            signals.append(f"novelty_burst_{feature}")
    requests, failures = _this_hour(own, features)
    if which == "own" and own.active_hours >= 24 and requests:
        if _rate_high(own, requests) and poisson_tail_bits(requests, 1.5 * own.rate_mean + 1) >= RATE_SPIKE_BITS:
            signals.append("request_rate_spike")
        if features.failed and _failures_high(own, failures):
            signals.append("failure_burst")
    return signals


def _other_teams_secrets_from_new_network(features: EventFeatures, by_feature: dict[str, FeatureAssessment]) -> bool:
    """A person reading secrets in a namespace neither they nor the others of their group ever worked in, from a
    network they never used: what a stolen developer session is for. Each alone has innocent readings (a team
    reorganisation; travel); together they are the pattern."""
    if features.action_class != SECRETS or features.values.get(ACTION, "").partition(" ")[0] not in READ_VERBS:
        return False
    namespace = by_feature.get(NAMESPACE)
    if namespace is None or namespace.label != UNSEEN or namespace.peer_observed >= 0.5:
        return False
    networks = (by_feature.get(NETWORK), by_feature.get(SITE))
    return any(a is not None and a.label == UNSEEN and a.bits >= NOTABLE_BITS for a in networks)


def _first_use(features: EventFeatures, own: Profile, peer: Profile | None, principal_class: str) -> bool:
    """A mature principal doing, for the first time in its history, something that gives direct access to
    workloads or credentials (reads only: writing a secret is what deployers and helm do) that the others of
    its group (its IAM Identity Center role, its namespace) do not routinely do either."""
    action_class = features.action_class
    if action_class not in FIRST_USE_CLASSES:
        return False
    if own.events < FIRST_USE_MIN_EVENTS or own.days_seen < FIRST_USE_MIN_DAYS:
        return False
    action = features.values.get(ACTION, "")
    if action_class == SECRETS and action.partition(" ")[0] not in READ_VERBS:
        return False
    kinds = SHELLS if action in SHELLS else (action,)
    if action in SHELLS:
        # A shell is not a port-forward: someone who forwards ports every day has still never run commands.
        done_before = any(own.values.get(ACTION, {}).get(kind) or own.is_pending(ACTION, kind) for kind in kinds)
    else:
        done_before = bool(own.values.get(CLASS, {}).get(action_class)) or own.is_pending(CLASS, action_class)
    if done_before:
        return False
    if action in SHELLS and principal_class == HUMAN and _operator(own, features.time):
        return False
    return peer is None or sum(peer.count(ACTION, kind, features.time) for kind in kinds) < PEER_ROUTINE


def _operator(own: Profile, now: float) -> bool:
    """A person whose routine already includes the cluster's own namespace: a platform admin or SRE. Their first
    shell is an operator's first shell (scored like any new request: LOW from their usual place, more from
    somewhere else), not a credential in the wrong hands; a developer's first one, where their team rarely
    opens shells, is; so is a pipeline's, which never needs one."""
    return _habitual(own.count(NAMESPACE, SYSTEM_NAMESPACE, now), own.total(NAMESPACE, now))


def _habitual(count: float, total: float) -> bool:
    """A value done at least twice and in at least 1 % of the feature's (decayed) total: part of the routine."""
    return count >= 2 and count >= 0.01 * total


def _usual_namespace(
    features: EventFeatures, assessments: list[FeatureAssessment], principal_class: str, home_namespace: str
) -> bool:
    """The request is in a namespace the principal works in routinely (or a service account's own)."""
    namespace = features.values.get(NAMESPACE, "")
    if principal_class == WORKLOAD_IDENTITY and namespace and namespace == home_namespace:
        return True
    label = next((a.label for a in assessments if a.feature == NAMESPACE), UNSEEN)
    return namespace not in ("", CLUSTER_SCOPE) and label in (FREQUENT, INFREQUENT)


def _common_client(assessment: FeatureAssessment, principal_class: str) -> bool:
    """A person or pipeline picking up kubectl, helm or k9s is routine; a python client is not."""
    return (
        principal_class in (HUMAN, AUTOMATION)
        and assessment.feature in (TOOL, TOOL_VERSION)
        and (assessment.value.partition(" ")[0] in COMMON_CLIENTS)
    )


def _weight(weights: dict[str, float], assessment: FeatureAssessment, principal_class: str) -> float:
    return weights[assessment.feature] * (0.3 if _common_client(assessment, principal_class) else 1.0)


def _collection(features: EventFeatures, signals: list[str], usual_place: bool, principal_class: str) -> bool:
    """Where what was done is itself the threat, whoever's laptop it came from: reads that gather secrets
    beyond where the principal works, or enumerate the cluster. (A first exec is a signal of its own; an admin
    exec'ing somewhere new is not; reading the secrets of one's own namespace is not collecting; nor is a kubelet
    reading those of a namespace whose first pod just landed on its node: the node authorizer lets it read only
    what its pods mount.)"""
    verb, _, resource = features.values.get(ACTION, "").partition(" ")
    if verb not in READ_VERBS:
        return False  # e.g. helm stores releases as secrets: writing one is deploying, not collecting
    if features.action_class == CLUSTER_LIST:
        return True
    if usual_place or principal_class == NODE_CLASS:
        return False
    if features.action_class in COLLECTION:
        return True
    # Bursts of reads of what holds credentials (not of new *kinds* of reads: helm and operators look up every
    # kind they are about to install; nor of pods: browsing other teams' workloads is how people debug).
    return resource in ("secrets", "configmaps") and any(
        s in ("request_rate_spike", "novelty_burst_namespace") for s in signals
    )


def _signal_bits(signal: str) -> float:
    return {
        "credential_outside_cluster": 6.0,
        "new_tool_for_workload_identity": 2.0,
        "request_rate_spike": 4.0,
        "failure_burst": 3.0,
    }.get(signal, 2.0)


def poisson_tail_bits(k: int, lam: float) -> float:
    """−log2 P(N ≥ k) for N ~ Poisson(lam), summed in log space so tiny tails stay exact."""
    if k <= 0 or k <= lam:
        return 0.0
    if lam <= 0:
        return MAX_BITS
    i, lgamma = _tail_terms(k)
    log_terms = i * math.log(lam) - lam - lgamma
    top = log_terms.max()
    log_tail = top + math.log(float(np.exp(log_terms - top).sum()))
    return float(min(max(-log_tail / math.log(2), 0.0), MAX_BITS))


@lru_cache(maxsize=1024)
def _tail_terms(k: int) -> tuple[np.ndarray, np.ndarray]:
    """The counts k..k+79 and their log-factorials (read-only: shared by every tail from k)."""
    i = np.arange(k, k + 80, dtype=float)
    lgamma = np.array([math.lgamma(x + 1) for x in i])
    i.flags.writeable = lgamma.flags.writeable = False
    return i, lgamma
