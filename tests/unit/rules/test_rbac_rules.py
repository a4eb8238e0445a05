"""RBAC rules (EKS-200..206): hand-made events for each rule's positive and negative cases, then the real
labelled fixtures (Falco traces, Panther rule tests) for the ideas these rules cover.

Also home of the helpers the workload and exposure rule tests import (no conftest by design): `audit_event`
builds an EKS-shaped audit event, `detect` runs rules through the real pipeline (`Detector`, fed
`RawEvent`s as the decoder produces them), and the dataset loaders read ../shared/datasets.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from eksight.core.decode import RawEvent, SourceContext
from eksight.core.detector import Detector
from eksight.core.findings import Finding, Severity
from eksight.core.rules import rbac
from eksight.core.rules.base import Rule
from eksight.core.rules.engine import RuleEngine

DATASETS = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
needs_datasets = pytest.mark.skipif(not DATASETS.is_dir(), reason="../shared/datasets is not beside the checkout")

ALICE = "alice@example.com"
SSO_USER = {
    "username": "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PlatformAdmin_0123456789abcdef/bob@example.com",
    "uid": "aws-iam-authenticator:111122223333:AROAEXAMPLEEXAMPLE",
    "groups": ["system:authenticated"],
    "extra": {
        "arn": ["arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PlatformAdmin_0123456789abcdef/bob@example.com"],
        "canonicalArn": ["arn:aws:iam::111122223333:role/AWSReservedSSO_PlatformAdmin_0123456789abcdef"],
        "sessionName": ["bob@example.com"],
    },
}
_COUNTER = iter(range(1, 1_000_000))


# --- helpers shared with test_workload_rules.py and test_exposure_rules.py ------------------------------------


def audit_event(
    verb: str,
    resource: str,
    *,
    namespace: str = "",
    name: str = "",
    subresource: str = "",
    user: str | dict[str, Any] = ALICE,
    request: Any = None,
    response: Any = None,
    code: int | None = None,
    api_group: str = "",
    uri: str | None = None,
    audit_id: str | None = None,
    time: str = "2024-09-12T10:00:00.000000Z",
) -> dict[str, Any]:
    """An audit event as EKS writes it (ResponseComplete, authorization annotations)."""
    code = code if code is not None else (201 if verb == "create" else 200)
    userinfo = user if isinstance(user, dict) else {"username": user, "groups": ["system:authenticated"]}
    path = "/apis/" + api_group + "/v1" if api_group else "/api/v1"
    if uri is None:
        uri = (
            path
            + (f"/namespaces/{namespace}" if namespace else "")
            + f"/{resource}"
            + (f"/{name}" if name else "")
            + (f"/{subresource}" if subresource else "")
        )
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "RequestResponse",
        "auditID": audit_id or f"00000000-0000-4000-8000-{next(_COUNTER):012d}",
        "stage": "ResponseComplete",
        "requestURI": uri,
        "verb": verb,
        "user": userinfo,
        "sourceIPs": ["198.51.100.7"],
        "userAgent": "kubectl/v1.30.2 (linux/amd64)",
        "objectRef": {
            "resource": resource,
            "namespace": namespace,
            "name": name,
            "subresource": subresource,
            "apiGroup": api_group,
            "apiVersion": "v1",
        },
        "responseStatus": {"code": code},
        "requestReceivedTimestamp": time,
        "stageTimestamp": time,
        "annotations": {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid"},
    }
    if request is not None:
        event["requestObject"] = request
    if response is not None:
        event["responseObject"] = response
    return event


def raw(data: bytes, offset: int = 0) -> RawEvent:
    return RawEvent(
        data=data,
        context=SourceContext(cluster="test", account="111122223333", region="eu-west-1"),
        source="test",
        offset=offset,
        log_time_ms=None,
    )


def detect(rules: Iterable[Rule], *events: dict[str, Any] | bytes) -> list[Finding]:
    """Findings of `rules` on `events` through the real pipeline."""
    detector = Detector(engine=RuleEngine(list(rules)))
    detector.run(raw(e if isinstance(e, bytes) else json.dumps(e).encode(), i) for i, e in enumerate(events))
    assert not detector.engine.errors, detector.engine.errors  # a predicate raised
    return detector.findings()


def of_rule(findings: list[Finding], rule_id: str) -> list[Finding]:
    return [f for f in findings if f.rule_id == rule_id]


def one(findings: list[Finding], rule_id: str) -> Finding:
    found = of_rule(findings, rule_id)
    assert len(found) == 1, [(f.rule_id, f.severity.name, f.description) for f in findings]
    return found[0]


def sa(namespace: str, name: str, pod: str = "") -> dict[str, Any]:
    extra = {"authentication.kubernetes.io/pod-name": [pod]} if pod else {}
    return {
        "username": f"system:serviceaccount:{namespace}:{name}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
        "extra": extra,
    }


def split_json_documents(text: str) -> list[dict[str, Any]]:
    """Falco traces hold one or several JSON objects back to back."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while index < len(text):
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            break
        try:
            document, index = decoder.raw_decode(text, index)
        except ValueError:
            break
        if isinstance(document, dict):
            documents.append(document)
    return documents


