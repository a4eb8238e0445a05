"""What an audit event asks the cluster to run or to grant: exec/attach/port-forward requests, pod specs
(bare pods and the pod templates of controllers), RBAC rules and role bindings.

Request bodies are untrusted input — anyone who can reach the API server chooses them — so every accessor
here tolerates wrong types anywhere: a malformed part is skipped, nothing raises.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from eksight.core.events import AuditEvent
from eksight.core.untrusted import as_dict, as_list, as_str

WRITE_VERBS = frozenset({"create", "update", "patch"})
STREAM_SUBRESOURCES = frozenset({"exec", "attach", "portforward"})

# --- exec / attach / port-forward -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecRequest:
    """A `pods/exec`, `pods/attach` or `pods/portforward` request, from its requestURI query (the only place
    an audit event carries the command). `command` is the argv exactly as sent (one `command=` per word)."""

    kind: str  # "exec" | "attach" | "portforward"
    namespace: str
    pod: str
    container: str = ""
    command: tuple[str, ...] = ()
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False
    ports: tuple[int, ...] = ()

    @property
    def command_line(self) -> str:
        """The argv as one shell-quoted line, for display and substring rules."""
        return shlex.join(self.command)


def parse_exec(event: AuditEvent) -> ExecRequest | None:
    """The exec/attach/port-forward request of `event`, or None for any other event.

    Query semantics follow the API server's: repeated `command=` parameters form the argv in order, a
    repeated `container=` counts once (its first value), a flag is true unless its first value is ``0`` or
    ``false``. `ports` accepts repeated and comma-separated values and drops anything not a valid port.
    At `Request` level the API server also logs the decoded options (``PodExecOptions``...) as
    `requestObject`; a field the query does not carry is taken from that body when it is well-formed.
    Port-forward requests made by kubectl over SPDY carry no `ports` at all (they travel in stream
    headers), so `ports` is often empty.
    """
    resource, subresource, namespace, pod = event.resource, event.subresource, event.namespace, event.name
    parts = urlsplit(event.request_uri)
    if not resource:  # no objectRef (hand-made or truncated event): read the path
        resource, subresource, namespace, pod = _pod_path(parts.path)
    if resource != "pods" or subresource not in STREAM_SUBRESOURCES:
        return None
    query = parse_qs(parts.query, keep_blank_values=True)
    body = as_dict(event.request_body()) if event.request_object else {}
    command = tuple(query.get("command", ())) or _strings(body.get("command"), keep_empty=True)
    ports = _ports(query.get("ports", ())) or _ports(str(p) for p in as_list(body.get("ports")) if _int(p) is not None)
    return ExecRequest(
        kind=subresource,
        namespace=namespace,
        pod=pod,
        container=_first(query, "container") or as_str(body.get("container")),
        command=command,
        stdin=_flag(query, body, "stdin"),
        stdout=_flag(query, body, "stdout"),
        stderr=_flag(query, body, "stderr"),
        tty=_flag(query, body, "tty"),
        ports=ports,
    )


def _pod_path(path: str) -> tuple[str, str, str, str]:
    # /api/v1/namespaces/NS/pods/POD/SUBRESOURCE
    segments = [unquote(s) for s in path.split("/")]
    if len(segments) == 8 and segments[1:3] == ["api", "v1"] and segments[3] == "namespaces":
        return segments[5], segments[7], segments[4], segments[6]
    return "", "", "", ""


def _first(query: dict[str, list[str]], name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def _flag(query: dict[str, list[str]], body: dict[str, Any], name: str) -> bool:
    values = query.get(name)
    if not values:
        return body.get(name) is True
    return values[0] != "0" and values[0].lower() != "false"


def _ports(values: Iterable[str]) -> tuple[int, ...]:
    ports: list[int] = []
    for value in values:
        for word in value.split(","):
            word = word.strip()
            if word.isascii() and word.isdigit() and 0 < int(word) < 65536:
                ports.append(int(word))
    return tuple(ports)


# --- pod specs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerView:
    name: str
    image: str
    kind: str  # "container" | "init" | "ephemeral"
    privileged: bool = False
    allow_privilege_escalation: bool | None = None
    run_as_user: int | None = None  # the container's own, else the pod's securityContext value
    run_as_non_root: bool | None = None  # likewise
    capabilities_add: tuple[str, ...] = ()  # as written (``SYS_ADMIN`` or ``CAP_SYS_ADMIN``)
    host_ports: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PodSpecView:
    """The security-relevant part of one pod spec in a request. Fields reflect the body as sent: for a
    patch they are what the patch sets (absent = unchanged), and `service_account` is empty when the body
    names none (on create the API server then uses ``default``)."""

    owner_kind: str  # kind of the object carrying the spec: Pod, Deployment, CronJob, ...
    namespace: str
    name: str
    service_account: str = ""
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    host_paths: tuple[str, ...] = ()
    containers: tuple[ContainerView, ...] = ()  # init, then regular, then ephemeral containers

    @property
    def images(self) -> tuple[str, ...]:
        return tuple(c.image for c in self.containers if c.image)


# resource -> (kind, path from the body to the pod spec)
_POD_SPEC_PATHS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pods": ("Pod", ("spec",)),
    "podtemplates": ("PodTemplate", ("template", "spec")),
    "deployments": ("Deployment", ("spec", "template", "spec")),
    "daemonsets": ("DaemonSet", ("spec", "template", "spec")),
    "statefulsets": ("StatefulSet", ("spec", "template", "spec")),
    "replicasets": ("ReplicaSet", ("spec", "template", "spec")),
    "replicationcontrollers": ("ReplicationController", ("spec", "template", "spec")),
    "jobs": ("Job", ("spec", "template", "spec")),
    "cronjobs": ("CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
}
# In the order the kubelet starts them.
_CONTAINER_LISTS = (("initContainers", "init"), ("containers", "container"), ("ephemeralContainers", "ephemeral"))


def workload_specs(event: AuditEvent) -> list[PodSpecView]:
    """Pod specs that a create/update/patch of a pod or pod-controlling workload sends, and the ephemeral
    containers sent to `pods/ephemeralcontainers` (`kubectl debug`). Empty for anything else.

    The request body is used when it is a JSON object; otherwise (absent at Metadata level, or a JSON Patch
    list) the response body, which holds the resulting object at RequestResponse level.
    """
    if event.verb not in WRITE_VERBS:
        return []
    resource, subresource = event.resource, event.subresource
    ephemeral_only = resource == "pods" and subresource == "ephemeralcontainers"
    if subresource and not ephemeral_only:
        return []  # status, scale, binding, eviction, ...: not a pod spec being written
    entry = _POD_SPEC_PATHS.get(resource)
    if entry is None:
        return []
    kind, path = entry
    body = _body(event)
    if body is None:
        return []
    spec = _pod_spec(body, path)
    if spec is None:
        return []
    metadata = as_dict(body.get("metadata"))
    name = event.name or as_str(metadata.get("name")) or as_str(metadata.get("generateName"))
    namespace = event.namespace or as_str(metadata.get("namespace"))
    lists = (("ephemeralContainers", "ephemeral"),) if ephemeral_only else _CONTAINER_LISTS
    return [_pod_spec_view(kind, namespace, name, spec, lists)]


def _body(event: AuditEvent) -> dict[str, Any] | None:
    body = event.request_body()
    if isinstance(body, dict):
        return body
    body = event.response_body()
    return body if isinstance(body, dict) else None


def _pod_spec(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = body
    for depth, step in enumerate(path):
        if not isinstance(node, dict):
            return None
        child = node.get(step)
        if child is None and depth == len(path) - 1 and depth > 0 and "containers" in node:
            # A template that is itself the pod spec (`template: {containers: ...}`): not valid Kubernetes,
            # but the dev-scenarios simulator writes Jobs this way; reading it only widens what we see.
            return node
        node = child
    return node if isinstance(node, dict) else None


def _pod_spec_view(
    kind: str, namespace: str, name: str, spec: dict[str, Any], lists: tuple[tuple[str, str], ...]
) -> PodSpecView:
    pod_context = as_dict(spec.get("securityContext"))
    pod_user = _int(pod_context.get("runAsUser"))
    pod_non_root = _bool(pod_context.get("runAsNonRoot"))
    containers = tuple(
        _container_view(item, container_kind, pod_user, pod_non_root)
        for field, container_kind in lists
        for item in as_list(spec.get(field))
        if isinstance(item, dict)
    )
    host_paths = tuple(
        path
        for volume in as_list(spec.get("volumes"))
        if isinstance(volume, dict)
        for path in (as_str(as_dict(volume.get("hostPath")).get("path")),)
        if path
    )
    return PodSpecView(
        owner_kind=kind,
        namespace=namespace,
        name=name,
        service_account=as_str(spec.get("serviceAccountName")) or as_str(spec.get("serviceAccount")),
        host_network=spec.get("hostNetwork") is True,
        host_pid=spec.get("hostPID") is True,
        host_ipc=spec.get("hostIPC") is True,
        host_paths=host_paths,
        containers=containers,
    )


def _container_view(item: dict[str, Any], kind: str, pod_user: int | None, pod_non_root: bool | None) -> ContainerView:
    context = as_dict(item.get("securityContext"))
    run_as_user = _int(context.get("runAsUser"))
    run_as_non_root = _bool(context.get("runAsNonRoot"))
    capabilities = as_dict(context.get("capabilities"))
    host_ports = tuple(
        port
        for entry in as_list(item.get("ports"))
        if isinstance(entry, dict)
        for port in (_int(entry.get("hostPort")),)
        if port is not None and port > 0
    )
    return ContainerView(
        name=as_str(item.get("name")),
        image=as_str(item.get("image")),
        kind=kind,
        privileged=context.get("privileged") is True,
        allow_privilege_escalation=_bool(context.get("allowPrivilegeEscalation")),
        run_as_user=pod_user if run_as_user is None else run_as_user,
        run_as_non_root=pod_non_root if run_as_non_root is None else run_as_non_root,
        capabilities_add=tuple(c for c in as_list(capabilities.get("add")) if isinstance(c, str) and c),
        host_ports=host_ports,
    )


# --- RBAC ----------------------------------------------------------------------------------------------------


class RbacRule(NamedTuple):
    verbs: tuple[str, ...]
    resources: tuple[str, ...]
    api_groups: tuple[str, ...]
    resource_names: tuple[str, ...]
    non_resource_urls: tuple[str, ...]


class Subject(NamedTuple):
    kind: str  # User | Group | ServiceAccount
    name: str
    namespace: str


class Binding(NamedTuple):
    kind: str  # RoleBinding | ClusterRoleBinding
    namespace: str  # of a RoleBinding; empty for a ClusterRoleBinding
    name: str
    role_kind: str  # roleRef.kind: Role | ClusterRole
    role_name: str
    subjects: tuple[Subject, ...]


_ROLE_RESOURCES = frozenset({"roles", "clusterroles"})
_BINDING_KINDS = {"rolebindings": "RoleBinding", "clusterrolebindings": "ClusterRoleBinding"}


def rbac_rules(event: AuditEvent) -> list[RbacRule]:
    """Rules of a Role/ClusterRole being created, updated or patched (empty when the body shows none, e.g.
    a patch that leaves `rules` alone or an aggregated ClusterRole). Empty strings and non-strings dropped."""
    if event.verb not in WRITE_VERBS or event.resource not in _ROLE_RESOURCES or event.subresource:
        return []
    body = _body(event)
    if body is None:
        return []
    return [
        RbacRule(
            verbs=_strings(rule.get("verbs")),
            resources=_strings(rule.get("resources")),
            api_groups=_strings(rule.get("apiGroups"), keep_empty=True),  # "" is the core group
            resource_names=_strings(rule.get("resourceNames")),
            non_resource_urls=_strings(rule.get("nonResourceURLs")),
        )
        for rule in as_list(body.get("rules"))
        if isinstance(rule, dict)
    ]


def binding(event: AuditEvent) -> Binding | None:
    """The RoleBinding/ClusterRoleBinding being created, updated or patched, or None.

    `roleRef` is immutable, so when the request body (a patch) lacks it, the response body's is used.
    """
    kind = _BINDING_KINDS.get(event.resource)
    if kind is None or event.verb not in WRITE_VERBS or event.subresource:
        return None
    body = _body(event)
    if body is None:
        return None
    role_ref = as_dict(body.get("roleRef"))
    subjects_raw = body.get("subjects")
    if not role_ref or subjects_raw is None:
        response = event.response_body()
        if isinstance(response, dict):
            role_ref = role_ref or as_dict(response.get("roleRef"))
            subjects_raw = response.get("subjects") if subjects_raw is None else subjects_raw
    metadata = as_dict(body.get("metadata"))
    subjects = tuple(
        Subject(as_str(s.get("kind")), as_str(s.get("name")), as_str(s.get("namespace")))
        for s in as_list(subjects_raw)
        if isinstance(s, dict)
    )
    return Binding(
        kind=kind,
        namespace=(event.namespace or as_str(metadata.get("namespace"))) if kind == "RoleBinding" else "",
        name=event.name or as_str(metadata.get("name")),
        role_kind=as_str(role_ref.get("kind")),
        role_name=as_str(role_ref.get("name")),
        subjects=subjects,
    )


# --- defensive accessors ---------------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _strings(value: Any, keep_empty: bool = False) -> tuple[str, ...]:
    return tuple(v for v in as_list(value) if isinstance(v, str) and (v or keep_empty))
