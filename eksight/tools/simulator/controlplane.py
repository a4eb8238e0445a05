"""The control plane EKS runs for the customer: kube-apiserver, kube-controller-manager (and the kube-system
service accounts its controllers use), kube-scheduler, and EKS's own `eks:*` identities — leader-election
leases, informer watches, CSR approval, add-on and node-group management (the latter from AWS public
addresses, as EKS's managers call in from outside the VPC).
"""

from __future__ import annotations

from eksight.tools.simulator.emit import Who, forbidden_message, rbac_reason, user_fragment
from eksight.tools.simulator.model import VPS_RANGES, World
from eksight.tools.simulator.util import HOUR, MINUTE, US, lower_alnum, seeded, uuid4

KCM_WATCHES = (
    "pods",
    "nodes",
    "replicasets",
    "deployments",
    "daemonsets",
    "statefulsets",
    "jobs",
    "cronjobs",
    "services",
    "endpoints",
    "endpointslices",
    "namespaces",
    "serviceaccounts",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "persistentvolumes",
    "horizontalpodautoscalers",
    "poddisruptionbudgets",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
    "leases",
    "resourcequotas",
    "certificatesigningrequests",
    "controllerrevisions",
    "ingresses",
    "customresourcedefinitions",
    "validatingwebhookconfigurations",
    "mutatingwebhookconfigurations",
)
SCHEDULER_WATCHES = (
    "pods",
    "nodes",
    "persistentvolumeclaims",
    "persistentvolumes",
    "storageclasses",
    "csinodes",
    "csidrivers",
    "namespaces",
    "services",
    "replicasets",
    "statefulsets",
    "poddisruptionbudgets",
)
EKS_UA = {
    "eks:cloud-controller-manager": "aws-cloud-controller-manager/{ccm} (linux/amd64) kubernetes/$Format/leader-election",
    "eks:certificate-controller": "eks-certificate-controller/v0.0.0 (linux/amd64) kubernetes/$Format",
    "eks:pod-identity-mutating-webhook": "amazon-eks-pod-identity-webhook/v0.6.4 (linux/amd64) kubernetes/$Format",
    "eks:authenticator": "aws-iam-authenticator/v0.6.27 (linux/amd64) kubernetes/$Format",
    "eks:vpc-resource-controller": "vpc-resource-controller/v1.5.1 (linux/amd64) kubernetes/$Format",
    "eks:addon-manager": "Go-http-client/1.1",
    "eks:node-manager": "Kubernetes Java Client/18.0.0-SNAPSHOT",
}


