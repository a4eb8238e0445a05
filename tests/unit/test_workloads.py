"""Tests for eksight.core.workloads: exec/attach/port-forward requests, pod specs in workload writes, RBAC rules
and bindings — on hand-made events, Falco's and Panther's fixtures, the dev-scenarios set, and malformed
(untrusted) bodies that must never raise."""

from __future__ import annotations

import copy
import functools
import gzip
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eksight.core.events import AuditEvent, parse_event
from eksight.core.workloads import (
    Binding,
    ContainerView,
    ExecRequest,
    RbacRule,
    Subject,
    binding,
    parse_exec,
    rbac_rules,
    workload_specs,
)

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
DEV_AUDIT = DATASETS / "dev-scenarios" / "audit.jsonl.gz"
DEV_LABELS = DATASETS / "dev-scenarios" / "labels.json"
PANTHER = DATASETS / "panther-eks" / "events.jsonl"
FALCO = DATASETS / "falco-k8s-audit"

needs_dev = pytest.mark.skipif(not DEV_AUDIT.exists(), reason=f"shared datasets not present at {DATASETS}")
needs_falco = pytest.mark.skipif(not FALCO.exists(), reason=f"shared datasets not present at {DATASETS}")
needs_panther = pytest.mark.skipif(not PANTHER.exists(), reason=f"shared datasets not present at {DATASETS}")


def event(
    verb: str,
    resource: str,
    *,
    namespace: str = "default",
    name: str = "",
    subresource: str = "",
    uri: str = "",
    request: Any = None,
    response: Any = None,
    api_group: str = "",
) -> AuditEvent:
    ref = {
        "resource": resource,
        "namespace": namespace,
        "name": name,
        "subresource": subresource,
        "apiGroup": api_group,
    }
    body: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "auditID": "00000000-0000-0000-0000-000000000002",
        "verb": verb,
        "requestURI": uri or f"/api/v1/namespaces/{namespace}/{resource}",
        "user": {"username": "alice"},
        "objectRef": {k: v for k, v in ref.items() if v},
    }
    if request is not None:
        body["requestObject"] = request
    if response is not None:
        body["responseObject"] = response
    return parse_event(json.dumps(body))


def falco(name: str) -> AuditEvent:
    return parse_event((FALCO / name).read_bytes())


# =========================================================================== exec / attach / portforward


def exec_event(query: str, subresource: str = "exec", request: Any = None, verb: str = "create") -> AuditEvent:
    uri = f"/api/v1/namespaces/NS/pods/POD/{subresource}" + (f"?{query}" if query else "")
    return event(verb, "pods", namespace="NS", name="POD", subresource=subresource, uri=uri, request=request)


def test_exec_command_is_url_decoded_in_order():
    e = exec_event("command=sh&command=-c&command=cat%20%2Fvar%2Frun%2Fsecrets&container=c&stdin=true&tty=true")
    assert parse_exec(e) == ExecRequest(
        kind="exec",
        namespace="NS",
        pod="POD",
        container="c",
        command=("sh", "-c", "cat /var/run/secrets"),
        stdin=True,
        tty=True,
    )


def test_exec_plus_is_a_space_and_blank_arguments_are_kept():
    x = parse_exec(exec_event("command=echo&command=a+b&command=&command=%2B"))
    assert x is not None and x.command == ("echo", "a b", "", "+")
    assert x.command_line == "echo 'a b' '' +"


def test_exec_flags_follow_the_api_server():
    x = parse_exec(exec_event("command=id&stdin=false&stdout=1&stderr=0&tty=TRUE&container=a&container=b"))
    assert x is not None
    assert (x.stdin, x.stdout, x.stderr, x.tty, x.container) == (False, True, False, True, "a")


def test_exec_get_verb_websocket():
    x = parse_exec(exec_event("command=ls", verb="get"))
    assert x is not None and x.command == ("ls",)


