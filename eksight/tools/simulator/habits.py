"""What a person does in one session: a few to a dozen kubectl commands (or a k9s / Lens session, or a Helm
upgrade), mostly in their own namespace, paced like someone reading output between commands."""

from __future__ import annotations

import random
from collections.abc import Callable

from eksight.tools.simulator.kubectl import Client
from eksight.tools.simulator.people import People, Person, SsoRole
from eksight.tools.simulator.pods import Deploy
from eksight.tools.simulator.util import US

Command = Callable[[People, Client, Person], None]

K9S = "v0.32.5"
LENS = "6.5.2"
HELM = "v3.14.4"


def _weights(person: Person, role: SsoRole | None) -> dict[str, float]:
    kind = "admin" if role is not None else person.kind
    if kind == "admin":
        table = {
            "pods": 15,
            "describe": 8,
            "logs": 10,
            "deploys": 5,
            "nodes": 8,
            "all_pods": 8,
            "get_node": 4,
            "kube_system": 6,
            "top_nodes": 3,
            "helm_list": 2,
            "argocd": 3,
            "restart": 1.5,
            "exec": 2,
            "secret": 1,
            "cm": 2,
            "crb": 1,
            "namespaces": 2,
            "hpa": 1,
        }
    elif kind == "sre":
        table = {
            "pods": 15,
            "describe": 10,
            "logs": 15,
            "all_pods": 8,
            "nodes": 6,
            "get_node": 3,
            "kube_system": 5,
            "top": 3,
            "deploys": 4,
            "secret": 0.7,
            "hpa": 2,
            "namespaces": 2,
            "argocd": 2,
        }
    else:
        table = {
            "pods": 20,
            "describe": 10,
            "logs": 15,
            "deploys": 6,
            "svc": 3,
            "get_deploy": 5,
            "restart": 2,
            "top": 3,
            "exec": 4,
            "pf": 3,
            "cm": 3,
            "secret": 1.5,
            "ingress": 1,
            "hpa": 1,
            "all_pods": 2,
            "nodes": 1,
            "default": 1.5,
            "jobs": 1,
            "cani": 0.5,
            "apply": 2,
        }
    if not person.execs:
        table.pop("exec", None)
    if not person.port_forwards:
        table.pop("pf", None)
    if person.readonly:
        for key in ("restart", "apply", "exec", "pf"):
            table.pop(key, None)
    return table


def run_session(people: People, person: Person, t: int, ip: str, role: SsoRole | None) -> None:
    rng: random.Random = people.rng
    tag = people.tag_for(person, t, ip)
    roll = rng.random()
    if role is None and person.helm and roll < person.helm:
        client = people.client(person, t, ip, f"Helm/{HELM[1:]}", role, tag, pace=(0.01, 0.08))
        helm_upgrade(people, client, person)
        return
    if roll < person.k9s:
        client = people.client(person, t, ip, f"k9s/{K9S} ({person.os}) kubernetes/$Format", role, tag, (0.05, 0.6))
        k9s(people, client, person, role)
        return
    if roll < person.lens:
        client = people.client(person, t, ip, f"Lens/{LENS}", role, tag, (0.01, 0.2))
        lens(people, client, person)
        return
    client = people.client(person, t, ip, "", role, tag, pace=(0.03, 0.3))
    if rng.random() < 0.35:
        client.discovery()
    weights = _weights(person, role)
    names, values = list(weights), list(weights.values())
    for _ in range(rng.randrange(3, 16)):
        COMMANDS[rng.choices(names, values)[0]](people, client, person)
        client.wait(4, 100)


# --- helpers ---------------------------------------------------------------------------------------------------------


