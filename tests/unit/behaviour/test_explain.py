"""Anomaly explanations: who did what to which object, when and where, each unusual aspect in words with counts
that agree with the profile, and the objects an anomaly touched listed on the finding."""

from __future__ import annotations

from datetime import timedelta

from eksight.core.behaviour import explain
from eksight.core.behaviour.analyzer import CLASS_WORDS, BehaviourAnalyzer
from eksight.core.behaviour.features import EventFeatures
from eksight.core.behaviour.profile import DAY, Profile
from eksight.core.behaviour.scoring import RARE, UNSEEN, EventScore, FeatureAssessment
from eksight.core.detector import Detector
from eksight.core.findings import MAX_RESOURCES, FindingAggregator, Observation, ResourceRef, Severity
from eksight.core.state import MemoryStateStore
from tests.unit.behaviour.factory import START, event, raw, routine, service_account, sso_user

T0 = START.timestamp()
NOW = T0 + 10 * DAY + 3600 * 10  # Thursday 2024-09-12 10:00 UTC


def features(action: str, target: tuple[str, str, str], action_class: str = "", **values: str) -> EventFeatures:
    return EventFeatures(
        time=NOW,
        day=int(NOW // DAY),
        hour_of_week=3 * 24 + 10,
        values={"action": action, "zone": "outside", "tool_version": "kubectl 1.29", **values},
        action_class=action_class,
        failed=False,
        audit_id="a-1",
        source_ip="203.0.113.9",
        user_agent="kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625",
        target=target,
    )


def learned(events: int, network: str = "198.51.100.0/24", days: float = 9.0) -> Profile:
    profile = Profile()
    for i in range(events):
        when = T0 + days * DAY * i / max(1, events - 1)
        profile.learn(
            EventFeatures(
                when,
                int(when // DAY),
                0,
                {"network": network, "namespace": "team-a"},
                "",
                False,
                "",
                "",
                "",
                ("", "", ""),
            )
        )
    return profile


def describe(
    f: EventFeatures,
    assessments: list[FeatureAssessment],
    profile: Profile,
    signals: list[str] | None = None,
    what: str = "secrets access",
) -> explain.AnomalyText:
    score = EventScore(70.0, 8.0, True, "own", assessments, signals or [])
    return explain.describe_anomaly(
        f,
        score,
        explain.Reference(profile, profile),
        who="alice@example.com (AWSReservedSSO_Dev_0123)",
        cluster="prod",
        humans=True,
        person=True,
        what=what,
        class_words=CLASS_WORDS,
    )


def test_says_who_did_what_to_which_object_where_and_when() -> None:
    profile = learned(120)
    text = describe(
        features("get secrets", ("payments", "secrets", "db-password"), "secrets", namespace="payments"),
        [FeatureAssessment("namespace", "payments", UNSEEN, 0.0, 118.0, 0.0, 6.0)],
        profile,
    )
    assert text.description.startswith("At 2024-09-12 10:00:00 UTC in cluster prod")
    assert "alice@example.com (AWSReservedSSO_Dev_0123) read secret payments/db-password from 203.0.113.9" in (
        text.description
    )
    assert "(outside the cluster's network) with kubectl 1.29" in text.description
    assert "compared with its 120 requests over 9 days: it never worked in namespace payments." in text.description
    assert text.reasons == ["it never worked in namespace payments"]
    assert text.title == "Unusual secrets access by alice@example.com"
    assert text.remediation.startswith("Ask alice@example.com whether they needed these secrets")


def test_a_rare_value_is_counted_in_requests_of_the_profile_not_called_new() -> None:
    profile = learned(200)
    rare = FeatureAssessment("network", "192.0.2.0/24", RARE, 1.5, 100.0, 0.0, 2.0)
    text = describe(features("list pods", ("team-a", "pods", "")), [rare], profile)
    # 1.5 of 100 (decayed) is 1.5 % of the 200 requests the profile holds
    assert text.reasons == [
        "requests from network 192.0.2.0/24 (outside the cluster's network) are rare: about 3 of its 200 requests"
    ]
    assert "never" not in text.description.split("For comparison")[0]


def test_a_value_first_seen_minutes_ago_is_new_but_not_never_seen() -> None:
    profile = learned(50)
    profile.values.setdefault("tool", {})["curl"] = [4.0, NOW - 600, NOW - 60]
    fresh = FeatureAssessment("tool", "curl", UNSEEN, 4.0, 50.0, 0.0, 5.0)
    text = describe(features("list pods", ("team-a", "pods", "")), [fresh], profile)
    assert text.reasons == [
        "requests with curl (user agent 'kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625') began only "
        "10 minutes earlier (not yet part of its routine)"
    ]


def test_what_one_reason_implies_is_not_repeated() -> None:
    profile = learned(80)
    f = features("create pods/exec", ("shop", "pods/exec", "web-1"), "exec")
    text = describe(
        f,
        [
            FeatureAssessment("action", "create pods/exec", UNSEEN, 0.0, 80.0, 0.0, 5.0),
            FeatureAssessment("class_namespace", "exec@shop", UNSEEN, 0.0, 9.0, 0.0, 4.0),
            FeatureAssessment("network", "203.0.113.0/24", UNSEEN, 0.0, 80.0, 0.0, 3.0),
            FeatureAssessment("site", "203.0.0.0/16", UNSEEN, 0.0, 80.0, 0.0, 3.0),
        ],
        profile,
        ["first_use_of_sensitive_action"],
        what=CLASS_WORDS["exec"],
    )
    assert text.reasons == [
        "its first exec/attach/port-forward",
        "it never used network 203.0.0.0/16 (outside the cluster's network) before",
    ]
    assert "ran a command (exec) in pod shop/web-1" in text.description


def test_objects_are_named_as_people_say_them() -> None:
    profile = learned(40)
    deeds = {
        ("list secrets", ("", "secrets", "")): "listed all secrets (cluster-wide)",
        ("list secrets", ("shop", "secrets", "")): "listed secrets in namespace shop",
        ("create pods", ("shop", "pods", "")): "created a pod in namespace shop",
        ("delete validatingwebhookconfigurations", ("", "validatingwebhookconfigurations", "guard")): (
            "deleted validatingwebhookconfiguration guard"
        ),
        ("get /apis", ("", "", "")): "requested /apis",
    }
    for (action, target), deed in deeds.items():
        assert f"(AWSReservedSSO_Dev_0123) {deed} from" in describe(features(action, target), [], profile).description


def test_a_new_principal_is_compared_with_its_peers_in_their_words() -> None:
    own, peers = learned(2), learned(1500)
    score = EventScore(
        70.0, 8.0, True, "peer", [FeatureAssessment("namespace", "billing", UNSEEN, 0.0, 1400.0, 0.0, 6.0)], []
    )
    text = explain.describe_anomaly(
        features("get secrets", ("billing", "secrets", "db")),
        score,
        explain.Reference(peers, own, peer_label="service accounts of shop"),
        who="system:serviceaccount:shop:new",
        cluster="unknown",
        humans=False,
        person=False,
        what="secrets access",
        class_words=CLASS_WORDS,
    )
    assert text.description.startswith("At 2024-09-12 10:00:00 UTC, system:serviceaccount:shop:new read secret")
    assert "compared with the 1,500 requests over 9 days of its peers (service accounts of shop)" in text.description
    assert text.reasons == ["its peers never worked in namespace billing"]
    assert text.baseline.startswith("system:serviceaccount:shop:new is new (2 earlier requests): its peers")
    assert text.remediation.startswith("Ask the team that runs system:serviceaccount:shop:new whether")


def test_an_anomaly_finding_lists_the_secrets_it_read() -> None:
    alice = sso_user("alice@example.com")
    when = START + timedelta(days=12, hours=2)
    reads = [
        event(alice, when + timedelta(minutes=i), resource="secrets", namespace=ns, name=name, ip="192.0.2.44")
        for i, (ns, name) in enumerate([("payments", "db"), ("billing", "stripe-key"), ("kube-system", "aws-creds")])
    ]
    detector = Detector(baselines=BehaviourAnalyzer(MemoryStateStore(), learning_days=7))
    detector.run(raw(sorted(routine(alice, 14) + reads, key=lambda e: e["stageTimestamp"])))
    (finding,) = [f for f in detector.findings() if f.detector == "anomaly"]
    assert finding.severity >= Severity.MEDIUM
    assert set(finding.resources) >= {
        ResourceRef("payments", "secrets", "db"),
        ResourceRef("billing", "secrets", "stripe-key"),
    }
    assert finding.details["resource"]["name"] in finding.description


def test_objects_beyond_the_listed_ones_are_counted() -> None:
    aggregator = FindingAggregator()
    api = service_account("shop", "api")
    for i in range(MAX_RESOURCES + 7):
        aggregator.add(
            Observation(
                "anomaly",
                "UEBA-1",
                "T",
                Severity.HIGH,
                "t",
                "d",
                "prod",
                "1",
                "r",
                "sa:shop:api",
                {"name": str(api)},
                None,
                T0 + i,
                f"a{i}",
                "203.0.113.9",
                "curl/8",
                touched=ResourceRef("shop", "secrets", f"s{i % (MAX_RESOURCES + 5)}"),
            )
        )
    (finding,) = aggregator.findings()
    assert len(finding.resources) == MAX_RESOURCES
    assert finding.details["resources_not_listed"] == 5  # 25 distinct secrets, 20 listed


def test_modest_differences_that_only_together_stood_out_are_named() -> None:
    profile = learned(60)
    modest = [
        FeatureAssessment("network", "192.0.2.0/24", RARE, 1.0, 60.0, 0.0, 0.6),
        FeatureAssessment("hour", "80", RARE, 0.1, 1.0, 0.0, 0.8),
        FeatureAssessment("namespace", "team-a", "FREQUENT", 50.0, 60.0, 0.0, 0.0),
    ]
    text = describe(features("get secrets", ("team-a", "secrets", "db"), "secrets"), modest, profile)
    assert text.reasons == []
    assert "over 9 days: several small differences together (its hour and network)." in text.description
