"""Subtle attacks and benign drift of the kinds real clusters show and first-seen detectors trip over
(issue 14): a stolen session replayed from a cloud VM with the victim's own user agent, CI deploying from a
registry never used, security controls deleted before an exec; and, labelled as hard negatives, an egress
change (a new NAT address for everyone on the VPN), a night-time incident response, a developer's new client
tool, the cluster creator installing a chart with admission webhooks through Helm, an admin's
`kubectl --as` discovery sweep, a team reorganisation that gives a developer a second team's namespace, and a
developer's first week on the on-call rotation (paged at night). Two more attacks need a baseline to see: a
developer's stolen session replayed through a residential proxy at the developer's usual hours to read another
team's secrets, and an application's service-account token replayed from another team's compromised pod.

Everything here draws from its own seeded random streams, so the scenarios that existed before keep their
times and content.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eksight.tools.simulator.emit import Who, rbac_reason, user_fragment
from eksight.tools.simulator.kubectl import Client
from eksight.tools.simulator.model import World
from eksight.tools.simulator.people import Person
from eksight.tools.simulator.pods import Pod
from eksight.tools.simulator.util import (
    DAY,
    HOUR,
    MINUTE,
    k8s_suffix,
    local_midnight,
    pick_time,
    seeded,
    utc_offset,
    weekday,
)

if TYPE_CHECKING:
    from eksight.tools.simulator.attacks import Attacks

# Cloud VMs an attacker rents by the hour (DigitalOcean droplets: /16s its published feed announces whole; it does
# not announce all of 159.89.0.0/16, so a droplet cannot have any address there).
CLOUD_VM_RANGES = ((159, 203, 203), (165, 22, 22), (167, 99, 99), (178, 128, 128))
# The VPN's new egress after the network team's change: another NAT gateway in the company's AWS account.
NEW_NAT_RANGES = ((3, 80, 239), (52, 0, 95))
HELM = "Helm/3.15.2"
NEW_TOOL_UA = "headlamp-server/v0.26.0 (darwin/arm64) kubernetes/$Format"
# Consumer ISP ranges: what residential proxies (rented by buyers of infostealer logs) exit from.
RESIDENTIAL_PROXY_RANGES = ((73, 0, 255), (98, 0, 255), (174, 0, 255))

DRIFT_NEGATIVES = (
    "egress_nat_change",
    "night_incident_response",
    "new_client_tool",
    "cluster_creator_helm_install_with_webhooks",
    "admin_impersonation_discovery_sweep",
    "team_reorg_second_namespace",
    "dev_joins_oncall_rotation",
)


@contextmanager
def drawing_from(owner: Any, rng: Any) -> Iterator[None]:
    """Let `owner` (People, Delivery) draw from `rng` meanwhile: clients, session keys and addresses made
    here then leave the streams of the existing components, and so their events, as they were."""
    saved, owner.rng = owner.rng, rng
    try:
        yield
    finally:
        owner.rng = saved


def running_pods(w: World, namespace: str, t: int) -> list[Pod]:
    return [
        p for d in w.pods.deploys if d.namespace == namespace for p in d.pods if p.start <= t < min(p.end, p.node.end)
    ]


def gha_app_namespace(w: World, pick: Any) -> Any:
    teams = [team for team in w.teams if team.deployer == "gha" and team.created_at is None] or w.teams
    return pick(teams)


# --- attacks (scheduled by Attacks; `a` is the Attacks instance) ---------------------------------------------------


def stolen_session_from_cloud_vm(a: Attacks, t: int, tag: str) -> None:
    """The victim's SSO session and exact kubectl user agent, from a droplet: reads, then shells into production."""
    w = a.w
    victim = a.person("dev", execs=True)
    ip = w.public_ip(a.rng, CLOUD_VM_RANGES)
    with drawing_from(w.people, a.rng):
        c = w.people.client(victim, t, ip, "", None, tag, pace=(2, 12))  # "" = the victim's own kubectl user agent
    ns = victim.own_team.namespace
    pods = running_pods(w, ns, t)
    if not pods:
        return
    c.list("pods", ns)
    target = a.rng.choice(pods)
    c.get("pods", ns, target.name)
    c.exec(ns, target.name, target.owner.containers[0]["name"], ["sh"], duration=7 * MINUTE)
    c.wait(420, 600)
    c.list("secrets", ns)


