"""Tampering rules (eksight/core/rules/tampering.py): events deleted, workloads deleted, aws-auth and CoreDNS changed.

Events go through the real pipeline (`Detector` + `RuleEngine`). The dev-scenarios run over these rules is in
test_access_rules.py (one pass over both modules).
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from eksight.core.decode import RawEvent, SourceContext
from eksight.core.detector import Detector
from eksight.core.findings import Finding, Severity
from eksight.core.rules import tampering
from eksight.core.rules.engine import RuleEngine

LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL
ACCOUNT = "111122223333"
SSO = {
    "username": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/bob@example.com",
    "uid": f"aws-iam-authenticator:{ACCOUNT}:AROAEXAMPLEEXAMPLE",
    "groups": ["system:authenticated"],
    "extra": {
        "canonicalArn": [f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Admin_0123456789abcdef"],
        "sessionName": ["bob@example.com"],
    },
}
EKS_ADDON = {"username": "eks:addon-manager", "groups": ["system:authenticated"]}
NAMESPACE_CONTROLLER = {
    "username": "system:serviceaccount:kube-system:namespace-controller",
    "groups": ["system:serviceaccounts", "system:authenticated"],
}
ARGOCD = {
    "username": "system:serviceaccount:argocd:argocd-application-controller",
    "groups": ["system:serviceaccounts", "system:authenticated"],
}
_clock = itertools.count()


def make_event(
    *,
    user: dict[str, Any] | None = None,
    verb: str = "delete",
    resource: str = "events",
    namespace: str = "",
    name: str = "",
    api_group: str = "",
    code: int = 200,
    request: Any = None,
    response: Any = None,
    uid: str = "",
) -> dict[str, Any]:
    at = 1_726_000_000.0 + next(_clock)
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    prefix = f"/apis/{api_group}/v1" if api_group else "/api/v1"
    uri = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}" + (f"/{name}" if name else "")
    ref = {
        k: v
        for k, v in (
            ("resource", resource),
            ("namespace", namespace),
            ("name", name),
            ("apiGroup", api_group),
            ("uid", uid),
            ("apiVersion", "v1"),
        )
        if v
    }
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": str(uuid.uuid4()),
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": user or SSO,
        "sourceIPs": ["10.0.3.7"],
        "userAgent": "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
        "objectRef": ref,
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": stamp,
        "stageTimestamp": stamp,
        "annotations": {"authorization.k8s.io/decision": "forbid" if code == 403 else "allow"},
    }
    if request is not None:
        event["requestObject"] = request
    if response is not None:
        event["responseObject"] = response
    return event


def detect(*events: dict[str, Any], window_seconds: float = 3600.0) -> list[Finding]:
    engine = RuleEngine(tampering.RULES)
    context = SourceContext(cluster="test-cluster", account=ACCOUNT, region="eu-west-1")
    detector = Detector(engine, window_seconds=window_seconds).run(
        [RawEvent(json.dumps(e).encode(), context, "test", i, None) for i, e in enumerate(events)]
    )
    assert not engine.errors, dict(engine.errors)
    return detector.findings()


def of(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


def severity_of(event: dict[str, Any], rule_id: str) -> Severity | None:
    matching = of(detect(event), rule_id)
    return matching[0].severity if matching else None


def test_rule_metadata_is_complete_and_in_range() -> None:
    assert [r.id for r in tampering.RULES] == ["EKS-400", "EKS-401", "EKS-402", "EKS-403"]
    for rule in tampering.RULES:
        assert 400 <= int(rule.id.split("-")[1]) <= 449
        assert rule.title and rule.description and rule.remediation and rule.mitre
        assert ":Kubernetes/" in rule.type
    assert {i for r in tampering.RULES for i in r.catalog} == {41, 42, 43, 44}


# --- #41 events deleted ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(namespace="shop", name="web-1.17f3a"), MEDIUM),
        (make_event(verb="deletecollection", namespace="shop"), MEDIUM),
        (make_event(verb="deletecollection"), HIGH),
        (make_event(verb="delete", resource="events", api_group="events.k8s.io", namespace="shop", name="e"), MEDIUM),
        (make_event(user=NAMESPACE_CONTROLLER, verb="deletecollection", namespace="shop"), None),
        (make_event(namespace="shop", name="e", code=403), None),
        (make_event(verb="list", namespace="shop"), None),
    ],
)
def test_events_deleted(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-400") == expected


def test_events_deleted_names_the_scope() -> None:
    finding = of(detect(make_event(verb="deletecollection")), "EKS-400")[0]
    assert "every namespace" in finding.description and "bob@example.com" in finding.description


# --- #42 workload deleted ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(resource="deployments", api_group="apps", namespace="shop", name="web"), LOW),
        (make_event(resource="statefulsets", api_group="apps", namespace="shop", name="db"), LOW),
        (make_event(resource="daemonsets", api_group="apps", namespace="kube-system", name="aws-node"), MEDIUM),
        (
            make_event(
                resource="daemonsets", api_group="apps", namespace="amazon-guardduty", name="aws-guardduty-agent"
            ),
            MEDIUM,
        ),
        (make_event(resource="daemonsets", api_group="apps", namespace="monitoring", name="falco"), MEDIUM),
        (make_event(user=ARGOCD, resource="deployments", api_group="apps", namespace="shop", name="web"), None),
        (make_event(resource="pods", namespace="shop", name="web-1"), None),
        (make_event(resource="deployments", api_group="apps", namespace="shop", name="web", code=403), None),
    ],
)
def test_workload_deleted(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-401") == expected


# --- #43 aws-auth ------------------------------------------------------------------------------------------------

NODE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/NodeInstanceRole"
ADMIN_ROLE = f"arn:aws:iam::{ACCOUNT}:role/PlatformAdmin"
BACKDOOR = "arn:aws:iam::999988887777:role/innocuous"
MAP_ROLES = f"""- rolearn: {NODE_ROLE}
  username: system:node:{{{{EC2PrivateDNSName}}}}
  groups:
    - system:bootstrappers
    - system:nodes