class ControlPlane:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = rng = seeded(world.seed, "control-plane")
        self.apiserver_uid = uuid4(rng)
        self.sa_uids: dict[str, str] = {}
        self.leases = [f"apiserver-{lower_alnum(rng, 26)}" for _ in range(2)]
        self.new_leases = [f"apiserver-{lower_alnum(rng, 26)}" for _ in range(2)]
        self._cache: dict[tuple[str, str, str], Who] = {}

    # --- identities ---------------------------------------------------------------------------------------------
    def _leader_ip(self, t: int, standby: bool = False) -> str:
        upgraded = self.w.upgrade_at is not None and t >= self.w.upgrade_at
        return self.w.cp_ips[(2 if upgraded else 0) + (1 if standby else 0)]

    def kcm(self, t: int, suffix: str = "/leader-election", standby: bool = False) -> Who:
        key = ("kcm" + suffix, self.w.minor(t), str(standby))
        who = self._cache.get(key)
        if who is None:
            name = "system:kube-controller-manager"
            who = self._cache[key] = Who(
                user_fragment(name, groups=("system:authenticated",)),
                name,
                self.w.cp_ua(t, "kube-controller-manager", suffix),
                self._leader_ip(t, standby),
                rbac_reason("ClusterRoleBinding", name, "ClusterRole", name, "User", name),
            )
        return who

    def controller(self, t: int, name: str) -> Who:
        """A kube-controller-manager loop acting as its own kube-system service account."""
        key = ("ctl:" + name, self.w.minor(t), "")
        who = self._cache.get(key)
        if who is None:
            uid = self.sa_uids.setdefault(name, uuid4(self.rng))
            username = f"system:serviceaccount:kube-system:{name}"
            who = self._cache[key] = Who(
                user_fragment(
                    username,
                    uid,
                    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
                ),
                username,
                self.w.cp_ua(t, "kube-controller-manager", f"/{username}"),
                self._leader_ip(t),
                rbac_reason(
                    "ClusterRoleBinding",
                    f"system:controller:{name}",
                    "ClusterRole",
                    f"system:controller:{name}",
                    "ServiceAccount",
                    f"{name}/kube-system",
                ),
            )
        return who

    def scheduler(self, t: int, suffix: str = "/scheduler", standby: bool = False) -> Who:
        key = ("sched" + suffix, self.w.minor(t), str(standby))
        who = self._cache.get(key)
        if who is None:
            name = "system:kube-scheduler"
            who = self._cache[key] = Who(
                user_fragment(name, groups=("system:authenticated",)),
                name,
                self.w.cp_ua(t, "kube-scheduler", suffix),
                self._leader_ip(t, not standby),
                rbac_reason("ClusterRoleBinding", name, "ClusterRole", name, "User", name),
            )
        return who

    def apiserver(self, t: int) -> Who:
        key = ("apiserver", self.w.minor(t), "")
        who = self._cache.get(key)
        if who is None:
            name = "system:apiserver"
            who = self._cache[key] = Who(
                user_fragment(name, self.apiserver_uid, ("system:authenticated", "system:masters")),
                name,
                self.w.cp_ua(t, "kube-apiserver"),
                "::1",
                "",
            )
        return who

    def eks(self, t: int, name: str, public: bool = False) -> Who:
        key = ("eks:" + name, self.w.minor(t), str(public))
        who = self._cache.get(key)
        if who is None:
            ua = EKS_UA[name].format(ccm=self.w.version(t)["ccm"])
            ip = self.rng.choice(self.w.eks_public_ips) if public else self._leader_ip(t)
            who = self._cache[key] = Who(
                user_fragment(name, groups=("system:authenticated",)),
                name,
                ua,
                ip,
                rbac_reason("ClusterRoleBinding", name, "ClusterRole", name, "User", name),
            )
        return who

    def tag(self, t: int) -> str:
        """Events of the control plane's own identities in the hours after the minor-version upgrade."""
        up = self.w.upgrade_at
        return "control_plane_minor_upgrade" if up is not None and up <= t < up + 6 * HOUR else ""

    # --- periodic activity --------------------------------------------------------------------------------------
    def start(self) -> None:
        w, rng = self.w, self.rng
        t0 = w.start
        for lease, kind in (
            ("kube-controller-manager", "kcm"),
            ("kube-scheduler", "sched"),
            ("cloud-controller-manager", "ccm"),
            ("cp-vpc-resource-controller", "vpc"),
        ):
            w.schedule(t0 + rng.randrange(0, 2 * US), self._leader_lease, lease, kind)
        for index in range(2):
            w.schedule(t0 + rng.randrange(0, 10 * US), self._apiserver_lease, index)
        for resource in KCM_WATCHES:
            w.schedule(t0 + rng.randrange(0, 10 * MINUTE), self._watch, "kcm", resource)
        for resource in SCHEDULER_WATCHES:
            w.schedule(t0 + rng.randrange(0, 10 * MINUTE), self._watch, "sched", resource)
        for who, resource, selector in (
            ("eks:cloud-controller-manager", "nodes", ""),
            ("eks:cloud-controller-manager", "services", ""),
            ("eks:certificate-controller", "certificatesigningrequests", ""),
            ("eks:pod-identity-mutating-webhook", "serviceaccounts", ""),
            ("eks:vpc-resource-controller", "nodes", ""),
            ("eks:vpc-resource-controller", "pods", ""),
            ("eks:authenticator", "configmaps", "fieldSelector=metadata.name%3Daws-auth"),
        ):
            w.schedule(t0 + rng.randrange(0, 10 * MINUTE), self._eks_watch, who, resource, selector)
        w.schedule(t0 + rng.randrange(0, 40 * MINUTE), self._addon_manager)
        w.schedule(t0 + rng.randrange(0, HOUR), self._node_manager_check)
        w.schedule(t0 + rng.randrange(0, 5 * MINUTE), self._ccm_node_sync)
        w.schedule(t0 + rng.randrange(0, HOUR), self._flowschema_status)
        w.schedule(t0 + rng.randrange(0, HOUR), self._internet_scan)
        if w.upgrade_at is not None:
            w.schedule(w.upgrade_at, self._upgrade)

    def _leader_lease(self, t: int, lease: str, kind: str) -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        tag = self.tag(t)
        if kind == "kcm":
            leader, standby = self.kcm(t), self.kcm(t, standby=True)
        elif kind == "sched":
            leader, standby = self.scheduler(t, "/leader-election"), self.scheduler(t, "/leader-election", True)
        elif kind == "ccm":
            leader = standby = self.eks(t, "eks:cloud-controller-manager")
        else:
            leader = standby = self.eks(t, "eks:vpc-resource-controller")
        conflict = rng.random() < 0.004
        if conflict:  # the standby tried to acquire, or the leader raced its own update
            em.event(
                t,
                leader,
                "update",
                "leases",
                "kube-system",
                lease,
                query="timeout=5s",
                code=409,
                tag=tag,
                message=f'Operation cannot be fulfilled on leases.coordination.k8s.io "{lease}": the object '
                "has been modified; please apply your changes to the latest version and try again",
            )
            em.event(t + 11_000, leader, "get", "leases", "kube-system", lease, query="timeout=5s", tag=tag)
        else:
            em.event(t, leader, "update", "leases", "kube-system", lease, query="timeout=5s", tag=tag)
        if standby is not leader and rng.random() < 0.5:
            em.event(
                t + rng.randrange(0, 2 * US),
                standby,
                "get",
                "leases",
                "kube-system",
                lease,
                query="timeout=5s",
                tag=tag,
            )
        w.schedule(t + w.every(2, "lease") + rng.randrange(-50_000, 50_000), self._leader_lease, lease, kind)

    def _apiserver_lease(self, t: int, index: int) -> None:
        w = self.w
        upgraded = w.upgrade_at is not None and t >= w.upgrade_at
        name = (self.new_leases if upgraded else self.leases)[index]
        w.emitter.event(
            t, self.apiserver(t), "update", "leases", "kube-system", name, query="timeout=5s", tag=self.tag(t)
        )
        w.schedule(t + w.every(10, "lease") + self.rng.randrange(-200_000, 200_000), self._apiserver_lease, index)

    def _watch(self, t: int, who_kind: str, resource: str) -> None:
        w = self.w
        who = self.kcm(t, "/shared-informers") if who_kind == "kcm" else self.scheduler(t)
        w.emitter.watch(t, who, resource, tag=self.tag(t))
        w.schedule(t + w.every(450, "bulk") + self.rng.randrange(-60 * US, 60 * US), self._watch, who_kind, resource)

    def _eks_watch(self, t: int, name: str, resource: str, selector: str) -> None:
        w = self.w
        w.emitter.watch(
            t,
            self.eks(t, name),
            resource,
            "kube-system" if resource == "configmaps" else "",
            selector=selector,
            tag=self.tag(t),
        )
        w.schedule(
            t + w.every(450, "bulk") + self.rng.randrange(-60 * US, 60 * US), self._eks_watch, name, resource, selector
        )

    def _ccm_node_sync(self, t: int) -> None:
        w = self.w
        who = self.eks(t, "eks:cloud-controller-manager")
        w.emitter.event(t, who, "list", "nodes", query="limit=500&resourceVersion=0", tag=self.tag(t))
        w.schedule(t + w.every(300, "poll") + self.rng.randrange(0, 30 * US), self._ccm_node_sync)

    def _flowschema_status(self, t: int) -> None:
        w, rng = self.w, self.rng
        name = rng.choice(
            (
                "exempt",
                "probes",
                "system-leader-election",
                "workload-leader-election",
                "endpoint-controller",
                "system-nodes",
                "kube-controller-manager",
                "kube-scheduler",
                "service-accounts",
                "global-default",
                "catch-all",
            )
        )
        w.emitter.event(
            t,
            self.apiserver(t),
            "patch",
            "flowschemas",
            "",
            name,
            "status",
            query="fieldManager=api-priority-and-fairness-config-consumer-v1",
            tag=self.tag(t),
        )
        w.schedule(t + rng.randrange(HOUR, 6 * HOUR), self._flowschema_status)

    def _addon_manager(self, t: int) -> None:
        """EKS's managed add-on reconciler: reads the add-ons' objects from an AWS public address."""
        w, rng = self.w, self.rng
        who = self.eks(t, "eks:addon-manager", public=True)
        resource, name = rng.choice(
            (
                ("daemonsets", "aws-node"),
                ("daemonsets", "kube-proxy"),
                ("deployments", "coredns"),
                ("deployments", "ebs-csi-controller"),
                ("daemonsets", "ebs-csi-node"),
                ("daemonsets", "eks-pod-identity-agent"),
            )
        )
        w.emitter.event(
            t, who.using(ip=rng.choice(w.eks_public_ips)), "get", resource, "kube-system", name, tag=self.tag(t)
        )
        w.schedule(t + rng.randrange(20 * MINUTE, 70 * MINUTE), self._addon_manager)

    def _node_manager_check(self, t: int) -> None:
        w, rng = self.w, self.rng
        fleet = w.fleet
        group = rng.choice(fleet.groups)
        who = self.eks(t, "eks:node-manager", public=True).using(ip=rng.choice(w.eks_public_ips))
        w.emitter.event(
            t,
            who,
            "list",
            "nodes",
            query=f"labelSelector=eks.amazonaws.com%2Fnodegroup%3D{group.name}",
            tag=self.tag(t),
        )
        w.schedule(t + rng.randrange(40 * MINUTE, 80 * MINUTE), self._node_manager_check)

    def _upgrade(self, t: int) -> None:
        """Minor-version upgrade: new API server instances announce themselves, the old identity leases are
        garbage-collected, and EKS's add-on manager server-side-applies the default add-ons."""
        em, rng = self.w.emitter, self.rng
        tag = "control_plane_minor_upgrade"
        for index in range(len(self.new_leases)):
            em.event(t + index * 40 * US, self.apiserver(t), "create", "leases", "kube-system", query="", tag=tag)
            em.event(
                t + index * 40 * US + 2 * US,
                self.apiserver(t),
                "get",
                "configmaps",
                "kube-system",
                "extension-apiserver-authentication",
                tag=tag,
            )
            em.event(
                t + 8 * MINUTE + index * US,
                self.apiserver(t),
                "delete",
                "leases",
                "kube-system",
                self.leases[index],
                tag=tag,
            )
        who = self.eks(t, "eks:addon-manager", public=True)
        when = t + 25 * MINUTE
        for resource, name, kind in (
            ("daemonsets", "kube-proxy", "DaemonSet"),
            ("deployments", "coredns", "Deployment"),
            ("daemonsets", "aws-node", "DaemonSet"),
        ):
            when += rng.randrange(30 * US, 180 * US)
            em.event(when, who, "get", resource, "kube-system", name, tag=tag)
            body = {
                "apiVersion": "apps/v1",
                "kind": kind,
                "metadata": {
                    "name": name,
                    "namespace": "kube-system",
                    "labels": {"app.kubernetes.io/managed-by": "EKS", "eks.amazonaws.com/component": name},
                },
            }
            em.event(
                when + 400_000,
                who,
                "patch",
                resource,
                "kube-system",
                name,
                query="fieldManager=eks&force=true",
                level="Request",
                req=body,
                tag=tag,
            )

    def _internet_scan(self, t: int) -> None:
        """The public endpoint's background noise: scanners probing anonymously (mostly 403, /version 200)."""
        w, rng = self.w, self.rng
        ip = w.public_ip(rng) if rng.random() < 0.5 else w.public_ip(rng, VPS_RANGES)
        who = Who(
            user_fragment("system:anonymous", groups=("system:unauthenticated",)),
            "system:anonymous",
            rng.choice(SCANNER_UAS),
            ip,
            rbac_reason(
                "ClusterRoleBinding",
                "system:public-info-viewer",
                "ClusterRole",
                "system:public-info-viewer",
                "Group",
                "system:unauthenticated",
            ),
        )
        at = t
        for path, resource, namespace in rng.sample(SCAN_PATHS, rng.randrange(1, 5)):
            at += rng.randrange(50_000, 3 * US)
            if path in ("/version", "/healthz", "/livez"):
                w.emitter.event(at, who, "get", uri=path)
            elif resource:
                w.emitter.event(
                    at,
                    who,
                    "list",
                    resource,
                    namespace,
                    code=403,
                    message=forbidden_message("system:anonymous", "list", resource, "", "", namespace),
                )
            else:
                w.emitter.event(
                    at,
                    who,
                    "get",
                    uri=path,
                    code=403,
                    message=f'forbidden: User "system:anonymous" cannot get path "{path}"',
                )
        w.schedule(t + rng.randrange(15 * MINUTE, 100 * MINUTE), self._internet_scan)


SCANNER_UAS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "curl/7.88.1",
    "Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)",
    "Expanse, a Palo Alto Networks company, searches across the global IPv4 space multiple times per day to identify "
    "customers' presences on the Internet. If you would like to be excluded from our scans, please send IP "
    "addresses/domains to: scaninfo@paloaltonetworks.com",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
)
SCAN_PATHS = (
    ("/", "", ""),
    ("/version", "", ""),
    ("/healthz", "", ""),
    ("/.env", "", ""),
    ("/metrics", "", ""),
    ("/apis", "", ""),
    ("/.git/config", "", ""),
    ("/api/v1/pods", "pods", ""),
    ("/api/v1/namespaces/kube-system/secrets", "secrets", "kube-system"),
    ("/api", "", ""),
)
