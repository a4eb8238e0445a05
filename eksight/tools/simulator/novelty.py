"""Benign novelty after the learning window — the changes that make first-seen and rarity detectors fire in
real clusters — labelled as hard negatives: a control-plane minor upgrade (new component versions, new API
server identities, richer token claims), the managed node group's rolling upgrade, nodes joining, CI creating
a brand-new namespace, a new application's service account reading its own secrets, a new teammate, a
developer's kubectl upgrade, an admin's Helm upgrade of an add-on, travel and daylight-saving shifts.
"""

from __future__ import annotations

from collections.abc import Callable

from eksight.tools.simulator.habits import helm_upgrade
from eksight.tools.simulator.kubectl import Client
from eksight.tools.simulator.model import App, Team, World
from eksight.tools.simulator.people import Person
from eksight.tools.simulator.subtle import DRIFT_NEGATIVES
from eksight.tools.simulator.util import DAY, HOUR, ZONES, local_midnight, pick_time, seeded, utc_offset, weekday

HARD_NEGATIVES = (
    "new_node_join",
    "ci_new_namespace",
    "new_app_serviceaccount_reads_own_secrets",
    "new_human_readonly",
    "dev_kubectl_upgrade",
    "admin_helm_upgrade_addon",
    "control_plane_minor_upgrade",
    "managed_nodegroup_rolling_upgrade",
    "dst_shift",
    "human_travel_timezone_shift",
    *DRIFT_NEGATIVES,
)


def business_hours(zone: str) -> Callable[[int], bool]:
    def accept(t: int) -> bool:
        local = t + utc_offset(zone, t)
        return weekday(local) < 5 and 10 * HOUR <= local % DAY < 17 * HOUR

    return accept


