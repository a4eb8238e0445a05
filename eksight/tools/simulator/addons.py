"""Cluster add-ons, declared as data: EKS-managed (VPC CNI, kube-proxy, CoreDNS, EBS CSI, Pod Identity agent)
and the usual platform stack (AWS Load Balancer Controller, cluster-autoscaler, metrics-server, Argo CD,
cert-manager, kube-prometheus-stack, External Secrets, Fluent Bit). Each pod of an add-on renews its
leader-election leases, re-opens its informers' watches and runs its periodic requests, with its own service
account token, user agent and pod address.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from eksight.tools.simulator.emit import Who, forbidden_message, rbac_reason
from eksight.tools.simulator.model import World
from eksight.tools.simulator.pods import Deploy, Pod, Pods
from eksight.tools.simulator.util import US, seeded

ALL_NS = ""  # a cluster-wide watch
TEAMS = "{teams}"  # expands to one watch per team namespace


@dataclass
class AddonSpec:
    name: str
    namespace: str
    kind: str
    replicas: int
    image: str
    ua: str
    sa: str = ""
    host_network: bool = False
    general_only: bool = True
    irsa: bool = False
    leases: list[tuple[str, str, float, str]] = field(default_factory=list)  # (name, namespace, retry s, ua)
    watches: list[tuple[str, str, str]] = field(default_factory=list)  # (resource, namespace, selector)
    polls: list[tuple[str, str, str, str, float]] = field(default_factory=list)  # (verb, resource, ns, name, s)
    denied: list[tuple[str, str, float]] = field(default_factory=list)  # RBAC it lacks: (verb, resource, retry s)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    security: dict[str, Any] = field(default_factory=dict)


def _mount(name: str, path: str, host: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"name": name, "hostPath": {"path": host, "type": ""}}, {"name": name, "mountPath": path, "readOnly": True}


def catalogue(w: World) -> list[AddonSpec]:
    v, e = w.version(w.start), w.eks_ecr
    fmt = "(linux/amd64) kubernetes/$Format"
    argo = "v2.11.7+e4a0246"
    cm = "(linux/amd64) cert-manager/a4a7ba6"
    controller_watches = [
        (r, ALL_NS, "")
        for r in (
            "deployments",
            "replicasets",
            "pods",
            "services",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "ingresses",
            "horizontalpodautoscalers",
            "cronjobs",
            "jobs",
            "statefulsets",
            "daemonsets",
            "rolebindings",
            "roles",
            "networkpolicies",
            "poddisruptionbudgets",
            "endpoints",
            "applications",
            "namespaces",
        )
    ]
    ne = [_mount("proc", "/host/proc", "/proc"), _mount("sys", "/host/sys", "/sys"), _mount("root", "/host/root", "/")]
    fb = [_mount("varlog", "/var/log", "/var/log"), _mount("runlogjournal", "/run/log/journal", "/run/log/journal")]
    return [
        AddonSpec(
            "coredns",
            "kube-system",
            "Deployment",
            2,
            f"{e}/eks/coredns:{v['coredns']}-eksbuild.2",
            f"coredns/v0.0.0 {fmt}",
            watches=[("endpointslices", ALL_NS, ""), ("services", ALL_NS, ""), ("namespaces", ALL_NS, "")],
        ),
        AddonSpec(
            "aws-node",
            "kube-system",
            "DaemonSet",
            0,
            f"{e}/amazon-k8s-cni:v1.18.3-eksbuild.2",
            f"aws-node/v1.18.3 {fmt}",
            host_network=True,
            general_only=False,
            irsa=True,
            watches=[
                ("pods", ALL_NS, "fieldSelector=spec.nodeName%3D{node}"),
                ("eniconfigs", ALL_NS, ""),
                ("nodes", ALL_NS, "fieldSelector=metadata.name%3D{node}"),
            ],
        ),
        AddonSpec(
            "kube-proxy",
            "kube-system",
            "DaemonSet",
            0,
            f"{e}/eks/kube-proxy:{v['proxy']}-minimal-eksbuild.2",
            "kube-proxy/{proxy} (linux/amd64) kubernetes/{proxy_commit}",
            host_network=True,
            general_only=False,
            watches=[
                ("endpointslices", ALL_NS, ""),
                ("services", ALL_NS, ""),
                ("nodes", ALL_NS, "fieldSelector=metadata.name%3D{node}"),
            ],
        ),
        AddonSpec(
            "ebs-csi-node",
            "kube-system",
            "DaemonSet",
            0,
            f"{e}/eks/aws-ebs-csi-driver:v1.31.0",
            f"aws-ebs-csi-driver/v1.31.0 {fmt}",
            sa="ebs-csi-node-sa",
            general_only=False,
        ),
        AddonSpec(
            "eks-pod-identity-agent",
            "kube-system",
            "DaemonSet",
            0,
            f"{e}/eks/eks-pod-identity-agent:0.1.10",
            f"eks-pod-identity-agent/0.1.10 {fmt}",
            host_network=True,
            general_only=False,
        ),
        AddonSpec(
            "ebs-csi-controller",
            "kube-system",
            "Deployment",
            2,
            f"{e}/eks/aws-ebs-csi-driver:v1.31.0",
            f"aws-ebs-csi-driver/v1.31.0 {fmt}",
            sa="ebs-csi-controller-sa",
            irsa=True,
            leases=[
                ("ebs-csi-aws-com", "kube-system", 5, f"csi-provisioner/v4.0.1 {fmt}"),
                ("external-attacher-leader-ebs-csi-aws-com", "kube-system", 5, f"csi-attacher/v4.5.1 {fmt}"),
                ("external-resizer-ebs-csi-aws-com", "kube-system", 5, f"csi-resizer/v1.10.1 {fmt}"),
                ("external-snapshotter-leader-ebs-csi-aws-com", "kube-system", 5, f"csi-snapshotter/v7.0.2 {fmt}"),
            ],
            watches=[
                (r, ALL_NS, "")
                for r in (
                    "persistentvolumeclaims",
                    "persistentvolumes",
                    "volumeattachments",
                    "csinodes",
                    "storageclasses",
                    "nodes",
                )
            ],
        ),
        AddonSpec(
            "aws-load-balancer-controller",
            "kube-system",
            "Deployment",
            2,
            "public.ecr.aws/eks/aws-load-balancer-controller:v2.7.2",
            f"aws-load-balancer-controller/v2.7.2 {fmt}",
            irsa=True,
            leases=[("aws-load-balancer-controller-leader", "kube-system", 2, "")],
            watches=[
                (r, ALL_NS, "")
                for r in (
                    "ingresses",
                    "services",
                    "endpointslices",
                    "targetgroupbindings",
                    "ingressclassparams",
                    "ingressclasses",
                    "pods",
                    "nodes",
                )
            ],
        ),
        AddonSpec(
            "cluster-autoscaler",
            "kube-system",
            "Deployment",
            1,
            f"registry.k8s.io/autoscaling/cluster-autoscaler:{v['ca']}",
            f"cluster-autoscaler/{v['ca']} {fmt}",
            irsa=True,
            leases=[("cluster-autoscaler", "kube-system", 2, "")],
            polls=[("update", "configmaps", "kube-system", "cluster-autoscaler-status", 10)],
            watches=[
                (r, ALL_NS, "")
                for r in (
                    "pods",
                    "nodes",
                    "poddisruptionbudgets",
                    "statefulsets",
                    "replicasets",
                    "daemonsets",
                    "csinodes",
                    "services",
                    "jobs",
                )
            ],
        ),
        AddonSpec(
            "metrics-server",
            "kube-system",
            "Deployment",
            2,
            "registry.k8s.io/metrics-server/metrics-server:v0.7.1",
            f"metrics-server/v0.7.1 {fmt}",
            watches=[
                ("nodes", ALL_NS, ""),
                ("pods", ALL_NS, ""),
                ("configmaps", "kube-system", "fieldSelector=metadata.name%3Dextension-apiserver-authentication"),
            ],
        ),
        AddonSpec(
            "argocd-application-controller",
            "argocd",
            "StatefulSet",
            1,
            f"quay.io/argoproj/argocd:{argo[:7]}",
            f"argocd-application-controller/{argo} {fmt}",
            watches=controller_watches,
            polls=[("patch", "applications", "argocd", "{app}", 180)],
        ),
        AddonSpec(
            "argocd-server",
            "argocd",
            "Deployment",
            1,
            f"quay.io/argoproj/argocd:{argo[:7]}",
            f"argocd-server/{argo} {fmt}",
            watches=[
                ("applications", "argocd", ""),
                ("appprojects", "argocd", ""),
                ("secrets", "argocd", ""),
                ("configmaps", "argocd", ""),
            ],
        ),
        AddonSpec(
            "argocd-repo-server",
            "argocd",
            "Deployment",
            1,
            f"quay.io/argoproj/argocd:{argo[:7]}",
            f"argocd-repo-server/{argo} {fmt}",
        ),
        AddonSpec(
            "argocd-redis",
            "argocd",
            "Deployment",
            1,
            "public.ecr.aws/docker/library/redis:7.0.15-alpine",
            "redis",
            sa="argocd-redis",
        ),
        AddonSpec(
            "cert-manager",
            "cert-manager",
            "Deployment",
            1,
            "quay.io/jetstack/cert-manager-controller:v1.14.5",
            f"cert-manager-controller/v1.14.5 {cm}",
            leases=[("cert-manager-controller", "kube-system", 15, "")],
            watches=[
                (r, ALL_NS, "")
                for r in ("certificates", "certificaterequests", "issuers", "clusterissuers", "secrets", "ingresses")
            ],
        ),
        AddonSpec(
            "cert-manager-cainjector",
            "cert-manager",
            "Deployment",
            1,
            "quay.io/jetstack/cert-manager-cainjector:v1.14.5",
            f"cert-manager-cainjector/v1.14.5 {cm}",
            leases=[("cert-manager-cainjector-leader-election", "kube-system", 15, "")],
            watches=[
                (r, ALL_NS, "")
                for r in (
                    "validatingwebhookconfigurations",
                    "mutatingwebhookconfigurations",
                    "customresourcedefinitions",
                    "apiservices",
                    "certificates",
                )
            ]
            + [("secrets", "cert-manager", "")],
        ),
        AddonSpec(
            "cert-manager-webhook",
            "cert-manager",
            "Deployment",
            1,
            "quay.io/jetstack/cert-manager-webhook:v1.14.5",
            f"cert-manager-webhook/v1.14.5 {cm}",
            watches=[("secrets", "cert-manager", "fieldSelector=metadata.name%3Dcert-manager-webhook-ca")],
        ),
        AddonSpec(
            "prometheus",
            "monitoring",
            "StatefulSet",
            1,
            "quay.io/prometheus/prometheus:v2.52.0",
            "Prometheus/2.52.0",
            sa="kube-prometheus-stack-prometheus",
            watches=[
                (r, ns, "") for ns in (TEAMS, "kube-system", "monitoring") for r in ("endpoints", "pods", "services")
            ]
            + [("nodes", ALL_NS, "")],
        ),
        AddonSpec(
            "kube-state-metrics",
            "monitoring",
            "Deployment",
            1,
            "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.12.0",
            f"kube-state-metrics/v2.12.0 {fmt}",
            watches=[
                (r, ALL_NS, "")
                for r in (
                    "pods",
                    "nodes",
                    "deployments",
                    "replicasets",
                    "daemonsets",
                    "statefulsets",
                    "jobs",
                    "cronjobs",
                    "services",
                    "endpoints",
                    "namespaces",
                    "configmaps",
                    "secrets",
                    "persistentvolumeclaims",
                    "persistentvolumes",
                    "horizontalpodautoscalers",
                    "ingresses",
                    "leases",
                    "storageclasses",
                )
            ],
        ),
        AddonSpec(
            "prometheus-operator",
            "monitoring",
            "Deployment",
            1,
            "quay.io/prometheus-operator/prometheus-operator:v0.74.0",
            "PrometheusOperator/0.74.0",
            watches=[(r, ALL_NS, "") for r in ("servicemonitors", "podmonitors", "prometheusrules", "namespaces")]
            + [("secrets", "monitoring", ""), ("statefulsets", "monitoring", "")],
            denied=[("list", "alertmanagerconfigs", 60)],
        ),  # chart upgraded, ClusterRole not: retries forever
        AddonSpec(
            "node-exporter",
            "monitoring",
            "DaemonSet",
            0,
            "quay.io/prometheus/node-exporter:v1.8.1",
            "node-exporter",
            sa="prometheus-node-exporter",
            host_network=True,
            general_only=False,
            volumes=[m[0] for m in ne],
            mounts=[m[1] for m in ne],
            security={"hostPID": True},
        ),
        AddonSpec(
            "fluent-bit",
            "amazon-cloudwatch",
            "DaemonSet",
            0,
            "public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.2.20240516",
            "fluent-bit/2.32.2",
            general_only=False,
            volumes=[m[0] for m in fb],
            mounts=[m[1] for m in fb],
            polls=[("get", "pods", "{node}", "", 600)],
        ),
        AddonSpec(
            "external-secrets",
            "external-secrets",
            "Deployment",
            1,
            "ghcr.io/external-secrets/external-secrets:v0.9.19",
            f"external-secrets/v0.9.19 {fmt}",
            irsa=True,
            leases=[("external-secrets-controller", "external-secrets", 15, "")],
            watches=[
                ("externalsecrets", ALL_NS, ""),
                ("secretstores", ALL_NS, ""),
                ("secrets", ALL_NS, "labelSelector=reconcile.external-secrets.io%2Fmanaged%3Dtrue"),
            ],
            polls=[("patch", "externalsecrets", "{team}", "{app}", 3600)],
        ),
    ]


class Addons:
    def __init__(self, world: World, pods: Pods) -> None:
        self.w = world
        self.pods = pods
        self.rng: random.Random = seeded(world.seed, "addons")
        self.deploys: dict[str, Deploy] = {}
        teams = [t.namespace for t in world.teams]
        for spec in catalogue(world):
            spec.sa = spec.sa or spec.name
            spec.watches = [(r, t, s) for r, ns, s in spec.watches for t in (teams if ns == TEAMS else [ns])]
            container: dict[str, Any] = {
                "name": spec.name,
                "image": spec.image,
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
                "imagePullPolicy": "IfNotPresent",
            }
            if spec.mounts:
                container["volumeMounts"] = spec.mounts
            if spec.host_network and spec.kind == "DaemonSet" and spec.name in ("aws-node", "kube-proxy"):
                container["securityContext"] = {"privileged": True}
            deploy = Deploy(
                spec.name,
                spec.namespace,
                spec.kind,
                spec.replicas,
                spec.sa,
                [container],
                ua=spec.ua,
                host_network=spec.host_network,
                general_only=spec.general_only,
                addon=spec,
                on_start=self._started,
                volumes=spec.volumes,
                irsa=spec.irsa,
                spec_extra=spec.security,
                reason=rbac_reason(
                    "ClusterRoleBinding",
                    spec.sa,
                    "ClusterRole",
                    spec.sa,
                    "ServiceAccount",
                    f"{spec.sa}/{spec.namespace}",
                ),
            )
            self.deploys[spec.name] = pods.add(deploy)
        self.argocd_apps = [f"{t.name}-{a.name}" for t in world.teams if t.deployer == "argocd" for a in t.apps]

    def start(self) -> None:
        for deploy in self.deploys.values():
            if deploy.kind != "DaemonSet":
                for index in range(deploy.replicas):
                    self.pods.place(deploy, self.w.start, existing=True, index=index)

    def identity(self, name: str, t: int) -> Who | None:
        deploy = self.deploys.get(name)
        pods = [p for p in deploy.pods if p.start <= t < p.end and t < p.node.end] if deploy else []
        return self.pods.who(pods[0], t) if pods else None

    # --- per-pod activity -------------------------------------------------------------------------------------------
    @staticmethod
    def _spec(pod: Pod) -> AddonSpec:
        spec = pod.owner.addon
        if spec is None:
            raise ValueError(f"{pod.owner.name} is not an add-on")
        return spec

    def _started(self, t: int, pod: Pod, existing: bool) -> None:
        w, rng = self.w, self.rng
        spec = self._spec(pod)
        for lease in spec.leases:
            w.schedule(t + rng.randrange(0, int(lease[2] * US) + 1), self._lease, pod, lease)
        if spec.watches:
            w.schedule(t + rng.randrange(0, 60 * US if not existing else 10 * 60 * US), self._watch, pod)
        for poll in spec.polls:
            w.schedule(t + rng.randrange(0, int(poll[4] * US) + 1), self._poll, pod, poll)
        for denied in spec.denied:
            w.schedule(t + rng.randrange(0, int(denied[2] * US) + 1), self._denied, pod, denied)

    @staticmethod
    def _alive(pod: Pod, t: int) -> bool:
        return t < pod.end and t < pod.node.end

    def _lease(self, t: int, pod: Pod, lease: tuple[str, str, float, str]) -> None:
        if not self._alive(pod, t):
            return
        w, rng = self.w, self.rng
        name, namespace, retry, ua = lease
        who = self.pods.who(pod, t)
        leader = next((p for p in pod.owner.pods if self._alive(p, t)), None) is pod
        if leader:
            w.emitter.event(t, who, "update", "leases", namespace, name, ua=ua or None)
        elif rng.random() < 0.5:
            w.emitter.event(t, who, "get", "leases", namespace, name, ua=ua or None)
        w.schedule(t + w.every(retry, "lease") + rng.randrange(-100_000, 100_000), self._lease, pod, lease)

    def _watch(self, t: int, pod: Pod) -> None:
        if not self._alive(pod, t):
            return
        w, rng = self.w, self.rng
        spec = self._spec(pod)
        resource, namespace, selector = rng.choice(spec.watches)
        w.emitter.watch(
            t, self.pods.who(pod, t), resource, namespace, selector=selector.replace("{node}", pod.node.name)
        )
        w.schedule(t + w.every(450 / len(spec.watches), "bulk") + rng.randrange(0, 20 * US), self._watch, pod)

    def _poll(self, t: int, pod: Pod, poll: tuple[str, str, str, str, float]) -> None:
        if not self._alive(pod, t):
            return
        w, rng = self.w, self.rng
        verb, resource, namespace, name, period = poll
        who = self.pods.who(pod, t)
        if namespace == "{node}":  # Fluent Bit enriching logs of a new pod on its node
            if pod.node.pods:
                target = rng.choice(pod.node.pods)
                w.emitter.event(t, who, verb, resource, target.namespace, target.name)
        elif name == "{app}" and namespace == "argocd":
            if self.argocd_apps:
                w.emitter.event(
                    t,
                    who,
                    verb,
                    resource,
                    namespace,
                    rng.choice(self.argocd_apps),
                    query="fieldManager=argocd-controller",
                    level="Metadata",
                )
            period = period / max(1, len(self.argocd_apps))
        elif namespace == "{team}":
            team = rng.choice(w.teams)
            app = rng.choice(team.apps)
            w.emitter.event(t, who, verb, resource, team.namespace, app.secret, "status")
            period = period / max(1, len(w.teams))
        else:
            w.emitter.event(t, who, verb, resource, namespace, name)
        w.schedule(t + w.every(period, "poll") + rng.randrange(0, 2 * US), self._poll, pod, poll)

    def _denied(self, t: int, pod: Pod, denied: tuple[str, str, float]) -> None:
        """A controller's informer retrying a list its ClusterRole does not allow (reflector backoff)."""
        if not self._alive(pod, t):
            return
        w = self.w
        verb, resource, retry = denied
        who = self.pods.who(pod, t)
        w.emitter.event(
            t,
            who,
            verb,
            resource,
            query="limit=500&resourceVersion=0",
            code=403,
            message=forbidden_message(who.username, verb, resource, "", "", ""),
        )
        w.schedule(t + w.every(retry, "poll") + self.rng.randrange(0, 10 * US), self._denied, pod, denied)
