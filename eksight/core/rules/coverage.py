"""Which ideas of the merged detection catalog (GuardDuty, Falco, Panther, Elastic, Sigma) eksight covers,
and docs/detections.md generated from the rules themselves (`make docs`)."""

from __future__ import annotations

from eksight.core.rules import all_rules

CATALOG = {
    1: "Anonymous/unauthenticated request allowed",
    2: "RBAC binding grants access to anonymous",
    3: "Admin granted to a default ServiceAccount",
    4: "Binding to cluster-admin / privileged role",
    5: "Over-permissive Role/ClusterRole",
    6: "Built-in system:* role modified/deleted",
    7: "ServiceAccount identity writes RBAC",
    8: "RBAC change then workload change by the same user",
    9: "Exec/attach into pod",
    10: "Exec into a kube-system pod",
    11: "Suspicious exec command content",
    12: "kubectl cp from a pod",
    13: "Port-forward to pod",
    14: "Ephemeral container added",
    15: "Privileged container",
    16: "Sensitive hostPath volume",
    17: "hostNetwork pod",
    18: "hostPID pod",
    19: "hostIPC pod",
    20: "Dangerous Linux capabilities",
    21: "Pod created in kube-system",
    22: "Controller ServiceAccount assigned to a kube-system pod",
    23: "Anomalous / new workload",
    24: "DaemonSet created",
    25: "CronJob/Job created or modified",
    26: "Sidecar injection",
    27: "Admission webhook created/modified",
    28: "NodePort/LoadBalancer service, exposed dashboard",
    29: "Ingress without TLS",
    30: "Secrets read anomalies",
    31: "Secret access denied burst",
    32: "Secrets modified; ConfigMap with credentials",
    33: "ServiceAccount token minted",
    34: "System identity used from an unexpected place",
    35: "Client certificate (CSR) created/approved",
    36: "Impersonation of a privileged identity",
    37: "Permission self-check",
    38: "Discovery burst",
    39: "401/403 bursts; forbidden creates",
    40: "Request from a malicious IP (threat list)",
    41: "Events deleted",
    42: "Workload deleted",
    43: "aws-auth ConfigMap changed",
    44: "CoreDNS configuration modified",
    45: "API server proxy to kubelet (nodes/proxy)",
    46: "New ServiceAccount in kube-system; new namespace",
    47: "Unusual user agent for a principal",
    48: "Full admin usage (system:masters)",
    49: "RBAC object create/delete audit trail",
    50: "Multi-signal compromise sequence",
}

# Ideas the behavioural baselines (eksight/core/behaviour, rule id UEBA-1, docs/baselines.md) cover instead of a rule.
BY_BASELINES = {
    23: "UEBA-1: a workload write whose image, namespace or class@namespace is new for the principal",
    30: "UEBA-1: secrets read where the principal (and its peers) never read them; bursts across namespaces",
    34: "UEBA-1: credential_outside_cluster (service-account/node credential from a new site or zone)",
    38: "UEBA-1: novelty bursts (namespaces, kinds of request) and request-rate spikes",
    39: "UEBA-1: failure_burst (401/403 far above the principal's hourly norm)",
    46: "UEBA-1: namespaces new for the principal and its peers",
    47: "UEBA-1: tool and tool version new for the principal; people's tools in a workload identity's hands",
}

NOT_COVERED = {
    8: "Needs correlation of findings per principal over minutes (rule then anomaly); not built yet.",
    50: "Correlates findings across detectors into one incident; not built yet (findings share principal keys "
    "and hour windows, so a consumer can group them).",
}