@cache
def falco_manifest() -> dict[str, list[str]]:
    """file -> Falco rule names its tests expect (`[with X]` overrides and `xN` counts stripped)."""
    rows = csv.DictReader((DATASETS / "falco-k8s-audit" / "MANIFEST.tsv").open(), delimiter="\t")
    out = {}
    for row in rows:
        names = [
            re.sub(r"\s*(\[with [^]]*\]|x\d+)\s*", " ", part).strip() for part in row["falco_expected_rules"].split(";")
        ]
        out[row["file"]] = [n for n in names if n]
    return out


def falco_cases(mapping: dict[str, tuple[str, Severity]]) -> list[Any]:
    """(file, Falco rule, our rule id, minimum severity) for every expectation this area claims."""
    if not DATASETS.is_dir():
        return []
    return [
        pytest.param(file, name, *mapping[name], id=f"{file}:{mapping[name][0]}")
        for file, names in sorted(falco_manifest().items())
        for name in names
        if name in mapping
    ]


def falco_negatives() -> list[str]:
    if not DATASETS.is_dir():
        return []
    return sorted(
        f for f, names in falco_manifest().items() if names and names[0].startswith("none") and f != "fal_01_003.json"
    )


def falco_events(file: str) -> list[dict[str, Any]]:
    return split_json_documents((DATASETS / "falco-k8s-audit" / file).read_text())


@cache
def panther_rows() -> list[dict[str, Any]]:
    labels = list(csv.DictReader((DATASETS / "panther-eks" / "labels.tsv").open(), delimiter="\t"))
    events = (DATASETS / "panther-eks" / "events.jsonl").read_bytes().splitlines()
    assert len(labels) == len(events)
    return [{**label, "raw": line} for label, line in zip(labels, events, strict=True)]


def panther_cases(prefixes: dict[str, set[str]]) -> list[Any]:
    """(auditID, Panther rule, test name, expected, our rule ids) for the Panther rules this area claims."""
    if not DATASETS.is_dir():
        return []
    cases = []
    for row in panther_rows():
        if row["needs_enrichment_or_mocks"] == "True":
            continue
        ours = next((ids for prefix, ids in prefixes.items() if row["panther_rule"].startswith(prefix)), None)
        if ours is not None:
            cases.append(
                pytest.param(
                    row["auditID"],
                    row["panther_rule"],
                    row["test_name"],
                    row["expected"],
                    frozenset(ours),
                    id=f"{row['panther_rule']}:{row['test_name']}",
                )
            )
    return cases


