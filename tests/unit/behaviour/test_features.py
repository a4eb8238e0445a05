"""Feature extraction: the values a baseline learns must be stable across benign churn (versions, hosts in
one subnet) and distinguish what matters (tool family, network, inside vs. outside the VPC)."""

from __future__ import annotations

import msgspec
import pytest

from eksight.core.behaviour import features as F
from eksight.core.events import event_time, parse_event
from eksight.core.identity import resolve_principal
from tests.unit.behaviour.factory import START, event, service_account, sso_user


def extract(payload: dict) -> F.EventFeatures:
    parsed = parse_event(msgspec.json.encode(payload))
    return F.extract(parsed, resolve_principal(parsed), event_time(parsed))


@pytest.mark.parametrize(
    ("ip", "network", "zone"),
    [
        ("10.1.2.3", "10.1.2.0/24", F.INSIDE),
        ("100.64.7.9", "100.64.7.0/24", F.INSIDE),  # EKS custom networking (CGNAT) pod range
        ("172.20.0.5", "172.20.0.0/24", F.INSIDE),
        ("203.0.113.50", "203.0.113.0/24", F.OUTSIDE),
        ("2600:1f18:abcd:12::1", "2600:1f18:abcd::/48", F.OUTSIDE),
        ("fd00:1:2:3::4", "fd00:1:2::/48", F.INSIDE),
        ("::ffff:10.0.0.1", "10.0.0.0/24", F.INSIDE),
        ("not-an-ip", "invalid", F.OUTSIDE),
    ],
)
def test_networks_are_prefixes_and_zones_say_inside_or_outside_the_vpc(ip: str, network: str, zone: str) -> None:
    values = extract(event(sso_user("alice"), START, ip=ip)).values
    assert (values[F.NETWORK], values[F.ZONE]) == (network, zone)


@pytest.mark.parametrize(
    ("agent", "tool", "version"),
    [
        ("kubectl/v1.29.3 (darwin/arm64) kubernetes/6813625", "kubectl", "kubectl 1.29"),
        ("kubectl/v1.30.0 (linux/amd64) kubernetes/7c48c2b", "kubectl", "kubectl 1.30"),
        ("kubelet/v1.30.9-eks-6ac2a7a (linux/amd64) kubernetes/6ac2a7a", "kubelet", "kubelet 1.30"),
        ("Go-http-client/2.0", "go-http-client", "go-http-client 2.0"),
        ("curl/8.4.0", "curl", "curl 8.4"),
        ("Mozilla/5.0 (X11; Linux x86_64)", "browser", "browser 5.0"),
        ("", "", ""),
    ],
)
def test_tools_are_families_with_minor_versions(agent: str, tool: str, version: str) -> None:
    values = extract(event(sso_user("alice"), START, agent=agent)).values
    assert (values[F.TOOL], values[F.TOOL_VERSION]) == (tool, version)


@pytest.mark.parametrize(
    ("kwargs", "action", "action_class"),
    [
        ({"verb": "get", "resource": "pods"}, "get pods", ""),
        ({"verb": "create", "resource": "pods", "subresource": "exec"}, "create pods/exec", F.EXEC),
        ({"verb": "get", "resource": "secrets"}, "get secrets", F.SECRETS),
        ({"verb": "create", "resource": "rolebindings"}, "create rolebindings", F.RBAC),
        ({"verb": "get", "resource": "rolebindings"}, "get rolebindings", ""),
        (
            {"verb": "create", "resource": "serviceaccounts", "subresource": "token"},
            "create serviceaccounts/token",
            F.TOKEN,
        ),
        (
            {"verb": "get", "resource": "nodes", "subresource": "proxy", "namespace": ""},
            "get nodes/proxy",
            F.NODE_PROXY,
        ),
        ({"verb": "delete", "resource": "events"}, "delete events", F.EVENT_DELETE),
    ],
)
def test_actions_and_their_security_class(kwargs: dict, action: str, action_class: str) -> None:
    features = extract(event(sso_user("alice"), START, **kwargs))
    assert features.values[F.ACTION] == action
    assert features.action_class == action_class
    assert features.values[F.CLASS] == action_class


def test_cluster_wide_lists_of_sensitive_resources_are_their_own_class() -> None:
    payload = event(sso_user("alice"), START, verb="list", resource="configmaps", namespace="")
    features = extract(payload)
    assert features.action_class == F.CLUSTER_LIST
    assert features.values[F.NAMESPACE] == F.CLUSTER_SCOPE


def test_hour_of_week_counts_from_monday_midnight_utc() -> None:
    monday_nine = START.replace(hour=9)
    sunday_late = START.replace(day=8, hour=23)
    assert extract(event(sso_user("a"), monday_nine)).hour_of_week == 9
    assert extract(event(sso_user("a"), sunday_late)).hour_of_week == 6 * 24 + 23


def test_the_same_request_at_another_hour_differs_only_in_the_hour_and_shares_its_learnable_values() -> None:
    """Learning caches a profile's counters per `learnable` object (analyzer._learn): the same request in another
    hour must hand out the same one, and its values in the same order (profiles store them in that order)."""
    monday_nine, tuesday_ten = (
        extract(event(sso_user("a"), START.replace(hour=9))),
        extract(event(sso_user("a"), START.replace(day=3, hour=10))),
    )
    assert list(monday_nine.values) == list(tuesday_ten.values) == list(F.FEATURES)
    assert (monday_nine.values[F.HOUR], tuesday_ten.values[F.HOUR]) == ("9", str(24 + 10))
    assert {k: v for k, v in monday_nine.values.items() if k != F.HOUR} == {
        k: v for k, v in tuesday_ten.values.items() if k != F.HOUR
    }
    assert monday_nine.learnable is tuesday_ten.learnable
    assert monday_nine.learnable == F.learnable(monday_nine.values)
    assert (F.HOUR, "9") not in monday_nine.learnable


def test_denied_requests_are_failures() -> None:
    assert extract(event(service_account("ci", "bot"), START, code=403)).failed
    assert not extract(event(service_account("ci", "bot"), START, code=404)).failed


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", "docker.io/library/nginx"),
        ("nginx:1.25", "docker.io/library/nginx"),
        ("bitnami/redis:7", "docker.io/bitnami/redis"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/api:v3", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/api"),
        ("localhost:5000/x@sha256:" + "a" * 64, "localhost:5000/x"),
    ],
)
def test_images_are_registry_and_repository(image: str, expected: str) -> None:
    parsed = parse_event(msgspec.json.encode(event(sso_user("a"), START, verb="create", resource="pods")))
    assert F.extract(parsed, resolve_principal(parsed), 0.0, (image,)).values[F.IMAGE] == expected
