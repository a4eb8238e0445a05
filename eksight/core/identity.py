"""Stable principals behind EKS audit events.

Baselines and findings need one key per *actor*, but `user.username` is not stable on EKS: an IAM role used
through an access entry without a username template appears as its STS session ARN (a new string for every
session), while a role mapped in aws-auth appears under an arbitrary username such as ``kubernetes-admin``.
`resolve_principal` turns `user` into a `Principal` whose `key` is stable:

  kind             key                                     typical username
  iam_role         iam:arn:aws:iam::ACCT:role/NAME         arn:aws:sts::ACCT:assumed-role/NAME/SESSION
  sso_role         iam:arn:aws:iam::ACCT:role/AWSReservedSSO_SET_HEX   (same; the person is the session)
  iam_user         iam:arn:aws:iam::ACCT:user/NAME         arn:aws:iam::ACCT:user/NAME
  mapped_user      iam:<role/user ARN> if the event shows   kubernetes-admin, alice
                   IAM fields, else user:<username>
  service_account  sa:<namespace>/<name>                   system:serviceaccount:NS:NAME
  node             node:* (all nodes are one group)        system:node:ip-10-0-0-1.ec2.internal
  anonymous        anonymous                               system:anonymous
  eks_system       user:<username>                         eks:addon-manager, eks:node-manager
  k8s_system       user:<username>                         system:kube-controller-manager, system:apiserver
  unknown          user:<username>, or unknown if empty    system:something-new, ""

Keys built from a username carry the ``user:`` prefix so no username can collide with another key space
(a mapped user literally named ``anonymous`` or ``node:*`` stays ``user:anonymous``).

`resolve_principal` runs on every event, so resolution is memoized on the identity fields it reads
(a bounded dict): the per-event cost is a few dict look-ups and one cache hit. Identities larger than any
real one (impersonation headers and archive writers choose them freely) are resolved without being kept, so the
caches' memory stays bounded by entry count times `_MAX_CACHED_CHARS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from eksight.core.events import AuditEvent, UserInfo

IAM_ROLE = "iam_role"
IAM_USER = "iam_user"
SSO_ROLE = "sso_role"
MAPPED_USER = "mapped_user"
SERVICE_ACCOUNT = "service_account"
NODE = "node"
ANONYMOUS = "anonymous"
EKS_SYSTEM = "eks_system"
K8S_SYSTEM = "k8s_system"
UNKNOWN = "unknown"
KINDS = (IAM_ROLE, IAM_USER, SSO_ROLE, MAPPED_USER, SERVICE_ACCOUNT, NODE, ANONYMOUS, EKS_SYSTEM, K8S_SYSTEM, UNKNOWN)

NODE_KEY = "node:*"
ANONYMOUS_KEY = "anonymous"

# Control-plane components that authenticate with client certificates (no IAM fields). Other `system:`
# usernames are reserved by Kubernetes but not recognised here: they resolve to `unknown` on purpose, so a
# new or forged system-looking identity is surfaced rather than trusted.
K8S_SYSTEM_USERS = frozenset(
    {
        "system:apiserver",
        "kube-apiserver",
        "system:kube-apiserver",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:kube-proxy",
        "system:kube-aggregator",
    }
)

_SA_PREFIX = "system:serviceaccount:"
_NODE_PREFIX = "system:node:"
_ANONYMOUS_NAMES = frozenset({"system:anonymous", "system:unauthenticated"})  # the latter seen in Panther's tests
_UNAUTHENTICATED_GROUP = "system:unauthenticated"
_SSO_ROLE_PREFIX = "AWSReservedSSO_"

# Bound service-account token claims. Panther's normalised events spell the keys with `_slash_`.
_POD_NAME_KEYS = ("authentication.kubernetes.io/pod-name", "authentication_kubernetes_io_slash_pod-name")
_NODE_NAME_KEYS = ("authentication.kubernetes.io/node-name", "authentication_kubernetes_io_slash_node-name")
_ABSENT = ("",)  # an extra claim that is missing or empty reads as ""
# Identities memoized at most this large (characters over all fields; groups): real ones are a few hundred.
_MAX_CACHED_CHARS = 2048
_MAX_CACHED_GROUPS = 64
# uid of IAM-authenticated users: "aws-iam-authenticator:ACCOUNT:AROA…" (older: "heptio-authenticator-aws:…").
_AUTHENTICATOR_UID_PREFIXES = ("aws-iam-authenticator:", "heptio-authenticator-aws:")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request, keyed for baselining.

    `name` is the Kubernetes username, except when that username is an AWS ARN (access entry without a
    username template): then it is the short IAM name (role or user name; for SSO roles the SSO user from
    the session name). `arn` is the IAM role/user ARN behind the identity when the event shows one (also
    for nodes and EKS service principals that authenticate through IAM); `session` the STS session name.
    `is_system` marks the cluster's own control plane (`k8s_system`) and EKS's management plane
    (`eks_system`) — never nodes or service accounts, whose credentials can be stolen from a workload.
    """

    key: str
    kind: str
    name: str
    arn: str = ""
    session: str = ""
    account: str = ""
    namespace: str = ""
    service_account: str = ""
    node: str = ""
    pod: str = ""
    groups: tuple[str, ...] = ()
    is_system: bool = False

    @property
    def is_iam(self) -> bool:
        return self.key.startswith("iam:")

    @property
    def permission_set(self) -> str:
        """IAM Identity Center permission set of an `sso_role` (``AWSReservedSSO_<set>_<hex>``), else ``""``."""
        if self.kind != SSO_ROLE:
            return ""
        role = self.arn.rpartition("/")[2]
        body = role[len(_SSO_ROLE_PREFIX) :]
        head, sep, tail = body.rpartition("_")
        return head if sep and tail else body

    @property
    def display(self) -> str:
        """A one-line label for findings, e.g. ``alice@example.com (AWSReservedSSO_Admin_0123…)``."""
        if self.kind == SSO_ROLE:
            return f"{self.name} ({self.arn.rpartition('/')[2]})"
        if self.kind in (IAM_ROLE, MAPPED_USER) and self.session and self.arn:
            return f"{self.name} ({self.arn.rpartition('/')[2]}/{self.session})"
        return self.name


