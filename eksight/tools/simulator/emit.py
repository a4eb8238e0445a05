"""Building audit events the way an EKS API server logs them, and keeping them in stageTimestamp order.

`Who` is an authenticated identity with its pre-serialised `user` object, client and address; `Emitter.event`
turns (time, who, verb, resource, ...) into one audit.k8s.io/v1 Event line. The audit policy follows the
upstream GCE policy EKS derives from: secrets, configmaps, token requests and leases at Metadata; reads and
connect requests (exec/attach/port-forward) at Request; writes of workloads, RBAC, webhooks, CSRs and aws-auth
at RequestResponse with their bodies; high-volume controller status writes at Metadata. Generators emit events
for one time window at a time; `flush` writes out, sorted, every event whose stageTimestamp falls before the
window's end (watches and exec sessions complete later and wait in the buffer).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

import orjson

from eksight.tools.simulator.util import US, iso, seeded

Fragment = orjson.Fragment

# resource -> (apiGroup, apiVersion)
RESOURCES: dict[str, tuple[str, str]] = {
    **{
        r: ("", "v1")
        for r in (
            "pods",
            "nodes",
            "services",
            "endpoints",
            "configmaps",
            "secrets",
            "serviceaccounts",
            "namespaces",
            "persistentvolumeclaims",
            "persistentvolumes",
            "events",
            "replicationcontrollers",
            "resourcequotas",
            "limitranges",
            "podtemplates",
        )
    },
    **{r: ("apps", "v1") for r in ("deployments", "replicasets", "daemonsets", "statefulsets", "controllerrevisions")},
    **{r: ("batch", "v1") for r in ("jobs", "cronjobs")},
    "leases": ("coordination.k8s.io", "v1"),
    "endpointslices": ("discovery.k8s.io", "v1"),
    "horizontalpodautoscalers": ("autoscaling", "v2"),
    "poddisruptionbudgets": ("policy", "v1"),
    "ingresses": ("networking.k8s.io", "v1"),
    "networkpolicies": ("networking.k8s.io", "v1"),
    "ingressclasses": ("networking.k8s.io", "v1"),
    **{
        r: ("rbac.authorization.k8s.io", "v1") for r in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
    },
    "certificatesigningrequests": ("certificates.k8s.io", "v1"),
    "tokenreviews": ("authentication.k8s.io", "v1"),
    "subjectaccessreviews": ("authorization.k8s.io", "v1"),
    "selfsubjectaccessreviews": ("authorization.k8s.io", "v1"),
    "selfsubjectrulesreviews": ("authorization.k8s.io", "v1"),
    "mutatingwebhookconfigurations": ("admissionregistration.k8s.io", "v1"),
    "validatingwebhookconfigurations": ("admissionregistration.k8s.io", "v1"),
    "customresourcedefinitions": ("apiextensions.k8s.io", "v1"),
    **{r: ("storage.k8s.io", "v1") for r in ("storageclasses", "csidrivers", "csinodes", "volumeattachments")},
    "runtimeclasses": ("node.k8s.io", "v1"),
    "priorityclasses": ("scheduling.k8s.io", "v1"),
    "flowschemas": ("flowcontrol.apiserver.k8s.io", "v1"),
    "prioritylevelconfigurations": ("flowcontrol.apiserver.k8s.io", "v1"),
    "apiservices": ("apiregistration.k8s.io", "v1"),
    "applications": ("argoproj.io", "v1alpha1"),
    "appprojects": ("argoproj.io", "v1alpha1"),
    "certificates": ("cert-manager.io", "v1"),
    "certificaterequests": ("cert-manager.io", "v1"),
    "issuers": ("cert-manager.io", "v1"),
    "clusterissuers": ("cert-manager.io", "v1"),
    "eniconfigs": ("crd.k8s.amazonaws.com", "v1alpha1"),
    "targetgroupbindings": ("elbv2.k8s.aws", "v1beta1"),
    "ingressclassparams": ("elbv2.k8s.aws", "v1beta1"),
    "servicemonitors": ("monitoring.coreos.com", "v1"),
    "prometheusrules": ("monitoring.coreos.com", "v1"),
    "podmonitors": ("monitoring.coreos.com", "v1"),
    "alertmanagerconfigs": ("monitoring.coreos.com", "v1alpha1"),
    "externalsecrets": ("external-secrets.io", "v1beta1"),
    "secretstores": ("external-secrets.io", "v1beta1"),
    "policyendpoints": ("networking.k8s.aws", "v1alpha1"),
    "metrics.k8s.io/pods": ("metrics.k8s.io", "v1beta1"),
    "metrics.k8s.io/nodes": ("metrics.k8s.io", "v1beta1"),
}
_BASE = {r: (f"/apis/{g}/{v}" if g else f"/api/{v}") for r, (g, v) in RESOURCES.items()}
KNOWN_GROUPS = frozenset(
    {
        "",
        "apps",
        "batch",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "autoscaling",
        "policy",
        "networking.k8s.io",
        "rbac.authorization.k8s.io",
        "certificates.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "storage.k8s.io",
        "node.k8s.io",
        "scheduling.k8s.io",
    }
)
METADATA_ONLY = frozenset(
    {
        "secrets",
        "configmaps",
        "tokenreviews",
        "leases",
        "subjectaccessreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
    }
)
WRITES = frozenset({"create", "update", "patch", "delete", "deletecollection"})
STREAMS = frozenset({"exec", "attach", "portforward"})

_FAST = True  # templates for the common shape (tests compare them with the plain path)
_REF_MARK = Fragment(b'"@@O@@"')
_UUID_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID_SET = (0x4 << 76) | (0x2 << 62)  # version 4, RFC 4122 variant
_REVIEWS = frozenset({"tokenreviews", "subjectaccessreviews", "selfsubjectaccessreviews", "selfsubjectrulesreviews"})
_OK = {c: Fragment(b'{"metadata":{},"code":%d}' % c) for c in (200, 201, 101)}
_REASONS = {
    409: "Conflict",
    404: "NotFound",
    403: "Forbidden",
    401: "Unauthorized",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    504: "Timeout",
}


@dataclass(slots=True)
class Who:
    """An authenticated identity as one client uses it: the `user` object, user agent, source address and the
    authorization reason its allowed requests carry."""

    user: Fragment
    username: str
    ua: str
    ip: str
    reason: str = ""
    groups: tuple[str, ...] = ()
    serial: int = field(default_factory=itertools.count().__next__)  # identifies the object in template caches

    def using(self, *, ua: str | None = None, ip: str | None = None) -> Who:
        return Who(
            self.user,
            self.username,
            ua if ua is not None else self.ua,
            ip if ip is not None else self.ip,
            self.reason,
            self.groups,
        )


def user_fragment(
    username: str, uid: str = "", groups: tuple[str, ...] | list[str] = (), extra: dict[str, list[str]] | None = None
) -> Fragment:
    user: dict[str, object] = {"username": username}
    if uid:
        user["uid"] = uid
    user["groups"] = list(groups)
    if extra:
        user["extra"] = extra
    return Fragment(orjson.dumps(user))


def rbac_reason(
    binding_kind: str, binding: str, role_kind: str, role: str, subject_kind: str, subject: str, namespace: str = ""
) -> str:
    where = f"{binding}/{namespace}" if binding_kind == "RoleBinding" else binding
    return f'RBAC: allowed by {binding_kind} "{where}" of {role_kind} "{role}" to {subject_kind} "{subject}"'


def forbidden_message(
    username: str, verb: str, resource: str, sub: str, name: str, namespace: str, suffix: str = ""
) -> str:
    group = RESOURCES.get(resource, ("", ""))[0]
    what = f'{resource} "{name}"' if name else resource
    full = f"{resource}/{sub}" if sub else resource
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    return (
        f'{what} is forbidden: User "{username}" cannot {verb} resource "{full}" in API group "{group}" {scope}{suffix}'
    )


def default_level(verb: str, resource: str, sub: str) -> str:
    if not resource:
        return "Metadata"
    if resource in METADATA_ONLY or sub == "token" or resource not in RESOURCES:
        return "Metadata"
    if RESOURCES[resource][0] not in KNOWN_GROUPS:
        return "Metadata"
    if verb in ("get", "list", "watch") or sub in STREAMS:
        return "Request"
    if sub in ("status", "binding", "scale", "approval", "eviction") or verb in ("delete", "deletecollection"):
        return "Metadata"
    return "RequestResponse" if verb in WRITES else "Request"


class Emitter:
    """Collects events of the current window; `flush(until)` hands the ones that completed before `until`, in
    stageTimestamp order, to `write(lines, stamps_ms)` and records labels."""

    def __init__(self, seed: int, start: int, end: int, write: Callable[[list[bytes], list[int]], None]) -> None:
        self.rng = seeded(seed, "audit-ids")
        self.start, self.end = start, end
        self._write = write
        self._buffer: list[tuple[int, int, bytes, str, str, int]] = []
        self._seq = 0
        self.labels: dict[str, list[str]] = {}
        self._labelled: dict[str, set[str]] = {}
        self.count = 0
        self.count_by_tag: dict[str, int] = {}
        self.rr_after: dict[int, int] = {}  # threshold -> events received at/after it (see count_after)
        self._thresholds: list[int] = []
        self.codes: dict[int, int] = {}
        self.first: dict[str, int] = {}
        self._targets: dict[tuple[str, str, str, str], tuple[str, Fragment, str]] = {}
        self._ann: dict[tuple[bool, str], Fragment] = {}
        self._templates: dict[tuple[object, ...], tuple[str, str, str, str, str, str]] = {}
        self._bits = self.rng.getrandbits
        self._random = self.rng.random

    def count_after(self, threshold: int) -> None:
        self._thresholds.append(threshold)
        self.rr_after[threshold] = 0

    def audit_id(self) -> str:
        s = "%032x" % (self._bits(128) & _UUID_MASK | _UUID_SET)
        return f"{s[:8]}-{s[8:12]}-{s[12:16]}-{s[16:20]}-{s[20:]}"

    def rv(self, t: int) -> str:
        """A resourceVersion that grows with time, as etcd's revision does."""
        return str(1_480_000_000 + (t - self.start) // 25_000)

    def _target(self, resource: str, namespace: str, name: str, sub: str) -> tuple[str, Fragment, str]:
        """(request path, objectRef) — cached, the same few thousand objects are touched over and over."""
        key = (resource, namespace, name, sub)
        found = self._targets.get(key)
        if found is None:
            if len(self._targets) > 200_000:
                self._targets.clear()
            base, plural = _BASE[resource], resource.rpartition("/")[2]
            path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
            if name:
                path += f"/{name}"
            if sub:
                path += f"/{sub}"
            group, version = RESOURCES[resource]
            ref: dict[str, str] = {"resource": plural}
            if namespace:
                ref["namespace"] = namespace
            if name:
                ref["name"] = name
            if group:
                ref["apiGroup"] = group
            ref["apiVersion"] = version
            if sub:
                ref["subresource"] = sub
            text = orjson.dumps(ref)
            found = self._targets[key] = (path, Fragment(text), text.decode())
        return found

    def _annotations(self, forbid: bool, reason: str) -> Fragment:
        key = (forbid, reason)
        found = self._ann.get(key)
        if found is None:
            if len(self._ann) > 50_000:
                self._ann.clear()
            found = self._ann[key] = Fragment(
                orjson.dumps(
                    {
                        "authorization.k8s.io/decision": "forbid" if forbid else "allow",
                        "authorization.k8s.io/reason": "" if forbid else reason,
                    }
                )
            )
        return found

    # --- the event ------------------------------------------------------------------------------------------
    def event(
        self,
        t: int,
        who: Who,
        verb: str,
        resource: str = "",
        namespace: str = "",
        name: str = "",
        sub: str = "",
        *,
        query: str = "",
        uri: str | None = None,
        code: int | None = None,
        level: str | None = None,
        latency: int | None = None,
        stage: str = "ResponseComplete",
        req: object = None,
        resp: object = None,
        reason: str | None = None,
        message: str = "",
        ua: str | None = None,
        ip: str | None = None,
        tag: str = "",
        annotations: dict[str, str] | None = None,
        audit_id: str | None = None,
        complete_after: int | None = None,
        ips: list[str] | None = None,
        impersonated: dict[str, object] | None = None,
    ) -> str:
        """Emit one event; returns its auditID. `complete_after` (µs) also logs the ResponseComplete of a
        long-running request (watch, exec) that long after it started, under the same auditID."""
        if t < self.start or t >= self.end:
            return ""
        ref = None
        ref_text = ""
        if resource:
            path, ref, ref_text = self._target(resource, namespace, name, sub)
        else:
            path = "/"
        if uri is None:
            uri = f"{path}?{query}" if query else path
        if code is None:
            code = 101 if sub in STREAMS else 201 if verb == "create" and resource not in _REVIEWS else 200
        if level is None:
            level = default_level(verb, resource, sub)
        aid = audit_id or self.audit_id()
        ua = ua if ua is not None else who.ua
        ip = ip or who.ip
        if latency is None:
            low, high = _LATENCY.get(verb, (1_000, 12_000)) if stage == "ResponseComplete" else (15_000, 60_000)
            latency = low + int(self._random() * (high - low))
        end = t + latency
        stamp = iso(end)
        reason = reason if reason is not None else who.reason
        if (
            _FAST
            and req is None
            and resp is None
            and code in _OK
            and not message
            and not annotations
            and impersonated is None
            and ips is None
        ):
            key = (who.serial, ua, ip, verb, bool(ref_text), level, code, reason, stage)
            parts = self._templates.get(key)
            if parts is None:
                if len(self._templates) > 100_000:
                    self._templates.clear()
                parts = self._templates[key] = self._template(
                    who, verb, bool(ref_text), level, code, stage, ua, ip, reason
                )
            line = (
                f"{parts[0]}{aid}{parts[1]}{uri}{parts[2]}{ref_text}{parts[3]}{iso(t)}{parts[4]}{stamp}{parts[5]}"
            ).encode()
        else:
            event = self._event_dict(
                aid,
                uri,
                who,
                verb,
                ref,
                level,
                code,
                stage,
                ua,
                ip,
                reason,
                name,
                resource,
                message,
                req,
                resp,
                annotations,
                impersonated,
                ips,
            )
            event["requestReceivedTimestamp"] = iso(t)
            event["stageTimestamp"] = stamp
            event["annotations"] = event.pop("annotations")
            line = orjson.dumps(event)
        self._add(end, line, tag, aid, t, code)
        if complete_after is not None:
            done = t + complete_after
            self._add(
                done,
                line.replace(b'"stage":"%s"' % stage.encode(), b'"stage":"ResponseComplete"', 1).replace(
                    b'"stageTimestamp":"%s"' % stamp.encode(), b'"stageTimestamp":"%s"' % iso(done).encode(), 1
                ),
                tag,
                aid,
                t,
                code,
            )
        return aid

    def _event_dict(
        self,
        aid: str,
        uri: str,
        who: Who,
        verb: str,
        ref: Fragment | None,
        level: str,
        code: int,
        stage: str,
        ua: str,
        ip: str,
        reason: str,
        name: str,
        resource: str,
        message: str,
        req: object,
        resp: object,
        annotations: dict[str, str] | None,
        impersonated: object,
        ips: list[str] | None,
    ) -> dict[str, object]:
        event: dict[str, object] = {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": level,
            "auditID": aid,
            "stage": stage,
            "requestURI": uri,
            "verb": verb,
            "user": who.user,
        }
        if impersonated is not None:
            event["impersonatedUser"] = impersonated
        event["sourceIPs"] = ips or [ip]
        event["userAgent"] = ua
        if ref is not None:
            event["objectRef"] = ref
        if code in _OK and not message:
            event["responseStatus"] = _OK[code]
        else:
            status: dict[str, object] = {"metadata": {}}
            if code >= 400:
                status["status"] = "Failure"
                status["message"] = message or _REASONS.get(code, "error")
                status["reason"] = _REASONS.get(code, "")
                if name or resource:
                    status["details"] = (
                        {"name": name, "kind": resource.rpartition("/")[2]}
                        if name
                        else {"kind": resource.rpartition("/")[2]}
                    )
            status["code"] = code
            event["responseStatus"] = status
        if req is not None and level != "Metadata":
            event["requestObject"] = req
        if resp is not None and level == "RequestResponse":
            event["responseObject"] = resp
        if annotations:
            ann = {
                "authorization.k8s.io/decision": "forbid" if code == 403 else "allow",
                "authorization.k8s.io/reason": "" if code == 403 else reason,
            }
            ann.update(annotations)
            event["annotations"] = ann
        else:
            event["annotations"] = self._annotations(code == 403, reason)
        return event

    def _template(
        self, who: Who, verb: str, has_ref: bool, level: str, code: int, stage: str, ua: str, ip: str, reason: str
    ) -> tuple[str, str, str, str, str, str]:
        """The event's JSON cut around its variable fields (auditID, requestURI, objectRef, the timestamps)."""
        event = self._event_dict(
            "@@A@@",
            "@@U@@",
            who,
            verb,
            _REF_MARK if has_ref else None,
            level,
            code,
            stage,
            ua,
            ip,
            reason,
            "",
            "",
            "",
            None,
            None,
            None,
            None,
            None,
        )
        annotations = event.pop("annotations")
        event["requestReceivedTimestamp"] = "@@R@@"
        event["stageTimestamp"] = "@@S@@"
        event["annotations"] = annotations
        text = orjson.dumps(event).decode()
        head, rest = text.split("@@A@@")
        mid1, rest = rest.split("@@U@@")
        mid2, rest = rest.split('"@@O@@"') if has_ref else ("", rest)
        mid3, rest = rest.split("@@R@@")
        mid4, tail = rest.split("@@S@@")
        return head, mid1, mid2, mid3, mid4, tail

    def watch(
        self,
        t: int,
        who: Who,
        resource: str,
        namespace: str = "",
        *,
        selector: str = "",
        timeout_s: int | None = None,
        tag: str = "",
        ua: str | None = None,
        ip: str | None = None,
    ) -> str:
        """A watch: logged when the stream starts (ResponseStarted) and again when the server closes it."""
        timeout = timeout_s or 300 + int(self._random() * 300)
        minutes, seconds = divmod(timeout, 60)
        query = (
            f"allowWatchBookmarks=true&{selector + '&' if selector else ''}resourceVersion={self.rv(t)}"
            f"&timeout={minutes}m{seconds}s&timeoutSeconds={timeout}&watch=true"
        )
        return self.event(
            t,
            who,
            "watch",
            resource,
            namespace,
            query=query,
            stage="ResponseStarted",
            latency=400 + int(self._random() * 2100),
            complete_after=timeout * US,
            tag=tag,
            ua=ua,
            ip=ip,
        )

    def _add(self, stage_t: int, line: bytes, tag: str, aid: str, rr: int, code: int) -> None:
        if stage_t >= self.end:
            return
        self._seq += 1
        self._buffer.append((stage_t, self._seq, line, tag, aid, rr))
        self.codes[code] = self.codes.get(code, 0) + 1

    # --- output -------------------------------------------------------------------------------------------------
    def flush(self, until: int | None = None) -> None:
        buffer = self._buffer
        buffer.sort(key=itemgetter(0, 1))
        if until is None:
            ready, self._buffer = buffer, []
        else:
            cut = _bisect(buffer, until)
            ready, self._buffer = buffer[:cut], buffer[cut:]
        if not ready:
            return
        self.count += len(ready)
        for _stage, _seq, _line, tag, aid, rr in ready:
            if tag:
                self.count_by_tag[tag] = self.count_by_tag.get(tag, 0) + 1
                if rr < self.first.get(tag, rr + 1):
                    self.first[tag] = rr
                seen = self._labelled.setdefault(tag, set())
                if aid not in seen:
                    seen.add(aid)
                    self.labels.setdefault(tag, []).append(aid)
            for threshold in self._thresholds:
                if rr >= threshold and not (tag and tag[0] == "S"):
                    self.rr_after[threshold] += 1
        self._write([item[2] for item in ready], [item[0] // 1000 for item in ready])


def _bisect(buffer: list[tuple[int, int, bytes, str, str, int]], until: int) -> int:
    lo, hi = 0, len(buffer)
    while lo < hi:
        mid = (lo + hi) // 2
        if buffer[mid][0] < until:
            lo = mid + 1
        else:
            hi = mid
    return lo


_LATENCY = {
    "get": (900, 9_000),
    "list": (2_500, 70_000),
    "update": (3_500, 32_000),
    "patch": (3_500, 32_000),
    "create": (3_500, 32_000),
    "delete": (3_500, 32_000),
}
