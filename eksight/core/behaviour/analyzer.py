"""Behavioural detection over batches of events: load profiles once (or take them from the container's cache),
score and learn in event-time order, write changed profiles back conditionally, so concurrent invocations never
lose updates: every changed profile after each batch without a cache, only material changes with one
(eksight.core.behaviour.cache).

Store keys (single table): (cluster|principal key, "profile"), (cluster|peer:<group>, "peer"),
(cluster|crowd:networks, "peer") for the networks people use (counted once per person and day), and
(cluster, "cluster") for the cluster's learning period.
"""

from __future__ import annotations

import time as wall_clock
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter

import msgspec

from eksight.core.behaviour import ANOMALY_RULE_ID, explain
from eksight.core.behaviour.cache import Cached, ProfileCache, write_as_is
from eksight.core.behaviour.context import in_context
from eksight.core.behaviour.features import (
    CLUSTER_LIST,
    EVENT_DELETE,
    EXEC,
    IDENTITY_MAP,
    NETWORK,
    NODE_PROXY,
    PERMISSION_CHECK,
    RBAC,
    RISKY_WORKLOAD,
    SECRETS,
    SITE,
    TOKEN,
    WEBHOOK,
    WORKLOAD,
    EventFeatures,
    extract,
)
from eksight.core.behaviour.profile import DAY, ClusterState, Profile, dumps, dumps_cluster, loads, loads_cluster
from eksight.core.behaviour.scoring import (
    AUTOMATION,
    HUMAN,
    NODE_CLASS,
    WORKLOAD_IDENTITY,
    EventScore,
    is_mature,
    score_event,
)
from eksight.core.events import AuditEvent
from eksight.core.findings import Observation, ResourceRef, Severity, iso
from eksight.core.identity import IAM_ROLE, IAM_USER, MAPPED_USER, NODE, SERVICE_ACCOUNT, SSO_ROLE, Principal
from eksight.core.rules.defaults import KUBE_SYSTEM_CONTROLLERS
from eksight.core.rules.engine import principal_summary
from eksight.core.state import Key, Merge, StateStore, apply_updates
from eksight.core.workloads import workload_specs

DEFAULT_LEARNING_DAYS = 7
TTL_DAYS = 60  # profiles of principals inactive this long are dropped by DynamoDB TTL
REPORT_SCORE = 40.0  # LOW and up; MEDIUM from 60, HIGH from 80
LEARNING_REPORT_SCORE = 60.0  # during the learning period only strong anomalies, as INFORMATIONAL
WINDOW_SECONDS = 3600  # the findings' dedup window (eksight.core.findings): events within it always fold in

CLASSES = {
    SSO_ROLE: HUMAN,
    IAM_USER: HUMAN,
    MAPPED_USER: HUMAN,
    IAM_ROLE: AUTOMATION,
    SERVICE_ACCOUNT: WORKLOAD_IDENTITY,
    NODE: NODE_CLASS,
}
PEER_LABELS = {HUMAN: "human users", AUTOMATION: "IAM roles used by automation"}
TYPES = {
    SECRETS: ("CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed", "secrets access"),
    EXEC: ("Execution:Kubernetes/AnomalousBehavior.ExecInPod", "exec/attach/port-forward"),
    RBAC: ("PrivilegeEscalation:Kubernetes/AnomalousBehavior.RBACModified", "RBAC change"),
    TOKEN: ("CredentialAccess:Kubernetes/AnomalousBehavior.CredentialMinted", "token or certificate request"),
    WEBHOOK: ("Persistence:Kubernetes/AnomalousBehavior.WebhookModified", "admission webhook change"),
    PERMISSION_CHECK: ("Discovery:Kubernetes/AnomalousBehavior.PermissionChecked", "permission check"),
    CLUSTER_LIST: ("Discovery:Kubernetes/AnomalousBehavior.ClusterWideList", "cluster-wide listing"),
    NODE_PROXY: ("PrivilegeEscalation:Kubernetes/AnomalousBehavior.NodeProxy", "node proxy access"),
    IDENTITY_MAP: ("Persistence:Kubernetes/AnomalousBehavior.IdentityMappingModified", "aws-auth change"),
    EVENT_DELETE: ("DefenseEvasion:Kubernetes/AnomalousBehavior.EventsDeleted", "event deletion"),
    RISKY_WORKLOAD: ("Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed", "workload deployment"),
    WORKLOAD: ("Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed", "workload deployment"),
    "": ("InitialAccess:Kubernetes/AnomalousBehavior.UnusualIdentityUse", "use of its credentials"),
}
CLASS_WORDS = {action_class: what for action_class, (_, what) in TYPES.items()}
_EVENT_TIME = attrgetter("features.time")
_NOTHING_HELD: frozenset[str] = frozenset()  # one object, not one per event
_WORKLOAD_RESOURCES = frozenset(
    {"pods", "deployments", "daemonsets", "statefulsets", "replicasets", "jobs", "cronjobs", "replicationcontrollers"}
)


