"""Baselines inside the detection pipeline: learning period, explanations, no self-poisoning, one finding per
principal and window, batch-size independence, and no lost updates between concurrent writers."""

from __future__ import annotations

import gc
import json
import re
from datetime import timedelta

from eksight.core.behaviour.analyzer import BehaviourAnalyzer
from eksight.core.behaviour.features import NAMESPACE, extract
from eksight.core.behaviour.profile import MAX_VALUES, Profile, dumps, loads
from eksight.core.detector import Detector
from eksight.core.events import event_time, parse_event
from eksight.core.findings import Severity
from eksight.core.identity import resolve_principal
from eksight.core.state import MemoryStateStore
from tests.unit.behaviour.factory import START, event, raw, routine, service_account, sso_user

ALICE = sso_user("alice@example.com")
API = service_account("shop", "api")


def api_routine(days: int) -> list[dict]:
    """The shop API's service account reads its own secrets and configmaps from inside the VPC, all day."""
    out = []
    for day in range(days):
        for i in range(48):
            when = START + timedelta(days=day, minutes=30 * i)
            resource = "secrets" if i % 4 == 0 else "configmaps"
            out.append(
                event(
                    API,
                    when,
                    verb="get",
                    resource=resource,
                    namespace="shop",
                    name="api-config",
                    ip=f"10.0.3.{10 + i % 5}",
                    agent="api/1.4.2 (linux/amd64) kubernetes/abc",
                )
            )
    return out


def run(
    events: list[dict], *, learning_days: int = 7, batch: int = 20_000, store: MemoryStateStore | None = None
) -> Detector:
    store = store if store is not None else MemoryStateStore()
    detector = Detector(baselines=BehaviourAnalyzer(store, learning_days=learning_days), baseline_batch=batch)
    return detector.run(raw(sorted(events, key=lambda e: e["stageTimestamp"])))


def anomalies(detector: Detector) -> list:
    return [f for f in detector.findings() if f.detector == "anomaly"]


def stolen_token_use(day: int, count: int = 3) -> list[dict]:
    when = START + timedelta(days=day, hours=3)
    return [
        event(
            API,
            when + timedelta(minutes=i),
            verb="get",
            resource="secrets",
            namespace="shop",
            name="db-password",
            ip="203.0.113.66",
            agent="curl/8.4.0",
        )
        for i in range(count)
    ]


def test_a_service_account_token_used_from_outside_is_reported_with_its_baseline() -> None:
    found = anomalies(run(api_routine(12) + stolen_token_use(10)))
    assert len(found) == 1
    finding = found[0]
    assert finding.severity >= Severity.HIGH
    assert finding.type == "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"
    assert finding.count == 3 and len(finding.evidence) == 3
    anomaly = finding.details["anomaly"]
    assert "credential_outside_cluster" in anomaly["signals"]
    assert anomaly["profile"]["zone"]["profile"] == "UNSEEN" and anomaly["profile"]["tool"]["profile"] == "UNSEEN"
    assert anomaly["profile"]["namespace"]["profile"] == "FREQUENT"
    baseline = anomaly["baseline"]
    assert baseline.startswith("system:serviceaccount:shop:api normally ")
    assert "in shop" in baseline and "inside the cluster's network" in baseline and "api 1.4" in baseline
    assert anomaly["training_period"]["learning_end"].startswith("2024-09-09")


def test_nothing_is_raised_above_informational_during_the_learning_period() -> None:
    found = anomalies(run(api_routine(12) + stolen_token_use(5), learning_days=7))
    assert found and all(f.severity == Severity.INFORMATIONAL for f in found)
    assert anomalies(run(api_routine(12) + stolen_token_use(5), learning_days=3))[0].severity >= Severity.HIGH


