"""Delivery: teams deploy on merge, during their working day. GitHub Actions runs `kubectl apply` and
`kubectl rollout status` with an IAM role assumed through OIDC (session `GitHubActions`, a fresh key and a
different Azure-hosted runner address on every run); Argo CD teams get their Deployments patched by the
application controller instead.
"""

from __future__ import annotations

from eksight.tools.simulator.emit import Who, rbac_reason, user_fragment
from eksight.tools.simulator.kubectl import Client
from eksight.tools.simulator.model import AZURE_RANGES, App, Team, World
from eksight.tools.simulator.util import (
    HOUR,
    US,
    git_sha,
    local_midnight,
    role_id,
    seeded,
    session_key,
    utc_offset,
    weekday,
)

CI_KUBECTL = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"


class Delivery:
    def __init__(self, world: World) -> None:
        self.w = world
        self.rng = rng = seeded(world.seed, "delivery")
        self.role = rng.choice(("github-actions-eks-deploy", "gha-deployer", "github-oidc-deploy"))
        self.role_id = role_id(rng)
        self.reason = rbac_reason(
            "ClusterRoleBinding", "ci-deployers", "ClusterRole", "ci-deployer", "Group", "ci-deployers"
        )

    def who(self, t: int, ua: str = CI_KUBECTL, ip: str = "") -> Who:
        w = self.w
        session = f"arn:aws:sts::{w.account}:assumed-role/{self.role}/GitHubActions"
        extra = {
            "accessKeyId": [session_key(self.rng)],
            "arn": [session],
            "canonicalArn": [f"arn:aws:iam::{w.account}:role/{self.role}"],
            "principalId": [f"{self.role_id}:GitHubActions"],
            "sessionName": ["GitHubActions"],
        }
        groups = ("ci-deployers", "system:authenticated")
        user = user_fragment(session, f"aws-iam-authenticator:{w.account}:{self.role_id}", groups, extra)
        return Who(user, session, ua, ip or w.public_ip(self.rng, AZURE_RANGES), self.reason, groups)

    def client(self, t: int, tag: str = "", ua: str = CI_KUBECTL) -> Client:
        return Client(self.w.emitter, self.who(t, ua), t, self.rng, tag=tag, pace=(0.01, 0.12))

    def start(self) -> None:
        w = self.w
        for team in w.teams:
            t = local_midnight(team.zone, w.start)
            while t < w.end:
                w.schedule(max(t, w.start), self._day, team, t)
                t = local_midnight(team.zone, t + 36 * HOUR)

    def _day(self, t: int, team: Team, midnight: int) -> None:
        w, rng = self.w, self.rng
        if team.created_at is not None and midnight < team.created_at:
            return
        local_day = weekday(midnight + utc_offset(team.zone, midnight) + HOUR)
        count = rng.choice((0, 1, 1, 2, 2, 3, 4)) if local_day < 5 else (1 if rng.random() < 0.05 else 0)
        for _ in range(count):
            at = midnight + int(rng.uniform(9.5, 18.5) * HOUR)
            apps = [a for a in team.apps if a.created_at is None or a.created_at < at]
            if apps:
                w.schedule(at, self.deploy, rng.choice(apps), "")
        del t

    def deploy(self, t: int, app: App, tag: str) -> None:
        if app.team.deployer == "argocd":
            self.argocd_sync(t, app, tag)
        else:
            self.gha_run(t, app, tag)

    def gha_run(self, t: int, app: App, tag: str) -> None:
        w, rng = self.w, self.rng
        deploy = w.apps.by_app.get((app.namespace, app.name))
        if deploy is None:
            return
        c = self.client(t, tag)
        c.discovery()
        ns = app.namespace
        config = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": app.configmap, "namespace": ns},
            "data": {"APP_ENV": "production", "LOG_LEVEL": "info"},
        }
        c.apply("configmaps", ns, app.configmap, config, kind="ConfigMap")
        app.tag = git_sha(rng)
        body = {
            "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": ""}},
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": app.name}],
                        "containers": [{"name": app.name, "image": f"{app.image}:{app.tag}"}],
                    }
                }
            },
        }
        c.apply("deployments", ns, app.name, body, kind="Deployment")
        w.apps.rollout(c.t + rng.randrange(20_000, 150_000), deploy, tag)
        if deploy.service:
            c.apply(
                "services",
                ns,
                deploy.service,
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": deploy.service, "namespace": ns}},
                kind="Service",
            )
        c.wait(0.5, 2)
        c.call(
            "watch",
            "deployments",
            ns,
            query=f"fieldSelector=metadata.name%3D{app.name}&resourceVersion={w.emitter.rv(c.t)}&watch=true",
            stage="ResponseStarted",
            complete_after=rng.randrange(30 * US, 240 * US),
        )
        c.get("deployments", ns, app.name)

    def argocd_sync(self, t: int, app: App, tag: str) -> None:
        w, rng = self.w, self.rng
        deploy = w.apps.by_app.get((app.namespace, app.name))
        who = w.addons.identity("argocd-application-controller", t)
        if deploy is None or who is None:
            return
        c = Client(w.emitter, who, t, rng, tag=tag, pace=(0.01, 0.05))
        app.tag = git_sha(rng)
        body = {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/containers": [{"name": app.name}],
                        "containers": [{"name": app.name, "image": f"{app.image}:{app.tag}"}],
                    }
                }
            }
        }
        c.apply("deployments", app.namespace, app.name, body, manager="argocd-controller", kind="Deployment")
        w.apps.rollout(c.t + rng.randrange(20_000, 150_000), deploy, tag)
        c.call(
            "patch",
            "applications",
            "argocd",
            f"{app.team.name}-{app.name}",
            query="fieldManager=argocd-controller",
            level="Metadata",
        )