@dataclass(slots=True)
class _Baselined:
    """What the analyzer needs of one principal of one cluster, worked out at its first event in a batch."""

    principal: Principal
    cluster: str
    principal_class: str  # '' = not baselined
    own_key: Key
    peer_key: Key | None
    crowd_key: Key | None  # people's networks, cluster-wide: a VPN egress that moves moves for everyone
    cluster_key: Key
    home: str  # a service account's namespace (where its app reads its own secrets)
    humans: bool
    display: str
    role_group: bool = False  # its peers are the other sessions of its IAM Identity Center role


class _Pending(msgspec.Struct, gc=False):  # untracked: a batch holds tens of thousands (no cycles through it)
    features: EventFeatures
    who: _Baselined
    account: str
    region: str
    hold_all: bool  # a rule already flagged this event at MEDIUM+: learn none of its novel values
    rule_observations: tuple[Observation, ...] = ()  # returned by flush, severity judged against the profile


@dataclass
class BaselineStats:
    events: int = 0
    scored: int = 0
    candidates: int = 0
    observations: int = 0
    suppressed: int = 0  # anomalies already reported within a day
    batches: int = 0
    profiles_written: int = 0
    profiles_deferred: int = 0  # changed profiles kept in the cache instead of written (see behaviour.cache)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Update(msgspec.Struct, gc=False):  # untracked, as _Pending
    """Profile.learn's arguments for one event, kept to re-apply a batch after a lost race."""

    features: EventFeatures
    hold: frozenset[str]
    humans: bool
    reported: bool


@dataclass(slots=True)
class _Learner:
    """One profile a batch scores against and learns into."""

    key: Key
    profile: Profile
    replayed: bool  # already holds this batch: scored on a copy, not learned
    updates: list[Update] = field(default_factory=list)  # this batch's learning, re-applied after a lost race
    novel: bool = False  # learned a new value or a reported anomaly: write back now
    # The counters (Profile.counters) of the learnable value sets (shared by events with equal values:
    # features.extract) it has learned all values of; dropped whenever it learns a new value.
    counters: dict[int, list[list[float]]] = field(default_factory=dict)


@dataclass(slots=True)
class _Subject:
    """The profiles one principal's events of a batch are scored against and learned into."""

    own: _Learner
    peer: _Learner | None
    crowd: _Learner | None  # people's networks, cluster-wide
    cluster: ClusterState


@dataclass
class _Work:
    entries: dict[Key, Cached]
    learners: dict[Key, _Learner] = field(default_factory=dict)
    clusters: dict[Key, ClusterState] = field(default_factory=dict)
    learned: list[_Learner] = field(default_factory=list)  # those with updates, in the order of their first

    def subject(self, who: _Baselined) -> _Subject:
        learners = self.learners
        return _Subject(
            learners[who.own_key],
            learners[who.peer_key] if who.peer_key else None,
            learners[who.crowd_key] if who.crowd_key else None,
            self.clusters[who.cluster_key],
        )