- groups:
  - system:masters
  rolearn: {ADMIN_ROLE}
  username: admin
"""


def aws_auth(
    map_roles: str, *, verb: str = "update", uid: str, map_users: str | None = None, user: dict[str, Any] | None = None
) -> dict[str, Any]:
    data = {"mapRoles": map_roles}
    if map_users is not None:
        data["mapUsers"] = map_users
    body = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "data": data,
        "metadata": {"name": "aws-auth", "namespace": "kube-system", "uid": uid},
    }
    return make_event(
        user=user,
        verb=verb,
        resource="configmaps",
        namespace="kube-system",
        name="" if verb == "create" else "aws-auth",
        request=body,
        response=body,
    )


def new_uid() -> str:
    return str(uuid.uuid4())


def test_first_aws_auth_change_is_high_and_lists_admin_mappings() -> None:
    finding = of(detect(aws_auth(MAP_ROLES, uid=new_uid())), "EKS-402")[0]
    assert finding.severity == HIGH
    assert ADMIN_ROLE in finding.description and "what changed is unknown" in finding.description
    assert finding.details["system_masters"] == [f"{ADMIN_ROLE} as admin"]


def test_added_system_masters_mapping_is_critical_and_named() -> None:
    uid = new_uid()
    backdoored = MAP_ROLES + f"- rolearn: {BACKDOOR}\n  username: ops\n  groups: [system:masters]\n"
    findings = of(detect(aws_auth(MAP_ROLES, uid=uid), aws_auth(backdoored, uid=uid)), "EKS-402")
    assert len(findings) == 1 and findings[0].count == 2
    assert findings[0].severity == CRITICAL
    assert BACKDOOR in findings[0].description and "new system:masters mapping" in findings[0].description


def test_other_aws_auth_changes_are_high_with_the_diff() -> None:
    uid = new_uid()
    developer = f"arn:aws:iam::{ACCOUNT}:role/Developer"
    edited = MAP_ROLES + f"- rolearn: {developer}\n  username: dev\n  groups:\n  - developers\n"
    # a short dedup window keeps the two changes apart (within one window the first description stands)
    first, second = of(detect(aws_auth(MAP_ROLES, uid=uid), aws_auth(edited, uid=uid), window_seconds=0.5), "EKS-402")
    assert "what changed is unknown" in first.description
    finding = second
    assert finding.severity == HIGH
    assert f"added {developer} as dev (groups developers)" in finding.description


def test_aws_auth_map_users_with_masters_is_reported() -> None:
    users = (
        '[{"userarn": "arn:aws:iam::111122223333:user/mallory", "username": "mallory", "groups": ["system:masters"]}]'
    )
    finding = of(detect(aws_auth(MAP_ROLES, uid=new_uid(), map_users=users)), "EKS-402")[0]
    assert "user/mallory" in finding.description


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(verb="delete", resource="configmaps", namespace="kube-system", name="aws-auth"), HIGH),
        (
            make_event(
                verb="patch",
                resource="configmaps",
                namespace="kube-system",
                name="aws-auth",
                request=[{"op": "add", "path": "/data/mapUsers", "value": "x"}],
            ),
            HIGH,
        ),  # JSON Patch, no response
        (
            make_event(user=EKS_ADDON, verb="patch", resource="configmaps", namespace="kube-system", name="aws-auth"),
            None,
        ),
        (make_event(verb="update", resource="configmaps", namespace="shop", name="aws-auth"), None),
        (make_event(verb="update", resource="configmaps", namespace="kube-system", name="kube-proxy"), None),
        (make_event(verb="get", resource="configmaps", namespace="kube-system", name="aws-auth"), None),
        (make_event(verb="update", resource="configmaps", namespace="kube-system", name="aws-auth", code=403), None),
    ],
)
def test_aws_auth_rule(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-402") == expected


def test_aws_auth_created_without_name_in_object_ref() -> None:
    assert severity_of(aws_auth(MAP_ROLES, verb="create", uid=new_uid()), "EKS-402") == HIGH


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MAP_ROLES, [(NODE_ROLE, ["system:bootstrappers", "system:nodes"]), (ADMIN_ROLE, ["system:masters"])]),
        ('[{"rolearn": "arn:r", "groups": ["system:masters"]}]', [("arn:r", ["system:masters"])]),
        ("- rolearn: 'arn:r'  # comment\n  groups: [\"a\", b]\n", [("arn:r", ["a", "b"])]),
        ("", []),
    ],
)
def test_parse_mappings(text: str, expected: list[tuple[str, list[str]]]) -> None:
    parsed = tampering.parse_mappings(text)
    assert parsed is not None
    assert [(e.get("rolearn"), e.get("groups")) for e in parsed] == expected


@pytest.mark.parametrize(
    "text",
    [
        None,
        5,
        "::::",
        "- - - -\n  : :\n-",
        "[not json",
        "groups:\n  - x\n" * 10_000,
        "- a: [\n",
        "\t- rolearn: x\n\t\tgroups:\n",
    ],
)
def test_parse_mappings_never_raises(text: Any) -> None:
    result = tampering.parse_mappings(text)
    assert result is None or isinstance(result, list)


# --- #44 CoreDNS ------------------------------------------------------------------------------------------------

COREFILE = """.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
    }
    forward . /etc/resolv.conf
    cache 30
}
"""


def coredns(corefile: str, user: dict[str, Any] | None = None, name: str = "coredns") -> dict[str, Any]:
    body = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": name, "namespace": "kube-system"},
        "data": {"Corefile": corefile},
    }
    return make_event(user=user, verb="update", resource="configmaps", namespace="kube-system", name=name, request=body)


def test_coredns_rewrite_is_medium_and_quoted() -> None:
    hijack = COREFILE.replace(
        "    cache 30", "    rewrite name exact sts.amazonaws.com attacker.example.net\n    cache 30"
    )
    finding = of(detect(coredns(hijack)), "EKS-403")[0]
    assert finding.severity == MEDIUM and "rewrite name exact sts.amazonaws.com" in finding.description


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (coredns(COREFILE), MEDIUM),
        (coredns(COREFILE, name="coredns-custom"), MEDIUM),
        (coredns(COREFILE, user=EKS_ADDON), None),  # EKS add-on updates
        (coredns(COREFILE, name="kube-proxy-config"), None),
        (make_event(verb="update", resource="configmaps", namespace="shop", name="coredns"), None),
    ],
)
def test_coredns_rule(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-403") == expected


def test_default_corefile_has_no_notable_directives() -> None:
    description = of(detect(coredns(COREFILE)), "EKS-403")[0].description
    assert "can be redirected from here" in description and "forward ." not in description
