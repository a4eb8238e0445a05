"""What client tools send: one `Client` is one session of one identity with one tool (kubectl, k9s, Lens, Helm,
a script). Each call is one API request logged at the session's current time; the time then advances by the
tool's pace. Authorization is decided by an `authorize(verb, resource, namespace, sub)` callback returning the
reason string of an allowed request, or None for a 403 (logged with the RBAC denial message).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from eksight.tools.simulator.emit import Emitter, Who, forbidden_message
from eksight.tools.simulator.util import US, iso_seconds

Authorize = Callable[[str, str, str, str], "str | None"]


class Client:
    def __init__(
        self,
        em: Emitter,
        who: Who,
        t: int,
        rng: random.Random,
        *,
        authorize: Authorize | None = None,
        tag: str = "",
        pace: tuple[float, float] = (0.02, 0.15),
    ) -> None:
        self.em, self.who, self.t, self.rng = em, who, t, rng
        self.authorize = authorize
        self.tag = tag
        self.pace = pace
        self.ids: list[str] = []
        self.denied = 0

    def wait(self, low: float, high: float) -> None:
        self.t += int(self.rng.uniform(low, high) * US)

    def call(
        self,
        verb: str,
        resource: str = "",
        namespace: str = "",
        name: str = "",
        sub: str = "",
        *,
        query: str = "",
        uri: str | None = None,
        code: int | None = None,
        req: object = None,
        resp: object = None,
        level: str | None = None,
        complete_after: int | None = None,
        stage: str = "ResponseComplete",
        annotations: dict[str, str] | None = None,
        message: str = "",
        impersonated: dict[str, object] | None = None,
    ) -> str:
        reason = self.who.reason
        if self.authorize is not None and resource:
            decided = self.authorize(verb, resource, namespace, sub)
            if decided is None:
                code = 403
                message = forbidden_message(self.who.username, verb, resource.rpartition("/")[2], sub, name, namespace)
                req = resp = None
                complete_after = None
                stage = "ResponseComplete"
                self.denied += 1
            else:
                reason = decided
        aid = self.em.event(
            self.t,
            self.who,
            verb,
            resource,
            namespace,
            name,
            sub,
            query=query,
            uri=uri,
            code=code,
            req=req,
            resp=resp,
            level=level,
            reason=reason,
            message=message,
            tag=self.tag,
            complete_after=complete_after,
            stage=stage,
            annotations=annotations,
            impersonated=impersonated,
        )
        if aid:
            self.ids.append(aid)
        self.t += int(self.rng.uniform(*self.pace) * US)
        return aid

    # --- kubectl ---------------------------------------------------------------------------------------------------
    def discovery(self) -> None:
        """A cold discovery cache (first use of the day, new machine, CI runner): aggregated discovery."""
        self.call("get", uri="/api?timeout=32s")
        self.call("get", uri="/apis?timeout=32s")

    def list(self, resource: str, namespace: str = "", query: str = "limit=500") -> str:
        return self.call("list", resource, namespace, query=query)

    def get(self, resource: str, namespace: str, name: str, sub: str = "", query: str = "") -> str:
        return self.call("get", resource, namespace, name, sub, query=query)

    def logs(self, namespace: str, pod: str, container: str, follow: bool = False) -> str:
        tail = "&follow=true" if follow else f"&tailLines={self.rng.choice((50, 100, 200, 500))}"
        query = f"container={container}{tail}"
        return self.call(
            "get",
            "pods",
            namespace,
            pod,
            "log",
            query=query,
            complete_after=self.rng.randrange(20 * US, 600 * US) if follow else None,
            stage="ResponseStarted" if follow else "ResponseComplete",
        )

    def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Sequence[str],
        tty: bool = True,
        duration: int | None = None,
    ) -> str:
        from urllib.parse import quote

        args = "&".join(f"command={quote(part, safe='')}" for part in command)
        query = f"{args}&container={container}&stdin=true&stdout=true" + ("&tty=true" if tty else "&stderr=true")
        return self.call(
            "create",
            "pods",
            namespace,
            pod,
            "exec",
            query=query,
            stage="ResponseStarted",
            complete_after=duration or self.rng.randrange(15 * US, 900 * US),
        )

    def port_forward(self, namespace: str, pod: str) -> str:
        return self.call(
            "create",
            "pods",
            namespace,
            pod,
            "portforward",
            stage="ResponseStarted",
            complete_after=self.rng.randrange(60 * US, 3600 * US),
        )

    def restart(self, namespace: str, deployment: str) -> str:
        self.get("deployments", namespace, deployment)
        stamp = iso_seconds(self.t)
        body = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}}
        return self.call(
            "patch",
            "deployments",
            namespace,
            deployment,
            query="fieldManager=kubectl-rollout",
            req=body,
            resp=_echo("Deployment", "apps/v1", deployment, namespace, self.em.rv(self.t)),
        )

    def apply(
        self,
        resource: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        manager: str = "kubectl-client-side-apply",
        kind: str = "",
    ) -> str:
        self.get(resource, namespace, name)
        return self.call(
            "patch",
            resource,
            namespace,
            name,
            query=f"fieldManager={manager}",
            req=body,
            resp=_echo(kind or resource[:-1].capitalize(), _api_version(resource), name, namespace, self.em.rv(self.t)),
        )

    def create(
        self,
        resource: str,
        namespace: str,
        body: dict[str, Any],
        query: str = "fieldManager=kubectl-create",
        level: str | None = None,
    ) -> str:
        meta = body.get("metadata", {})
        resp = {
            **body,
            "metadata": {
                **meta,
                "uid": _uid(self.rng),
                "resourceVersion": self.em.rv(self.t),
                "creationTimestamp": iso_seconds(self.t),
            },
        }
        return self.call("create", resource, namespace, query=query, req=body, resp=resp, level=level)

    def can_i(self, verb: str, resource: str, namespace: str = "") -> str:
        attrs: dict[str, str] = {"verb": verb, "resource": resource}
        if namespace:
            attrs["namespace"] = namespace
        body = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": attrs},
        }
        return self.call("create", "selfsubjectaccessreviews", req=body)


def _api_version(resource: str) -> str:
    from eksight.tools.simulator.emit import RESOURCES

    group, version = RESOURCES.get(resource, ("", "v1"))
    return f"{group}/{version}" if group else version


def _uid(rng: random.Random) -> str:
    from eksight.tools.simulator.util import uuid4

    return uuid4(rng)


def _echo(kind: str, api_version: str, name: str, namespace: str, rv: str) -> dict[str, Any]:
    """The object as the API server returned it, trimmed to its identity."""
    return {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
    }