class BehaviourAnalyzer:
    """Buffers events; `flush()` scores and learns them and returns anomaly observations."""

    def __init__(
        self,
        store: StateStore,
        *,
        learning_days: int = DEFAULT_LEARNING_DAYS,
        now: Callable[[], float] = wall_clock.time,
        cache: ProfileCache | None = None,
    ) -> None:
        """`cache`: warm profiles kept across analyzers (the Lambda's container); with one, changed profiles are
        written back only when the change is material (`eksight.core.behaviour.cache`). Without one, every
        changed profile is written back at every flush."""
        self.store = store
        self.cache = cache
        self.learning_seconds = learning_days * DAY
        self.now = now  # wall clock, only for TTLs
        self.stats = BaselineStats()
        self._buffer: list[_Pending] = []
        self._principals: dict[int, _Baselined] = {}  # by id(): resolve_principal hands out shared objects

    def __len__(self) -> int:
        return len(self._buffer)

    def add(
        self,
        event: AuditEvent,
        principal: Principal,
        *,
        cluster: str,
        account: str,
        region: str,
        time: float,
        flagged: bool = False,
        rule_observations: tuple[Observation, ...] = (),
    ) -> bool:
        """Buffer the event; `rule_observations` (the rules' on this event) come back from `flush()` with their
        severity in the principal's context (eksight.core.behaviour.context). False: this principal has no
        baseline (control plane incl. its controllers' service accounts, anonymous, unknown): rules only, and
        the observations stay the caller's."""
        who = self._principals.get(id(principal))
        if who is None or who.principal is not principal or who.cluster != cluster:
            who = self._principals[id(principal)] = _baselined(principal, cluster)
        if not who.principal_class:
            return False
        if event.impersonated_user is not None:
            # `--as someone`: what is asked is the other identity's (an admin testing a developer's access), not
            # the caller's habits; the impersonation itself is the rules' to judge.
            return False
        images: tuple[str, ...] = ()
        if (
            event.resource in _WORKLOAD_RESOURCES
            and event.verb in ("create", "update", "patch")
            and event.request_object
        ):
            images = tuple(image for spec in workload_specs(event) for image in spec.images)
        features = extract(event, principal, time, images)
        self._buffer.append(_Pending(features, who, account, region, flagged, rule_observations))
        self.stats.events += 1
        return True

    def flush(self, batch_id: str = "") -> list[Observation]:
        """`batch_id` names the unit of work (the Lambda: the S3 object's bucket/key/version/ETag). A profile
        that already folded in a batch of that id (a redelivery after a partial failure) is left alone."""
        if not self._buffer:
            return []
        batch, self._buffer = sorted(self._buffer, key=_EVENT_TIME), []
        self._principals = {}
        self.stats.batches += 1
        cache = self.cache if self.cache is not None else ProfileCache(capacity=10**9)
        keys = _batch_keys(batch)
        observations: list[Observation] = []
        try:
            work = self._load(keys, cache, batch_id)
            subjects = {id(who): work.subject(who) for who in {id(p.who): p.who for p in batch}.values()}
            for pending in batch:
                subject = subjects[id(pending.who)]
                if pending.rule_observations:  # judged before the event is learned
                    observations.extend(self._rules_in_context(pending, subject))
                observation = self._score_and_learn(pending, subject, work)
                if observation is not None:
                    observations.append(observation)
                    self.stats.observations += 1
            self._commit(work, batch[-1].features.time, batch_id, cache)
        except BaseException:
            cache.discard(keys)  # they may hold part of this batch: re-read rather than count it twice
            raise
        return observations

    # --- one event ---------------------------------------------------------------------------------------

    def _score_and_learn(self, pending: _Pending, subject: _Subject, work: _Work) -> Observation | None:
        features, who = pending.features, pending.who
        own = subject.own.profile
        peer = subject.peer.profile if subject.peer is not None else None
        crowd = subject.crowd.profile if subject.crowd is not None else None
        cluster_state = subject.cluster
        if not cluster_state.first_seen:
            cluster_state.first_seen = features.time
        learning = features.time < cluster_state.first_seen + self.learning_seconds
        own.kind, own.name = who.principal.kind, who.display
        result = score_event(features, own, peer, who.principal_class, who.home, crowd)
        if result.reference:
            self.stats.scored += 1
        observation = None
        hold = _NOTHING_HELD
        reported = False
        if result.candidate:
            self.stats.candidates += 1
            threshold = LEARNING_REPORT_SCORE if learning else REPORT_SCORE
            if result.score >= threshold:
                if not learning:
                    hold = result.anomalous()
                if learning or not self._reported_recently(own, features, hold):
                    observation = self._observation(pending, result, own, peer, learning, cluster_state)
                    reported = True
                else:
                    self.stats.suppressed += 1
        if pending.hold_all and not learning:
            hold = frozenset(features.values)
        if subject.crowd is not None and not reported and NETWORK not in hold:
            _count_network_day(subject.crowd, own, features, work)
        update = Update(features, hold, who.humans, reported)
        _learn(subject.own, update, work)
        if subject.peer is not None:
            _learn(subject.peer, update, work)
        return observation

    def _rules_in_context(self, pending: _Pending, subject: _Subject) -> list[Observation]:
        who = pending.who
        own = subject.own.profile
        started = subject.cluster.first_seen
        learning = not started or pending.features.time < started + self.learning_seconds
        role = subject.peer.profile if subject.peer is not None and who.role_group else None
        return [
            in_context(o, own, pending.features, who.principal_class, who.display, learning=learning, role=role)
            for o in pending.rule_observations
        ]

    @staticmethod
    def _reported_recently(own: Profile, features: EventFeatures, anomalous: frozenset[str]) -> bool:
        """Every unusual value of this event was part of an anomaly reported earlier the same UTC day, in an
        earlier window: the same open anomaly (a changed deployment, or an attacker still at it) is one finding
        a day, not one an hour. Within its window it keeps folding into the one finding."""
        day_start = features.time // DAY * DAY
        window_start = features.time // WINDOW_SECONDS * WINDOW_SECONDS
        return bool(anomalous) and all(
            own.reported_between(feature, features.values.get(feature, ""), day_start, window_start)
            for feature in anomalous
        )

    def _observation(
        self,
        pending: _Pending,
        result: EventScore,
        own: Profile,
        peer: Profile | None,
        learning: bool,
        cluster_state: ClusterState,
    ) -> Observation:
        features, principal, principal_class = pending.features, pending.who.principal, pending.who.principal_class
        severity = (
            Severity.INFORMATIONAL
            if learning
            else Severity.HIGH
            if result.score >= 80
            else Severity.MEDIUM
            if result.score >= 60
            else Severity.LOW
        )
        finding_type, what = TYPES.get(features.action_class, TYPES[""])
        now = features.time
        humans = pending.who.humans
        if result.reference == "own":
            reference = explain.Reference(own, own)
        else:
            assert peer is not None
            label = (
                f"service accounts of {principal.namespace}"
                if principal_class == WORKLOAD_IDENTITY
                else f"other users of {principal.arn.rpartition('/')[2]}"
                if principal.kind == SSO_ROLE
                else PEER_LABELS[principal_class]
            )
            reference = explain.Reference(peer, own, peer_label=label)
        text = explain.describe_anomaly(
            features,
            result,
            reference,
            who=principal.display,
            cluster=pending.who.cluster,
            humans=humans,
            person=principal_class == HUMAN,
            what=what,
            class_words=CLASS_WORDS,
        )
        verb_target = features.values.get("action", "")
        namespace, resource, name = features.target
        anomaly = {
            "score": result.score,
            "reference": "principal" if result.reference == "own" else "peer group",
            "profile": {a.feature: a.as_dict() for a in result.assessments},
            "signals": list(result.signals),
            "baseline": text.baseline,
            "deviation": "; ".join(text.reasons),
            "training_period": {
                **explain.training_period(reference.profile),
                "learning_end": iso(cluster_state.first_seen + self.learning_seconds),
            },
        }
        return Observation(
            detector="anomaly",
            rule_id=ANOMALY_RULE_ID,
            type=finding_type,
            severity=severity,
            title=text.title,
            description=text.description,
            cluster=pending.who.cluster,
            account=pending.account,
            region=pending.region,
            principal_key=baseline_key(principal),
            principal=principal_summary(principal),
            target=None,
            time=now,
            audit_id=features.audit_id,
            source_ip=features.source_ip,
            user_agent=features.user_agent,
            touched=ResourceRef(namespace, resource, name) if resource else None,
            mitre=(),
            remediation=text.remediation,
            details={
                "anomaly": anomaly,
                "action": verb_target,
                "resource": ResourceRef(namespace, resource, name).as_dict(),
            },
        )

    # --- store I/O ---------------------------------------------------------------------------------------

    def _load(self, keys: list[Key], cache: ProfileCache, batch_id: str) -> _Work:
        entries = {key: entry for key in keys if (entry := cache.get(key)) is not None}
        missing = [key for key in keys if key not in entries]
        # Eventually consistent (half the cost): a stale version only makes the conditional write fail and retry.
        items = self.store.get_many(missing, consistent=False) if missing else {}
        for key in missing:
            item = items.get(key)
            if key[1] == "cluster":
                state: Profile | ClusterState = loads_cluster(item.blob) if item else ClusterState()
            else:
                state = loads(item.blob) if item else Profile()
            entries[key] = Cached(state, item)
            entries[key].synced(item)
            cache.put(key, entries[key])
        work = _Work(entries)
        for key, entry in entries.items():
            if isinstance(entry.state, ClusterState):
                work.clusters[key] = entry.state
            elif batch_id and batch_id in entry.state.applied:
                # folded in by an earlier delivery of this batch: score it again, on a copy that is dropped
                work.learners[key] = _Learner(key, loads(dumps(entry.state)), replayed=True)
            else:
                work.learners[key] = _Learner(key, entry.state, replayed=False)
        return work

    def _commit(self, work: _Work, last_time: float, batch_id: str, cache: ProfileCache) -> None:
        expires = int(max(last_time, self.now()) + TTL_DAYS * DAY)
        deferring = cache is self.cache
        merges: dict[Key, Merge] = {}
        ours: dict[Key, bytes] = {}
        for learner in work.learned:
            if learner.replayed:
                continue
            key, profile, entry = learner.key, learner.profile, work.entries[learner.key]
            profile.compact(last_time)
            if batch_id:
                profile.mark_applied(batch_id)
            entry.dirty = True
            if deferring and not learner.novel and not entry.material():
                self.stats.profiles_deferred += 1
                continue
            ours[key] = dumps(profile)
            loaded = entry.stored.blob if entry.stored else None
            merges[key] = _merge(loaded, ours[key], learner.updates, last_time, batch_id)
        for key, state in work.clusters.items():
            if work.entries[key].stored is None:
                merges[key] = _merge_cluster(dumps_cluster(state))
        known = {key: work.entries[key].stored for key in merges}
        written = apply_updates(self.store, merges, expires_at=expires, known=known)
        for key in merges:
            entry, item = work.entries[key], written.get(key)
            if item is None:  # the store already held this batch (another container's delivery): re-read it
                cache.discard([key])
                continue
            if key[1] == "cluster":
                entry.state = loads_cluster(item.blob)
            elif item.blob != ours[key]:  # lost a race: the cache follows the re-merged stored version
                entry.state = loads(item.blob)
            entry.synced(item)
        evicted = {key: entry for key, entry in cache.overflow().items() if key not in merges}
        self.stats.profiles_written += len(written) + len(write_as_is(self.store, evicted, expires))