def test_repeated_malicious_use_does_not_become_normal() -> None:
    attack = [e for day in range(8, 12) for e in stolen_token_use(day, count=2)]
    found = anomalies(run(api_routine(12) + attack))
    assert [f.first_seen // 86400 for f in found] == sorted({f.first_seen // 86400 for f in found})
    assert len(found) == 4 and all(f.severity >= Severity.HIGH for f in found)


def test_results_do_not_depend_on_the_batch_size() -> None:
    events = api_routine(12) + stolen_token_use(9) + stolen_token_use(11)
    small, large = run(events, batch=50), run(events, batch=100_000)
    summary = [(f.id, f.severity, f.count, f.details["anomaly"]["score"]) for f in anomalies(small)]
    assert summary == [(f.id, f.severity, f.count, f.details["anomaly"]["score"]) for f in anomalies(large)]
    assert small.baselines is not None and small.baselines.stats.batches > 10


def test_each_batch_reads_every_profile_once_and_writes_each_changed_one_once() -> None:
    store = MemoryStateStore()
    detector = run(api_routine(2), batch=10**6, store=store)
    detector.flush()
    # keys: the service account, its namespace's peer group, the cluster's learning state
    assert (store.reads, store.writes, len(store)) == (3, 3, 3)


def test_a_developers_baseline_reads_as_one_sentence() -> None:
    events = routine(ALICE, 14)
    late_secret_reads = [
        event(
            ALICE,
            START + timedelta(days=12, hours=2, minutes=i),
            verb="get",
            resource="secrets",
            namespace=ns,
            ip="192.0.2.44",
            agent="kubectl/v1.31.0 (linux/amd64) kubernetes/abc",
        )
        for i, ns in enumerate(["payments", "billing", "kube-system"])
    ]
    found = anomalies(run(events + late_secret_reads))
    assert len(found) == 1 and found[0].severity >= Severity.HIGH
    baseline = found[0].details["anomaly"]["baseline"]
    assert baseline.startswith("alice@example.com (AWSReservedSSO_Dev_0123456789abcdef) normally ")
    for phrase in ("gets pods", "in team-a", "from 198.51.100.0/24", "with kubectl 1.29", "on weekdays 09–16 UTC"):
        assert phrase in baseline
    anomaly = found[0].details["anomaly"]
    assert re.search(r"it never worked in namespace (payments|billing|kube-system)", anomaly["deviation"])
    assert "first_use_of_sensitive_action" in anomaly["signals"]
    assert anomaly["profile"]["namespace"]["profile"] == "UNSEEN"


class RacingStore(MemoryStateStore):
    """Runs `interloper` (another writer) right after the first read: that writer's update lands between our
    read and our conditional write, so our write must fail, re-read and merge."""

    def __init__(self) -> None:
        super().__init__()
        self.interloper = None

    def get_many(self, keys, consistent=True):  # type: ignore[no-untyped-def]
        items = super().get_many(keys, consistent)
        if self.interloper is not None:
            interloper, self.interloper = self.interloper, None
            interloper()
        return items


def test_concurrent_writers_never_lose_each_others_updates() -> None:
    store = RacingStore()
    first, second = api_routine(6)[::2], api_routine(6)[1::2]
    other = Detector(baselines=BehaviourAnalyzer(store))
    other.run(raw(second))
    store.interloper = other.flush
    mine = Detector(baselines=BehaviourAnalyzer(store))
    mine.run(raw(first))
    mine.flush()
    assert store.conflicts >= 1
    from eksight.core.behaviour.profile import loads

    profile = loads(store.get_many([("prod|sa:shop/api", "profile")])[("prod|sa:shop/api", "profile")].blob)
    assert profile.events == len(first) + len(second)


def test_a_redelivered_batch_is_not_counted_twice_but_still_scored() -> None:
    store = MemoryStateStore()
    history = Detector(baselines=BehaviourAnalyzer(store))
    history.run(raw(api_routine(10)))
    history.flush("history")
    attack = raw(stolen_token_use(10))
    runs = []
    for _ in range(2):  # the same S3 object, delivered twice
        detector = Detector(baselines=BehaviourAnalyzer(store))
        detector.run(attack)
        detector.flush("s3://archive/audit/object-1#etag")
        runs.append([(f.id, f.severity) for f in detector.findings() if f.detector == "anomaly"])
    assert runs[0] and runs[0] == runs[1]
    from eksight.core.behaviour.profile import loads

    key = ("prod|sa:shop/api", "profile")
    profile = loads(store.get_many([key])[key].blob)
    assert profile.events == 10 * 48 + 3
    assert profile.applied == ["history", "s3://archive/audit/object-1#etag"]


def test_requests_that_open_a_session_do_not_make_its_new_network_and_tool_known() -> None:
    attacker = dict(ip="203.0.113.9", agent="OpenAPI-Generator/29.0.0/python")
    when = START + timedelta(days=10, hours=3)
    session = [
        event(ALICE, when + timedelta(seconds=i), verb=verb, resource=r, namespace=ns, **attacker)
        for i, (verb, r, ns) in enumerate(
            [
                ("list", "namespaces", ""),
                ("list", "nodes", ""),
                ("get", "pods", "team-a"),
                ("list", "pods", "team-a"),
                ("get", "deployments", "team-a"),
                ("get", "pods", "team-a"),
            ]
        )
    ]
    session.append(event(ALICE, when + timedelta(minutes=2), verb="list", resource="secrets", namespace="", **attacker))
    (finding,) = anomalies(run(routine(ALICE, 14) + session))
    assert finding.evidence == [session[-1]["auditID"]] and finding.severity >= Severity.MEDIUM
    profile = finding.details["anomaly"]["profile"]
    assert profile["network"]["profile"] == profile["tool"]["profile"] == "UNSEEN"  # 6 requests ago: still new


def test_an_open_anomaly_is_reported_once_a_day_not_every_hour() -> None:
    hourly = [
        e
        for hour in range(6)
        for e in stolen_token_use(10, count=1)
        for e in [
            {
                **e,
                "auditID": f"{e['auditID']}-{hour}",
                "stageTimestamp": (START + timedelta(days=10, hours=3 + hour)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
        ]
    ]
    for e in hourly:
        e["requestReceivedTimestamp"] = e["stageTimestamp"]
    detector = run(api_routine(12) + hourly)
    assert len(anomalies(detector)) == 1
    assert detector.baselines is not None and detector.baselines.stats.suppressed == 5


def test_people_sharing_an_identity_center_role_have_their_own_baselines() -> None:
    bob = sso_user("bob@example.com")  # same permission set as alice, other habits
    alice_days = routine(ALICE, 14, namespace="team-a")
    bob_days = routine(bob, 14, namespace="team-b", ip="192.0.2.10", hours=(13, 21))
    bob_in_team_a = [
        event(
            bob,
            START + timedelta(days=11, hours=14, minutes=i),
            verb="get",
            resource="secrets",
            namespace=ns,
            ip="192.0.2.10",
        )
        for i, ns in enumerate(["team-a", "team-c", "team-d"])
    ]
    found = anomalies(run(alice_days + bob_days + bob_in_team_a))
    assert [f.principal["name"] for f in found] == ["bob@example.com"]
    assert "in team-b" in found[0].details["anomaly"]["baseline"]


def test_a_workloads_new_client_library_from_its_own_network_is_not_reported_but_kubectl_is() -> None:
    upgraded = [
        event(
            API,
            START + timedelta(days=10, minutes=30 * i),
            verb="get",
            resource="secrets",
            namespace="shop",
            name="api-config",
            ip="10.0.3.11",
            agent="openapi-generator/29.0.0/python",
        )
        for i in range(4)
    ]
    assert anomalies(run(api_routine(12) + upgraded)) == []
    by_hand = [{**e, "userAgent": "kubectl/v1.31.0 (linux/amd64) kubernetes/abc"} for e in upgraded]
    (finding,) = anomalies(run(api_routine(12) + by_hand))
    assert "new_tool_for_workload_identity" in finding.details["anomaly"]["signals"]


def test_a_first_secret_read_is_medium_only_outside_the_namespaces_one_works_in() -> None:
    own_team = [event(ALICE, START + timedelta(days=10, hours=11), verb="get", resource="secrets", namespace="team-a")]
    assert all(f.severity <= Severity.LOW for f in anomalies(run(routine(ALICE, 14) + own_team)))
    elsewhere = [
        event(ALICE, START + timedelta(days=10, hours=11), verb="get", resource="secrets", namespace="payments")
    ]
    (finding,) = anomalies(run(routine(ALICE, 14) + elsewhere))
    assert finding.severity >= Severity.MEDIUM
    assert "first_use_of_sensitive_action" in finding.details["anomaly"]["signals"]


def test_an_app_starting_to_read_its_own_secrets_after_an_upgrade_is_at_most_low() -> None:
    reads_configmaps = [e for e in api_routine(12) if e["objectRef"]["resource"] == "configmaps"]
    upgraded = [
        event(
            API,
            START + timedelta(days=10, hours=h),
            verb="get",
            resource="secrets",
            namespace="shop",
            name="api-db",
            ip="10.0.3.40",
            agent="api/2.0.0 (linux/amd64) kubernetes/def",
        )
        for h in range(3)
    ]
    assert all(f.severity <= Severity.LOW for f in anomalies(run(reads_configmaps + upgraded)))


def test_a_batch_learns_exactly_what_learning_each_event_does() -> None:
    """The analyzer learns known values through cached counters and forgets them when a new value may evict
    others: its profile must equal learning every event in turn, here across evictions (more namespaces than a
    profile keeps) with the usual namespace recurring in between, and a namespace that is learned, evicted and
    seen again (one day: nothing is scored or held)."""
    tenants = [f"tenant-{t}" for t in range(110) for _ in range(3)]  # each outweighs "rare" once seen thrice
    namespaces = ["rare", "rare"] + [n for tenant in tenants for n in (tenant, "shop")] + ["rare"]
    events = [
        # some events share a timestamp with the one before
        event(
            API, START + timedelta(seconds=97 * (i - (i % 4 == 1))), resource="configmaps", namespace=ns, ip="10.0.3.7"
        )
        for i, ns in enumerate(namespaces)
    ]
    assert len(set(tenants)) > MAX_VALUES[NAMESPACE] * 5 // 4  # namespaces are evicted along the way
    store = MemoryStateStore()
    run(events, store=store).findings()
    expected = Profile()
    for payload in events:
        parsed = parse_event(json.dumps(payload).encode())
        expected.learn(extract(parsed, resolve_principal(parsed), event_time(parsed)))
    expected.kind, expected.name = "service_account", "system:serviceaccount:shop:api"
    expected.compact(expected.last_seen)
    stored = store.get_many([("prod|sa:shop/api", "profile")])[("prod|sa:shop/api", "profile")]
    assert dumps(loads(stored.blob)) == dumps(expected)


# --- drift (issue 14) -------------------------------------------------------------------------------------------


def _from(user: dict, when, ip: str) -> list[dict]:
    """First reads of secrets in one's own namespace: from a new network alone that is LOW (travel, a new home
    line); from a new network after hours as well, it is evidence."""
    return [
        event(user, when + timedelta(minutes=i), verb=verb, resource=resource, namespace="team-a", ip=ip)
        for i, (verb, resource) in enumerate((("list", "pods"), ("get", "secrets"), ("list", "secrets")))
    ]


def test_a_new_egress_address_several_colleagues_already_use_is_not_one_persons_anomaly() -> None:
    people = [sso_user(f"{name}@example.com") for name in ("alice", "bob", "carol", "dave", "erin")]
    history = [e for person in people for e in routine(person, 14, ip="198.51.100.7")]
    day = START + timedelta(days=14, hours=21)  # after hours (routine: 9-17)
    new_egress = "203.0.113.20"
    # Four colleagues come through the VPN's new NAT address on one morning; the fifth an hour later.
    moved = [
        e for i, person in enumerate(people[:4]) for e in _from(person, day + timedelta(minutes=5 * i), new_egress)
    ]
    later = _from(people[4], day + timedelta(hours=1), new_egress)
    alone = _from(people[4], day + timedelta(hours=1), "192.0.2.99")  # the same, from an address no one else uses
    shared = [f for f in anomalies(run(history + moved + later)) if "erin" in f.principal.get("name", "")]
    unshared = [f for f in anomalies(run(history + moved + alone)) if "erin" in f.principal.get("name", "")]
    assert unshared and max(f.severity for f in unshared) >= Severity.MEDIUM
    assert all(f.severity < max(x.severity for x in unshared) for f in shared)


def test_one_busy_person_cannot_make_a_network_look_shared() -> None:
    people = [sso_user(f"{name}@example.com") for name in ("alice", "erin")]
    history = [e for person in people for e in routine(person, 14, ip="198.51.100.7")]
    day = START + timedelta(days=14, hours=21)  # after hours (routine: 9-17)
    intruder = "192.0.2.99"
    busy = [e for hour in range(6) for e in _from(people[0], day + timedelta(minutes=10 * hour), intruder)]
    then = _from(people[1], day + timedelta(hours=2), intruder)
    erin = [f for f in anomalies(run(history + busy + then)) if "erin" in f.principal.get("name", "")]
    assert erin and max(f.severity for f in erin) >= Severity.MEDIUM


def test_impersonated_requests_are_left_to_the_rules() -> None:
    sweep = []
    for i, resource in enumerate(("pods", "secrets", "roles", "rolebindings", "configmaps", "events")):
        request = event(ALICE, START + timedelta(days=12, hours=10, seconds=i), verb="list", resource=resource)
        request["impersonatedUser"] = {"username": "bob@example.com", "groups": ["team-b-developers"]}
        sweep.append(request)
    assert not anomalies(run(routine(ALICE, 14) + sweep))
    plain = [{k: v for k, v in e.items() if k != "impersonatedUser"} for e in sweep]
    assert anomalies(run(routine(ALICE, 14) + plain))


def test_a_first_port_forward_where_one_works_daily_is_not_a_first_shell() -> None:
    """A developer forwarding a port of their own team's pod for the first time is reaching their app; a first
    shell there, or a first port-forward into another team's pod, is still reported."""
    history = routine(ALICE, 21)
    when = START + timedelta(days=21, hours=11)  # a Monday, office hours, usual network and tool

    def first(subresource: str, namespace: str) -> Severity:
        request = event(ALICE, when, verb="create", subresource=subresource, namespace=namespace, name="web-1")
        found = anomalies(run([*history, request]))
        return max((f.severity for f in found), default=Severity.INFORMATIONAL)

    assert first("portforward", "team-a") < Severity.MEDIUM
    assert first("exec", "team-a") >= Severity.MEDIUM
    assert first("portforward", "payments") >= Severity.MEDIUM


# --- speed (issue 13) -------------------------------------------------------------------------------------------


def test_a_buffered_batch_leaves_the_garbage_collector_nothing_to_scan() -> None:
    """A batch holds up to tens of thousands of buffered events until it is flushed; were they tracked, every
    collection in between would walk all of them (measured: about a third of the baselines' cost per event)."""
    detector = Detector(baselines=BehaviourAnalyzer(MemoryStateStore()))
    records = raw([event(API, START + timedelta(seconds=i), namespace="shop", ip="10.0.3.7") for i in range(300)])
    detector.run(records[:10])  # the principal, the request's description and the detector's own structures
    gc.collect()
    before = len(gc.get_objects())
    detector.run(records[10:])
    gc.collect()
    assert detector.baselines is not None and len(detector.baselines) == len(records)
    assert len(gc.get_objects()) - before < 10  # not one (or more) per event