def resolve_principal(event: AuditEvent) -> Principal:
    """The authenticated user of `event` (not the impersonated one: see `impersonation`)."""
    return resolve_user(event.user)


def impersonation(event: AuditEvent) -> Principal | None:
    """The identity `event.user` impersonated (``Impersonate-User``/``-Group`` headers), if any."""
    user = event.impersonated_user
    if user is None or not (user.username or user.groups):
        return None
    return resolve_user(user)


def resolve_user(user: UserInfo) -> Principal:
    extra = user.extra
    if extra:  # the first value of each claim read (runs on every event: dict look-ups, no calls)
        get = extra.get
        canonical_arn, session_arn = (get("canonicalArn") or _ABSENT)[0], (get("arn") or _ABSENT)[0]
        session = (get("sessionName") or _ABSENT)[0]
        pod = (get(_POD_NAME_KEYS[0]) or _ABSENT)[0] or (get(_POD_NAME_KEYS[1]) or _ABSENT)[0]
        node = (get(_NODE_NAME_KEYS[0]) or _ABSENT)[0] or (get(_NODE_NAME_KEYS[1]) or _ABSENT)[0]
    else:
        canonical_arn = session_arn = session = pod = node = ""
    identity = (user.username, user.uid, canonical_arn, session_arn, session, pod, node, tuple(user.groups))
    principal = _RESOLVED.get(identity)
    if principal is None:
        principal = _resolve(*identity)
        groups = identity[7]
        if (
            len(groups) <= _MAX_CACHED_GROUPS
            and sum(map(len, identity[:7])) + sum(map(len, groups)) <= _MAX_CACHED_CHARS
        ):
            if len(_RESOLVED) >= _RESOLVED_KEPT:
                _RESOLVED.clear()
            _RESOLVED[identity] = principal
    return principal


def clear_resolved() -> None:
    """Forget the memoized principals (tests and benchmarks measure a cold start with it)."""
    _RESOLVED.clear()


# --- resolution -------------------------------------------------------------------------------------------

# Principals by the identity fields `resolve_user` reads (a plain dict: its look-up is the per-event cost; sizes
# are checked only on a miss). Starts over when full; a principal depends only on its key, so that changes nothing.
_RESOLVED: dict[tuple[str, str, str, str, str, str, str, tuple[str, ...]], Principal] = {}
_RESOLVED_KEPT = 16384