def ci_deploys_image_from_unknown_registry(a: Attacks, t: int, tag: str) -> None:
    """The deploy role (a poisoned workflow) patches a Deployment to an image in another AWS account's ECR."""
    w = a.w
    team = gha_app_namespace(w, a.rng.choice)
    app = a.rng.choice([x for x in team.apps if x.kind == "Deployment"] or team.apps)
    foreign = f"{a.rng.randrange(100_000_000_000, 999_999_999_999)}.dkr.ecr.us-east-1.amazonaws.com"
    image = f"{foreign}/{app.name}:{k8s_suffix(a.rng, 7)}"
    with drawing_from(w.delivery, a.rng):
        who = w.delivery.who(t)
    c = Client(w.emitter, who, t, a.rng, tag=tag, pace=(0.05, 0.3))
    c.get("deployments", app.namespace, app.name, query="")
    patch = {"spec": {"template": {"spec": {"containers": [{"name": app.name, "image": image}]}}}}
    c.call("patch", "deployments", app.namespace, app.name, query="fieldManager=kubectl-set", req=patch)
    c.get("deployments", app.namespace, app.name, sub="status")


def security_controls_deleted_then_exec(a: Attacks, t: int, tag: str) -> None:
    """An admin session deletes the namespace's default-deny NetworkPolicy and a validating webhook, then execs."""
    w = a.w
    admin = a.person("admin")
    with drawing_from(w.people, a.rng):
        c = w.people.client(admin, t, a.rng.choice([admin.home_ip, *w.people.vpn]), "", None, tag, pace=(3, 20))
    team = gha_app_namespace(w, a.rng.choice)
    ns = team.namespace
    pods = running_pods(w, ns, t)
    if not pods:
        return
    c.list("networkpolicies", ns)
    c.call("delete", "networkpolicies", ns, "default-deny-ingress")
    c.list("validatingwebhookconfigurations")
    c.call("delete", "validatingwebhookconfigurations", "", "policy-controller-validating-webhook")
    c.wait(60, 240)
    target = a.rng.choice(pods)
    c.exec(ns, target.name, target.owner.containers[0]["name"], ["sh"], duration=5 * MINUTE)


def stolen_dev_token_reads_other_team_secrets(a: Attacks, t: int, tag: str) -> None:
    """A developer's SSO session, bought from an infostealer's log, replayed through a residential proxy with the
    developer's own kubectl at their usual hours: it looks up two other teams' Deployments for the names of
    their secrets, then reads those secrets (the legacy developer-read role allows `get`)."""
    w = a.w
    rng = seeded(w.seed, tag)  # its own stream: the scenarios that existed before keep theirs
    victim = a.person("dev", nth=1)
    ip = w.public_ip(rng, RESIDENTIAL_PROXY_RANGES)
    with drawing_from(w.people, rng):
        c = w.people.client(victim, t, ip, "", None, tag, pace=(4, 40))
    others = [
        team
        for team in w.teams
        if team is not victim.team and team.namespace not in victim.touched and team.created_at is None
    ]
    rng.shuffle(others)
    c.list("pods", victim.own_team.namespace)
    for team in others[:2]:
        app = rng.choice(team.apps)
        c.list("deployments", team.namespace)
        c.get("deployments", team.namespace, app.name)
        c.get("secrets", team.namespace, app.secret)
        c.wait(60, 300)


def sa_token_replayed_from_another_pod(a: Attacks, t: int, tag: str) -> None:
    """An application's service-account token, leaked in a debug dump, replayed from a compromised pod of another
    team (inside the cluster's network, with the victim application's own client): it reads the app's secret as
    the app does, then tries what else the token may read (no `auth can-i`: a workload's rules review is EKS-140's)
    and is refused."""
    w = a.w
    rng = seeded(w.seed, tag)
    pods = [
        p
        for d in w.pods.deploys
        if d.app is not None and d.app.profile == "config" and d.app.created_at is None
        for p in d.pods
        if p.start <= t < min(p.end, p.node.end)
    ]
    if not pods:
        return
    victim = rng.choice(pods)
    app = victim.owner.app
    footholds = [p for d in w.pods.deploys if d.app is not None and d.namespace != victim.namespace for p in d.pods]
    footholds = [p for p in footholds if p.start <= t < min(p.end, p.node.end)]
    if app is None or not footholds:
        return
    who = w.pods.who(victim, t).using(ip=rng.choice(footholds).ip)
    ns = victim.namespace

    def authorize(verb: str, resource: str, namespace: str, sub: str) -> str | None:
        return who.reason if resource in ("configmaps", "secrets") and verb == "get" and namespace == ns else None

    c = Client(w.emitter, who, t, rng, authorize=authorize, tag=tag, pace=(1, 8))
    c.get("secrets", ns, app.secret)
    c.list("secrets", ns)
    c.list("pods")
    for team in [team for team in w.teams if team.namespace != ns][:3]:
        c.get("secrets", team.namespace, team.apps[0].secret)
    c.get("configmaps", ns, app.configmap)