def panther_event(audit_id: str) -> bytes:
    return next(row["raw"] for row in panther_rows() if row["auditID"] == audit_id)


def check_panther(rules: list[Rule], audit_id: str, expected: str, ours: frozenset[str]) -> None:
    findings = [f for f in detect(rules, panther_event(audit_id)) if audit_id in f.evidence]
    if expected == "true":
        assert any(f.rule_id in ours and f.severity >= Severity.LOW for f in findings), [
            (f.rule_id, f.severity.name) for f in findings
        ]
    else:
        assert not [f for f in findings if f.severity >= Severity.MEDIUM], [
            (f.rule_id, f.severity.name, f.description) for f in findings
        ]


def check_falco(rules: list[Rule], file: str, rule_id: str, minimum: Severity) -> None:
    events = falco_events(file)
    findings = detect(rules, *events)
    ids = {e.get("auditID") for e in events}
    citing = [f for f in findings if f.rule_id == rule_id and set(f.evidence) & ids and f.severity >= minimum]
    assert citing, [(f.rule_id, f.severity.name) for f in findings]


def check_falco_negative(rules: list[Rule], file: str) -> None:
    loud = [f for f in detect(rules, *falco_events(file)) if f.severity >= Severity.MEDIUM]
    assert not loud, [(f.rule_id, f.description) for f in loud]


# --- events ------------------------------------------------------------------------------------------------------

RULES = rbac.RULES


def crb(
    name: str,
    role: str,
    subjects: list[dict[str, str]],
    *,
    verb: str = "create",
    user: Any = ALICE,
    role_kind: str = "ClusterRole",
    **kwargs: Any,
) -> dict[str, Any]:
    body = {
        "kind": "ClusterRoleBinding",
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": name},
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
    }
    return audit_event(
        verb,
        "clusterrolebindings",
        name="" if verb == "create" else name,
        user=user,
        request=body,
        api_group="rbac.authorization.k8s.io",
        **kwargs,
    )


def rb(
    namespace: str,
    name: str,
    role: str,
    subjects: list[dict[str, str]],
    *,
    user: Any = ALICE,
    role_kind: str = "ClusterRole",
) -> dict[str, Any]:
    body = {
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "subjects": subjects,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
    }
    return audit_event(
        "create", "rolebindings", namespace=namespace, user=user, request=body, api_group="rbac.authorization.k8s.io"
    )


def role(
    name: str,
    rules: list[dict[str, Any]],
    *,
    namespace: str = "",
    verb: str = "create",
    user: Any = ALICE,
    request: Any = "full",
    response: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    kind = "Role" if namespace else "ClusterRole"
    body = {
        "kind": kind,
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "rules": rules,
    }
    return audit_event(
        verb,
        "roles" if namespace else "clusterroles",
        namespace=namespace,
        name="" if verb == "create" else name,
        user=user,
        request=body if request == "full" else request,
        response=response,
        api_group="rbac.authorization.k8s.io",
        **kwargs,
    )


def line(groups: list[str], resources: list[str], verbs: list[str], **extra: Any) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs, **extra}


USER = {"kind": "User", "name": "carol@example.com"}
ANON = {"kind": "User", "name": "system:anonymous"}
UNAUTH = {"kind": "Group", "name": "system:unauthenticated", "apiGroup": "rbac.authorization.k8s.io"}
AUTHENTICATED = {"kind": "Group", "name": "system:authenticated"}