def namespace(people: People, person: Person) -> str:
    rng = people.rng
    w = people.w
    if person.kind == "dev" and person.team is not None:
        teams = [t for t in w.teams if t.created_at is None]
        neighbour = teams[(teams.index(person.team) + 1) % len(teams)] if person.team in teams else person.team
        ns = person.team.namespace if rng.random() < 0.92 else neighbour.namespace  # a team they depend on
    else:
        ns = rng.choice([t.namespace for t in w.teams] + ["kube-system", "kube-system", "argocd", "monitoring"])
    person.touched.add(ns)
    return ns


def pod_in(people: People, ns: str, t: int) -> tuple[str, str] | None:
    pods = [
        p for d in people.w.pods.deploys if d.namespace == ns for p in d.pods if p.start <= t < min(p.end, p.node.end)
    ]
    if not pods:
        return None
    pod = people.rng.choice(pods)
    return pod.name, pod.owner.containers[0]["name"]


def deployment_in(people: People, ns: str) -> Deploy | None:
    deploys = [d for d in people.w.pods.deploys if d.namespace == ns and d.kind == "Deployment"]
    return people.rng.choice(deploys) if deploys else None


# --- commands --------------------------------------------------------------------------------------------------------


def _pods(people: People, c: Client, person: Person) -> None:
    c.list("pods", namespace(people, person))


def _describe(people: People, c: Client, person: Person) -> None:
    ns = namespace(people, person)
    found = pod_in(people, ns, c.t)
    if found:
        c.get("pods", ns, found[0])


def _logs(people: People, c: Client, person: Person) -> None:
    ns = namespace(people, person)
    found = pod_in(people, ns, c.t)
    if found:
        c.get("pods", ns, found[0])
        c.logs(ns, found[0], found[1], follow=people.rng.random() < 0.25)


def _exec(people: People, c: Client, person: Person) -> None:
    ns = person.own_team.namespace if person.kind == "dev" else namespace(people, person)
    if ns == "kube-system" and people.rng.random() < 0.85:
        ns = people.rng.choice(people.w.teams).namespace
    found = pod_in(people, ns, c.t)
    if found:
        c.get("pods", ns, found[0])
        command = people.rng.choice(
            (["sh"], ["bash"], ["/bin/sh"], ["env"], ["cat", "/etc/resolv.conf"], ["ls", "/app"])
        )
        c.exec(ns, found[0], found[1], command, tty=command[0] in ("sh", "bash", "/bin/sh"))


def _port_forward(people: People, c: Client, person: Person) -> None:
    ns = person.own_team.namespace
    found = pod_in(people, ns, c.t)
    if found:
        c.get("pods", ns, found[0])
        c.port_forward(ns, found[0])


def _simple(resource: str, query: str = "limit=500") -> Command:
    def command(people: People, c: Client, person: Person) -> None:
        c.list(resource, namespace(people, person), query)

    return command


def _get_deploy(people: People, c: Client, person: Person) -> None:
    deploy = deployment_in(people, namespace(people, person))
    if deploy:
        c.get("deployments", deploy.namespace, deploy.name)


def _restart(people: People, c: Client, person: Person) -> None:
    ns = person.own_team.namespace if person.kind == "dev" else namespace(people, person)
    deploy = deployment_in(people, ns)
    if deploy:
        denied = c.denied
        c.restart(ns, deploy.name)
        if c.denied == denied:
            people.w.apps.rollout(c.t + people.rng.randrange(20_000, 200_000), deploy, c.tag)


def _top(people: People, c: Client, person: Person) -> None:
    c.list("metrics.k8s.io/pods", namespace(people, person), "")


def _cm(people: People, c: Client, person: Person) -> None:
    ns = namespace(people, person)
    apps = [a for t in people.w.teams if t.namespace == ns for a in t.apps]
    c.get("configmaps", ns, people.rng.choice(apps).configmap if apps else "kube-root-ca.crt")


def _secret(people: People, c: Client, person: Person) -> None:
    ns = person.own_team.namespace if person.kind == "dev" else namespace(people, person)
    apps = [a for t in people.w.teams if t.namespace == ns for a in t.apps]
    if apps:
        c.get("secrets", ns, people.rng.choice(apps).secret)


