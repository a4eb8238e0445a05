"""Tampering rules: evidence destroyed, workloads removed, and the cluster's authentication and name resolution
rewritten. Ideas are numbered as in ``shared/reference/detection-catalog.md``.

`aws-auth` (EKS-402) is the one object EKS logs at RequestResponse level, so the rule can say *what* the change
grants. An audit event carries only the new version of the object; to report what was *added*, the rule keeps
the mappings of the last version it saw of each aws-auth object (by uid, a few dozen at most) in memory. The
first change seen in a process is judged on its own (HIGH, listing every system:masters mapping); later ones
are diffed, and a newly added system:masters mapping is CRITICAL.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from typing import Any, NamedTuple

from eksight.core.rules import defaults
from eksight.core.rules.base import WRITE_VERBS, Hit, Rule, RuleContext
from eksight.core.rules.common import CRITICAL, HIGH, HUMAN_KINDS, KUBE_SYSTEM, LOW, MEDIUM, clip, origin, past, who
from eksight.core.untrusted import as_dict, as_str


def _object_name(ctx: RuleContext) -> str:
    """objectRef.name, or metadata.name of the body (creates often log no name in objectRef)."""
    if ctx.event.name:
        return ctx.event.name
    body = ctx.request
    return as_str(as_dict(as_dict(body).get("metadata")).get("name"))


# =============================================================================================================
# #41 events deleted
# =============================================================================================================


def _events_deleted(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.verb == "deletecollection":
        scope = f"all events in namespace {event.namespace}" if event.namespace else "all events in every namespace"
        severity = MEDIUM if event.namespace else HIGH
        return Hit(
            f"{who(ctx)} deleted {scope} {origin(ctx)}: Kubernetes events are the cluster's short-term "
            "record of what happened to pods and nodes.",
            severity=severity,
        )
    target = f"{event.namespace}/{event.name}" if event.name else event.namespace or "(unknown)"
    return Hit(f"{who(ctx)} deleted event {target} {origin(ctx)}.", severity=MEDIUM)


# =============================================================================================================
# #42 workload deleted
# =============================================================================================================

# Namespaces and names of security and platform agents whose removal blinds or breaks the cluster.
_PROTECTED_NAMESPACES = frozenset(
    {
        KUBE_SYSTEM,
        "amazon-guardduty",
        "amazon-cloudwatch",
        "aws-observability",
        "falco",
        "security",
        "gatekeeper-system",
        "kyverno",
    }
)
_SECURITY_AGENT = re.compile(
    r"guardduty|falco|sysdig|crowdstrike|falcon-sensor|datadog|aqua|twistlock|prisma|defender|wiz|tetragon|tracee|"
    r"cloudwatch-agent|fluent-?bit|kyverno|gatekeeper|cilium|aws-node|kube-proxy|coredns",
    re.IGNORECASE,
)


def _workload_deleted(ctx: RuleContext) -> Hit | None:
    if ctx.principal.kind not in HUMAN_KINDS:
        return None  # controllers and GitOps pruning delete workloads all day
    event = ctx.event
    kind = event.resource.rstrip("s")
    if event.verb == "deletecollection":
        target = f"all {event.resource} in {event.namespace or 'every namespace'}"
    else:
        target = f"{kind} {event.namespace}/{event.name}"
    head = f"{who(ctx)} deleted {target} {origin(ctx)}"
    if event.namespace in _PROTECTED_NAMESPACES or _SECURITY_AGENT.search(event.name or ""):
        return Hit(f"{head}: a system or security agent workload (service outage or defense evasion).", severity=MEDIUM)
    return Hit(f"{head}.", severity=LOW)


# =============================================================================================================
# #43 aws-auth
# =============================================================================================================


class Mapping(NamedTuple):
    section: str  # mapRoles | mapUsers
    arn: str
    username: str
    groups: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.arn or '(no arn)'} as {self.username or '(no username)'}"


_MAX_TEXT = 256 * 1024
_MAX_ENTRIES = 2000


def _scalar(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _flow_list(text: str) -> list[str]:
    inner = text.strip()[1:-1]
    return [_scalar(item) for item in inner.split(",") if item.strip()]


def parse_mappings(text: Any) -> list[dict[str, Any]] | None:
    """The entries of an aws-auth ``mapRoles``/``mapUsers`` string: a small YAML subset (block lists of
    mappings with scalar or list values, flow lists) or JSON. None when it cannot be read. Never raises."""
    if not isinstance(text, str):
        return None
    text = text[:_MAX_TEXT]
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if isinstance(value, list):
            return [item for item in value[:_MAX_ENTRIES] if isinstance(item, dict)]
    entries: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    entry_indent = -1
    list_key: str | None = None
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].rstrip()
        content = line.lstrip()
        if not content or content.startswith("#") or content == "---":
            continue
        indent = len(line) - len(content)
        if content == "-" or content.startswith("- "):
            item = content[1:].strip()
            if current is not None and list_key is not None and indent > entry_indent:
                values = current.setdefault(list_key, [])
                if isinstance(values, list):
                    values.append(_scalar(item))
                continue
            if len(entries) >= _MAX_ENTRIES:
                break
            current, entry_indent, list_key = {}, indent, None
            entries.append(current)
            content = item
            if not content:
                continue
        if current is None:
            continue
        key, sep, value = content.partition(":")
        if not sep or not key.strip():
            continue
        key, value = _scalar(key), value.strip()
        if not value:
            current[key], list_key = [], key
        elif value.startswith("[") and value.endswith("]"):
            current[key], list_key = _flow_list(value), None
        else:
            current[key], list_key = _scalar(value), None
    return entries


def _mappings(data: dict[str, Any]) -> tuple[list[Mapping], list[str]]:
    """(mappings, problems) of an aws-auth `data`."""
    mappings: list[Mapping] = []
    problems: list[str] = []
    for section, arn_key in (("mapRoles", "rolearn"), ("mapUsers", "userarn")):
        if section not in data:
            continue
        entries = parse_mappings(data.get(section))
        if entries is None:
            problems.append(f"{section} is not text")
            continue
        for entry in entries:
            groups = entry.get("groups")
            groups = (
                tuple(g for g in groups if isinstance(g, str))
                if isinstance(groups, list)
                else ((groups,) if isinstance(groups, str) else ())
            )
            mappings.append(Mapping(section, as_str(entry.get(arn_key)), as_str(entry.get("username")), groups))
    return mappings, problems


_SEEN_CAPACITY = 64


def _remember(ctx: RuleContext, key: str, mappings: frozenset[Mapping]) -> frozenset[Mapping] | None:
    """The previous mappings of this aws-auth object (None at the first sighting); bounded memory."""
    seen: OrderedDict[str, frozenset[Mapping]] = ctx.state.setdefault("aws_auth", OrderedDict())
    previous = seen.pop(key, None)
    seen[key] = mappings
    while len(seen) > _SEEN_CAPACITY:
        seen.popitem(last=False)
    return previous


def _aws_auth_object(ctx: RuleContext) -> dict[str, Any]:
    """The ConfigMap as written: a full request body, else the response (patches at RequestResponse level)."""
    request = ctx.request
    if isinstance(request, dict) and isinstance(request.get("data"), dict) and request.get("kind") == "ConfigMap":
        return request
    response = ctx.response
    if isinstance(response, dict) and isinstance(response.get("data"), dict):
        return response
    if isinstance(request, dict) and isinstance(request.get("data"), dict):
        return request
    return {}


def _uid(ctx: RuleContext, obj: dict[str, Any]) -> str:
    uid = (ctx.event.object_ref.uid if ctx.event.object_ref else "") or as_str(as_dict(obj.get("metadata")).get("uid"))
    return uid or f"{ctx.event.namespace}/{_object_name(ctx)}"


def _aws_auth(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    if event.namespace != KUBE_SYSTEM or _object_name(ctx) != "aws-auth":
        return None
    head = f"aws-auth {past(event.verb)} by {who(ctx)} {origin(ctx)}"
    if event.verb in ("delete", "deletecollection"):
        return Hit(
            f"{head}: every IAM-to-Kubernetes mapping it held is gone (nodes mapped there can no longer "
            "join; administrators mapped there are locked out).",
            severity=HIGH,
        )
    obj = _aws_auth_object(ctx)
    data = as_dict(obj.get("data"))
    if not data:
        return Hit(f"{head}; the new content was not logged.", severity=HIGH)
    mappings, problems = _mappings(data)
    masters = [m for m in mappings if "system:masters" in m.groups]
    accounts = as_str(data.get("mapAccounts")).split() if isinstance(data.get("mapAccounts"), str) else []
    details: dict[str, Any] = {"mappings": len(mappings), "system_masters": [m.label for m in masters][:20]}
    notes = []
    if problems:
        notes.append("; ".join(problems))
    if accounts:
        listed = ", ".join(a.strip("- ") for a in accounts[:5])
        notes.append(f"mapAccounts admits every IAM identity of account {listed}")
    previous = _remember(ctx, _uid(ctx, obj), frozenset(mappings))
    if previous is None:
        listing = "; ".join(m.label for m in masters[:5]) or "none"
        extra = f" ({'; '.join(notes)})" if notes else ""
        return Hit(
            f"{head}: {len(mappings)} mappings, system:masters granted to {clip(listing, 300)}{extra}. No "
            "earlier version of this object was seen, so what changed is unknown.",
            severity=HIGH,
            details=details,
        )
    added = sorted(frozenset(mappings) - previous, key=lambda m: m.label)
    removed = sorted(previous - frozenset(mappings), key=lambda m: m.label)
    new_masters = [m for m in added if "system:masters" in m.groups]
    details["added"] = [f"{m.label} groups {','.join(m.groups)}" for m in added][:20]
    details["removed"] = [m.label for m in removed][:20]
    changes = []
    if added:
        changes.append("added " + "; ".join(f"{m.label} (groups {', '.join(m.groups) or 'none'})" for m in added[:5]))
    if removed:
        changes.append("removed " + "; ".join(m.label for m in removed[:5]))
    summary = clip(" | ".join(changes), 400) if changes else "mappings unchanged"
    if new_masters:
        return Hit(
            f"{head}: new system:masters mapping for {', '.join(m.label for m in new_masters[:3])} — "
            f"unrestricted cluster admin that no RBAC binding shows ({summary}).",
            severity=CRITICAL,
            details=details,
        )
    return Hit(f"{head}: {summary}.", severity=HIGH, details=details)


# =============================================================================================================
# #44 CoreDNS
# =============================================================================================================

_DNS_CONFIGMAPS = frozenset({"coredns", "kube-dns", "coredns-custom"})
_COREFILE_NOTABLE = re.compile(r"^\s*(rewrite|hosts|template|forward|file|auto)\b.*$", re.MULTILINE)


def _coredns(ctx: RuleContext) -> Hit | None:
    event = ctx.event
    name = _object_name(ctx)
    if event.namespace != KUBE_SYSTEM or name not in _DNS_CONFIGMAPS:
        return None
    head = f"DNS configuration kube-system/{name} {past(event.verb)} by {who(ctx)} {origin(ctx)}"
    body = ctx.body
    data = as_dict(as_dict(body).get("data"))
    notable: list[str] = []
    for value in data.values():
        if isinstance(value, str):
            notable.extend(m.group(0).strip() for m in _COREFILE_NOTABLE.finditer(value[:65536]))
    notable = [line for line in notable if not re.match(r"forward\s+\.\s+/etc/resolv\.conf\b", line)]
    if notable:
        return Hit(
            f"{head}: {clip('; '.join(notable[:6]), 300)}. Rewrites, static hosts and custom upstreams can "
            "redirect cluster traffic.",
            severity=MEDIUM,
        )
    return Hit(f"{head}: cluster name resolution can be redirected from here.", severity=MEDIUM)


# =============================================================================================================
# the rules
# =============================================================================================================

_WORKLOADS = frozenset({"deployments", "daemonsets", "statefulsets"})

RULES: list[Rule] = [
    Rule(
        id="EKS-400",
        title="Kubernetes events deleted",
        severity=MEDIUM,
        type="DefenseEvasion:Kubernetes/EventsDeleted",
        mitre=("T1070",),
        catalog=(41,),
        description="Someone other than the control plane deleted Kubernetes events. Events expire on their own "
        "(the API server's TTL); deleting them by hand removes the record of recent pod and node "
        "activity. Deleting every event cluster-wide is HIGH.",
        remediation="Find out who deleted the events and why; the audit log still has the underlying requests.",
        verbs=frozenset({"delete", "deletecollection"}),
        resources=frozenset({"events"}),
        predicate=_events_deleted,
        allow=defaults.SYSTEM,
    ),
    Rule(
        id="EKS-401",
        title="Workload deleted by a person",
        severity=LOW,
        type="Impact:Kubernetes/WorkloadDeleted",
        mitre=("T1485", "T1489"),
        catalog=(42,),
        description="A person or external automation deleted a Deployment, DaemonSet or StatefulSet. An audit trail; "
        "MEDIUM for kube-system and security-agent workloads (outage or blinding a sensor).",
        remediation="Confirm the deletion was planned; restore from Git/backup if not.",
        verbs=frozenset({"delete", "deletecollection"}),
        resources=_WORKLOADS,
        predicate=_workload_deleted,
        allow=defaults.SYSTEM,
    ),
    Rule(
        id="EKS-402",
        title="aws-auth ConfigMap modified",
        severity=HIGH,
        type="Persistence:Kubernetes/AwsAuthConfigMapModified",
        mitre=("T1098.006",),
        catalog=(43,),
        description="kube-system/aws-auth maps IAM roles and users to Kubernetes identities and groups. A change "
        "can grant cluster admin (system:masters) to any IAM principal, invisible to RBAC; a deletion "
        "locks out nodes and administrators. CRITICAL when a new system:masters mapping appears.",
        remediation="Compare with the expected mappings (IaC); remove unknown entries, and move to EKS access "
        "entries, which are managed through IAM-authorized EKS APIs and logged in CloudTrail.",
        verbs=WRITE_VERBS,
        resources=frozenset({"configmaps"}),
        predicate=_aws_auth,
        allow=defaults.SYSTEM,
    ),
    Rule(
        id="EKS-403",
        title="CoreDNS configuration modified",
        severity=MEDIUM,
        type="Impact:Kubernetes/CoreDNSConfigModified",
        mitre=("T1565.002",),
        catalog=(44,),
        description="The cluster DNS configuration (coredns / kube-dns ConfigMap) was changed by someone other than "
        "EKS's add-on manager. Rewrites, hosts entries or a new upstream redirect every pod's traffic.",
        remediation="Diff the Corefile against the add-on default or your IaC and revert unexpected directives.",
        verbs=WRITE_VERBS,
        resources=frozenset({"configmaps"}),
        predicate=_coredns,
        allow=defaults.SYSTEM,
    ),
]