def SA(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": namespace}


# --- EKS-200 anonymous access granted -------------------------------------------------------------------------------


def test_anonymous_bound_to_admin_role_is_critical() -> None:
    finding = one(detect(RULES, crb("open", "cluster-admin", [ANON])), "EKS-200")
    assert finding.severity == Severity.CRITICAL
    assert "system:anonymous" in finding.description and "cluster-admin" in finding.description
    assert finding.resources[0].name == "open"  # named from the body: creates carry no objectRef.name


def test_unauthenticated_group_bound_to_a_custom_role_is_high() -> None:
    finding = one(detect(RULES, rb("web", "peek", "pod-reader", [UNAUTH], role_kind="Role")), "EKS-200")
    assert finding.severity == Severity.HIGH and "system:unauthenticated" in finding.description


def test_rebinding_the_default_public_info_role_is_low() -> None:
    finding = one(detect(RULES, crb("public", "system:public-info-viewer", [UNAUTH])), "EKS-200")
    assert finding.severity == Severity.LOW


def test_binding_without_anonymous_subjects_and_control_plane_bindings_are_ignored() -> None:
    findings = detect(
        RULES,
        crb("ops", "view", [USER]),
        crb("open", "cluster-admin", [ANON], user="eks:addon-manager"),
        crb("open2", "cluster-admin", [ANON], code=403),
    )
    assert not of_rule(findings, "EKS-200")


# --- EKS-201 admin to a default ServiceAccount ---------------------------------------------------------------------


def test_admin_bound_to_default_service_account() -> None:
    finding = one(detect(RULES, rb("shop", "oops", "admin", [SA("shop", "default")])), "EKS-201")
    assert finding.severity == Severity.HIGH and "ServiceAccount shop/default" in finding.description


def test_cluster_admin_for_all_service_accounts_of_a_namespace() -> None:
    group = {"kind": "Group", "name": "system:serviceaccounts:shop"}
    assert one(detect(RULES, crb("all", "cluster-admin", [group])), "EKS-201").severity == Severity.HIGH


def test_named_service_account_or_weaker_role_is_not_a_default_sa_grant() -> None:
    findings = detect(
        RULES, rb("shop", "a", "admin", [SA("shop", "deployer")]), rb("shop", "b", "view", [SA("shop", "default")])
    )
    assert not of_rule(findings, "EKS-201")


# --- EKS-202 privileged role bound ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "severity"),
    [
        (crb("x", "cluster-admin", [USER]), Severity.MEDIUM),
        (crb("x", "cluster-admin", [SA("kube-system", "ops")]), Severity.HIGH),
        (crb("x", "cluster-admin", [AUTHENTICATED]), Severity.HIGH),
        (crb("x", "system:kube-controller-manager", [SA("default", "x")]), Severity.HIGH),
        (crb("x", "edit", [USER]), Severity.MEDIUM),
        (rb("team", "x", "admin", [USER]), Severity.LOW),
        (rb("team", "x", "admin", [SA("team", "ci")]), Severity.MEDIUM),
        (rb("kube-system", "x", "admin", [USER]), Severity.MEDIUM),  # kube-system admin is cluster admin
        (crb("x", "cluster-admin", []), Severity.LOW),  # grants nothing yet
    ],
    ids=[
        "user",
        "service-account",
        "all-authenticated",
        "control-plane-role",
        "edit",
        "ns-admin-user",
        "ns-admin-sa",
        "kube-system-admin",
        "no-subjects",
    ],
)
def test_privileged_binding_severity(event: dict[str, Any], severity: Severity) -> None:
    finding = one(detect(RULES, event), "EKS-202")
    assert finding.severity == severity
    assert "→ ClusterRole" in finding.description


def test_patch_of_a_binding_reads_the_immutable_role_ref_from_the_response() -> None:
    response = {
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "ops"},
        "subjects": [SA("ci", "deployer")],
        "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
    }
    event = audit_event(
        "patch",
        "clusterrolebindings",
        name="ops",
        request={"subjects": [SA("ci", "deployer")]},
        response=response,
        api_group="rbac.authorization.k8s.io",
    )
    assert one(detect(RULES, event), "EKS-202").severity == Severity.HIGH