def test_attach_and_portforward():
    attach = parse_exec(exec_event("container=main&stdin=true&tty=true", subresource="attach"))
    assert attach is not None and (attach.kind, attach.container, attach.command) == ("attach", "main", ())
    fwd = parse_exec(
        exec_event("ports=8080&ports=9090,53&ports=0&ports=70000&ports=x&ports=%C2%B2", subresource="portforward")
    )
    assert fwd is not None and (fwd.kind, fwd.ports) == ("portforward", (8080, 9090, 53))


def test_exec_options_body_fills_what_the_query_lacks():
    body = {
        "kind": "PodExecOptions",
        "command": ["cat", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"],
        "container": "app",
        "stdout": True,
        "stdin": "yes",
        "ports": [1, "2"],
    }
    x = parse_exec(exec_event("", request=body))
    assert x is not None
    assert (x.command, x.container, x.stdout, x.stdin) == (tuple(body["command"]), "app", True, False)
    query_wins = parse_exec(exec_event("command=id&container=q", request=body))
    assert query_wins is not None and (query_wins.command, query_wins.container) == (("id",), "q")
    bad_body = parse_exec(exec_event("", request={"command": "sh -c id", "container": 3}))
    assert bad_body is not None and (bad_body.command, bad_body.container) == ((), "")
    fwd = parse_exec(exec_event("", subresource="portforward", request={"ports": [8080, True, "x", 99999]}))
    assert fwd is not None and fwd.ports == (8080,)


def test_not_an_exec():
    assert parse_exec(event("create", "pods")) is None
    assert parse_exec(event("get", "pods", name="p", subresource="log")) is None
    assert parse_exec(event("create", "services", name="s", subresource="proxy")) is None


def test_exec_without_object_ref_reads_the_path():
    e = parse_event(
        json.dumps(
            {
                "kind": "Event",
                "auditID": "x",
                "verb": "create",
                "requestURI": "/api/v1/namespaces/ns1/pods/p1/exec?command=id",
            }
        )
    )
    assert parse_exec(e) == ExecRequest(kind="exec", namespace="ns1", pod="p1", command=("id",))


@needs_falco
def test_falco_exec_pod():
    x = parse_exec(falco("exec_pod.json"))
    assert x == ExecRequest(
        kind="exec",
        namespace="default",
        pod="nginx-deployment-7998647bdf-phvq7",
        container="nginx1",
        command=("bash",),
        stdin=True,
        stdout=True,
        tty=True,
    )


@needs_panther
def test_panther_exec_events_carry_a_command_in_query_or_body():
    for line in PANTHER.read_text().splitlines():
        raw = json.loads(line)
        ref = raw.get("objectRef") or {}
        if ref.get("subresource") != "exec":
            continue
        x = parse_exec(parse_event(line))
        assert x is not None and x.pod == ref["name"]
        has_command = "command=" in (raw.get("requestURI") or "") or "command" in (raw.get("requestObject") or {})
        assert bool(x.command) == has_command, raw


@functools.cache
def dev_events() -> tuple[tuple[dict[str, Any], AuditEvent], ...]:
    lines = gzip.decompress(DEV_AUDIT.read_bytes()).splitlines()
    return tuple((msgspec.json.decode(line), parse_event(line)) for line in lines if line.strip())


@functools.cache
def dev_by_id() -> dict[str, AuditEvent]:
    return {ev.audit_id: ev for _, ev in dev_events()}


def scenario_events(scenario: str) -> list[AuditEvent]:
    labels = json.loads(DEV_LABELS.read_text())
    ids = next(s["auditIDs"] for s in labels["scenarios"] if s["id"] == scenario)
    return [dev_by_id()[i] for i in ids]


@needs_dev
def test_dev_set_exec_events():
    seen = {"exec": 0, "portforward": 0}
    commands = set()
    for raw, ev in dev_events():
        ref = raw.get("objectRef") or {}
        x = parse_exec(ev)
        if ref.get("resource") != "pods" or ref.get("subresource") not in ("exec", "attach", "portforward"):
            assert x is None
            continue
        assert x is not None and (x.kind, x.namespace, x.pod) == (ref["subresource"], ref["namespace"], ref["name"])
        # The path segment and objectRef agree.
        assert raw["requestURI"].split("?")[0].endswith(f"/{x.namespace}/pods/{x.pod}/{x.kind}")
        seen[x.kind] += 1
        if x.kind == "exec":
            assert x.command and x.container and x.stdin and x.tty
            commands.add(x.command)
        else:
            assert x.ports == ()  # kubectl port-forward sends ports in SPDY headers, not the URI
    print(f"\ndev-scenarios stream requests: {seen}; distinct commands: {sorted(commands)}")
    assert seen == {"exec": 23, "portforward": 8}
    assert ("cat", "/var/run/secrets/kubernetes.io/serviceaccount/token") in commands
    assert ("chroot", "/host", "/bin/sh") in commands


# =========================================================================== pod specs


def pod_body(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": name}, "spec": spec}


BASIC_SPEC = {"containers": [{"name": "app", "image": "nginx:1.27"}]}


def template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"labels": {"app": "x"}}, "spec": spec}