def _merge(loaded: bytes | None, ours: bytes, updates: list[Update], last_time: float, batch_id: str) -> Merge:
    def merge(current: bytes | None) -> bytes | None:
        if current == loaded:
            return ours
        profile = loads(current) if current is not None else Profile()  # someone else wrote: re-apply ours
        if batch_id and batch_id in profile.applied:
            return None  # that someone was an earlier delivery of this very batch
        for update in updates:
            profile.learn(update.features, update.hold, update.humans, update.reported)
        profile.compact(last_time)
        if batch_id:
            profile.mark_applied(batch_id)
        return dumps(profile)

    return merge


def _merge_cluster(ours: bytes) -> Merge:
    def merge(current: bytes | None) -> bytes | None:
        if current is None:
            return ours
        theirs, mine = loads_cluster(current), loads_cluster(ours)
        return dumps_cluster(ClusterState(first_seen=min(theirs.first_seen, mine.first_seen)))

    return merge


def baseline_key(principal: Principal) -> str:
    """Who a baseline follows: the principal, except that an IAM Identity Center role is shared by everyone
    with its permission set, so each person (the session name) has their own."""
    if principal.kind == SSO_ROLE and principal.session:
        return f"{principal.key}#{principal.session}"
    return principal.key


def _batch_keys(batch: list[_Pending]) -> list[Key]:
    keys: dict[Key, None] = {}
    for who in {id(pending.who): pending.who for pending in batch}.values():
        keys[who.own_key] = None
        if who.peer_key:
            keys[who.peer_key] = None
        if who.crowd_key:
            keys[who.crowd_key] = None
        keys[who.cluster_key] = None
    return list(keys)


