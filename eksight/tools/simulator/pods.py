"""Pods and the controllers around them: what the API server sees when a ReplicaSet, DaemonSet, StatefulSet or
Job gets a pod (controller create with the full pod spec, scheduler binding, kubelet token request and status
updates, endpoint updates), when one goes away (delete or eviction, kubelet's final delete), and the bound
service-account tokens pods authenticate with (pod-name/pod-uid claims; node-name, node-uid and credential-id
once the control plane runs 1.30).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from eksight.tools.simulator.emit import Who, rbac_reason, user_fragment
from eksight.tools.simulator.model import App, World, rs_hash
from eksight.tools.simulator.util import HOUR, US, iso_seconds, k8s_suffix, seeded, stable_hash, uuid4

if TYPE_CHECKING:
    from eksight.tools.simulator.addons import AddonSpec
    from eksight.tools.simulator.nodes import Node

TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


@dataclass(eq=False)
class Deploy:
    """A pod owner: Deployment (via its current ReplicaSet), DaemonSet, StatefulSet or Job."""

    name: str
    namespace: str
    kind: str
    replicas: int
    sa: str
    containers: list[dict[str, Any]]
    ua: str = ""
    reason: str = ""
    host_network: bool = False
    general_only: bool = False
    app: App | None = None
    addon: AddonSpec | None = None
    on_start: Callable[..., None] | None = None
    volumes: list[dict[str, Any]] = field(default_factory=list)
    hash: str = ""
    uid: str = ""
    rs_uid: str = ""
    pods: list[Pod] = field(default_factory=list)
    service: str = ""
    slice_suffix: str = ""
    irsa: bool = False
    ordinal: int = 0
    spec_extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rs_name(self) -> str:
        return f"{self.name}-{self.hash}"


@dataclass(eq=False)
class Pod:
    name: str
    namespace: str
    uid: str
    ip: str
    node: Node
    start: int
    end: int
    owner: Deploy
    index: int = 0
    _who: dict[tuple[int, str], Who] = field(default_factory=dict)

    def mounted(self) -> tuple[str, str]:
        app = self.owner.app
        if app is not None:
            return ("secrets", app.secret) if stable_hash(self.name) % 2 else ("configmaps", app.configmap)
        return "configmaps", "kube-root-ca.crt"


class Pods:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = seeded(world.seed, "pods")
        self.sa_uids: dict[str, str] = {}
        self.deploys: list[Deploy] = []
        self.daemonsets: list[Deploy] = []

    # --- identities ---------------------------------------------------------------------------------------------
    def who(self, pod: Pod, t: int) -> Who:
        """The pod's bound service-account token (refreshed hourly; richer claims from Kubernetes 1.30)."""
        w = self.w
        upgraded = w.upgrade_at is not None and t >= w.upgrade_at
        key = ((t - pod.start) // HOUR, "1.30") if upgraded else (0, "1.29")
        who = pod._who.get(key)
        if who is None:
            deploy = pod.owner
            username = f"system:serviceaccount:{pod.namespace}:{deploy.sa}"
            uid = self.sa_uids.setdefault(username, uuid4(self.rng))
            extra = {
                "authentication.kubernetes.io/pod-name": [pod.name],
                "authentication.kubernetes.io/pod-uid": [pod.uid],
            }
            if upgraded:
                extra = {
                    "authentication.kubernetes.io/credential-id": [f"JTI={uuid4(self.rng)}"],
                    "authentication.kubernetes.io/node-name": [pod.node.name],
                    "authentication.kubernetes.io/node-uid": [pod.node.uid],
                    **extra,
                }
            user = user_fragment(
                username,
                uid,
                ("system:serviceaccounts", f"system:serviceaccounts:{pod.namespace}", "system:authenticated"),
                extra,
            )
            reason = deploy.reason or rbac_reason(
                "RoleBinding",
                deploy.sa,
                "Role",
                deploy.sa,
                "ServiceAccount",
                f"{deploy.sa}/{pod.namespace}",
                pod.namespace,
            )
            ua = deploy.ua or f"{deploy.name}/v0.0.0 (linux/amd64) kubernetes/$Format"
            if "{" in ua:
                ua = ua.format(**w.version(t))
            who = pod._who[key] = Who(user, username, ua, pod.ip, reason)
        return who

    # --- registry -----------------------------------------------------------------------------------------------
    def add(self, deploy: Deploy) -> Deploy:
        rng = self.rng
        deploy.uid = deploy.uid or uuid4(rng)
        deploy.hash = deploy.hash or rs_hash(rng)
        deploy.rs_uid = deploy.rs_uid or uuid4(rng)
        deploy.slice_suffix = k8s_suffix(rng, 5)
        (self.daemonsets if deploy.kind == "DaemonSet" else self.deploys).append(deploy)
        return deploy

    def pod_name(self, deploy: Deploy) -> str:
        if deploy.kind == "Deployment":
            return f"{deploy.rs_name}-{k8s_suffix(self.rng, 5)}"
        if deploy.kind == "StatefulSet":
            deploy.ordinal = (deploy.ordinal + 1) % max(1, deploy.replicas)
            return f"{deploy.name}-{deploy.ordinal}"
        return f"{deploy.name}-{k8s_suffix(self.rng, 5)}"

    def place(
        self, deploy: Deploy, t: int, node: Node | None = None, existing: bool = False, index: int = 0, tag: str = ""
    ) -> Pod | None:
        """A pod of `deploy` on `node` (or a ready node), already running (`existing`) or created now."""
        w, rng = self.w, self.rng
        if node is None:
            fleet = w.fleet
            nodes = fleet.ready(t, fleet.groups[0]) if deploy.general_only else fleet.ready(t)
            nodes = nodes or fleet.ready(t) or [n for n in fleet.live if n.end > t]
            if not nodes:
                return None
            node = rng.choice(nodes)
        ip = node.ip if deploy.host_network else w.subnet_ip(rng, node.subnet)
        start = min(node.start, w.start) if existing else t
        pod = Pod(self.pod_name(deploy), deploy.namespace, uuid4(rng), ip, node, start, node.end, deploy, index)
        node.pods.append(pod)
        deploy.pods.append(pod)
        if not existing:
            self._created(t, pod, tag)
        if deploy.on_start is not None:
            deploy.on_start(max(t, w.start), pod, existing)
        return pod

    # --- lifecycle events ---------------------------------------------------------------------------------------
    def creator(self, deploy: Deploy, t: int) -> Who:
        control = self.w.control
        name = {
            "Deployment": "replicaset-controller",
            "DaemonSet": "daemon-set-controller",
            "StatefulSet": "statefulset-controller",
            "Job": "job-controller",
        }[deploy.kind]
        return control.controller(t, name)

    def pod_body(self, pod: Pod) -> dict[str, Any]:
        deploy = pod.owner
        owner_kind = {"Deployment": "ReplicaSet"}.get(deploy.kind, deploy.kind)
        owner_name = deploy.rs_name if deploy.kind == "Deployment" else deploy.name
        labels = {"app.kubernetes.io/name": deploy.name}
        if deploy.kind == "Deployment":
            labels["pod-template-hash"] = deploy.hash
        metadata: dict[str, Any] = {
            "namespace": pod.namespace,
            "creationTimestamp": None,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1" if owner_kind != "Job" else "batch/v1",
                    "kind": owner_kind,
                    "name": owner_name,
                    "uid": deploy.rs_uid if deploy.kind == "Deployment" else deploy.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        if deploy.kind == "StatefulSet":
            metadata["name"] = pod.name
        else:
            metadata["generateName"] = pod.name.rpartition("-")[0] + "-"
        token = {
            "name": f"kube-api-access-{pod.uid[:5]}",
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
        spec: dict[str, Any] = {
            "volumes": [*deploy.volumes, token],
            "containers": deploy.containers,
            "restartPolicy": "Never" if deploy.kind == "Job" else "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": deploy.sa,
            "serviceAccount": deploy.sa,
            "securityContext": {},
            "schedulerName": "default-scheduler",
            "tolerations": TOLERATIONS,
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        }
        spec.update(deploy.spec_extra)
        if deploy.host_network:
            spec["hostNetwork"] = True
            spec["dnsPolicy"] = "ClusterFirstWithHostNet"
        if deploy.kind == "DaemonSet":
            spec["affinity"] = {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [pod.node.name]}]}
                        ]
                    }
                }
            }
            spec["priorityClassName"] = "system-node-critical"
        return {"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "spec": spec}

    def _created(self, t: int, pod: Pod, tag: str = "") -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        deploy = pod.owner
        body = self.pod_body(pod)
        meta = {
            **body["metadata"],
            "name": pod.name,
            "uid": pod.uid,
            "resourceVersion": em.rv(t),
            "creationTimestamp": iso_seconds(t),
        }
        response = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": body["spec"],
            "status": {"phase": "Pending", "qosClass": "Burstable"},
        }
        webhook = "true" if deploy.irsa else "false"
        annotations = {
            "pod-security.kubernetes.io/enforce-policy": "privileged:latest",
            "mutation.webhook.admission.k8s.io/round_0_index_0": '{"configuration":"pod-identity-webhook","webhook":"iam-for-pods.amazonaws.com",'
            f'"mutated":{webhook}}}',
        }
        em.event(
            t,
            self.creator(deploy, t),
            "create",
            "pods",
            pod.namespace,
            req=body,
            resp=response,
            annotations=annotations,
            tag=tag,
        )
        scheduler = w.control.scheduler(t)
        bound = t + rng.randrange(8_000, 60_000)
        em.event(bound, scheduler, "create", "pods", pod.namespace, pod.name, "binding", tag=tag)
        kubelet = w.fleet.kubelet(pod.node, bound)
        started = bound + rng.randrange(300_000, 1_500_000)
        self.token_request(started, pod, kubelet, tag)
        em.event(
            started + 200_000,
            kubelet,
            "patch",
            "pods",
            pod.namespace,
            pod.name,
            "status",
            level="Request",
            req={"metadata": {"uid": pod.uid}, "status": {"phase": "Pending", "podIP": pod.ip, "hostIP": pod.node.ip}},
            tag=tag,
        )
        running = started + rng.randrange(2 * US, 25 * US)
        em.event(
            running,
            kubelet,
            "patch",
            "pods",
            pod.namespace,
            pod.name,
            "status",
            level="Request",
            req={
                "metadata": {"uid": pod.uid},
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": iso_seconds(running)}],
                },
            },
            tag=tag,
        )
        self.endpoints(running + rng.randrange(20_000, 200_000), deploy, tag)

    def endpoints(self, t: int, deploy: Deploy, tag: str = "") -> None:
        if not deploy.service:
            return
        control, em = self.w.control, self.w.emitter
        em.event(
            t,
            control.controller(t, "endpointslice-controller"),
            "update",
            "endpointslices",
            deploy.namespace,
            f"{deploy.service}-{deploy.slice_suffix}",
            level="Metadata",
            tag=tag,
        )
        em.event(
            t + 15_000,
            control.controller(t, "endpoint-controller"),
            "update",
            "endpoints",
            deploy.namespace,
            deploy.service,
            level="Metadata",
            tag=tag,
        )

    def token_request(self, t: int, pod: Pod, kubelet: Who, tag: str = "") -> None:
        em = self.w.emitter
        em.event(t, kubelet, "create", "serviceaccounts", pod.namespace, pod.owner.sa, "token", tag=tag)
        if pod.owner.irsa:
            em.event(t + 30_000, kubelet, "create", "serviceaccounts", pod.namespace, pod.owner.sa, "token", tag=tag)

    def remove(self, t: int, pod: Pod, actor: Who | None = None, evict: bool = False, tag: str = "") -> None:
        """Delete (controller scale-down) or evict (drain) a pod; the kubelet finishes the graceful delete."""
        w, em, rng = self.w, self.w.emitter, self.rng
        if pod.end <= t:
            return
        actor = actor or self.creator(pod.owner, t)
        if evict:
            em.event(t, actor, "create", "pods", pod.namespace, pod.name, "eviction", tag=tag)
        else:
            em.event(t, actor, "delete", "pods", pod.namespace, pod.name, tag=tag)
        kubelet = w.fleet.kubelet(pod.node, t)
        gone = t + rng.randrange(2 * US, 30 * US)
        em.event(
            gone,
            kubelet,
            "patch",
            "pods",
            pod.namespace,
            pod.name,
            "status",
            level="Request",
            tag=tag,
            req={
                "metadata": {"uid": pod.uid},
                "status": {
                    "phase": "Succeeded" if pod.owner.kind == "Job" else "Running",
                    "conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": iso_seconds(gone)}],
                },
            },
        )
        em.event(gone + rng.randrange(50_000, 900_000), kubelet, "delete", "pods", pod.namespace, pod.name, tag=tag)
        self.endpoints(t + rng.randrange(30_000, 300_000), pod.owner, tag)
        pod.end = t
        if pod in pod.node.pods:
            pod.node.pods.remove(pod)
        if pod in pod.owner.pods:
            pod.owner.pods.remove(pod)

    # --- nodes -------------------------------------------------------------------------------------------------
    def node_ready(self, node: Node, t: int, existing: bool = False, tag: str = "") -> None:
        """DaemonSet pods for a node (created by daemon-set-controller when it joins)."""
        for ds in self.daemonsets:
            if ds.general_only and node.group is not self.w.fleet.groups[0]:
                continue
            self.place(ds, t + self.rng.randrange(0, 4 * US), node, existing, tag=tag)

    def evict_node(self, node: Node, t: int, actor: Who, tag: str = "") -> int:
        """Evict every pod but DaemonSet pods; their controllers recreate them elsewhere. Returns when done."""
        rng = self.rng
        when = t
        for pod in [p for p in node.pods if p.owner.kind not in ("DaemonSet", "Job")]:
            when += rng.randrange(100_000, 2 * US)
            self.remove(when, pod, actor, evict=True, tag=tag)
            self.w.schedule(when + rng.randrange(300_000, 3 * US), self._replace, pod.owner, tag)
        return when

    def _replace(self, t: int, deploy: Deploy, tag: str) -> None:
        self.place(deploy, t, tag=tag)
