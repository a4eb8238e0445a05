"""Which ideas of the merged detection catalog (GuardDuty, Falco, Panther, Elastic, Sigma) eksight covers,
and docs/detections.md generated from the rules themselves (`make docs`)."""

from __future__ import annotations

from eksight.rules import all_rules

CATALOG = {
    1: "Anonymous/unauthenticated request allowed", 2: "RBAC binding grants access to anonymous",
    3: "Admin granted to a default ServiceAccount", 4: "Binding to cluster-admin / privileged role",
    5: "Over-permissive Role/ClusterRole", 6: "Built-in system:* role modified/deleted",
    7: "ServiceAccount identity writes RBAC", 8: "RBAC change then workload change by the same user",
    9: "Exec/attach into pod", 10: "Exec into a kube-system pod", 11: "Suspicious exec command content",
    12: "kubectl cp from a pod", 13: "Port-forward to pod", 14: "Ephemeral container added",
    15: "Privileged container", 16: "Sensitive hostPath volume", 17: "hostNetwork pod", 18: "hostPID pod",
    19: "hostIPC pod", 20: "Dangerous Linux capabilities", 21: "Pod created in kube-system",
    22: "Controller ServiceAccount assigned to a kube-system pod", 23: "Anomalous / new workload",
    24: "DaemonSet created", 25: "CronJob/Job created or modified", 26: "Sidecar injection",
    27: "Admission webhook created/modified", 28: "NodePort/LoadBalancer service, exposed dashboard",
    29: "Ingress without TLS", 30: "Secrets read anomalies", 31: "Secret access denied burst",
    32: "Secrets modified; ConfigMap with credentials", 33: "ServiceAccount token minted",
    34: "System identity used from an unexpected place", 35: "Client certificate (CSR) created/approved",
    36: "Impersonation of a privileged identity", 37: "Permission self-check", 38: "Discovery burst",
    39: "401/403 bursts; forbidden creates", 40: "Request from a malicious IP (threat list)",
    41: "Events deleted", 42: "Workload deleted", 43: "aws-auth ConfigMap changed",
    44: "CoreDNS configuration modified", 45: "API server proxy to kubelet (nodes/proxy)",
    46: "New ServiceAccount in kube-system; new namespace", 47: "Unusual user agent for a principal",
    48: "Full admin usage (system:masters)", 49: "RBAC object create/delete audit trail",
    50: "Multi-signal compromise sequence",
}

NOT_COVERED = {
    8: "Needs correlation of our own findings per principal over minutes; planned with the anomaly engine.",
    23: "A workload is 'new' only against a baseline: behavioural detection (next milestone).",
    47: "An agent is 'unusual' only against a principal's baseline: behavioural detection (next milestone).",
    50: "Correlates findings across detectors: comes with the anomaly engine and the findings bus.",
}


def covered_ideas() -> set[int]:
    return {idea for rule in all_rules() for idea in rule.catalog if idea in CATALOG}


def markdown() -> str:
    rules = sorted(all_rules(), key=lambda r: r.id)
    covered = covered_ideas()
    lines = ["# Detections", "",
             "Generated from `eksight/rules/` by `make docs`. Catalog numbers refer to the merged catalog of "
             "GuardDuty, Falco, Panther, Elastic and Sigma ideas (`detection-catalog.md`).", "",
             f"{len(rules)} rules cover {len(covered)} of the {len(CATALOG)} catalog ideas.", "",
             "| id | title | severity | finding type | MITRE | catalog |", "| --- | --- | --- | --- | --- | --- |"]
    for rule in rules:
        lines.append(f"| {rule.id} | {rule.title} | {rule.severity.name} | `{rule.type}` | "
                     f"{', '.join(rule.mitre)} | {', '.join(map(str, rule.catalog))} |")
    lines += ["", "## Catalog coverage", "", "| # | idea | covered by |", "| --- | --- | --- |"]
    for idea, name in CATALOG.items():
        by = [r.id for r in rules if idea in r.catalog]
        lines.append(f"| {idea} | {name} | {', '.join(by) if by else 'not yet: ' + NOT_COVERED.get(idea, '?')} |")
    return "\n".join(lines) + "\n"