def _learn(learner: _Learner, update: Update, work: _Work) -> None:
    features, reported = update.features, update.reported
    profile = learner.profile
    # features.extract shares one `learnable` per value set (events built by hand have none: not cached)
    signature = id(features.learnable) if features.learnable else None
    counters = None
    if not reported:
        known = learner.counters
        counters = known.get(signature) if signature is not None else None
        if counters is None:
            counters = profile.counters(features)
            if counters is not None and signature is not None:
                known[signature] = counters
    if counters is not None:
        profile.learn_counted(features, counters, update.humans)
    else:
        if reported or (not learner.novel and not profile.knows(features)):
            learner.novel = True
        profile.learn(features, update.hold, update.humans, reported)
        learner.counters.clear()
    if not learner.updates:
        work.learned.append(learner)
    learner.updates.append(update)


def _count_network_day(crowd_learner: _Learner, own: Profile, features: EventFeatures, work: _Work) -> None:
    """Fold a person's first request of the day from a network into the crowd, so it counts person-days: one
    busy person (or one attacker) cannot make a network look shared."""
    network = features.values.get(NETWORK, "")
    if not network:
        return
    entry = own.values.get(NETWORK, {}).get(network)
    held = own.pending.get(f"{NETWORK}\x1f{network}")
    last_used = max(entry[2] if entry else -1.0, held[2] if held else -1.0)
    if last_used >= features.day * DAY:
        return
    # learnable=(): recomputed from these two values (the event's own learnable pairs are all of its values)
    values = {NETWORK: network, SITE: features.values.get(SITE, "")}
    day_of_network = msgspec.structs.replace(features, values=values, learnable=())
    _learn(crowd_learner, Update(day_of_network, _NOTHING_HELD, False, False), work)