def test_custom_roles_denied_and_dry_run_bindings_are_not_privileged_bindings() -> None:
    dry = crb("x", "cluster-admin", [USER])
    dry["requestURI"] += "?dryRun=All"
    findings = detect(
        RULES,
        crb("a", "pod-reader", [USER]),
        rb("team", "b", "admin", [USER], role_kind="Role"),
        crb("c", "cluster-admin", [USER], code=403),
        dry,
    )
    assert not of_rule(findings, "EKS-202")


# --- EKS-203 over-permissive role -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "severity", "phrase"),
    [
        ([line(["*"], ["*"], ["*"])], Severity.HIGH, "cluster-admin equivalent"),
        ([line(["rbac.authorization.k8s.io"], ["clusterroles"], ["bind", "escalate"])], Severity.HIGH, "escalate/bind"),
        ([line([""], ["users", "groups"], ["impersonate"])], Severity.HIGH, "impersonate"),
        ([line([""], ["pods/exec"], ["create"])], Severity.MEDIUM, "pods/exec"),
        ([line([""], ["nodes/proxy"], ["get"])], Severity.MEDIUM, "nodes/proxy"),
        ([line([""], ["serviceaccounts/token"], ["create"])], Severity.MEDIUM, "mints ServiceAccount tokens"),
        ([line([""], ["*"], ["get", "list"])], Severity.MEDIUM, "wildcard resources"),
        ([line(["", "apps"], ["pods", "deployments"], ["*"])], Severity.MEDIUM, "wildcard verbs on pods, deployments"),
        ([line([""], ["secrets"], ["get", "list", "watch"])], Severity.LOW, "reads secrets"),
        ([line(["apps"], ["deployments"], ["patch"])], Severity.LOW, "creates or changes workloads"),
        ([line(["coordination.k8s.io"], ["leases"], ["*"])], Severity.LOW, "wildcard verbs on leases"),
        ([line(["cert-manager.io"], ["*"], ["*"])], Severity.LOW, "every verb on every resource of cert-manager.io"),
        ([{"nonResourceURLs": ["/healthz"], "verbs": ["delete"]}], Severity.LOW, "non-resource URLs"),
    ],
    ids=[
        "wildcard",
        "escalate",
        "impersonate",
        "exec",
        "node-proxy",
        "token",
        "all-resources",
        "all-verbs",
        "secrets-read",
        "workload-write",
        "leases",
        "crd-group",
        "non-resource",
    ],
)
def test_role_line_risks(rules: list[dict[str, Any]], severity: Severity, phrase: str) -> None:
    finding = one(detect(RULES, role("r", rules)), "EKS-203")
    assert finding.severity == severity
    assert phrase in finding.description and "rules[0]" in finding.description


def test_role_names_its_riskiest_line_first() -> None:
    finding = one(
        detect(
            RULES,
            role(
                "r",
                [
                    line([""], ["configmaps"], ["get"]),
                    line([""], ["secrets"], ["list"]),
                    line([""], ["pods/exec"], ["create"]),
                ],
            ),
        ),
        "EKS-203",
    )
    assert finding.severity == Severity.MEDIUM
    assert finding.description.index("rules[2]") < finding.description.index("rules[1]")
    assert "rules[0]" not in finding.description


def test_read_only_roles_and_named_secrets_are_not_over_permissive() -> None:
    findings = detect(
        RULES,
        role("view", [line(["", "apps"], ["pods", "services", "deployments"], ["get", "list", "watch"])]),
        role("one-secret", [line([""], ["secrets"], ["get"], resourceNames=["app-env"])], namespace="shop"),
        role("apis", [line(["*"], ["deployments"], ["get", "list"])]),
    )
    assert not of_rule(findings, "EKS-203")


def test_namespaced_role_wildcard_is_capped_at_medium() -> None:
    finding = one(detect(RULES, role("all", [line(["*"], ["*"], ["*"])], namespace="team")), "EKS-203")
    assert finding.severity == Severity.MEDIUM and "limited to namespace team" in finding.description


