"""Workload rules: what a pod spec asks the node for (privileges, host namespaces, host paths, capabilities),
where pods land, and changes to long-running or scheduled workloads.

A workload is judged once, at the request of whoever wrote it: a Deployment's ReplicaSet and Pods are
created by kube-system controllers, which the allow-lists skip. Pod templates of every controller kind,
init and ephemeral containers count. Containers whose image belongs to an AWS-managed EKS add-on (VPC CNI,
kube-proxy, EBS CSI, ...) are skipped: those are privileged by design. Each hit names the containers,
images and settings that made it.
"""

from __future__ import annotations

from eksight.core.rules.base import Rule
from eksight.core.rules.workloads import changes, pod_specs, provenance
from eksight.core.rules.workloads.host_access import host_path_severity

__all__ = ["RULES", "host_path_severity"]

RULES: list[Rule] = sorted([*pod_specs.RULES, *changes.RULES, *provenance.RULES], key=lambda rule: rule.id)