SEVERITY_IN_CONTEXT = [
    "## Severity in context",
    "",
    "With behavioural baselines (the Lambda; `eksight replay` unless `--no-baselines`), a signature rule's severity "
    "is judged against what its principal normally does: per event, against the principal's own profile as it stood "
    "before that event, in event time (a replay decides what the Lambda decided; "
    "`eksight/core/behaviour/context.py`).",
    "",
    "- **Lowered one step** when the rule may be routine (table below) and the principal has done the same thing "
    "(the same request, and the same class of action in the same namespace, such as exec into pods in kube-system) "
    "at least twice over at least 7 days, and does it again with a tool (and, for people, from a /24 network) it has "
    "used for at least 7 days, in no context new to it (below), with nothing flagged for it in the past hour. For a "
    "person signed in through an IAM Identity Center role, also when the *others* of that role have done the same "
    "at least 10 times (decayed count) over at least 7 days and the person does it from a /24 network and with a "
    "tool it has used for at least 7 days (a platform team's weekly shells into kube-system: the member who opens "
    "one for the first time is not an alert).",
    "- **Raised one step** (MEDIUM → HIGH, HIGH → CRITICAL) when the rule fires from a context new to the principal "
    "(never used, or first used less than a day before): a site (/16) or network zone, a client tool (people and "
    "pipelines switching between kubectl, helm, k9s and the like do not count), an hour of the week outside its "
    "usual hours. LOW and INFORMATIONAL rules are not raised: alone they are not worth an alert, and the baselines "
    "(UEBA-1) report unusual behaviour themselves.",
    "- **Unchanged** while the principal's profile is young (fewer than 30 requests or 2 active days) or the cluster "
    "is in its learning period (`learning_days`): *no baseline yet*. Principals without a baseline (the control "
    "plane and its controllers, anonymous requests) and replays with `--no-baselines` are never adjusted.",
    "",
    "Rules not in the table stand on their own and are never lowered, however routine: suspicious commands, "
    "privilege escalation, credential access (from outside or not), threat-listed addresses, anonymous access, "
    "security-control removal, exposure and workload-spec rules. A rule declares it may be lowered with its "
    "`routine` reason (`eksight/core/rules/base.py`); the default is that it cannot.",
    "",
    "An adjusted finding says so at the end of its description (*Severity lowered from MEDIUM to LOW: routine for "
    "alice@example.com: at least 14 exec, attach or port-forward sessions to pods in kube-system over 30 days, from "
    "the same network (198.51.100.0/24) and tool (kubectl).*) and in `details.severity_context`: `original`, "
    "`severity`, `direction` (`lowered`, `raised` or `unchanged`) and `reason`. Security Hub shows them as the "
    "product fields `eksight/original_severity` and `eksight/severity_context`.",
]


def covered_ideas() -> set[int]:
    """Ideas covered by a signature rule or by the behavioural baselines."""
    return {idea for rule in all_rules() for idea in rule.catalog if idea in CATALOG} | set(BY_BASELINES)


def markdown() -> str:
    rules = sorted(all_rules(), key=lambda r: r.id)
    covered = covered_ideas()
    lines = [
        "# Detections",
        "",
        "Generated from `eksight/core/rules/` by `make docs`. Catalog numbers refer to the merged catalog of "
        "GuardDuty, Falco, Panther, Elastic and Sigma ideas (`detection-catalog.md`).",
        "",
        f"{len(rules)} rules and the behavioural baselines (UEBA-1, docs/baselines.md) cover "
        f"{len(covered)} of the {len(CATALOG)} catalog ideas.",
        "",
        "| id | title | severity | finding type | MITRE | catalog |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in rules:
        lines.append(
            f"| {rule.id} | {rule.title} | {rule.severity.name} | `{rule.type}` | "
            f"{', '.join(rule.mitre)} | {', '.join(map(str, rule.catalog))} |"
        )
    lines += ["", *SEVERITY_IN_CONTEXT, "", "| id | title | severity | may be lowered when routine, because |"]
    lines.append("| --- | --- | --- | --- |")
    for rule in rules:
        if rule.routine:
            lines.append(f"| {rule.id} | {rule.title} | {rule.severity.name} | {rule.routine} |")
    lines += ["", "## Catalog coverage", "", "| # | idea | covered by |", "| --- | --- | --- |"]
    for idea, name in CATALOG.items():
        by = [r.id for r in rules if idea in r.catalog] + ([BY_BASELINES[idea]] if idea in BY_BASELINES else [])
        lines.append(f"| {idea} | {name} | {', '.join(by) if by else 'not yet: ' + NOT_COVERED.get(idea, '?')} |")
    return "\n".join(lines) + "\n"