def test_update_re_sends_the_role_so_it_is_one_level_lower() -> None:
    finding = one(detect(RULES, role("r", [line([""], ["nodes/proxy"], ["get"])], verb="update")), "EKS-203")
    assert finding.severity == Severity.LOW and "may predate it" in finding.description


def test_patch_that_rewrites_rules_counts_in_full_and_one_that_does_not_is_ignored() -> None:
    rewrite = role("r", [], verb="patch", request={"rules": [line([""], ["pods/exec"], ["create"])]})
    labels_only = role(
        "r2",
        [],
        verb="patch",
        request={"metadata": {"labels": {"team": "a"}}},
        response={"kind": "ClusterRole", "rules": [line([""], ["pods/exec"], ["create"])]},
    )
    json_patch = role(
        "r3",
        [],
        verb="patch",
        request=[{"op": "add", "path": "/rules/-", "value": line([""], ["secrets"], ["*"])}],
        response={"kind": "ClusterRole", "rules": [line([""], ["secrets"], ["*"])]},
    )
    findings = detect(RULES, rewrite, labels_only, json_patch)
    assert {f.resources[0].name: f.severity for f in of_rule(findings, "EKS-203")} == {
        "r": Severity.MEDIUM,
        "r3": Severity.MEDIUM,
    }


def test_kube_system_add_on_writing_a_role_is_capped_at_low_and_controllers_are_allow_listed() -> None:
    rules = [line(["*"], ["*"], ["*"])]
    findings = detect(
        RULES,
        role("a", rules, user=sa("kube-system", "operator")),
        role("b", rules, user=sa("kube-system", "clusterrole-aggregation-controller")),
        role("c", rules, user="system:apiserver"),
    )
    assert [(f.resources[0].name, f.severity) for f in of_rule(findings, "EKS-203")] == [("a", Severity.LOW)]


def test_malformed_role_bodies_never_raise() -> None:
    findings = detect(
        RULES,
        role("x", "nope"),
        role("y", [None, 3, {"verbs": "*"}, {"resources": [1]}]),
        role("z", [line([""], ["pods/exec"], ["create"])], request=["not", "a", "role"]),
    )
    assert not of_rule(findings, "EKS-203")


# --- EKS-204 built-in roles changed -----------------------------------------------------------------------------------


def test_bootstrap_role_modified_or_deleted_is_medium() -> None:
    findings = detect(
        RULES,
        role("system:node-problem-detector", [line([""], ["nodes"], ["*"])], verb="update"),
        audit_event("delete", "clusterrolebindings", name="system:discovery"),
        audit_event(
            "patch",
            "clusterroles",
            name="cluster-admin",
            request={"metadata": {"annotations": {"rbac.authorization.kubernetes.io/autoupdate": "false"}}},
        ),
    )
    found = {f.resources[0].name: f for f in of_rule(findings, "EKS-204")}
    assert set(found) == {"system:node-problem-detector", "system:discovery", "cluster-admin"}
    assert all(f.severity == Severity.MEDIUM for f in found.values())
    assert "deleted" in found["system:discovery"].description
    assert "autoupdate disabled" in found["cluster-admin"].description


def test_add_on_system_role_is_low_and_others_are_ignored() -> None:
    findings = detect(
        RULES,
        audit_event("update", "clusterroles", name="system:coredns"),
        audit_event("update", "clusterroles", name="my-role"),
        audit_event(
            "update", "clusterroles", name="admin", user=sa("kube-system", "clusterrole-aggregation-controller")
        ),
        audit_event("patch", "clusterroles", name="system:node", user="system:apiserver"),
    )
    assert [(f.resources[0].name, f.severity) for f in of_rule(findings, "EKS-204")] == [
        ("system:coredns", Severity.LOW)
    ]


# --- EKS-205 ServiceAccount writes RBAC -------------------------------------------------------------------------------