@pytest.mark.parametrize(
    ("resource", "body", "kind"),
    [
        ("deployments", {"kind": "Deployment", "spec": {"template": template(BASIC_SPEC)}}, "Deployment"),
        ("daemonsets", {"kind": "DaemonSet", "spec": {"template": template(BASIC_SPEC)}}, "DaemonSet"),
        ("statefulsets", {"spec": {"template": template(BASIC_SPEC)}}, "StatefulSet"),
        ("replicasets", {"spec": {"template": template(BASIC_SPEC)}}, "ReplicaSet"),
        ("replicationcontrollers", {"spec": {"template": template(BASIC_SPEC)}}, "ReplicationController"),
        ("jobs", {"spec": {"template": template(BASIC_SPEC)}}, "Job"),
        (
            "cronjobs",
            {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template(BASIC_SPEC)}}}},
            "CronJob",
        ),
        ("podtemplates", {"template": template(BASIC_SPEC)}, "PodTemplate"),
        ("pods", pod_body(BASIC_SPEC), "Pod"),
    ],
)
def test_every_workload_kind(resource, body, kind):
    [view] = workload_specs(event("create", resource, name="w", request=body))
    assert (view.owner_kind, view.namespace, view.name) == (kind, "default", "w")
    assert view.containers == (ContainerView(name="app", image="nginx:1.27", kind="container"),)


def test_cronjob_needs_the_job_template_path():
    body = {"spec": {"template": template(BASIC_SPEC)}}  # a Job-shaped body sent as a CronJob
    assert workload_specs(event("create", "cronjobs", request=body)) == []


def test_daemonset_with_host_namespaces_paths_and_privileges():
    spec = {
        "hostNetwork": True,
        "hostPID": True,
        "hostIPC": True,
        "serviceAccountName": "agent",
        "securityContext": {"runAsUser": 1000, "runAsNonRoot": True},
        "volumes": [
            {"name": "root", "hostPath": {"path": "/"}},
            {"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}},
            {"name": "cfg", "configMap": {"name": "c"}},
        ],
        "initContainers": [{"name": "init", "image": "busybox", "securityContext": {"runAsUser": 0}}],
        "containers": [
            {
                "name": "agent",
                "image": "evil/agent:1",
                "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 9}],
                "securityContext": {
                    "privileged": True,
                    "allowPrivilegeEscalation": True,
                    "capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"], "drop": ["ALL"]},
                },
            },
            {"name": "sidecar", "image": "envoy", "securityContext": {"runAsNonRoot": False}},
        ],
    }
    [view] = workload_specs(
        event(
            "create",
            "daemonsets",
            namespace="kube-system",
            name="node-agent",
            request={"metadata": {"name": "node-agent"}, "spec": {"template": template(spec)}},
        )
    )
    assert (view.host_network, view.host_pid, view.host_ipc) == (True, True, True)
    assert view.host_paths == ("/", "/var/run/docker.sock")
    assert view.service_account == "agent"
    init, agent, sidecar = view.containers
    assert (init.kind, init.run_as_user, init.run_as_non_root) == ("init", 0, True)  # override; inherited
    assert (agent.kind, agent.privileged, agent.allow_privilege_escalation) == ("container", True, True)
    assert agent.capabilities_add == ("SYS_ADMIN", "NET_ADMIN") and agent.host_ports == (8080,)
    assert (agent.run_as_user, agent.run_as_non_root) == (1000, True)  # from the pod
    assert (sidecar.run_as_user, sidecar.run_as_non_root, sidecar.privileged) == (1000, False, False)
    assert view.images == ("busybox", "evil/agent:1", "envoy")