def _nodes(people: People, c: Client, person: Person) -> None:
    c.list("nodes")


def _get_node(people: People, c: Client, person: Person) -> None:
    live = people.w.fleet.ready(c.t)
    if live:
        c.get("nodes", "", people.rng.choice(live).name)


def _all_pods(people: People, c: Client, person: Person) -> None:
    c.list("pods")


def _kube_system(people: People, c: Client, person: Person) -> None:
    c.list("pods", "kube-system")
    found = pod_in(people, "kube-system", c.t)
    if found and people.rng.random() < 0.6:
        c.wait(3, 20)
        c.logs("kube-system", found[0], found[1])


def _top_nodes(people: People, c: Client, person: Person) -> None:
    c.list("metrics.k8s.io/nodes", "", "")


def _helm_list(people: People, c: Client, person: Person) -> None:
    c.list("secrets", "", "labelSelector=owner%3Dhelm")


def _argocd(people: People, c: Client, person: Person) -> None:
    c.list("applications", "argocd")


def _crb(people: People, c: Client, person: Person) -> None:
    c.list("clusterrolebindings")


def _namespaces(people: People, c: Client, person: Person) -> None:
    c.list("namespaces")


def _default(people: People, c: Client, person: Person) -> None:
    """Forgot -n: the request lands in `default`; reads come back empty, writes are refused."""
    if people.rng.random() < 0.5:
        c.list("pods", "default")
    else:
        app = people.rng.choice(person.own_team.apps)
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": app.configmap, "namespace": "default"}}
        c.call(
            "get", "configmaps", "default", app.configmap, code=404, message=f'configmaps "{app.configmap}" not found'
        )
        c.create("configmaps", "default", body, query="fieldManager=kubectl-client-side-apply")
    c.wait(5, 25)
    c.list("pods", person.own_team.namespace)


def _can_i(people: People, c: Client, person: Person) -> None:
    c.can_i(
        people.rng.choice(("create", "delete", "get")),
        people.rng.choice(("deployments", "pods", "secrets")),
        person.own_team.namespace,
    )


def _apply(people: People, c: Client, person: Person) -> None:
    app = people.rng.choice(person.own_team.apps)
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": app.configmap, "namespace": app.namespace},
        "data": {"LOG_LEVEL": people.rng.choice(("info", "debug", "warn")), "FEATURE_FLAGS": "checkout-v2"},
    }
    c.apply("configmaps", app.namespace, app.configmap, body, kind="ConfigMap")


COMMANDS = {
    "pods": _pods,
    "describe": _describe,
    "logs": _logs,
    "exec": _exec,
    "pf": _port_forward,
    "deploys": _simple("deployments"),
    "svc": _simple("services"),
    "ingress": _simple("ingresses"),
    "hpa": _simple("horizontalpodautoscalers"),
    "jobs": _simple("jobs"),
    "get_deploy": _get_deploy,
    "restart": _restart,
    "top": _top,
    "cm": _cm,
    "secret": _secret,
    "nodes": _nodes,
    "get_node": _get_node,
    "all_pods": _all_pods,
    "kube_system": _kube_system,
    "top_nodes": _top_nodes,
    "helm_list": _helm_list,
    "argocd": _argocd,
    "crb": _crb,
    "namespaces": _namespaces,
    "default": _default,
    "cani": _can_i,
    "apply": _apply,
}


# --- tools -----------------------------------------------------------------------------------------------------------


