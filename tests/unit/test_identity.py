"""Tests for eksight.core.identity: stable principals from EKS audit `user` / `impersonatedUser`.

Hand-written events cover each identity kind and edge case; the real-data tests resolve every event of the
dev-scenarios set (and Panther's EKS tests) and check invariants against an independent classification
written here from the raw JSON, not from the module under test.
"""

from __future__ import annotations

import collections
import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eksight.core import identity
from eksight.core.events import AuditEvent, UserInfo, parse_event
from eksight.core.identity import Principal, impersonation, resolve_principal

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEV_AUDIT = DATASETS / "dev-scenarios" / "audit.jsonl.gz"
PANTHER = DATASETS / "panther-eks" / "events.jsonl"
FALCO = DATASETS / "falco-k8s-audit"

ACCT = "111122223333"


def event(user: dict[str, Any] | None = None, impersonated: dict[str, Any] | None = None) -> AuditEvent:
    body: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "00000000-0000-0000-0000-000000000001",
        "verb": "get",
        "requestURI": "/api/v1/namespaces/default/pods",
        "user": user or {},
    }
    if impersonated is not None:
        body["impersonatedUser"] = impersonated
    return parse_event(json.dumps(body))


def iam_user(username: str, *, canonical: str = "", arn: str = "", session: str = "", **more: Any) -> dict[str, Any]:
    extra: dict[str, list[str]] = {}
    if canonical:
        extra["canonicalArn"] = [canonical]
    if arn:
        extra["arn"] = [arn]
    if session:
        extra["sessionName"] = [session]
    uid = f"aws-iam-authenticator:{ACCT}:AROAEXAMPLE"
    return {"username": username, "uid": uid, "groups": ["system:authenticated"], "extra": extra, **more}


def resolve(user: dict[str, Any]) -> Principal:
    return resolve_principal(event(user))


# --------------------------------------------------------------------------- IAM principals


def test_iam_role_from_canonical_arn():
    sts = f"arn:aws:sts::{ACCT}:assumed-role/Deployer/ci-run-42"
    p = resolve(iam_user(sts, canonical=f"arn:aws:iam::{ACCT}:role/Deployer", arn=sts, session="ci-run-42"))
    assert (p.kind, p.key, p.name) == ("iam_role", f"iam:arn:aws:iam::{ACCT}:role/Deployer", "Deployer")
    assert (p.arn, p.session, p.account) == (f"arn:aws:iam::{ACCT}:role/Deployer", "ci-run-42", ACCT)
    assert not p.is_system and p.is_iam


def test_iam_role_from_sts_arn_in_username_only():
    p = resolve({"username": f"arn:aws:sts::{ACCT}:assumed-role/Deployer/ci-run-42"})
    assert (p.kind, p.key, p.session, p.account) == (
        "iam_role",
        f"iam:arn:aws:iam::{ACCT}:role/Deployer",
        "ci-run-42",
        ACCT,
    )


def test_sessions_of_one_role_share_the_key_and_keep_their_session():
    a = resolve({"username": f"arn:aws:sts::{ACCT}:assumed-role/Deployer/run-1"})
    b = resolve({"username": f"arn:aws:sts::{ACCT}:assumed-role/Deployer/run-2"})
    c = resolve({"username": f"arn:aws:sts::{ACCT}:assumed-role/Other/run-1"})
    assert a.key == b.key != c.key
    assert (a.session, b.session) == ("run-1", "run-2")


def test_session_name_from_extra_wins_over_the_arn():
    sts = f"arn:aws:sts::{ACCT}:assumed-role/Deployer/from-arn"
    assert resolve(iam_user(sts, session="from-extra")).session == "from-extra"


@pytest.mark.parametrize("partition", ["aws-us-gov", "aws-cn"])
def test_partition_is_kept(partition):
    p = resolve({"username": f"arn:{partition}:sts::{ACCT}:assumed-role/Deployer/s"})
    assert p.key == f"iam:arn:{partition}:iam::{ACCT}:role/Deployer"
    q = resolve(iam_user("ops", canonical=f"arn:{partition}:iam::{ACCT}:role/Ops"))
    assert q.key == f"iam:arn:{partition}:iam::{ACCT}:role/Ops" and q.kind == "mapped_user"


