"""What one hostile principal costs the detection path: replay time as its request count grows.

    .venv/bin/python -m bench.hostile_principal [--small 10000] [--large 40000] [--lists 120000]

1. One service account's token, taken out of its pod, asks for secrets it may not read: `--small` and `--large`
   refused `get secret` calls at 1,000 per second. Every one meets the threshold rules (EKS-124: 20 refusals in
   15 minutes, EKS-142: 10 distinct refused requests in 30 minutes), so their windows grow with the burst. The
   goal is linear work per event: the large run should take at most 6x the small one (same run, same machine).
2. One object of `--lists` `list` calls by one person across 40 resource types at 1,000 per second (EKS-141's
   discovery window), written as Firehose stores it: CloudWatch DATA_MESSAGE envelopes, gzipped.

Each input is replayed in-process as `eksight replay` does (rules, baselines with the in-memory store), timing
only the detection, not building the input. Events carry the JSON shape of real EKS audit events.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eksight.core.behaviour.analyzer import BehaviourAnalyzer
from eksight.core.decode import SourceContext, decode_path
from eksight.core.detector import Detector
from eksight.core.rules import engine_for
from eksight.core.state import MemoryStateStore

ACCOUNT, REGION, CLUSTER = "828750217432", "eu-north-1", "prod-core-eks2"
START = datetime(2024, 9, 15, 20, 0, tzinfo=UTC)
PER_ENVELOPE = 500
# group/resource of 40 listable types (core group first)
LIST_RESOURCES = [
    tuple(item.rpartition("/")[::2])
    for item in [
        "/pods",
        "/services",
        "/configmaps",
        "/endpoints",
        "/events",
        "/namespaces",
        "/nodes",
        "/persistentvolumeclaims",
        "/persistentvolumes",
        "/serviceaccounts",
        "/limitranges",
        "/resourcequotas",
        "/podtemplates",
        "/replicationcontrollers",
        "apps/deployments",
        "apps/daemonsets",
        "apps/statefulsets",
        "apps/replicasets",
        "apps/controllerrevisions",
        "batch/jobs",
        "batch/cronjobs",
        "networking.k8s.io/ingresses",
        "networking.k8s.io/networkpolicies",
        "networking.k8s.io/ingressclasses",
        "policy/poddisruptionbudgets",
        "rbac.authorization.k8s.io/roles",
        "rbac.authorization.k8s.io/rolebindings",
        "rbac.authorization.k8s.io/clusterroles",
        "rbac.authorization.k8s.io/clusterrolebindings",
        "storage.k8s.io/storageclasses",
        "storage.k8s.io/csidrivers",
        "storage.k8s.io/volumeattachments",
        "autoscaling/horizontalpodautoscalers",
        "discovery.k8s.io/endpointslices",
        "coordination.k8s.io/leases",
        "scheduling.k8s.io/priorityclasses",
        "node.k8s.io/runtimeclasses",
        "admissionregistration.k8s.io/mutatingwebhookconfigurations",
        "admissionregistration.k8s.io/validatingwebhookconfigurations",
        "apiextensions.k8s.io/customresourcedefinitions",
    ]
]


def _stamp(index: int, per_second: int = 1000) -> str:
    moment = START + timedelta(microseconds=index * 1_000_000 // per_second)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def refused_secret_gets(count: int) -> Iterator[dict[str, Any]]:
    """A pod's service-account token used with curl to ask for secrets of other namespaces; RBAC refuses."""
    username = "system:serviceaccount:payments:ledger-api"
    for index in range(count):
        namespace, name = f"team-{index % 25}", f"db-credentials-{index % 400}"
        stamp = _stamp(index)
        yield {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"5f0c1a2e-0000-4000-8000-{index:012d}",
            "stage": "ResponseComplete",
            "requestURI": f"/api/v1/namespaces/{namespace}/secrets/{name}",
            "verb": "get",
            "user": {
                "username": username,
                "uid": "3a1d7c52-9f6e-4c1b-8a57-2f1f0d6e9b40",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:payments", "system:authenticated"],
                "extra": {
                    "authentication.kubernetes.io/pod-name": ["ledger-api-7c9d8b6f5-x2k4q"],
                    "authentication.kubernetes.io/pod-uid": ["b7e2a9c4-1d3f-4e5a-9b8c-7d6e5f4a3b2c"],
                },
            },
            "sourceIPs": ["10.0.42.17"],
            "userAgent": "curl/8.5.0",
            "objectRef": {"resource": "secrets", "namespace": namespace, "name": name, "apiVersion": "v1"},
            "responseStatus": {
                "metadata": {},
                "status": "Failure",
                "message": f'secrets "{name}" is forbidden: User "{username}" cannot get resource "secrets" in API '
                f'group "" in the namespace "{namespace}"',
                "reason": "Forbidden",
                "details": {"name": name, "kind": "secrets"},
                "code": 403,
            },
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
            "annotations": {"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""},
        }


def resource_lists(count: int) -> Iterator[dict[str, Any]]:
    """A person enumerating the cluster with kubectl, round after round over every resource type."""
    arn = "arn:aws:sts::828750217432:assumed-role/AWSReservedSSO_Dev-Accounts_bc988895b12446eb/mallory@example.com"
    for index in range(count):
        group, resource = LIST_RESOURCES[index % len(LIST_RESOURCES)]
        prefix = f"/apis/{group}/v1" if group else "/api/v1"
        stamp = _stamp(index)
        yield {
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": "Metadata",
            "auditID": f"9e4b2d6a-0000-4000-8000-{index:012d}",
            "stage": "ResponseComplete",
            "requestURI": f"{prefix}/{resource}?limit=500",
            "verb": "list",
            "user": {
                "username": arn,
                "uid": "aws-iam-authenticator:828750217432:AROANFHWXOGUV4B6OXMLO",
                "groups": ["developers", "system:authenticated"],
                "extra": {
                    "arn": [arn],
                    "canonicalArn": ["arn:aws:iam::828750217432:role/AWSReservedSSO_Dev-Accounts_bc988895b12446eb"],
                    "principalId": ["AROANFHWXOGUV4B6OXMLO:mallory@example.com"],
                    "sessionName": ["mallory@example.com"],
                },
            },
            "sourceIPs": ["3.198.185.109"],
            "userAgent": "kubectl/v1.28.4 (darwin/arm64) kubernetes/bae2c62",
            "objectRef": {"resource": resource, "apiGroup": group, "apiVersion": "v1"}
            if group
            else {"resource": resource, "apiVersion": "v1"},
            "responseStatus": {"metadata": {}, "code": 200},
            "requestReceivedTimestamp": stamp,
            "stageTimestamp": stamp,
            "annotations": {
                "authorization.k8s.io/decision": "allow",
                "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "developers-view" of ClusterRole '
                '"view" to Group "developers"',
            },
        }


def write_json_lines(path: Path, events: Iterator[dict[str, Any]]) -> None:
    with gzip.open(path, "wt") as sink:
        for event in events:
            sink.write(json.dumps(event) + "\n")


def write_archive_object(path: Path, events: Iterator[dict[str, Any]]) -> None:
    """CloudWatch subscription envelopes, newline-delimited and gzipped once, as Firehose writes them."""

    def envelope(batch: list[dict[str, Any]]) -> bytes:
        return (
            json.dumps(
                {
                    "messageType": "DATA_MESSAGE",
                    "owner": ACCOUNT,
                    "logGroup": f"/aws/eks/{CLUSTER}/cluster",
                    "logStream": "kube-apiserver-audit-1abdea6d0f764575b219b884cf596055",
                    "subscriptionFilters": ["eksight-audit"],
                    "logEvents": batch,
                }
            ).encode()
            + b"\n"
        )

    with gzip.open(path, "wb", compresslevel=6) as sink:
        batch: list[dict[str, Any]] = []
        for index, event in enumerate(events):
            millis = int(datetime.fromisoformat(event["stageTimestamp"].replace("Z", "+00:00")).timestamp() * 1000)
            batch.append({"id": str(index), "timestamp": millis, "message": json.dumps(event)})
            if len(batch) == PER_ENVELOPE:
                sink.write(envelope(batch))
                batch = []
        if batch:
            sink.write(envelope(batch))


def replay(path: Path) -> tuple[float, int, int]:
    """(seconds, events, findings) of the `eksight replay` detection path over one file."""
    detector = Detector(
        engine_for(None),
        cluster=CLUSTER,
        account=ACCOUNT,
        region=REGION,
        baselines=BehaviourAnalyzer(MemoryStateStore()),
    )
    defaults = SourceContext(cluster=CLUSTER, account=ACCOUNT, region=REGION)
    started = time.perf_counter()
    events = 0
    for record in decode_path(path, defaults=defaults):
        detector.process(record)
        events += 1
    findings = detector.findings()
    return time.perf_counter() - started, events, len(findings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=40_000)
    parser.add_argument("--lists", type=int, default=120_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        timings = {}
        for count in (args.small, args.large):
            path = root / f"refused-{count}.jsonl.gz"
            write_json_lines(path, refused_secret_gets(count))
            seconds, events, findings = timings[count] = replay(path)
            print(
                f"refused get secret x{count:>7,} by one SA at 1,000/s: {seconds:7.2f} s "
                f"({events:,} events, {findings} findings)"
            )
        ratio = timings[args.large][0] / timings[args.small][0]
        growth = args.large / args.small
        print(f"  {growth:.0f}x the events took {ratio:.2f}x the time (goal: at most {1.5 * growth:.0f}x)")
        path = root / "lists.gz"
        write_archive_object(path, resource_lists(args.lists))
        seconds, events, findings = replay(path)
        size = path.stat().st_size / 1e6
        print(
            f"list x{args.lists:,} by one person, one {size:.1f} MB object: {seconds:7.2f} s "
            f"({events:,} events, {findings} findings)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