def test_service_account_writing_rbac_names_its_pod() -> None:
    finding = one(detect(RULES, rb("shop", "x", "view", [USER], user=sa("shop", "web", pod="web-7d9f"))), "EKS-205")
    assert finding.severity == Severity.MEDIUM
    assert "shop/web" in finding.description and "web-7d9f" in finding.description


def test_gitops_operators_people_and_kube_system_add_ons() -> None:
    findings = detect(
        RULES,
        rb("shop", "a", "view", [USER], user=sa("argocd", "argocd-application-controller")),
        rb("shop", "b", "view", [USER]),
        rb("shop", "c", "view", [USER], user=sa("kube-system", "operator")),
    )
    assert [(f.resources[0].name, f.severity) for f in of_rule(findings, "EKS-205")] == [("c", Severity.LOW)]


# --- EKS-206 inventory ------------------------------------------------------------------------------------------------


def test_rbac_inventory_records_creates_and_deletes_only() -> None:
    findings = detect(
        RULES,
        role("r", [line([""], ["pods"], ["get"])]),
        audit_event("delete", "rolebindings", namespace="shop", name="old"),
        role("r", [line([""], ["pods"], ["get"])], verb="update"),
        role("s", [line([""], ["pods"], ["get"])], user="system:apiserver"),
    )
    found = of_rule(findings, "EKS-206")
    assert sorted(f.resources[0].name for f in found) == ["old", "r"]
    assert all(f.severity == Severity.INFORMATIONAL for f in found)


# --- real fixtures ----------------------------------------------------------------------------------------------------

FALCO = {
    "ClusterRole With Wildcard Created": ("EKS-203", Severity.MEDIUM),
    "ClusterRole With Write Privileges Created": ("EKS-203", Severity.LOW),
    "ClusterRole With Pod Exec Created": ("EKS-203", Severity.MEDIUM),
    "Attach to cluster-admin Role": ("EKS-202", Severity.LOW),
    "System ClusterRole Modified/Deleted": ("EKS-204", Severity.MEDIUM),
    "K8s ClusterRole Created": ("EKS-206", Severity.INFORMATIONAL),
    "K8s ClusterRole Deleted": ("EKS-206", Severity.INFORMATIONAL),
    "K8s ClusterRoleBinding Created": ("EKS-206", Severity.INFORMATIONAL),
    "K8s ClusterRoleBinding Deleted": ("EKS-206", Severity.INFORMATIONAL),
    "K8s Role/ClusterRole Created": ("EKS-206", Severity.INFORMATIONAL),
    "K8s Role/ClusterRole Deleted": ("EKS-206", Severity.INFORMATIONAL),
}
PANTHER = {
    "Kubernetes.ClusterRoleBinding.Privileged": {"EKS-202"},
    "Kubernetes.Role.": {"EKS-203"},
    "Kubernetes.SystemRole.Modified": {"EKS-204"},
}


@needs_datasets
@pytest.mark.parametrize(("file", "falco_rule", "rule_id", "minimum"), falco_cases(FALCO))
def test_falco_traces(file: str, falco_rule: str, rule_id: str, minimum: Severity) -> None:
    check_falco(RULES, file, rule_id, minimum)


@needs_datasets
@pytest.mark.parametrize("file", falco_negatives())
def test_falco_negative_traces_raise_nothing_medium(file: str) -> None:
    check_falco_negative(RULES, file)


@needs_datasets
@pytest.mark.parametrize(("audit_id", "panther_rule", "test_name", "expected", "ours"), panther_cases(PANTHER))
def test_panther_rule_tests(
    audit_id: str, panther_rule: str, test_name: str, expected: str, ours: frozenset[str]
) -> None:
    check_panther(RULES, audit_id, expected, ours)


@needs_datasets
def test_fixture_coverage_is_not_vacuous() -> None:
    assert len(falco_cases(FALCO)) >= 8
    assert len([c for c in panther_cases(PANTHER) if c.values[3] == "true"]) >= 10