def test_ephemeral_container_subresource_reports_only_the_ephemeral_containers():
    body = pod_body(
        {
            "hostPID": True,
            "containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": True}}],
            "ephemeralContainers": [
                {
                    "name": "debugger-x1",
                    "image": "busybox",
                    "targetContainerName": "app",
                    "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}},
                }
            ],
        },
        name="web-1",
    )
    for verb in ("update", "patch"):
        [view] = workload_specs(event(verb, "pods", name="web-1", subresource="ephemeralcontainers", request=body))
        assert view.name == "web-1" and view.host_pid
        assert [(c.name, c.kind, c.capabilities_add) for c in view.containers] == [
            ("debugger-x1", "ephemeral", ("SYS_PTRACE",))
        ]


def test_ephemeral_patch_falls_back_to_the_response_for_a_json_patch():
    json_patch = [{"op": "add", "path": "/spec/ephemeralContainers/-", "value": {"name": "dbg", "image": "alpine"}}]
    response = pod_body(
        {"containers": [{"name": "app", "image": "nginx"}], "ephemeralContainers": [{"name": "dbg", "image": "alpine"}]}
    )
    [view] = workload_specs(
        event("patch", "pods", name="p", subresource="ephemeralcontainers", request=json_patch, response=response)
    )
    assert [(c.name, c.kind) for c in view.containers] == [("dbg", "ephemeral")]


def test_request_body_wins_and_response_is_only_a_fallback():
    request = pod_body({"containers": [{"name": "from-request", "image": "a"}]})
    response = pod_body({"containers": [{"name": "from-response", "image": "b"}]})
    [view] = workload_specs(event("create", "pods", request=request, response=response))
    assert view.containers[0].name == "from-request"
    [view] = workload_specs(event("create", "pods", response=response))
    assert view.containers[0].name == "from-response"


def test_partial_patch_reports_what_it_sets():
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "securityContext": {"privileged": True}}]}}}}
    [view] = workload_specs(event("patch", "deployments", name="web", request=patch))
    assert view.containers == (ContainerView(name="app", image="", kind="container", privileged=True),)
    assert workload_specs(event("patch", "deployments", name="web", request={"spec": {"replicas": 3}})) == []


@pytest.mark.parametrize(
    "e",
    [
        event("get", "pods", name="p", response=pod_body(BASIC_SPEC)),
        event("delete", "pods", name="p", response=pod_body(BASIC_SPEC)),
        event("create", "pods", name="p"),  # Metadata level: no bodies
        event("update", "pods", name="p", subresource="status", request=pod_body(BASIC_SPEC)),
        event("create", "pods", name="p", subresource="binding", request={"target": {"name": "n"}}),
        event("update", "deployments", name="d", subresource="scale", request={"spec": {"replicas": 1}}),
        event("create", "configmaps", name="c", request={"data": {"spec": "x"}}),
    ],
)
def test_no_pod_spec(e):
    assert workload_specs(e) == []