def _resolve(
    username: str,
    uid: str,
    canonical_arn: str,
    session_arn: str,
    session: str,
    pod: str,
    node: str,
    groups: tuple[str, ...],
) -> Principal:
    if username in _ANONYMOUS_NAMES or _UNAUTHENTICATED_GROUP in groups:
        return Principal(ANONYMOUS_KEY, ANONYMOUS, username or "system:anonymous", groups=groups)

    if username.startswith(_SA_PREFIX):
        namespace, sep, name = username[len(_SA_PREFIX) :].partition(":")
        if sep and namespace and name and ":" not in name:
            return Principal(
                f"sa:{namespace}/{name}",
                SERVICE_ACCOUNT,
                username,
                namespace=namespace,
                service_account=name,
                node=node,
                pod=pod,
                groups=groups,
            )
        return Principal(f"user:{username}", UNKNOWN, username, groups=groups)

    # IAM identity behind the request, if the event shows one: the stable role/user ARN first, then the
    # username (an ARN for access entries without a username template), then the session ARN.
    iam = _arn(canonical_arn) or _arn(username) or _arn(session_arn)
    arn, iam_kind, iam_name, account, arn_session = iam if iam else ("", "", "", "", "")
    session = session or arn_session
    account = account or _account_from_uid(uid)

    if username.startswith(_NODE_PREFIX):
        # Kubelets: certificate-authenticated, or (EKS) the node role mapped to system:node:{{EC2PrivateDNSName}}.
        return Principal(
            NODE_KEY,
            NODE,
            username,
            arn=arn,
            session=session,
            account=account,
            node=username[len(_NODE_PREFIX) :],
            groups=groups,
        )
    if username.startswith("eks:"):
        return Principal(
            f"user:{username}",
            EKS_SYSTEM,
            username,
            arn=arn,
            session=session,
            account=account,
            groups=groups,
            is_system=True,
        )
    if username in K8S_SYSTEM_USERS:
        return Principal(
            f"user:{username}",
            K8S_SYSTEM,
            username,
            arn=arn,
            session=session,
            account=account,
            groups=groups,
            is_system=True,
        )
    if username.startswith("arn:"):
        if not iam:
            return Principal(f"user:{username}", UNKNOWN, username, session=session, account=account, groups=groups)
        if iam_kind == SSO_ROLE and session:
            iam_name = session  # the person signed in through IAM Identity Center
        return Principal(f"iam:{arn}", iam_kind, iam_name, arn=arn, session=session, account=account, groups=groups)
    if iam:
        # aws-auth mapRoles/mapUsers or an access entry with a username template: `name` is the mapped
        # username, the key the IAM principal behind it.
        return Principal(f"iam:{arn}", MAPPED_USER, username, arn=arn, session=session, account=account, groups=groups)
    if not username:
        return Principal("unknown", UNKNOWN, "", groups=groups)
    if username.startswith("system:"):
        return Principal(f"user:{username}", UNKNOWN, username, groups=groups)
    # Certificate CN, OIDC or a mapping whose IAM fields the event does not show.
    return Principal(f"user:{username}", MAPPED_USER, username, account=account, groups=groups)


def _arn(value: str) -> tuple[str, str, str, str, str] | None:
    return _parse_arn(value) if len(value) <= _MAX_CACHED_CHARS else _parse_arn.__wrapped__(value)


@lru_cache(maxsize=4096)
def _parse_arn(value: str) -> tuple[str, str, str, str, str] | None:
    """(principal ARN, kind, short name, account, session) of an IAM or STS ARN, else None.

    Role ARNs are rebuilt without their path: STS assumed-role ARNs never carry the role's path
    (``arn:aws:sts::ACCT:assumed-role/NAME/SESSION``), so ``arn:aws:iam::ACCT:role/NAME`` is the only form
    every source can agree on. Role and user names are unique within an account whatever their path, so
    nothing is merged that should not be. The partition (aws, aws-cn, aws-us-gov, ...) is kept.
    """
    if not value.startswith("arn:"):
        return None
    parts = value.split(":", 5)
    if len(parts) != 6:
        return None
    _, partition, service, _region, account, resource = parts
    if not partition or not account:
        return None
    if service == "sts":
        kind_, _, rest = resource.partition("/")
        if kind_ == "assumed-role":
            role, _, session = rest.partition("/")
            return _role(partition, account, role, session) if role else None
        if kind_ == "federated-user" and rest:
            return value, IAM_USER, rest, account, ""
        return None
    if service == "iam":
        if resource == "root":
            return f"arn:{partition}:iam::{account}:root", IAM_USER, "root", account, ""
        kind_, _, rest = resource.partition("/")
        name = rest.rpartition("/")[2]
        if not name:
            return None
        if kind_ == "role":
            return _role(partition, account, name, "")
        if kind_ == "user":
            return f"arn:{partition}:iam::{account}:user/{name}", IAM_USER, name, account, ""
    return None


def _role(partition: str, account: str, role: str, session: str) -> tuple[str, str, str, str, str]:
    kind = SSO_ROLE if role.startswith(_SSO_ROLE_PREFIX) else IAM_ROLE
    return f"arn:{partition}:iam::{account}:role/{role}", kind, role, account, session


def _account_from_uid(uid: str) -> str:
    for prefix in _AUTHENTICATOR_UID_PREFIXES:
        if uid.startswith(prefix):
            account = uid[len(prefix) :].partition(":")[0]
            return account if account.isdigit() else ""
    return ""