def plan(world: World) -> None:
    """Times other components must know before they start (versions change with them)."""
    if not world.test_window:
        return
    rng = seeded(world.seed, "novelty-plan")
    lo, hi = world.learning_end, world.end
    span = hi - lo
    world.upgrade_at = pick_time(rng, lo + span // 8, lo + span // 3, business_hours("America/New_York"))
    world.node_upgrade_at = pick_time(
        rng, world.upgrade_at + span // 8, world.upgrade_at + span // 3, business_hours("America/New_York")
    )


class Novelty:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = seeded(world.seed, "novelty")

    def window(self, low: float, high: float, zone: str = "America/New_York") -> int:
        w = self.w
        span = w.end - w.learning_end
        return pick_time(
            self.rng, w.learning_end + int(span * low), w.learning_end + int(span * high), business_hours(zone)
        )

    def attach(self) -> None:
        w, rng = self.w, self.rng
        if not w.test_window:
            return
        people = w.people
        devs = [p for p in people.people if p.kind == "dev"]
        admins = [p for p in people.people if p.kind == "admin"]
        # a new teammate, read-only at first
        team = rng.choice(w.teams)
        newbie = people.new_person("dev", team)
        newbie.readonly, newbie.k9s, newbie.lens, newbie.helm = True, 0.0, 0.0, 0.0
        newbie.active_from = local_midnight(newbie.zone, self.window(0.15, 0.45, newbie.zone))
        newbie.kubectl = "v1.31.1"
        people.people.append(newbie)
        # a developer upgrades kubectl
        dev = rng.choice(devs)
        since = local_midnight(dev.zone, self.window(0.15, 0.5, dev.zone))  # upgraded before work that day
        newer = max(("v1.30.3", "v1.31.0", "v1.31.1"), key=lambda v: (v != dev.kubectl, v))
        dev.changes.append((since, newer, "dev_kubectl_upgrade", since + 3 * DAY))  # labelled for three days
        # someone travels
        traveller = rng.choice([p for p in devs + admins if p is not dev])
        away = rng.choice(
            [
                z
                for z in ("Asia/Singapore", "Asia/Tokyo", "America/Los_Angeles", "Europe/Helsinki")
                if abs(ZONES[z][0] - ZONES[traveller.zone][0]) >= 3
            ]
        )
        leave = local_midnight(away, self.window(0.0, 0.3))  # the first day abroad, on the destination's clock
        traveller.travel = (leave, leave + rng.randrange(3, 6) * DAY, away, w.public_ip(rng))
        # CI creates a new namespace for a new service; a new app appears in an existing namespace
        w.schedule(self.window(0.3, 0.7), self._new_namespace)
        w.schedule(self.window(0.1, 0.5), self._new_app)
        w.schedule(self.window(0.3, 0.85, admins[0].zone), self._helm_addon, admins[0])

    def _new_namespace(self, t: int) -> None:
        w, rng = self.w, self.rng
        tag = "ci_new_namespace"
        name = rng.choice(("fraud-detection", "returns", "gift-cards", "subscriptions", "tax-engine"))
        template = rng.choice([team for team in w.teams if team.deployer == "gha"] or w.teams)
        team = Team(name, name, "gha", template.zone, created_at=t)
        app = w.new_app(rng, team, "api")
        app.profile, app.created_at = "config", t
        team.apps.append(app)
        c: Client = w.delivery.client(t, tag)
        c.discovery()
        c.call("get", "namespaces", "", name, code=404, message=f'namespaces "{name}" not found')
        c.create(
            "namespaces",
            "",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"team": name, "pod-security.kubernetes.io/enforce": "baseline"}},
            },
        )
        control = w.control
        em = w.emitter
        em.event(
            c.t + 40_000,
            control.controller(c.t, "service-account-controller"),
            "create",
            "serviceaccounts",
            name,
            tag=tag,
            level="Metadata",
        )
        em.event(c.t + 60_000, control.controller(c.t, "root-ca-cert-publisher"), "create", "configmaps", name, tag=tag)
        c.wait(1, 3)
        c.create(
            "serviceaccounts",
            name,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app.sa, "namespace": name}},
            query="fieldManager=kubectl-client-side-apply",
            level="Metadata",
        )
        c.create(
            "rolebindings",
            name,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{name}-developers", "namespace": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": f"{name}-developers"}],
            },
            query="fieldManager=kubectl-client-side-apply",
        )
        c.create(
            "configmaps",
            name,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": app.configmap, "namespace": name}},
            query="fieldManager=kubectl-client-side-apply",
        )
        c.create(
            "secrets",
            name,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {"name": app.secret, "namespace": name},
            },
            query="fieldManager=kubectl-client-side-apply",
        )
        self._create_deployment(c, app)
        w.teams.append(team)
        w.apps.launch(c.t + 200_000, app, tag)

    def _create_deployment(self, c: Client, app: App) -> None:
        containers = self.w.apps.containers(app)
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": app.name, "namespace": app.namespace},
            "spec": {
                "replicas": app.replicas,
                "selector": {"matchLabels": {"app.kubernetes.io/name": app.name}},
                "template": {
                    "metadata": {"labels": {"app.kubernetes.io/name": app.name}},
                    "spec": {"serviceAccountName": app.sa, "containers": containers},
                },
            },
        }
        c.create("deployments", app.namespace, body, query="fieldManager=kubectl-client-side-apply")
        c.create(
            "services",
            app.namespace,
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": app.name, "namespace": app.namespace},
                "spec": {
                    "type": "ClusterIP",
                    "ports": [{"port": 80, "targetPort": app.port}],
                    "selector": {"app.kubernetes.io/name": app.name},
                },
            },
            query="fieldManager=kubectl-client-side-apply",
        )

    def _new_app(self, t: int) -> None:
        w, rng = self.w, self.rng
        tag = "new_app_serviceaccount_reads_own_secrets"
        team = rng.choice([team for team in w.teams if team.deployer == "gha" and team.created_at is None])
        word = next(
            (x for x in ("notifier", "ledger-sync", "exporter", "webhooks") if all(a.name != x for a in team.apps)),
            "notifier",
        )
        app = w.new_app(rng, team, word)
        app.profile, app.created_at, app.kind, app.hpa = "config", t, "Deployment", False
        team.apps.append(app)
        c: Client = w.delivery.client(t, tag)
        c.discovery()
        c.create(
            "serviceaccounts",
            team.namespace,
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app.sa, "namespace": team.namespace}},
            query="fieldManager=kubectl-client-side-apply",
            level="Metadata",
        )
        c.create(
            "roles",
            team.namespace,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": f"{app.name}-config-reader", "namespace": team.namespace},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["configmaps", "secrets"],
                        "verbs": ["get", "watch", "list"],
                        "resourceNames": [app.configmap, app.secret],
                    }
                ],
            },
            query="fieldManager=kubectl-client-side-apply",
        )
        c.create(
            "rolebindings",
            team.namespace,
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{app.name}-config-reader", "namespace": team.namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"{app.name}-config-reader",
                },
                "subjects": [{"kind": "ServiceAccount", "name": app.sa, "namespace": team.namespace}],
            },
            query="fieldManager=kubectl-client-side-apply",
        )
        self._create_deployment(c, app)
        w.apps.launch(c.t + 200_000, app, tag)

    def _helm_addon(self, t: int, admin: Person) -> None:
        """An admin upgrades the AWS Load Balancer Controller chart: RBAC, webhooks and the Deployment."""
        w = self.w
        people = w.people
        tag = "admin_helm_upgrade_addon"
        _zone, ip = people.location(admin, t)
        c = people.client(admin, t, ip, "Helm/3.14.4", None, tag, pace=(0.01, 0.08))
        deploy = w.addons.deploys["aws-load-balancer-controller"]

        def extra(c: Client) -> None:
            c.call(
                "patch",
                "clusterroles",
                "",
                "aws-load-balancer-controller-role",
                query="fieldManager=helm",
                req={
                    "rules": [
                        {
                            "apiGroups": ["elbv2.k8s.aws"],
                            "resources": ["targetgroupbindings", "ingressclassparams"],
                            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                        },
                        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["patch", "update"]},
                        {
                            "apiGroups": ["networking.k8s.io"],
                            "resources": ["ingresses", "ingressclasses"],
                            "verbs": ["get", "list", "watch"],
                        },
                    ]
                },
            )
            for kind in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
                c.call(
                    "patch",
                    kind,
                    "",
                    "aws-load-balancer-webhook",
                    query="fieldManager=helm",
                    req={
                        "webhooks": [
                            {
                                "name": "mpod.elbv2.k8s.aws" if kind.startswith("mut") else "vingress.elbv2.k8s.aws",
                                "clientConfig": {
                                    "caBundle": "LS0tLS1CRUdJTi...",
                                    "service": {
                                        "name": "aws-load-balancer-webhook-service",
                                        "namespace": "kube-system",
                                    },
                                },
                            }
                        ]
                    },
                )

        helm_upgrade(people, c, admin, deploy, extra)