def test_role_path_is_dropped_so_canonical_and_sts_forms_share_a_key():
    # IAM Identity Center roles live under a path; STS assumed-role ARNs never show it.
    role = "AWSReservedSSO_PlatformAdmin_0123456789abcdef"
    with_path = resolve(iam_user("x", canonical=f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/{role}"))
    from_sts = resolve({"username": f"arn:aws:sts::{ACCT}:assumed-role/{role}/alice@example.com"})
    assert with_path.key == from_sts.key == f"iam:arn:aws:iam::{ACCT}:role/{role}"


def test_sso_role_keeps_the_person_from_the_session():
    role = "AWSReservedSSO_PlatformAdmin_d701718c5a9765fb"
    sts = f"arn:aws:sts::{ACCT}:assumed-role/{role}/bruno.weber@example.com"
    p = resolve(iam_user(sts, canonical=f"arn:aws:iam::{ACCT}:role/{role}", arn=sts, session="bruno.weber@example.com"))
    assert (p.kind, p.key) == ("sso_role", f"iam:arn:aws:iam::{ACCT}:role/{role}")
    assert p.name == p.session == "bruno.weber@example.com"
    assert p.permission_set == "PlatformAdmin"
    assert p.display == f"bruno.weber@example.com ({role})"
    other = resolve({"username": f"arn:aws:sts::{ACCT}:assumed-role/{role}/ivan@example.com"})
    assert other.key == p.key and other.name == "ivan@example.com"


def test_mapped_username_keeps_the_iam_principal_as_key():
    # aws-auth maps role terraform-eks-admin to username kubernetes-admin (dev-scenarios shape).
    sts = f"arn:aws:sts::{ACCT}:assumed-role/terraform-eks-admin/terraform-1725351951"
    user = iam_user(
        "kubernetes-admin",
        canonical=f"arn:aws:iam::{ACCT}:role/terraform-eks-admin",
        arn=sts,
        session="terraform-1725351951",
        groups=["system:masters", "system:authenticated"],
    )
    p = resolve(user)
    assert (p.kind, p.name) == ("mapped_user", "kubernetes-admin")
    assert p.key == f"iam:arn:aws:iam::{ACCT}:role/terraform-eks-admin"
    assert p.session == "terraform-1725351951" and "system:masters" in p.groups
    # The same username from another role is a different principal; the same role unmapped is the same one.
    assert resolve(iam_user("kubernetes-admin", canonical=f"arn:aws:iam::{ACCT}:role/other")).key != p.key
    assert resolve({"username": sts}).key == p.key


def test_mapped_username_with_only_the_session_arn():
    p = resolve(iam_user("admin", arn=f"arn:aws:sts::{ACCT}:assumed-role/Admins/s1"))
    assert (p.kind, p.key, p.name, p.session) == ("mapped_user", f"iam:arn:aws:iam::{ACCT}:role/Admins", "admin", "s1")


def test_iam_user():
    arn = f"arn:aws:iam::{ACCT}:user/alice"
    p = resolve(iam_user(arn, canonical=arn))
    assert (p.kind, p.key, p.name) == ("iam_user", f"iam:{arn}", "alice")
    mapped = resolve(iam_user("alice-k8s", canonical=arn))
    assert (mapped.kind, mapped.key, mapped.name) == ("mapped_user", f"iam:{arn}", "alice-k8s")
    root = resolve(iam_user("root-admin", canonical=f"arn:aws:iam::{ACCT}:root"))
    assert root.key == f"iam:arn:aws:iam::{ACCT}:root"


def test_account_from_authenticator_uid_when_no_arn_is_shown():
    p = resolve({"username": "ops", "uid": f"heptio-authenticator-aws:{ACCT}:AIDAEXAMPLE"})
    assert (p.kind, p.key, p.account) == ("mapped_user", "user:ops", ACCT)


def test_plain_username_without_iam_fields():
    p = resolve({"username": "minikube-user", "groups": ["system:masters", "system:authenticated"]})
    assert (p.kind, p.key, p.name, p.arn) == ("mapped_user", "user:minikube-user", "minikube-user", "")


def test_usernames_cannot_collide_with_other_key_spaces():
    assert resolve({"username": "anonymous"}).key == "user:anonymous"
    assert resolve({"username": "node:*"}).key == "user:node:*"
    assert resolve({"username": "iam:arn:aws:iam::1:role/x"}).key == "user:iam:arn:aws:iam::1:role/x"


# --------------------------------------------------------------------------- Kubernetes-native principals


def test_service_account_with_bound_token_claims():
    p = resolve(
        {
            "username": "system:serviceaccount:cart:web",
            "uid": "5e4461f9-f529-4e66-9343-0b0cc9452284",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:cart", "system:authenticated"],
            "extra": {
                "authentication.kubernetes.io/pod-name": ["web-7d9f-abcde"],
                "authentication.kubernetes.io/pod-uid": ["0d6c..."],
                "authentication.kubernetes.io/node-name": ["ip-10-0-1-2.ec2.internal"],
                "authentication.kubernetes.io/credential-id": ["JTI=abc"],
            },
        }
    )
    assert (p.kind, p.key, p.namespace, p.service_account) == ("service_account", "sa:cart/web", "cart", "web")
    assert (p.pod, p.node) == ("web-7d9f-abcde", "ip-10-0-1-2.ec2.internal")
    assert not p.is_system


def test_service_account_pod_from_panther_normalised_key():
    p = resolve(
        {
            "username": "system:serviceaccount:kube-system:coredns",
            "extra": {"authentication_kubernetes_io_slash_pod-name": ["coredns-57ff979f67-bl27n"]},
        }
    )
    assert (p.key, p.pod) == ("sa:kube-system/coredns", "coredns-57ff979f67-bl27n")


def test_an_empty_claim_value_reads_as_absent_so_the_other_spelling_counts():
    p = resolve(
        {
            "username": "system:serviceaccount:kube-system:coredns",
            "extra": {
                "authentication.kubernetes.io/pod-name": [""],
                "authentication_kubernetes_io_slash_pod-name": ["coredns-57ff979f67-bl27n"],
                "authentication.kubernetes.io/node-name": [],
                "authentication_kubernetes_io_slash_node-name": ["ip-10-0-1-2.ec2.internal"],
                "sessionName": [],
            },
        }
    )
    assert (p.pod, p.node, p.session) == ("coredns-57ff979f67-bl27n", "ip-10-0-1-2.ec2.internal", "")


def test_cache_does_not_mix_pods_of_one_service_account():
    def user(pod: str) -> dict[str, Any]:
        return {"username": "system:serviceaccount:cart:web", "extra": {"authentication.kubernetes.io/pod-name": [pod]}}

    a, b = resolve(user("a")), resolve(user("b"))
    assert a.key == b.key and (a.pod, b.pod) == ("a", "b")


@pytest.mark.parametrize(
    "username",
    [
        "system:serviceaccount:onlyns",
        "system:serviceaccount::name",
        "system:serviceaccount:ns:",
        "system:serviceaccount:a:b:c",
    ],
)
def test_malformed_service_account_usernames_are_unknown(username):
    p = resolve({"username": username})
    assert p.kind == "unknown" and p.key == f"user:{username}"


def test_node_by_certificate():
    p = resolve(
        {
            "username": "system:node:ip-192-168-3-178.us-west-2.compute.internal",
            "groups": ["system:nodes", "system:authenticated"],
        }
    )
    assert (p.kind, p.key, p.node) == ("node", "node:*", "ip-192-168-3-178.us-west-2.compute.internal")
    assert not p.is_system


def test_node_by_iam_node_role():
    role = "eksctl-prod-nodegroup-NodeInstanceRole-AH4SFX6A5BMY"
    user = iam_user(
        "system:node:ip-172-31-59-150.eu-north-1.compute.internal",
        canonical=f"arn:aws:iam::{ACCT}:role/{role}",
        arn=f"arn:aws:sts::{ACCT}:assumed-role/{role}/i-0965b9245fe7914aa",
        session="i-0965b9245fe7914aa",
        groups=["system:nodes", "system:authenticated"],
    )
    p = resolve(user)
    assert (p.kind, p.key, p.node) == ("node", "node:*", "ip-172-31-59-150.eu-north-1.compute.internal")
    assert (p.arn, p.session, p.account) == (f"arn:aws:iam::{ACCT}:role/{role}", "i-0965b9245fe7914aa", ACCT)


@pytest.mark.parametrize(
    "user",
    [
        {"username": "system:anonymous", "groups": ["system:unauthenticated"]},
        {"username": "system:anonymous", "groups": ["system:masters", "system:authenticated"]},  # Falco fixture
        {"username": "someone", "groups": ["system:unauthenticated"]},
        {"username": "system:unauthenticated"},  # Panther test shape
    ],
)
def test_anonymous(user):
    p = resolve(user)
    assert (p.kind, p.key) == ("anonymous", "anonymous")


@pytest.mark.parametrize(
    "username", ["eks:addon-manager", "eks:node-manager", "eks:cloud-controller-manager", "eks:certificate-controller"]
)
def test_eks_service_principals(username):
    p = resolve({"username": username, "groups": ["system:authenticated"]})
    assert (p.kind, p.key, p.name, p.is_system) == ("eks_system", f"user:{username}", username, True)


def test_eks_addon_manager_keeps_its_iam_role():
    arn = f"arn:aws:sts::{ACCT}:assumed-role/AWSWesleyClusterManagerLambda-Add-AddonManagerRole/session"
    p = resolve({"username": "eks:addon-manager", "extra": {"arn": [arn]}})
    assert p.kind == "eks_system" and p.key == "user:eks:addon-manager"
    assert p.arn == f"arn:aws:iam::{ACCT}:role/AWSWesleyClusterManagerLambda-Add-AddonManagerRole"


@pytest.mark.parametrize(
    "username",
    [
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:apiserver",
        "kube-apiserver",
        "system:kube-proxy",
    ],
)
def test_kubernetes_control_plane(username):
    p = resolve({"username": username, "groups": ["system:authenticated"]})
    assert (p.kind, p.key, p.is_system) == ("k8s_system", f"user:{username}", True)


@pytest.mark.parametrize(
    ("username", "key"),
    [
        ("", "unknown"),
        ("system:something-new", "user:system:something-new"),
        ("arn:aws:sts::not-an-arn", "user:arn:aws:sts::not-an-arn"),
        (f"arn:aws:s3:::{ACCT}-bucket", f"user:arn:aws:s3:::{ACCT}-bucket"),
    ],
)
def test_unknown_shapes(username, key):
    p = resolve({"username": username})
    assert (p.kind, p.key, p.is_system) == ("unknown", key, False)


def test_event_without_user():
    assert resolve_principal(event()).kind == "unknown"


# --------------------------------------------------------------------------- impersonation


def test_impersonation_resolves_the_impersonated_identity_separately():
    actor = {"username": f"arn:aws:sts::{ACCT}:assumed-role/Dev/alice"}
    e = event(
        actor,
        impersonated={
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "groups": ["system:serviceaccounts"],
        },
    )
    assert resolve_principal(e).key == f"iam:arn:aws:iam::{ACCT}:role/Dev"
    target = impersonation(e)
    assert target is not None and target.key == "sa:kube-system/replicaset-controller"
    groups_only = impersonation(event(actor, impersonated={"groups": ["system:masters"]}))
    assert groups_only is not None and groups_only.groups == ("system:masters",)
    assert impersonation(event(actor)) is None


def test_principal_is_frozen_and_slotted():
    p = resolve({"username": "system:anonymous"})
    with pytest.raises(AttributeError):
        p.key = "x"  # type: ignore[misc]
    assert not hasattr(p, "__dict__")


def test_resolution_is_memoized_with_a_bounded_cache():
    user = {"username": f"arn:aws:sts::{ACCT}:assumed-role/Memo/s"}
    assert resolve(user) is resolve(user)
    identity.clear_resolved()
    for n in range(identity._RESOLVED_KEPT + 10):
        resolve({"username": f"user-{n}"})
    assert 0 < len(identity._RESOLVED) <= identity._RESOLVED_KEPT


# --------------------------------------------------------------------------- real data

needs_datasets = pytest.mark.skipif(not DEV_AUDIT.exists(), reason=f"shared datasets not present at {DATASETS}")

# Independent re-statement of the username shapes (raw JSON, regexes), used to check the module.
SHAPES = {
    "service_account": re.compile(r"^system:serviceaccount:([^:]+):([^:]+)$"),
    "node": re.compile(r"^system:node:(.*)$"),
    "anonymous": re.compile(r"^system:(anonymous|unauthenticated)$"),
    "eks_system": re.compile(r"^eks:.+$"),
    "k8s_system": re.compile(
        r"^(system:(apiserver|kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|"
        r"kube-aggregator)|kube-apiserver)$"
    ),
    "sts": re.compile(r"^arn:(aws[-a-z]*):sts::(\d{12}):assumed-role/([^/]+)/(.+)$"),
    "iam": re.compile(r"^arn:(aws[-a-z]*):iam::(\d{12}):(user|role)/(?:.*/)?([^/]+)$"),
    "plain": re.compile(r"^(?!system:)(?!arn:)(?!eks:).+$"),
}


def expected_kind(raw_user: dict[str, Any]) -> str:
    name = raw_user.get("username", "")
    extra = raw_user.get("extra") or {}
    if SHAPES["anonymous"].match(name) or "system:unauthenticated" in (raw_user.get("groups") or []):
        return "anonymous"
    for kind in ("service_account", "node", "eks_system", "k8s_system"):
        if SHAPES[kind].match(name):
            return kind
    if m := SHAPES["sts"].match(name):
        return "sso_role" if m.group(3).startswith("AWSReservedSSO_") else "iam_role"
    if m := SHAPES["iam"].match(name):
        return "iam_user" if m.group(3) == "user" else "iam_role"
    if SHAPES["plain"].match(name):
        return "mapped_user"
    return "unknown" if not extra.get("canonicalArn") else "mapped_user"


@functools.cache
def dev_events() -> tuple[tuple[dict[str, Any], AuditEvent], ...]:
    lines = gzip.decompress(DEV_AUDIT.read_bytes()).splitlines()
    return tuple((msgspec.json.decode(line), parse_event(line)) for line in lines if line.strip())


@needs_datasets
def test_dev_set_invariants_and_kind_distribution():
    kinds: collections.Counter[str] = collections.Counter()
    keys_per_kind: dict[str, set[str]] = collections.defaultdict(set)
    for raw, ev in dev_events():
        p = resolve_principal(ev)
        raw_user = raw.get("user") or {}
        name = raw_user.get("username", "")
        kinds[p.kind] += 1
        keys_per_kind[p.kind].add(p.key)
        assert p.kind == expected_kind(raw_user), (name, p)
        if m := SHAPES["node"].match(name):
            assert (p.key, p.node) == ("node:*", m.group(1))
        if m := SHAPES["service_account"].match(name):
            assert (p.key, p.namespace, p.service_account) == (f"sa:{m.group(1)}/{m.group(2)}", m.group(1), m.group(2))
            assert p.pod == (raw_user.get("extra") or {}).get("authentication.kubernetes.io/pod-name", [""])[0]
        if p.kind == "unknown":
            assert not any(shape.match(name) for shape in SHAPES.values()), name
        if p.kind in ("iam_role", "sso_role", "iam_user", "mapped_user") and p.key != f"user:{name}":
            assert p.key.startswith("iam:arn:"), p
            canonical = (raw_user.get("extra") or {}).get("canonicalArn")
            if canonical:  # no role paths in this set, so the key is exactly the canonical ARN
                assert p.key == f"iam:{canonical[0]}"
        if p.kind == "sso_role":
            assert p.name == raw_user["extra"]["sessionName"][0]
        assert p.is_system == (p.kind in ("eks_system", "k8s_system"))
    print("\nidentity kinds on dev-scenarios:", dict(kinds.most_common()))
    print("distinct keys per kind:", {k: len(v) for k, v in sorted(keys_per_kind.items())})
    assert sum(kinds.values()) == len(dev_events())
    assert kinds["unknown"] == 0  # every username in this set has a known shape
    assert keys_per_kind["node"] == {"node:*"}
    # Many SSO people share one key per permission set; the mapped kubernetes-admin is its terraform role.
    assert keys_per_kind["mapped_user"] == {"iam:arn:aws:iam::828750217432:role/terraform-eks-admin"}


@needs_datasets
def test_resolution_is_cached_across_the_dev_set():
    """Speed is measured in `make bench`; here, that the cache works: only distinct identities miss it."""
    events = [ev for _, ev in dev_events()]
    identity.clear_resolved()
    first = [resolve_principal(ev) for ev in events]
    assert len(identity._RESOLVED) < 1_000  # 105k events, a few hundred distinct identity tuples
    assert all(again is principal for again, principal in zip(map(resolve_principal, events), first, strict=True))


@pytest.mark.skipif(not PANTHER.exists(), reason=f"shared datasets not present at {DATASETS}")
def test_panther_events_resolve():
    kinds: collections.Counter[str] = collections.Counter()
    for line in PANTHER.read_text().splitlines():
        raw = json.loads(line)
        p = resolve_principal(parse_event(line))
        kinds[p.kind] += 1
        assert p.kind == expected_kind(raw.get("user") or {}), (raw.get("user"), p)
    print("\nidentity kinds on panther-eks:", dict(kinds.most_common()))
    assert kinds["unknown"] == sum(
        1 for line in PANTHER.read_text().splitlines() if not (json.loads(line).get("user") or {}).get("username")
    )


@pytest.mark.skipif(not FALCO.exists(), reason=f"shared datasets not present at {DATASETS}")
@pytest.mark.parametrize(
    ("fixture", "kind", "key"),
    [
        ("anonymous_creates_namespace_foo.json", "anonymous", "anonymous"),
        ("create_nginx_pod_unprivileged.json", "service_account", "sa:kube-system/replicaset-controller"),
        ("create_nginx_pod_unsensitive_mount.json", "node", "node:*"),
        ("create_service_account_token_secret.json", "k8s_system", "user:system:kube-controller-manager"),
        ("exec_pod.json", "mapped_user", "user:minikube-user"),
    ],
)
def test_falco_fixtures(fixture, kind, key):
    p = resolve_principal(parse_event((FALCO / fixture).read_bytes()))
    assert (p.kind, p.key) == (kind, key)


def test_identities_larger_than_any_real_one_resolve_the_same_without_being_memoized():
    """Impersonation headers and archive writers choose these freely: the memo must not keep megabytes per entry."""
    groups = [f"group-{i}" for i in range(1000)]
    role = "arn:aws:iam::111122223333:role/" + "r" * 3000
    cases = [
        (UserInfo(username="alice", groups=groups), ("user:alice", identity.MAPPED_USER)),
        (UserInfo(username=role), (f"iam:{role}", identity.IAM_ROLE)),
    ]
    for user, (key, kind) in cases:
        before = len(identity._RESOLVED)
        principal = identity.resolve_user(user)
        assert (principal.key, principal.kind) == (key, kind)
        assert len(identity._RESOLVED) == before  # resolved, not kept
    assert identity.resolve_user(UserInfo(username="alice", groups=groups)).groups == tuple(groups)