def test_simulator_job_template_without_spec_level():
    body = {
        "kind": "Job",
        "spec": {"template": {"containers": [{"name": "main", "image": "img"}], "serviceAccountName": "backend"}},
    }
    [view] = workload_specs(event("create", "jobs", request=body))
    assert view.service_account == "backend" and view.containers[0].image == "img"


# --------------------------------------------------------------------------- malformed bodies

JUNK: list[Any] = [None, True, 0, -1, 1.5, "x", "", [], {}, [None], [1, "a"], {"a": None}]

RICH_POD = pod_body(
    {
        "hostNetwork": True,
        "serviceAccountName": "sa",
        "securityContext": {"runAsUser": 0, "runAsNonRoot": False},
        "volumes": [{"name": "v", "hostPath": {"path": "/etc"}}],
        "containers": [
            {
                "name": "c",
                "image": "i",
                "ports": [{"hostPort": 80}],
                "securityContext": {
                    "privileged": True,
                    "allowPrivilegeEscalation": True,
                    "runAsUser": 1,
                    "capabilities": {"add": ["SYS_ADMIN"]},
                },
            }
        ],
        "initContainers": [{"name": "i", "image": "i"}],
        "ephemeralContainers": [{"name": "e", "image": "e"}],
    }
)


def subtree_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += subtree_paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += subtree_paths(child, (*prefix, index))
    return paths


def replaced(body: Any, path: tuple[Any, ...], junk: Any) -> Any:
    body = copy.deepcopy(body)
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = junk
    return body


def run_all(e: AuditEvent) -> None:
    for view in workload_specs(e):
        assert isinstance(view.host_paths, tuple) and all(isinstance(p, str) for p in view.host_paths)
        for c in view.containers:
            assert isinstance(c.name, str) and isinstance(c.image, str) and isinstance(c.privileged, bool)
            assert c.run_as_user is None or (isinstance(c.run_as_user, int) and not isinstance(c.run_as_user, bool))
            assert c.run_as_non_root is None or isinstance(c.run_as_non_root, bool)
            assert all(isinstance(x, str) for x in c.capabilities_add)
            assert all(type(x) is int for x in c.host_ports)
    rbac_rules(e)
    binding(e)
    parse_exec(e)


def test_every_subtree_replaced_by_junk_never_raises():
    wrappers = {
        "pods": lambda b: b,
        "deployments": lambda b: {"spec": {"template": b}},
        "cronjobs": lambda b: {"spec": {"jobTemplate": {"spec": {"template": b}}}},
    }
    checked = 0
    for resource, wrap in wrappers.items():
        body = wrap(RICH_POD)
        for path in subtree_paths(body):
            for junk in JUNK:
                for verb, sub in (("create", ""), ("patch", "ephemeralcontainers")):
                    if sub and resource != "pods":
                        continue
                    run_all(event(verb, resource, subresource=sub, request=replaced(body, path, junk)))
                    checked += 1
    assert checked > 1000


@pytest.mark.parametrize("junk", JUNK)
def test_junk_as_the_whole_body(junk):
    for resource in ("pods", "daemonsets", "cronjobs", "roles", "clusterrolebindings"):
        run_all(event("create", resource, request=junk, response=junk))


def test_wrong_types_are_dropped_not_coerced():
    body = pod_body(
        {
            "hostNetwork": "true",
            "hostPID": 1,
            "serviceAccountName": ["x"],
            "securityContext": {"runAsUser": True},
            "volumes": [{"hostPath": "/"}, {"hostPath": {"path": 5}}, "vol", {"hostPath": {"path": "/proc"}}],
            "containers": [
                "not-a-container",
                None,
                {
                    "name": 5,
                    "image": ["x"],
                    "securityContext": {
                        "privileged": "true",
                        "runAsUser": "0",
                        "runAsNonRoot": 1,
                        "allowPrivilegeEscalation": "yes",
                        "capabilities": {"add": "SYS_ADMIN"},
                    },
                    "ports": [{"hostPort": "80"}, {"hostPort": True}, {"hostPort": 0}, 7],
                },
                {"name": "ok", "image": "img", "securityContext": {"capabilities": {"add": ["NET_RAW", 7, None, ""]}}},
            ],
            "initContainers": {"name": "not-a-list"},
        }
    )
    [view] = workload_specs(event("create", "pods", request=body))
    assert (view.host_network, view.host_pid, view.service_account, view.host_paths) == (False, False, "", ("/proc",))
    bad, ok = view.containers
    assert bad == ContainerView(name="", image="", kind="container")
    assert ok.capabilities_add == ("NET_RAW",)