ATTACKS = {
    "stolen_session_from_cloud_vm": stolen_session_from_cloud_vm,
    "ci_deploys_image_from_unknown_registry": ci_deploys_image_from_unknown_registry,
    "security_controls_deleted_then_exec": security_controls_deleted_then_exec,
    "stolen_dev_token_reads_other_team_secrets": stolen_dev_token_reads_other_team_secrets,
    "sa_token_replayed_from_another_pod": sa_token_replayed_from_another_pod,
}
OWN_STREAMS = frozenset({"S19", "S20"})  # scenarios placed and played from their own random streams


# --- benign drift --------------------------------------------------------------------------------------------------


class Drift:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = seeded(world.seed, "drift")

    def at(self, low: float, high: float, accept: Any = None) -> int:
        w = self.w
        span = w.end - w.learning_end
        return pick_time(self.rng, w.learning_end + int(span * low), w.learning_end + int(span * high), accept)

    def attach(self) -> None:
        w = self.w
        if not w.test_window:
            return
        people = w.people
        # the VPN's egress moves to a new NAT gateway for everyone, for the rest of the run
        people.vpn_change = (self.at(0.2, 0.5), [w.public_ip(self.rng, NEW_NAT_RANGES) for _ in range(2)])
        w.schedule(self.at(0.1, 0.9, self.night), self._incident_response)
        devs = [p for p in people.people if p.kind == "dev" and not p.active_from and not p.k9s and not p.lens]
        dev = self.rng.choice(devs or [p for p in people.people if p.kind == "dev"])
        first = local_midnight(dev.zone, self.at(0.2, 0.6))
        for day in range(3):
            w.schedule(first + day * DAY + int(dev.start_hour * HOUR) + HOUR, self._new_tool, dev)
        w.schedule(self.at(0.1, 0.8), self._creator_helm_install)
        w.schedule(self.at(0.1, 0.9), self._impersonation_sweep)
        self._reorg(seeded(w.seed, "drift-reorg"))
        self._oncall_rotation(seeded(w.seed, "drift-oncall"))

    def _working_days(self, person: Person, first: int, rng: Any) -> Iterator[int]:
        """The local midnights of the person's working days from `first` to the end of the log."""
        midnight = local_midnight(person.zone, first)
        while midnight < self.w.end:
            if weekday(midnight + utc_offset(person.zone, midnight) + HOUR) < 5 and rng.random() < 0.9:
                yield midnight
            midnight = local_midnight(person.zone, midnight + 36 * HOUR)

    def _reorg(self, rng: Any) -> None:
        """A team reorganisation: a developer also joins another team, gets its namespace (a RoleBinding of
        `edit`) and works there every day from then on."""
        w = self.w
        devs = [p for p in w.people.people if p.kind == "dev" and not p.active_from]
        dev = rng.choice(devs)
        teams = [team for team in w.teams if team is not dev.team and team.created_at is None]
        if not teams:
            return
        team = rng.choice(teams)
        span = w.end - w.learning_end
        first = pick_time(rng, w.learning_end + span // 10, w.learning_end + span * 4 // 10)
        for midnight in self._working_days(dev, first, rng):
            for _ in range(rng.randrange(1, 3)):
                at = midnight + int((dev.start_hour + rng.uniform(0.5, dev.hours - 0.5)) * HOUR)
                w.schedule(at, self._second_namespace_session, dev, team, rng)

    def _second_namespace_session(self, t: int, dev: Person, team: Any, rng: Any) -> None:
        w, people = self.w, self.w.people
        ns = team.namespace
        with drawing_from(people, rng):
            who = people.who(dev, t, people.location(dev, t)[1])
        usual = people.authorizer(dev, dev.sso, who.username)
        grant = rbac_reason("RoleBinding", f"{team.name}-{dev.name}", "ClusterRole", "edit", "User", who.username, ns)

        def authorize(verb: str, resource: str, namespace: str, sub: str) -> str | None:
            return grant if namespace == ns else usual(verb, resource, namespace, sub)

        c = Client(w.emitter, who, t, rng, authorize=authorize, tag="team_reorg_second_namespace", pace=(0.5, 20))
        pods = running_pods(w, ns, t)
        c.list("pods", ns)
        c.list("deployments", ns)
        if pods:
            target = rng.choice(pods)
            c.logs(ns, target.name, target.owner.containers[0]["name"])
        app = rng.choice(team.apps)
        roll = rng.random()
        if roll < 0.3:
            c.get("configmaps", ns, app.configmap)
        elif roll < 0.45:
            c.get("secrets", ns, app.secret)
        elif roll < 0.6 and pods:
            c.restart(ns, rng.choice(pods).owner.name)
        c.list("pods", ns)

    def _oncall_rotation(self, rng: Any) -> None:
        """A developer's first week on the on-call rotation: paged on some nights, from home."""
        w = self.w
        devs = [p for p in w.people.people if p.kind == "dev" and not p.active_from]
        dev = rng.choice(devs)
        span = w.end - w.learning_end
        first = local_midnight(dev.zone, pick_time(rng, w.learning_end + span // 8, w.learning_end + span // 2))
        for night in range(7):
            if rng.random() < 0.6:
                w.schedule(first + night * DAY + int(rng.uniform(0.5, 5.0) * HOUR), self._paged, dev, rng)

    def _paged(self, t: int, dev: Person, rng: Any) -> None:
        """Reads the team's pods, events and logs, restarts the Deployment, and opens a shell if they do that."""
        w, people = self.w, self.w.people
        with drawing_from(people, rng):
            c = people.client(dev, t, dev.home_ip, "", None, "dev_joins_oncall_rotation", pace=(2, 30))
        ns = dev.own_team.namespace
        pods = running_pods(w, ns, t)
        if not pods:
            return
        c.list("pods", ns)
        c.list("events", ns)
        target = rng.choice(pods)
        container = target.owner.containers[0]["name"]
        c.logs(ns, target.name, container)
        c.logs(ns, target.name, container)
        if dev.execs and rng.random() < 0.5:
            c.exec(ns, target.name, container, ["sh"], duration=3 * MINUTE)
        if rng.random() < 0.6:
            c.restart(ns, target.owner.name)
        c.list("pods", ns)

    def night(self, t: int) -> bool:
        return 1 * HOUR <= t % DAY < 4 * HOUR  # UTC night: the platform team's on-call is in New York or Europe

    def _person(self, kind: str) -> Person:
        return next(p for p in self.w.people.people if p.kind == kind and not p.active_from)

    def _incident_response(self, t: int) -> None:
        """Paged at night: the on-call SRE reads pods, events and logs, opens a shell, restarts the Deployment."""
        w, people = self.w, self.w.people
        sre = self._person("sre")
        tag = "night_incident_response"
        with drawing_from(people, self.rng):
            c = people.client(sre, t, sre.home_ip, "", sre.oncall, tag, pace=(2, 25))
        team = gha_app_namespace(w, self.rng.choice)
        ns, pods = team.namespace, running_pods(w, team.namespace, t)
        if not pods:
            return
        c.list("pods", ns)
        c.list("events", ns)
        target = self.rng.choice(pods)
        container = target.owner.containers[0]["name"]
        c.logs(ns, target.name, container)
        c.logs(ns, target.name, container)
        c.exec(ns, target.name, container, ["sh"], duration=4 * MINUTE)
        c.wait(240, 400)
        c.restart(ns, target.owner.name)
        c.list("pods", ns)

    def _new_tool(self, t: int, dev: Person) -> None:
        """A developer tries a desktop UI (Headlamp) for three days: the same reads, a new client."""
        people = self.w.people
        with drawing_from(people, self.rng):
            ip = people.location(dev, t)[1]
            c = people.client(dev, t, ip, NEW_TOOL_UA, None, "new_client_tool", pace=(0.2, 3))
        ns = dev.own_team.namespace
        c.call("get", uri="/version")
        c.list("namespaces", query="")
        for _ in range(self.rng.randrange(3, 7)):
            c.list("pods", ns)
            c.list("deployments", ns)
            c.list("events", ns)
            c.wait(20, 120)

    def _creator_helm_install(self, t: int) -> None:
        """The cluster creator (EKS's `kubernetes-admin`) installs the policy controller chart with Helm:
        namespace, service account, Deployment, Service and its validating and mutating webhooks."""
        w = self.w
        tag = "cluster_creator_helm_install_with_webhooks"
        creator = f"arn:aws:iam::{w.account}:role/eks-cluster-creator"
        user = user_fragment(
            "kubernetes-admin",
            f"aws-iam-authenticator:{w.account}:AROA{k8s_suffix(self.rng, 17).upper()}",
            ("system:masters", "system:authenticated"),
            {"arn": [creator], "canonicalArn": [creator], "sessionName": ["terraform"]},
        )
        reason = ""  # system:masters bypasses RBAC: EKS logs no authorization reason
        ip = self.rng.choice(w.people.offices[next(iter(w.people.offices))])
        who = Who(user, "kubernetes-admin", HELM, ip, reason, ("system:masters", "system:authenticated"))
        c = Client(w.emitter, who, t, self.rng, tag=tag, pace=(0.01, 0.1))
        ns, release = "policy-system", "policy-controller"
        labels = {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": release}
        meta = {"labels": labels, "annotations": {"meta.helm.sh/release-name": release,
                                                   "meta.helm.sh/release-namespace": ns}}  # fmt: skip
        c.discovery()
        c.create("namespaces", "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, **meta}})
        c.create("serviceaccounts", ns, {"apiVersion": "v1", "kind": "ServiceAccount",
                                         "metadata": {"name": release, "namespace": ns, **meta}}, level="Metadata")  # fmt: skip
        image = "ghcr.io/sigstore/policy-controller/policy-controller:v0.10.0"
        c.create("deployments", ns, {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": release, "namespace": ns, **meta},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": labels}, "spec": {
                "serviceAccountName": release, "containers": [{"name": "policy-controller", "image": image}]}}},
        }, query="fieldManager=helm")  # fmt: skip
        c.create("services", ns, {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": f"{release}-webhook", "namespace": ns, **meta},
                                  "spec": {"type": "ClusterIP", "ports": [{"port": 443, "targetPort": 8443}]}},
                 query="fieldManager=helm")  # fmt: skip
        for kind, resource in (
            ("ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
            ("MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
        ):
            body = {
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": kind,
                "metadata": {"name": f"policy.sigstore.dev-{resource[:8]}", **meta},
                "webhooks": [{
                    "name": "policy.sigstore.dev", "admissionReviewVersions": ["v1"], "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "clientConfig": {"service": {"name": f"{release}-webhook", "namespace": ns}},
                    "rules": [{"apiGroups": ["", "apps", "batch"], "apiVersions": ["*"],
                               "operations": ["CREATE", "UPDATE"], "resources": ["pods", "deployments", "jobs"]}],
                }],
            }  # fmt: skip
            c.create(resource, "", body, query="fieldManager=helm")

    def _impersonation_sweep(self, t: int) -> None:
        """An admin checks what a developer can see: `kubectl get ... --as=<dev> --as-group=<team>` per kind."""
        people = self.w.people
        admin = self._person("admin")
        dev = self._person("dev")
        tag = "admin_impersonation_discovery_sweep"
        with drawing_from(people, self.rng):
            c = people.client(admin, t, people.location(admin, t)[1], "", None, tag, pace=(0.5, 4))
        ns = dev.own_team.namespace
        group = f"{dev.own_team.name}-developers"
        impersonated: dict[str, object] = {"username": dev.email, "groups": [group, "system:authenticated"]}
        for resource in ("pods", "deployments", "services", "configmaps", "secrets", "jobs", "cronjobs",
                         "ingresses", "roles", "rolebindings", "events", "persistentvolumeclaims"):  # fmt: skip
            c.call("list", resource, ns, query="limit=500", impersonated=impersonated)
