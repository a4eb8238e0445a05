"""The operator's network lists: validated in the config's `detection` section, passed to the rules through the
detector's options (no module globals), and optionally extended by an S3 object read at cold start (moto)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from pydantic import ValidationError

from eksight.adapters.network_lists import MAX_OBJECT_BYTES, NetworkListsUnavailable, read_network_lists
from eksight.core.archive_object import build_detector
from eksight.core.detection_options import MAX_NETWORKS, DetectionOptions
from eksight.core.detection_runtime import AnyDetectionOptions, RuntimeDetectionOptions, decode_detection
from eksight.core.findings import Finding
from eksight.core.rules.common import parse_address
from eksight.core.rules.networks import NetworkSet
from lambdas.detector.composition import with_object_networks
from tests.unit.rules.test_access_rules import make_event, records, sa

BUCKET, KEY = "acme-threat-intel", "eksight/networks.json"


def detect(detection: AnyDetectionOptions | None, *events: dict[str, Any]) -> list[Finding]:
    detector = build_detector(detection).run(records(list(events)))
    return detector.findings()


def rules_of(findings: list[Finding]) -> set[str]:
    return {finding.rule_id for finding in findings}


# ---- validation ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["threat_networks", "trusted_networks"])
def test_network_lists_accept_addresses_and_cidrs(field: str) -> None:
    options = DetectionOptions.model_validate({field: ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"]})
    assert getattr(options, field) == ["203.0.113.7", "198.51.100.0/24", "2001:db8::/32"]


@pytest.mark.parametrize("bad", ["203.0.113.300", "198.51.100.0/33", "evil.example.com", "", " 203.0.113.7"])
def test_a_bad_network_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(ValidationError, match="not an IP address or CIDR") as error:
        DetectionOptions.model_validate({"threat_networks": ["192.0.2.1", bad]})
    assert repr(bad) in str(error.value)


def test_lists_are_bounded() -> None:
    many = [f"10.{i // 256 % 256}.{i % 256}.0/24" for i in range(MAX_NETWORKS + 1)]
    with pytest.raises(ValidationError, match="at most 10000"):
        DetectionOptions.model_validate({"trusted_networks": many})
    assert len(DetectionOptions.model_validate({"trusted_networks": many[:-1]}).trusted_networks) == MAX_NETWORKS


@pytest.mark.parametrize("key", ["eksight/*.json", "networks?.json", ""])
def test_the_object_key_names_exactly_one_object(key: str) -> None:
    with pytest.raises(ValidationError):
        DetectionOptions.model_validate({"networks_object": {"bucket": BUCKET, "key": key}})


# ---- membership -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("198.51.100.77", True),  # in the /24
        ("198.51.101.1", False),
        ("203.0.113.7", True),  # a single address
        ("203.0.113.8", False),
        ("::ffff:203.0.113.7", True),  # IPv4-mapped IPv6 is the IPv4 address
        ("2001:db8:1::5", True),
        ("2001:db9::1", False),
        ("10.1.2.3", True),  # host bits of 10.1.2.3/8 are ignored
        ("not-an-ip", False),
    ],
)
def test_network_set_membership(address: str, expected: bool) -> None:
    networks = NetworkSet(["198.51.100.0/24", "203.0.113.7", "2001:db8::/32", "10.1.2.3/8", "bogus"])
    assert (parse_address(address) in networks) is expected
    assert len(networks) == 4


# ---- the rules read the config's lists -------------------------------------------------------------------------------


def test_a_threat_listed_address_is_eks_150_only_when_listed() -> None:
    event = make_event(ip="198.51.100.23", verb="get", resource="secrets", namespace="shop", name="db")
    assert "EKS-150" not in rules_of(detect(None, event))
    listed = DetectionOptions(threat_networks=["198.51.100.0/24"])
    assert "EKS-150" in rules_of(detect(listed, event))


def test_a_trusted_address_keeps_eks_131_quiet() -> None:
    event = make_event(user=sa("shop", "web"), ip="185.220.101.50", verb="get", resource="configmaps", namespace="shop")
    assert "EKS-131" in rules_of(detect(None, event))
    assert "EKS-131" in rules_of(detect(DetectionOptions(trusted_networks=["185.220.102.0/24"]), event))
    assert "EKS-131" not in rules_of(detect(DetectionOptions(trusted_networks=["185.220.101.0/24"]), event))


# ---- the S3 object, read at cold start --------------------------------------------------------------------------------


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def with_object(s3: Any, body: bytes, **config: Any) -> RuntimeDetectionOptions:
    """The detector's options (as it reads them from its asset) with the object's lists added."""
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=body)
    shipped = {"networks_object": {"bucket": BUCKET, "key": KEY}, **config}
    return with_object_networks(decode_detection(json.dumps(shipped).encode()), s3)


def test_the_objects_lists_are_added_to_the_configs(s3: Any) -> None:
    body = json.dumps({"threat_networks": ["203.0.113.0/24", "198.51.100.7"], "trusted_networks": ["192.0.2.0/24"]})
    detection = with_object(s3, body.encode(), threat_networks=["198.51.100.7"])
    assert detection.threat_networks == ["198.51.100.7", "203.0.113.0/24"]
    assert detection.trusted_networks == ["192.0.2.0/24"]
    event = make_event(ip="203.0.113.9", verb="list", resource="secrets")
    assert "EKS-150" in rules_of(detect(detection, event))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not a network-lists document"),
        (b'{"threat": ["203.0.113.0/24"]}', "unknown field"),
        (json.dumps({"threat_networks": ["203.0.113.0/24", "bogus"]}).encode(), "not an IP address or CIDR"),
        (
            json.dumps({"threat_networks": [f"10.0.{i // 256}.{i % 256}" for i in range(MAX_NETWORKS)]}).encode(),
            "10000",
        ),
        (b" " * (MAX_OBJECT_BYTES + 1), "larger than"),
    ],
)
def test_a_bad_object_is_logged_and_the_configs_lists_kept(
    s3: Any, body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        detection = with_object(s3, body, threat_networks=["198.51.100.7"])
    assert detection.threat_networks == ["198.51.100.7"]
    assert any(reason in str(record.__dict__.get("error", "")) for record in caplog.records), caplog.text


def test_a_missing_object_is_unavailable_not_a_crash(s3: Any) -> None:
    with pytest.raises(NetworkListsUnavailable, match="NoSuchKey"):
        read_network_lists(s3, BUCKET, "nothing-here.json")
    shipped = {"networks_object": {"bucket": BUCKET, "key": "nothing-here.json"}, "trusted_networks": ["192.0.2.1"]}
    detection = decode_detection(json.dumps(shipped).encode())
    assert with_object_networks(detection, s3) == detection
