"""Worker nodes: two managed node groups (on-demand and spot) that cluster-autoscaler grows and shrinks with the
day's load, kubelets (leases, status, watches, token requests), node registration (serving CSR approved by
eks:certificate-controller, cloud-controller-manager initialisation), scale-down drains and the managed node
group rolling upgrade run by eks:node-manager.

Kubelets authenticate with the node IAM role (aws-auth maps it to system:node:{{EC2PrivateDNSName}}): the
session is the instance id, and the instance profile's temporary key rotates every few hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from eksight.tools.simulator.emit import Who, user_fragment
from eksight.tools.simulator.model import VERSIONS, World
from eksight.tools.simulator.util import (
    DAY,
    HOUR,
    MINUTE,
    US,
    csr_request,
    iso_seconds,
    k8s_suffix,
    node_name,
    role_id,
    seeded,
    session_key,
    uuid4,
    weekday,
)
from eksight.tools.simulator.util import instance_id as new_instance_id

if TYPE_CHECKING:
    from eksight.tools.simulator.pods import Pod


@dataclass(eq=False)
class NodeGroup:
    name: str
    role: str
    role_id: str
    capacity: str
    instance_types: tuple[str, ...]
    minimum: int


@dataclass(eq=False)
class Node:
    name: str
    ip: str
    instance: str
    group: NodeGroup
    subnet: int
    start: int
    end: int
    kubelet: str  # version
    uid: str
    instance_type: str
    tag: str = ""
    cordoned: bool = False
    pods: list[Pod] = field(default_factory=list)
    _who: dict[int, Who] = field(default_factory=dict)

    def alive(self, t: int) -> bool:
        return self.start <= t < self.end


class Fleet:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = rng = seeded(world.seed, "nodes")
        created = world.start - rng.randrange(30 * DAY, 200 * DAY)
        stamp = datetime.fromtimestamp(created // US, UTC).strftime("%Y%m%d%H%M%S")
        self.groups = [
            NodeGroup(
                f"general-{k8s_suffix(rng, 4)}",
                "",
                role_id(rng),
                "ON_DEMAND",
                ("m6i.2xlarge",),
                max(2, round(3 * world.scale)),
            ),
            NodeGroup(
                f"spot-{k8s_suffix(rng, 4)}",
                "",
                role_id(rng),
                "SPOT",
                ("m6a.2xlarge", "m5.2xlarge", "m5a.2xlarge", "m6i.2xlarge"),
                0,
            ),
        ]
        for index, group in enumerate(self.groups):
            serial = f"{rng.randrange(10**7, 10**8)}0000{index + 1}"
            group.role = f"{group.name.split('-')[0]}-eks-node-group-{stamp}{serial}"
        self.nodes: list[Node] = []
        self.live: list[Node] = []
        self._used_ips: set[str] = set()
        self._ready: dict[tuple[int, int, int], list[Node]] = {}
        self.base = max(3, round(9 * world.scale))

    # --- identities ------------------------------------------------------------------------------------------
    def kubelet(self, node: Node, t: int) -> Who:
        period = max(0, t - node.start) // (6 * HOUR)
        who = node._who.get(period)
        if who is None:
            w, group = self.w, node.group
            session = f"arn:aws:sts::{w.account}:assumed-role/{group.role}/{node.instance}"
            extra = {
                "accessKeyId": [session_key(self.rng)],
                "arn": [session],
                "canonicalArn": [f"arn:aws:iam::{w.account}:role/{group.role}"],
                "principalId": [f"{group.role_id}:{node.instance}"],
                "sessionName": [node.instance],
            }
            username = f"system:node:{node.name}"
            user = user_fragment(
                username,
                f"aws-iam-authenticator:{w.account}:{group.role_id}",
                ("system:bootstrappers", "system:nodes", "system:authenticated"),
                extra,
            )
            who = node._who[period] = Who(user, username, kubelet_ua(node.kubelet), node.ip, "")
        return who

    # --- node lifecycle --------------------------------------------------------------------------------------------
    def load(self, t: int) -> float:
        """Business load: a daily peak while Europe and the Americas overlap, quieter at weekends."""
        hour = (t % DAY) / HOUR
        peak = 0.5 + 0.5 * math.cos((hour - 17.5) / 24 * 2 * math.pi)
        return (0.55 + 0.6 * peak) * (0.75 if weekday(t) >= 5 else 1.0)

    def desired(self, t: int) -> int:
        return max(self.groups[0].minimum + 1, round(self.base * self.load(t)))

    def start(self) -> None:
        w, rng = self.w, self.rng
        for i in range(self.desired(w.start)):
            group = self.groups[0] if i < self.groups[0].minimum + 1 else self.groups[1]
            self._add(group, w.start - rng.randrange(HOUR, 20 * DAY), joined=False)
        w.schedule(w.start + rng.randrange(MINUTE, 10 * MINUTE), self._autoscale)
        if w.node_upgrade_at is not None:
            w.schedule(w.node_upgrade_at, self._rolling_upgrade, 0)

    def _add(self, group: NodeGroup, t: int, joined: bool = True, tag: str = "") -> Node:
        w, rng = self.w, self.rng
        subnet = rng.randrange(3)
        ip = w.subnet_ip(rng, subnet)
        while ip in self._used_ips:
            ip = w.subnet_ip(rng, subnet)
        self._used_ips.add(ip)
        upgraded = w.node_upgrade_at is not None and t >= w.node_upgrade_at
        version = VERSIONS["1.30" if upgraded else "1.29"]["kubelet"]
        node = Node(
            node_name(ip, w.region),
            ip,
            new_instance_id(rng),
            group,
            subnet,
            t,
            w.end,
            version,
            uuid4(rng),
            rng.choice(group.instance_types),
            tag=tag,
        )
        self.nodes.append(node)
        self.live.append(node)
        w.schedule(max(t, w.start), self._kubelet_loop, node)
        if joined and t >= w.start:
            w.schedule(t, self._join, node)
        else:
            w.pods.node_ready(node, w.start, existing=True)
        return node

    def ready(self, t: int, group: NodeGroup | None = None) -> list[Node]:
        """Schedulable nodes (memoised for a few seconds of simulated time: placement asks a lot)."""
        key = (t // (5 * US), id(group), len(self.live))
        found = self._ready.get(key)
        if found is None:
            self._ready.clear()
            found = self._ready[key] = [
                n
                for n in self.live
                if n.start + 90 * US <= t < n.end and not n.cordoned and (group is None or n.group is group)
            ]
        return found

    def _autoscale(self, t: int) -> None:
        w, rng = self.w, self.rng
        live = [n for n in self.live if n.end > t and not n.cordoned]
        want = self.desired(t) + (1 if rng.random() < 0.2 else 0)
        if want > len(live):
            for _ in range(min(want - len(live), 1 + int(w.scale))):
                tag = "new_node_join" if w.test_window and t >= w.learning_end else ""
                self._add(
                    self.groups[1] if rng.random() < 0.75 else self.groups[0],
                    t + rng.randrange(70 * US, 150 * US),
                    tag=tag,
                )
        elif want < len(live) - 1:
            spot = [n for n in live if n.group is self.groups[1] and n.start + 10 * MINUTE < t]
            autoscaler = w.addons.identity("cluster-autoscaler", t) if spot else None
            if autoscaler is not None:
                self._drain(rng.choice(spot), t, autoscaler)
        w.schedule(t + rng.randrange(8 * MINUTE, 13 * MINUTE), self._autoscale)

    def _drain(self, node: Node, t: int, autoscaler: Who | None, tag: str = "") -> None:
        """Cordon, evict the node's pods, terminate the instance; cloud-controller-manager then deletes the Node
        object and the garbage collectors remove its lease and pods. The drain is cluster-autoscaler's (its
        identity given) or else eks:node-manager's (managed node group update)."""
        w, em, rng = self.w, self.w.emitter, self.rng
        node.cordoned = True
        taint: dict[str, object]
        if autoscaler is not None:
            actor = autoscaler
            taint = {
                "spec": {
                    "taints": [{"key": "ToBeDeletedByClusterAutoscaler", "value": str(t // US), "effect": "NoSchedule"}]
                }
            }
        else:
            actor = w.control.eks(t, "eks:node-manager", public=True).using(ip=rng.choice(w.eks_public_ips))
            taint = {"spec": {"unschedulable": True}}
        em.event(t, actor, "patch", "nodes", "", node.name, level="Request", req=taint, tag=tag)
        done = w.pods.evict_node(node, t + rng.randrange(US, 5 * US), actor, tag)
        gone = max(done, t) + rng.randrange(40 * US, 150 * US)
        node.end = gone
        w.schedule(gone, self._removed, node, tag)

    def _removed(self, t: int, node: Node, tag: str) -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        if node in self.live:
            self.live.remove(node)
        ccm = w.control.eks(t, "eks:cloud-controller-manager")
        em.event(t + rng.randrange(20 * US, 90 * US), ccm, "delete", "nodes", "", node.name, tag=tag)
        gc = w.control.controller(t, "generic-garbage-collector")
        em.event(t + rng.randrange(95 * US, 130 * US), gc, "delete", "leases", "kube-node-lease", node.name, tag=tag)

    def _rolling_upgrade(self, t: int, index: int) -> None:
        """Managed node group update: surge a node with the new AMI, then cordon and drain an old one."""
        w, rng = self.w, self.rng
        tag = "managed_nodegroup_rolling_upgrade"
        old = [n for n in self.live if n.kubelet.startswith("v1.29") and not n.cordoned and n.end > t]
        if not old:
            return
        victim = old[0] if index % 2 == 0 else rng.choice(old)
        self._add(victim.group, t + rng.randrange(60 * US, 120 * US), tag=tag)
        self._drain(victim, t + 4 * MINUTE, None, tag=tag)
        w.schedule(t + rng.randrange(7 * MINUTE, 11 * MINUTE), self._rolling_upgrade, index + 1)

    # --- registration ----------------------------------------------------------------------------------------------
    def _join(self, t: int, node: Node) -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        tag = node.tag
        kubelet = self.kubelet(node, t)
        csr = f"csr-{k8s_suffix(rng, 5)}"
        spec = {
            "request": csr_request(rng, f"system:node:{node.name}", ("system:nodes",)),
            "signerName": "kubernetes.io/kubelet-serving",
            "usages": ["digital signature", "server auth"],
        }
        em.event(
            t,
            kubelet,
            "create",
            "certificatesigningrequests",
            level="Request",
            tag=tag,
            req={
                "kind": "CertificateSigningRequest",
                "apiVersion": "certificates.k8s.io/v1",
                "metadata": {"generateName": "csr-"},
                "spec": spec,
            },
        )
        approver = w.control.eks(t, "eks:certificate-controller")
        em.event(t + 180_000, approver, "get", "certificatesigningrequests", "", csr, tag=tag)
        em.event(t + 420_000, approver, "update", "certificatesigningrequests", "", csr, "approval", tag=tag)
        signer = w.control.controller(t, "certificate-controller")
        em.event(t + 900_000, signer, "update", "certificatesigningrequests", "", csr, "status", tag=tag)
        labels = {
            "kubernetes.io/hostname": node.name,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "node.kubernetes.io/instance-type": node.instance_type,
            "topology.kubernetes.io/region": w.region,
            "topology.kubernetes.io/zone": f"{w.region}{'abc'[node.subnet]}",
            "eks.amazonaws.com/nodegroup": node.group.name,
            "eks.amazonaws.com/capacityType": node.group.capacity,
        }
        metadata = {"name": node.name, "labels": labels}
        body = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": metadata,
            "spec": {
                "taints": [
                    {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}
                ]
            },
        }
        em.event(
            t + 1_300_000,
            kubelet,
            "create",
            "nodes",
            req=body,
            resp={**body, "metadata": {**metadata, "uid": node.uid, "resourceVersion": em.rv(t)}},
            tag=tag,
        )
        em.event(t + 1_900_000, kubelet, "create", "leases", "kube-node-lease", query="timeout=10s", tag=tag)
        em.event(
            t + 2_400_000,
            kubelet,
            "patch",
            "nodes",
            "",
            node.name,
            "status",
            level="Request",
            req=_status_patch(t + 2 * US, ready=False),
            tag=tag,
        )
        ccm = w.control.eks(t, "eks:cloud-controller-manager")
        em.event(
            t + 3_100_000,
            ccm,
            "patch",
            "nodes",
            "",
            node.name,
            level="Request",
            tag=tag,
            req={"spec": {"providerID": f"aws:///{w.region}{'abc'[node.subnet]}/{node.instance}", "taints": None}},
        )
        em.event(t + 3_300_000, ccm, "patch", "nodes", "", node.name, "status", tag=tag)
        vpc = w.control.eks(t, "eks:vpc-resource-controller")
        em.event(
            t + rng.randrange(4 * US, 9 * US),
            vpc,
            "patch",
            "nodes",
            "",
            node.name,
            level="Request",
            tag=tag,
            req={"metadata": {"labels": {"vpc.amazonaws.com/has-trunk-attached": "false"}}},
        )
        controller = w.control.controller(t, "node-controller")
        em.event(t + rng.randrange(25 * US, 40 * US), controller, "patch", "nodes", "", node.name, tag=tag)
        w.pods.node_ready(node, t + rng.randrange(5 * US, 15 * US), tag=tag)

    # --- kubelet heartbeats ----------------------------------------------------------------------------------------
    def _kubelet_loop(self, t: int, node: Node) -> None:
        """One heartbeat step: lease renewal, and now and then a status update, a watch or a token request."""
        w, em, rng = self.w, self.w.emitter, self.rng
        if t >= node.end:
            return
        if t >= node.start + 3 * US:
            who = self.kubelet(node, t)
            em.event(t, who, "update", "leases", "kube-node-lease", node.name, query="timeout=10s")
            roll = rng.random()
            lease = w.every(10, "lease")
            if roll < lease / w.every(300, "status"):
                em.event(
                    t + rng.randrange(0, 5 * US),
                    who,
                    "patch",
                    "nodes",
                    "",
                    node.name,
                    "status",
                    level="Request",
                    req=_status_patch(t, ready=True),
                )
            if rng.random() < lease / w.every(450 / max(1, 2 + 0.5 * len(node.pods)), "bulk"):
                self._kubelet_watch(t + rng.randrange(0, 10 * US), node, who)
            if node.pods and rng.random() < lease * len(node.pods) / w.every(2880, "bulk"):
                pod = rng.choice(node.pods)
                w.pods.token_request(t + rng.randrange(0, 10 * US), pod, who)
        w.schedule(t + w.every(10, "lease") + rng.randrange(-300_000, 300_000), self._kubelet_loop, node)

    def _kubelet_watch(self, t: int, node: Node, who: Who) -> None:
        em, rng = self.w.emitter, self.rng
        pick = rng.randrange(6 + 2 * len(node.pods))
        if pick == 0:
            em.watch(t, who, "nodes", selector=f"fieldSelector=metadata.name%3D{node.name}")
        elif pick == 1:
            em.watch(t, who, "pods", selector=f"fieldSelector=spec.nodeName%3D{node.name}")
        elif pick < 6:
            em.watch(t, who, ("services", "runtimeclasses", "csidrivers", "nodes")[pick - 2])
        else:
            pod = node.pods[(pick - 6) // 2]
            resource, name = ("configmaps", "kube-root-ca.crt") if pick % 2 == 0 else pod.mounted()
            em.watch(t, who, resource, pod.namespace, selector=f"fieldSelector=metadata.name%3D{name}")


def kubelet_ua(version: str) -> str:
    commit = version.rpartition("-")[2]
    return f"kubelet/{version} (linux/amd64) kubernetes/{commit}"


def _status_patch(t: int, ready: bool) -> dict[str, object]:
    stamp = iso_seconds(t)
    conditions = [
        {"lastHeartbeatTime": stamp, "type": kind}
        for kind in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
    ]
    if not ready:
        conditions[-1].update({"status": "False", "reason": "KubeletNotReady", "lastTransitionTime": stamp})
    return {
        "status": {"$setElementOrder/conditions": [{"type": c["type"]} for c in conditions], "conditions": conditions}
    }
