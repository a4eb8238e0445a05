"""The teams' applications: Deployments/StatefulSets with real pod specs and ECR images, how their pods use
the API (reading their own ConfigMap and Secret, leader election, peer discovery), rollouts, the
horizontal-pod-autoscaler loop and CronJobs.
"""

from __future__ import annotations

from typing import Any

from eksight.tools.simulator.emit import rbac_reason
from eksight.tools.simulator.model import App, Team, World, rs_hash
from eksight.tools.simulator.pods import Deploy, Pod, Pods
from eksight.tools.simulator.util import MINUTE, US, git_sha, iso_seconds, seeded, stable_hash, uuid4

SIDECARS = {
    "envoy": "public.ecr.aws/appmesh/aws-appmesh-envoy:v1.27.3.0-prod",
    "datadog-agent": "public.ecr.aws/datadog/agent:7.52.1",
}
CLIENTS = (
    "{app}/v0.0.0 (linux/amd64) kubernetes/$Format",
    "fabric8-kubernetes-client/6.10.0",
    "OpenAPI-Generator/29.0.0/python",
)
SERVED = ("api", "web", "gateway", "grpc", "admin", "events")


class Apps:
    def __init__(self, world: World, pods: Pods) -> None:
        self.w = world
        self.pods = pods
        self.rng = seeded(world.seed, "apps")
        self.by_app: dict[tuple[str, str], Deploy] = {}

    # --- building -------------------------------------------------------------------------------------------------
    def containers(self, app: App) -> list[dict[str, Any]]:
        main: dict[str, Any] = {
            "name": app.name,
            "image": f"{app.image}:{app.tag}",
            "ports": [{"name": "http" if app.port != 50051 else "grpc", "containerPort": app.port, "protocol": "TCP"}],
            "envFrom": [{"secretRef": {"name": app.secret}}, {"configMapRef": {"name": app.configmap}}],
            "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "250m", "memory": "512Mi"}},
            "readinessProbe": {
                "httpGet": {"path": "/healthz", "port": app.port, "scheme": "HTTP"},
                "periodSeconds": 10,
                "timeoutSeconds": 1,
                "successThreshold": 1,
                "failureThreshold": 3,
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
            "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File",
            "imagePullPolicy": "IfNotPresent",
        }
        result = [main]
        if app.sidecar:
            result.append(
                {
                    "name": app.sidecar,
                    "image": SIDECARS[app.sidecar],
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            )
        return result

    def deploy_for(self, app: App) -> Deploy:
        profile_binding = {"config": "config-reader", "leader": "leader-election", "discovery": "pod-reader"}
        binding = f"{app.name}-{profile_binding.get(app.profile, 'default')}"
        ua = CLIENTS[stable_hash(app.team.name + app.name) % len(CLIENTS)].format(app=app.name)
        deploy = Deploy(
            app.name,
            app.namespace,
            app.kind,
            app.replicas,
            app.sa,
            self.containers(app),
            ua=ua,
            reason=rbac_reason(
                "RoleBinding", binding, "Role", binding, "ServiceAccount", f"{app.sa}/{app.namespace}", app.namespace
            ),
            app=app,
            on_start=self._pod_started,
            service=app.name if app.name in SERVED else "",
            irsa=app.irsa,
        )
        self.by_app[(app.namespace, app.name)] = self.pods.add(deploy)
        return deploy

    def start(self) -> None:
        """Place the pods that run when the log starts; start the HPA loops and CronJob schedules."""
        w, rng = self.w, self.rng
        for team in w.teams:
            if team.created_at is not None:
                continue
            for app in team.apps:
                if app.created_at is not None:
                    continue
                deploy = self.by_app[(app.namespace, app.name)]
                for index in range(app.replicas):
                    self.pods.place(deploy, w.start, existing=True, index=index)
                if app.hpa:
                    w.schedule(w.start + rng.randrange(0, 15 * US), self._hpa, deploy)
            for name, period, offset in team.cronjobs:
                first = w.start - (w.start - offset) % period + period
                w.schedule(first + rng.randrange(100_000, 3 * US), self._cron, team, name, period)

    # --- pods using the API ---------------------------------------------------------------------------------------
    def _pod_started(self, t: int, pod: Pod, existing: bool) -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        app = pod.owner.app
        assert app is not None
        if app.profile == "none":
            return
        tag = app.tag_label
        if app.profile == "config":
            if not existing:
                boot = t + rng.randrange(3 * US, 20 * US)
                who = self.pods.who(pod, boot)
                em.event(boot, who, "get", "configmaps", pod.namespace, app.configmap, tag=tag)
                em.event(boot + rng.randrange(5_000, 80_000), who, "get", "secrets", pod.namespace, app.secret, tag=tag)
            w.schedule(t + rng.randrange(MINUTE, 10 * MINUTE), self._config_watch, pod)
            w.schedule(t + rng.randrange(10 * MINUTE, 60 * MINUTE), self._config_refresh, pod)
        elif app.profile == "leader":
            w.schedule(t + rng.randrange(US, 10 * US), self._leader, pod)
        elif app.profile == "discovery":
            w.schedule(t + rng.randrange(US, 30 * US), self._discovery, pod)

    @staticmethod
    def alive(pod: Pod, t: int) -> bool:
        return t < pod.end and t < pod.node.end

    def _config_watch(self, t: int, pod: Pod) -> None:
        if not self.alive(pod, t):
            return
        app = pod.owner.app
        assert app is not None
        self.w.emitter.watch(
            t,
            self.pods.who(pod, t),
            "configmaps",
            pod.namespace,
            selector=f"fieldSelector=metadata.name%3D{app.configmap}",
            tag=app.tag_label,
        )
        self.w.schedule(t + self.w.every(540, "bulk") + self.rng.randrange(0, 60 * US), self._config_watch, pod)

    def _config_refresh(self, t: int, pod: Pod) -> None:
        """Secret reloaders (and many SDKs) re-read their secret periodically."""
        if not self.alive(pod, t):
            return
        app = pod.owner.app
        assert app is not None
        self.w.emitter.event(t, self.pods.who(pod, t), "get", "secrets", pod.namespace, app.secret, tag=app.tag_label)
        self.w.schedule(t + self.w.every(3600, "poll") + self.rng.randrange(0, 120 * US), self._config_refresh, pod)

    def _leader(self, t: int, pod: Pod) -> None:
        if not self.alive(pod, t):
            return
        em, deploy = self.w.emitter, pod.owner
        who = self.pods.who(pod, t)
        lease = f"{deploy.name}-leader"
        if deploy.pods and deploy.pods[0] is pod:
            em.event(t, who, "update", "leases", pod.namespace, lease, tag=deploy.app.tag_label if deploy.app else "")
        elif self.rng.random() < 0.5:
            em.event(t, who, "get", "leases", pod.namespace, lease)
        self.w.schedule(t + self.w.every(5, "lease") + self.rng.randrange(-200_000, 200_000), self._leader, pod)

    def _discovery(self, t: int, pod: Pod) -> None:
        if not self.alive(pod, t):
            return
        self.w.emitter.event(
            t,
            self.pods.who(pod, t),
            "list",
            "pods",
            pod.namespace,
            query=f"labelSelector=app.kubernetes.io%2Fname%3D{pod.owner.name}",
        )
        self.w.schedule(t + self.w.every(30, "poll") + self.rng.randrange(0, 3 * US), self._discovery, pod)

    # --- autoscaling ----------------------------------------------------------------------------------------------
    def _hpa(self, t: int, deploy: Deploy) -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        control, addons = w.control, w.addons
        hpa = control.controller(t, "horizontal-pod-autoscaler")
        em.event(t, hpa, "get", "deployments", deploy.namespace, deploy.name, "scale")
        em.event(
            t + rng.randrange(3_000, 12_000),
            hpa,
            "list",
            "metrics.k8s.io/pods",
            deploy.namespace,
            query=f"labelSelector=app.kubernetes.io%2Fname%3D{deploy.name}",
        )
        metrics = addons.identity("metrics-server", t)
        if metrics is not None and rng.random() < 0.3:
            em.event(t + rng.randrange(4_000, 10_000), metrics, "create", "subjectaccessreviews")
        base = deploy.app.replicas if deploy.app else deploy.replicas
        want = max(2, min(3 * base, round(base * w.fleet.load(t) * rng.uniform(0.9, 1.25))))
        have = len(deploy.pods)
        if want != have and rng.random() < 0.5:
            when = t + rng.randrange(20_000, 60_000)
            em.event(when, hpa, "update", "deployments", deploy.namespace, deploy.name, "scale")
            em.event(when + 15_000, hpa, "update", "horizontalpodautoscalers", deploy.namespace, deploy.name, "status")
            step = 1 if want > have else -1
            for i in range(abs(want - have)):
                at = when + rng.randrange(50_000, 400_000) + i * 200_000
                if step > 0:
                    self.pods.place(deploy, at)
                elif deploy.pods:
                    self.pods.remove(at, deploy.pods[-1])
        w.schedule(t + w.every(15, "poll") + rng.randrange(-US, US), self._hpa, deploy)

    # --- rollouts -------------------------------------------------------------------------------------------------
    def rollout(self, t: int, deploy: Deploy, tag: str = "") -> None:
        """What the controllers do after someone changes a Deployment's pod template."""
        w, em, rng = self.w, self.w.emitter, self.rng
        control = w.control
        old = list(deploy.pods)
        deploy.hash, deploy.rs_uid = rs_hash(rng), uuid4(rng)
        if deploy.app is not None:
            deploy.containers = self.containers(deploy.app)
        dc = control.controller(t, "deployment-controller")
        if deploy.kind == "Deployment":
            body = {
                "kind": "ReplicaSet",
                "apiVersion": "apps/v1",
                "metadata": {
                    "name": deploy.rs_name,
                    "namespace": deploy.namespace,
                    "labels": {"app.kubernetes.io/name": deploy.name, "pod-template-hash": deploy.hash},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": deploy.name,
                            "uid": deploy.uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": 1,
                    "selector": {
                        "matchLabels": {"app.kubernetes.io/name": deploy.name, "pod-template-hash": deploy.hash}
                    },
                },
            }
            em.event(t, dc, "create", "replicasets", deploy.namespace, level="Request", req=body, tag=tag)
            em.event(t + 20_000, dc, "update", "deployments", deploy.namespace, deploy.name, "status", tag=tag)
        when = t + rng.randrange(50_000, 300_000)
        for pod in old:
            when += rng.randrange(3 * US, 12 * US)
            if deploy.kind == "StatefulSet":
                self.pods.remove(when, pod, tag=tag)
                self.pods.place(deploy, when + rng.randrange(2 * US, 20 * US), tag=tag)
            else:
                self.pods.place(deploy, when, tag=tag)
                self.pods.remove(when + rng.randrange(4 * US, 15 * US), pod, tag=tag)
                if deploy.kind == "Deployment":
                    em.event(
                        when + rng.randrange(100_000, 400_000),
                        dc,
                        "update",
                        "replicasets",
                        deploy.namespace,
                        deploy.rs_name,
                        level="Metadata",
                        tag=tag,
                    )
        if not old:
            for _ in range(deploy.replicas):
                when += rng.randrange(200_000, 2 * US)
                self.pods.place(deploy, when, tag=tag)

    def launch(self, t: int, app: App, tag: str) -> Deploy:
        """A new application's first rollout (its Deployment was just created)."""
        app.tag_label = tag
        deploy = self.deploy_for(app)
        self.rollout(t, deploy, tag)
        return deploy

    # --- CronJobs -------------------------------------------------------------------------------------------------
    def _cron(self, t: int, team: Team, name: str, period: int) -> None:
        w, em, rng = self.w, self.w.emitter, self.rng
        control = w.control
        scheduled = t - t % MINUTE
        job = f"{name}-{scheduled // MINUTE}"
        image = f"{w.ecr}/{team.name}/{name}:{git_sha(seeded(w.seed, team.name + name))}"
        spec = Deploy(
            job,
            team.namespace,
            "Job",
            1,
            "default",
            [
                {
                    "name": name,
                    "image": image,
                    "args": [f"--task={name}"],
                    "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
            ],
            uid=uuid4(rng),
        )
        metadata = {
            "name": job,
            "namespace": team.namespace,
            "labels": {"batch.kubernetes.io/job-name": job},
            "annotations": {"batch.kubernetes.io/cronjob-scheduled-timestamp": iso_seconds(scheduled)},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "CronJob",
                    "name": name,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        }
        body = {
            "kind": "Job",
            "apiVersion": "batch/v1",
            "metadata": metadata,
            "spec": {
                "backoffLimit": 2,
                "template": {"spec": {"containers": spec.containers, "restartPolicy": "Never"}},
            },
        }
        cron = control.controller(t, "cronjob-controller")
        em.event(
            t,
            cron,
            "create",
            "jobs",
            team.namespace,
            req=body,
            resp={**body, "metadata": {**metadata, "uid": spec.uid}},
        )
        em.event(t + 30_000, cron, "update", "cronjobs", team.namespace, name, "status")
        pod = self.pods.place(spec, t + rng.randrange(50_000, 500_000))
        if pod is not None:
            runtime = rng.randrange(20 * US, 12 * MINUTE)
            w.schedule(pod.start + runtime, self._job_done, pod)
        w.schedule(t + 3 * period + rng.randrange(0, 2 * US), self._job_cleanup, team.namespace, job, pod)
        w.schedule(t + period, self._cron, team, name, period)

    def _job_done(self, t: int, pod: Pod) -> None:
        w, em = self.w, self.w.emitter
        if t >= pod.node.end:
            return
        kubelet = w.fleet.kubelet(pod.node, t)
        em.event(
            t,
            kubelet,
            "patch",
            "pods",
            pod.namespace,
            pod.name,
            "status",
            level="Request",
            req={"metadata": {"uid": pod.uid}, "status": {"phase": "Succeeded"}},
        )
        job = w.control.controller(t, "job-controller")
        em.event(
            t + self.rng.randrange(100_000, 900_000), job, "update", "jobs", pod.namespace, pod.owner.name, "status"
        )
        pod.end = t
        if pod in pod.node.pods:
            pod.node.pods.remove(pod)

    def _job_cleanup(self, t: int, namespace: str, job: str, pod: Pod | None) -> None:
        w, em = self.w, self.w.emitter
        control = w.control
        em.event(t, control.controller(t, "cronjob-controller"), "delete", "jobs", namespace, job)
        if pod is not None:
            em.event(
                t + self.rng.randrange(50_000, 500_000),
                control.controller(t, "generic-garbage-collector"),
                "delete",
                "pods",
                namespace,
                pod.name,
            )