def _baselined(principal: Principal, cluster: str) -> _Baselined:
    """Its profile keys: (own profile, peer group): nodes are one group already; a service account's peers are
    its namespace's service accounts; a person's, the other users of their IAM Identity Center role (else all
    humans); an automation role's, all automation roles."""
    principal_class = CLASSES.get(principal.kind, "")
    if principal_class and KUBE_SYSTEM_CONTROLLERS.allows_principal(principal):
        principal_class = ""
    own = (f"{cluster}|{baseline_key(principal)}", "profile")
    if principal_class == NODE_CLASS:
        group = ""
    elif principal_class == WORKLOAD_IDENTITY:
        group = f"sa-namespace:{principal.namespace}"
    elif principal.kind == SSO_ROLE and principal.session:
        group = f"role:{principal.key}"
    else:
        group = principal_class
    return _Baselined(
        principal=principal,
        cluster=cluster,
        principal_class=principal_class,
        own_key=own,
        peer_key=(f"{cluster}|peer:{group}", "peer") if group else None,
        crowd_key=(f"{cluster}|crowd:networks", "peer") if principal_class == HUMAN else None,
        cluster_key=(cluster, "cluster"),
        home=principal.namespace if principal_class == WORKLOAD_IDENTITY else "",
        humans=principal_class in (HUMAN, AUTOMATION),
        display=principal.display,
        role_group=group.startswith("role:"),
    )


__all__ = ["BehaviourAnalyzer", "is_mature"]