# --------------------------------------------------------------------------- real fixtures


@needs_falco
def test_falco_privileged_second_container():
    for fixture in (
        "create_nginx_pod_privileged_2nd_container.json",
        "create_nginx_pod_no_secctx_1st_container_privileged_2nd_container.json",
    ):
        [view] = workload_specs(falco(fixture))
        assert view.owner_kind == "Pod" and view.namespace == "default"
        assert [(c.name, c.image, c.privileged) for c in view.containers] == [
            ("nginx1", "nginx", False),
            ("mysql", "mysql:latest", True),
        ]


@needs_falco
def test_falco_sensitive_and_unsensitive_mounts():
    [view] = workload_specs(falco("create_nginx_pod_sensitive_mount.json"))
    assert view.host_paths == ("/etc",)
    assert workload_specs(falco("create_nginx_pod_unsensitive_mount.json")) == []  # a `get` by the kubelet


@needs_falco
def test_falco_deployment_and_unprivileged_pod():
    [deployment] = workload_specs(falco("create_deployment.json"))
    assert (deployment.owner_kind, deployment.name, deployment.images) == ("Deployment", "nginx-deployment", ("nginx",))
    [pod] = workload_specs(falco("create_nginx_pod_unprivileged.json"))
    assert pod.name == "nginx-deployment-78f5d695bd-"  # generateName: the pod has no name yet
    assert not any(c.privileged for c in pod.containers) and pod.host_paths == ()


@needs_panther
def test_panther_events_never_raise():
    count = 0
    for line in PANTHER.read_text().splitlines():
        run_all(parse_event(line))
        count += 1
    assert count > 100


@needs_dev
def test_dev_set_workloads():
    kinds: dict[tuple[str, str], int] = {}
    for raw, ev in dev_events():
        run_all(ev)
        views = workload_specs(ev)
        ref = raw.get("objectRef") or {}
        if views:
            assert raw["verb"] in ("create", "update", "patch") and "requestObject" in raw
            key = (views[0].owner_kind, raw["verb"])
            kinds[key] = kinds.get(key, 0) + 1
        elif raw["verb"] == "create" and ref.get("resource") == "pods" and not ref.get("subresource"):
            assert "requestObject" not in raw  # every pod create with a body yields a spec
    print(f"\ndev-scenarios pod specs by (kind, verb): {kinds}")
    assert kinds[("Pod", "create")] == 513 and kinds[("Job", "create")] == 28


@needs_dev
def test_dev_scenario_privileged_hostpath_pod_in_kube_system():
    views = [v for ev in scenario_events("S05") for v in workload_specs(ev)]
    [view] = views
    assert (view.namespace, view.owner_kind, view.host_paths) == ("kube-system", "Pod", ("/",))
    assert [c.privileged for c in view.containers] == [True]


@needs_dev
def test_dev_scenario_host_network_host_pid_pod():
    [view] = [v for ev in scenario_events("S12") for v in workload_specs(ev)]
    assert (view.host_network, view.host_pid, view.host_ipc) == (True, True, False)
    assert view.images == ("docker.io/nicolaka/netshoot:v0.12",)


# =========================================================================== RBAC