def k9s(people: People, c: Client, person: Person, role: SsoRole | None) -> None:
    """k9s: discovery, permission checks, then informer-backed views and a metrics poll."""
    rng = people.rng
    ns = person.own_team.namespace if person.kind == "dev" and role is None else namespace(people, person)
    c.discovery()
    for verb, resource in (("list", "namespaces"), ("list", "pods"), ("get", "nodes")):
        c.can_i(verb, resource)
    c.list("namespaces", "", "limit=500")
    c.list("nodes", "", "limit=500")
    c.list("pods", ns, "limit=500")
    c.call(
        "watch",
        "pods",
        ns,
        query=f"allowWatchBookmarks=true&resourceVersion={c.em.rv(c.t)}&watch=true",
        stage="ResponseStarted",
        complete_after=rng.randrange(60 * US, 1800 * US),
    )
    for _ in range(rng.randrange(1, 4)):
        c.list("metrics.k8s.io/pods", ns, "")
        c.wait(8, 40)
    for _ in range(rng.randrange(1, 5)):
        found = pod_in(people, ns, c.t)
        if not found:
            break
        c.get("pods", ns, found[0])
        if rng.random() < 0.5:
            c.logs(ns, found[0], found[1], follow=True)
        elif person.execs and rng.random() < 0.4:
            c.exec(ns, found[0], found[1], ["sh", "-c", "command -v bash >/dev/null && exec bash || exec sh"])
        c.wait(10, 90)


def lens(people: People, c: Client, person: Person) -> None:
    """Lens: lists and watches the kinds of the namespace it opens (people open it on application namespaces)."""
    ns = person.own_team.namespace if person.kind == "dev" else people.rng.choice(people.w.teams).namespace
    c.discovery()
    kinds = (
        "pods",
        "deployments",
        "services",
        "configmaps",
        "secrets",
        "ingresses",
        "statefulsets",
        "jobs",
        "cronjobs",
        "replicasets",
    )
    for kind in kinds:
        c.list(kind, ns, "")
    for kind in people.rng.sample(kinds, 4):
        c.call(
            "watch",
            kind,
            ns,
            query=f"resourceVersion={c.em.rv(c.t)}&watch=true",
            stage="ResponseStarted",
            complete_after=people.rng.randrange(120 * US, 2400 * US),
        )


def helm_upgrade(
    people: People,
    c: Client,
    person: Person,
    deploy: Deploy | None = None,
    extra: Callable[[Client], None] | None = None,
) -> None:
    """`helm upgrade --install`: release storage in secrets, three-way-merge patches, a new release record."""
    rng = people.rng
    if deploy is None:
        ns = person.own_team.namespace if person.kind == "dev" else namespace(people, person)
        deploy = deployment_in(people, ns)
        if deploy is None:
            return
    ns, release = deploy.namespace, deploy.name
    revision = rng.randrange(3, 40)
    c.call("get", uri="/version")
    c.list("secrets", ns, f"labelSelector=name%3D{release}%2Cowner%3Dhelm")
    c.list("secrets", ns, f"labelSelector=name%3D{release}%2Cowner%3Dhelm%2Cstatus%3Ddeployed")
    for resource, name in (
        ("serviceaccounts", deploy.sa),
        ("configmaps", f"{release}-config"),
        ("services", release),
        ("deployments", release),
    ):
        c.get(resource, ns, name)
    if extra is not None:
        extra(c)
    denied = c.denied
    body = {
        "metadata": {"annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": ns}},
        "spec": {"template": {"metadata": {"annotations": {"checksum/config": f"{rng.getrandbits(256):064x}"}}}},
    }
    c.call(
        "patch",
        "deployments",
        ns,
        release,
        query="fieldManager=helm",
        req=body,
        resp={"kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": release, "namespace": ns}},
    )
    record = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.{release}.v{revision + 1}",
            "namespace": ns,
            "labels": {"name": release, "owner": "helm", "status": "pending-upgrade", "version": str(revision + 1)},
        },
    }
    c.create("secrets", ns, record, query="fieldManager=helm")
    c.call("update", "secrets", ns, f"sh.helm.release.v1.{release}.v{revision}", query="fieldManager=helm")
    c.call("update", "secrets", ns, f"sh.helm.release.v1.{release}.v{revision + 1}", query="fieldManager=helm")
    if c.denied == denied:
        people.w.apps.rollout(c.t, deploy, c.tag)