def test_rbac_rules_hand_made():
    body = {
        "kind": "ClusterRole",
        "rules": [
            {"apiGroups": [""], "resources": ["pods/exec", "secrets"], "verbs": ["*"], "resourceNames": ["a"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            "junk",
            {"apiGroups": "core", "resources": [1, "nodes/proxy"], "verbs": None},
        ],
    }
    rules = rbac_rules(event("create", "clusterroles", namespace="", request=body))
    assert rules == [
        RbacRule(("*",), ("pods/exec", "secrets"), ("",), ("a",), ()),
        RbacRule(("get",), (), (), (), ("/metrics",)),
        RbacRule((), ("nodes/proxy",), (), (), ()),
    ]
    assert rules[0].api_groups == ("",)  # the core group is the empty string, kept
    assert rbac_rules(event("get", "clusterroles", namespace="", response=body)) == []
    assert rbac_rules(event("create", "configmaps", request=body)) == []
    assert rbac_rules(event("create", "roles", request={"rules": "all"})) == []


@needs_falco
@pytest.mark.parametrize(
    ("fixture", "wildcard"),
    [
        ("create_cluster_role_wildcard_resources.json", "resources"),
        ("create_cluster_role_wildcard_verbs.json", "verbs"),
        ("create_clusterrole.json", None),
    ],
)
def test_falco_cluster_roles(fixture, wildcard):
    rules = rbac_rules(falco(fixture))
    assert rules
    found = {field for rule in rules for field in ("resources", "verbs") if "*" in getattr(rule, field)}
    assert found == ({wildcard} if wildcard else set())


@needs_falco
def test_falco_cluster_role_write_privileges_and_patch():
    rules = rbac_rules(falco("create_cluster_role_write_privileges.json"))
    assert any("delete" in r.verbs for r in rules)
    patched = rbac_rules(falco("modify_cluster_role_node_problem_detector.json"))
    assert RbacRule(("patch",), ("nodes/status",), ("",), (), ()) in patched
    assert rbac_rules(falco("delete_clusterrole.json")) == []


def test_binding_hand_made_and_patch_fallback():
    body = {
        "kind": "RoleBinding",
        "metadata": {"name": "rb", "namespace": "team"},
        "roleRef": {"kind": "ClusterRole", "name": "admin", "apiGroup": "rbac.authorization.k8s.io"},
        "subjects": [
            {"kind": "User", "name": "bob"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "cicd"},
            "junk",
            {"kind": 3},
        ],
    }
    b = binding(event("create", "rolebindings", namespace="team", request=body))
    assert b == Binding(
        "RoleBinding",
        "team",
        "rb",
        "ClusterRole",
        "admin",
        (Subject("User", "bob", ""), Subject("ServiceAccount", "ci", "cicd"), Subject("", "", "")),
    )
    # A merge patch that only changes subjects: roleRef (immutable) comes from the response.
    patch = {"subjects": [{"kind": "Group", "name": "system:masters"}]}
    p = binding(
        event(
            "patch",
            "clusterrolebindings",
            namespace="",
            name="crb",
            request=patch,
            response={
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": "old"}],
            },
        )
    )
    assert p == Binding(
        "ClusterRoleBinding", "", "crb", "ClusterRole", "cluster-admin", (Subject("Group", "system:masters", ""),)
    )
    assert binding(event("create", "roles", request=body)) is None
    assert binding(event("delete", "rolebindings", name="rb")) is None
    assert binding(event("create", "rolebindings", request={"roleRef": "x", "subjects": {}})) == Binding(
        "RoleBinding", "default", "", "", "", ()
    )


@needs_dev
def test_dev_scenario_cluster_admin_bound_to_service_account():
    [b] = [b for ev in scenario_events("S06") if (b := binding(ev))]
    assert (b.kind, b.role_kind, b.role_name) == ("ClusterRoleBinding", "ClusterRole", "cluster-admin")
    assert b.subjects == (Subject("ServiceAccount", "cluster-ops", "kube-system"),)
