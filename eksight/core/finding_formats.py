"""Map findings to the two publishing formats: EventBridge `PutEvents` entries and Security Hub ASFF.

Pure functions (no AWS calls, no botocore import). Limits follow the AWS documentation of ASFF (Security Hub
BatchImportFindings) and of EventBridge PutEvents.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from eksight.core.findings import SEVERITY_CONTEXT, Finding, iso

FINDINGS_SOURCE = "io.github.eksight"  # EventBridge `source` of every finding (reverse DNS)
FINDINGS_DETAIL_TYPE = "eksight Finding"  # and its stable `detail-type`
DETAIL_SCHEMA_VERSION = "1"
ASFF_SCHEMA_VERSION = "2018-10-08"
EVENTBRIDGE_MAX_BYTES = 256 * 1024
MAX_RESOURCES = 32  # ASFF Resources list maximum
MAX_BATCH = 100  # BatchImportFindings findings per call
LIMITS = {
    "Id": 512,
    "GeneratorId": 512,
    "Title": 256,
    "Description": 1024,
    "Remediation": 512,
    "Type": 128,
    "MapKey": 128,
    "MapValue": 1024,
    "MapEntries": 50,
    "Types": 50,
}
ELLIPSIS = "…"
T = TypeVar("T")

# GuardDuty-style tactic prefix of Finding.type → ASFF "namespace/category".
TACTIC_TYPES = {
    "InitialAccess": "TTPs/Initial Access",
    "Execution": "TTPs/Execution",
    "Persistence": "TTPs/Persistence",
    "PrivilegeEscalation": "TTPs/Privilege Escalation",
    "DefenseEvasion": "TTPs/Defense Evasion",
    "CredentialAccess": "TTPs/Credential Access",
    "Discovery": "TTPs/Discovery",
    "LateralMovement": "TTPs/Lateral Movement",
    "Collection": "TTPs/Collection",
    "CommandAndControl": "TTPs/Command and Control",
    "Exfiltration": "Effects/Data Exfiltration",
    "Impact": "TTPs/Impact",  # ATT&CK tactic, non-standard ASFF category (like GuardDuty's TTPs/AnomalousBehavior)
    "Policy": "Software and Configuration Checks/AWS Security Best Practices",
}
FALLBACK_TYPE = "Unusual Behaviors/Application"


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def cluster_arn(finding: Finding, account: str | None = None, partition: str | None = None) -> str | None:
    account = account or finding.account
    if not (account and finding.region and finding.cluster):
        return None
    return f"arn:{partition or partition_for(finding.region)}:eks:{finding.region}:{account}:cluster/{finding.cluster}"


def default_product_arn(partition: str, region: str, account: str) -> str:
    return f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


# ---------------------------------------------------------------- EventBridge


def entry_size(entry: dict[str, Any]) -> int:
    """PutEvents entry size per AWS's documented calculation (14 bytes for Time, UTF-8 bytes of Source,
    DetailType, Detail and each Resources ARN), plus EventBusName bytes to stay conservative."""
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail", "EventBusName"):
        if entry.get(key):
            size += len(entry[key].encode("utf-8"))
    return size + sum(len(arn.encode("utf-8")) for arn in entry.get("Resources", ()))


def event_detail(finding: Finding) -> dict[str, Any]:
    return {**finding.to_dict(), "schema_version": DETAIL_SCHEMA_VERSION}


def finding_from_detail(detail: dict[str, Any]) -> Finding:
    """The Finding an EventBridge `Detail` (`event_detail`, maybe shrunk by `to_eventbridge_entry`) describes:
    the inverse of `event_detail` up to what shrinking dropped (evidence beyond the kept prefix, `details`,
    list tails). Times go back to epoch seconds (microsecond precision). Raises ValueError on anything else."""
    from eksight.core.findings import ResourceRef, Severity

    def epoch(text: Any) -> float:
        return datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()

    def strings(key: str) -> list[str]:
        values = detail.get(key) or []
        if not isinstance(values, list):
            raise TypeError(f"{key} is not a list")
        return [str(value) for value in values]

    try:
        principal = detail.get("principal") or {}
        return Finding(
            id=str(detail["id"]),
            type=str(detail["type"]),
            severity=Severity.parse(str(detail["severity"])),
            title=str(detail.get("title", "")),
            description=str(detail.get("description", "")),
            detector=str(detail.get("detector", "rule")),
            rule_id=str(detail["rule_id"]),
            cluster=str(detail.get("cluster", "")),
            account=str(detail.get("account", "")),
            region=str(detail.get("region", "")),
            principal={str(k): str(v) for k, v in principal.items()},
            first_seen=epoch(detail["first_seen"]),
            last_seen=epoch(detail["last_seen"]),
            count=int(detail.get("count", 1)),
            evidence=strings("evidence"),
            mitre=strings("mitre"),
            resources=[
                ResourceRef(str(r.get("namespace", "")), str(r.get("kind", "")), str(r.get("name", "")))
                for r in detail.get("resources") or []
            ],
            source_ips=strings("source_ips"),
            user_agents=strings("user_agents"),
            remediation=str(detail.get("remediation", "")),
            details=dict(detail.get("details") or {}),
            suppressed_by=str(detail.get("suppressed_by") or ""),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(f"not an eksight finding detail: {type(error).__name__}: {error}") from None


def _trim_description(detail: dict[str, Any]) -> None:
    detail["description"] = truncate(detail["description"], LIMITS["Description"])


def _drop_details(detail: dict[str, Any]) -> None:
    if detail["details"]:
        detail["details"], detail["details_truncated"] = {}, True


def _trim_rest(detail: dict[str, Any]) -> None:
    for key in ("title", "remediation"):
        detail[key] = truncate(detail[key], LIMITS["Description"])
    for key in ("source_ips", "user_agents", "mitre", "resources"):
        if len(detail[key]) > 10:
            detail[key], detail[f"{key}_truncated"] = detail[key][:10], True
    detail["user_agents"] = [truncate(agent, 512) for agent in detail["user_agents"]]
    detail["principal"] = {k: truncate(v, 1024) for k, v in detail["principal"].items()}


_SHRINK_STAGES = (_trim_description, _drop_details, _trim_rest)


def to_eventbridge_entry(
    finding: Finding,
    *,
    bus_name: str,
    source: str = FINDINGS_SOURCE,
    detail_type: str = FINDINGS_DETAIL_TYPE,
    max_bytes: int = EVENTBRIDGE_MAX_BYTES,
) -> dict[str, Any]:
    resources = [arn for arn in (cluster_arn(finding), finding.principal.get("arn")) if arn]
    entry: dict[str, Any] = {
        "Source": source,
        "DetailType": detail_type,
        "EventBusName": bus_name,
        "Resources": resources,
        "Time": datetime.fromtimestamp(finding.last_seen, UTC),
    }
    detail = event_detail(finding)
    evidence = list(detail["evidence"])

    def fits(keep: int) -> bool:
        detail["evidence"] = evidence[:keep]
        if keep < len(evidence):
            detail.update(evidence_truncated=True, evidence_total=len(evidence))
        else:
            for key in ("evidence_truncated", "evidence_total"):
                detail.pop(key, None)
        entry["Detail"] = json.dumps(detail, ensure_ascii=False, separators=(",", ":"))
        return entry_size(entry) <= max_bytes

    if fits(len(evidence)):
        return entry
    for stage in (None, *_SHRINK_STAGES):
        if stage is not None:
            stage(detail)
        low, high = min(1, len(evidence)), len(evidence)  # largest evidence prefix that fits (never empty)
        if not fits(low):
            continue
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if fits(middle) else (low, middle - 1)
        fits(low)
        return entry
    raise ValueError(f"finding {finding.id} does not fit in {max_bytes} bytes even after shrinking")


# ---------------------------------------------------------------- Security Hub (ASFF)


def asff_types(finding: Finding) -> list[str]:
    tactic, _, _ = finding.type.partition(":")
    classifier = truncate(finding.type.replace("/", "-"), LIMITS["Type"])
    types = [f"{TACTIC_TYPES.get(tactic, FALLBACK_TYPE)}/{classifier}"]
    if finding.detector == "anomaly":
        types.append(f"Unusual Behaviors/User/{classifier}")
    return [truncate(t, LIMITS["Type"]) for t in types]


def _string_map(items: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """ASFF FieldMap: non-blank string values, key/value lengths and entry count within limits."""
    out: dict[str, str] = {}
    for key, value in items:
        value = str(value)
        if value.strip() and len(out) < LIMITS["MapEntries"]:
            out[truncate(key, LIMITS["MapKey"])] = truncate(value, LIMITS["MapValue"])
    return out


def _principal_resource(finding: Finding, partition: str) -> dict[str, Any]:
    principal = finding.principal
    arn = principal.get("arn", "")
    kind = "AwsIamRole" if ":role/" in arn else "AwsIamUser" if ":user/" in arn else "Other"
    resource: dict[str, Any] = {
        "Type": kind,
        "Id": arn or principal.get("key") or principal.get("name") or "unknown",
        "Partition": partition,
        "Region": finding.region,
    }
    other = _string_map((f"k8s/{key}", value) for key, value in sorted(principal.items()) if key != "arn")
    if other:
        resource["Details"] = {"Other": other}
    return resource


def _asff_resources(finding: Finding, arn: str, partition: str) -> list[dict[str, Any]]:
    resources = [
        {
            "Type": "AwsEksCluster",
            "Id": arn,
            "Partition": partition,
            "Region": finding.region,
            "Details": {"AwsEksCluster": {"Name": finding.cluster, "Arn": arn}},
        },
        _principal_resource(finding, partition),
    ]
    for ref in finding.resources:
        if len(resources) >= MAX_RESOURCES:
            break
        k8s_id = f"k8s://{finding.cluster}/{ref.namespace or '_'}/{ref.kind}/{ref.name}"
        resources.append(
            {
                "Type": "Other",
                "Id": k8s_id,
                "Partition": partition,
                "Region": finding.region,
                "Details": {
                    "Other": _string_map(
                        [("k8s/namespace", ref.namespace), ("k8s/kind", ref.kind), ("k8s/name", ref.name)]
                    )
                },
            }
        )
    return resources


def asff_id(finding: Finding, arn: str) -> str:
    candidate = f"{arn}/eksight/{finding.rule_id}/{finding.id}"
    if len(candidate) <= LIMITS["Id"]:
        return candidate
    return f"eksight/{hashlib.sha256(candidate.encode()).hexdigest()}"


def to_asff(
    finding: Finding,
    *,
    product_arn: str | None = None,
    aws_account_id: str | None = None,
    partition: str | None = None,
    generator_id_prefix: str = "eksight",
    updated_at: float | None = None,
) -> dict[str, Any]:
    account = aws_account_id or finding.account
    partition = partition or partition_for(finding.region)
    arn = cluster_arn(finding, account, partition)
    if arn is None:
        raise ValueError(f"finding {finding.id}: ASFF needs an AWS account, region and cluster")
    created = iso(finding.first_seen)
    updated = iso(max(updated_at if updated_at is not None else finding.last_seen, finding.first_seen))
    severity = {"Label": finding.severity.name, "Original": finding.severity.name}
    types = asff_types(finding)
    adjusted = finding.details.get(SEVERITY_CONTEXT) or {}  # eksight.core.behaviour.context: rule severity in context
    product_fields = _string_map(
        [
            ("eksight/rule_id", finding.rule_id),
            ("eksight/detector", finding.detector),
            ("eksight/type", finding.type),
            ("eksight/finding_id", finding.id),
            ("eksight/count", finding.count),
            ("k8s/auditID", ",".join(finding.evidence[:5])),
            ("eksight/evidence_total", len(finding.evidence)),
            ("eksight/source_ips", ",".join(finding.source_ips)),
            ("k8s/userAgent", " | ".join(finding.user_agents)),
            ("eksight/mitre", ",".join(finding.mitre)),
            ("eksight/cluster", finding.cluster),
            ("eksight/original_severity", adjusted.get("original", "")),
            (
                "eksight/severity_context",
                f"{adjusted.get('direction', '')}: {adjusted.get('reason', '')}" if adjusted else "",
            ),
        ]
    )
    result: dict[str, Any] = {
        "SchemaVersion": ASFF_SCHEMA_VERSION,
        "Id": asff_id(finding, arn),
        "ProductArn": product_arn or default_product_arn(partition, finding.region, account),
        "GeneratorId": truncate(f"{generator_id_prefix}/{finding.rule_id}", LIMITS["GeneratorId"]),
        "AwsAccountId": account,
        "Types": types,
        "CreatedAt": created,
        "UpdatedAt": updated,
        "FirstObservedAt": created,
        "LastObservedAt": iso(finding.last_seen),
        "Severity": severity,
        "FindingProviderFields": {"Severity": dict(severity), "Types": list(types)},
        "Title": truncate(finding.title.strip() or finding.type, LIMITS["Title"]),
        "Description": truncate(
            finding.description.strip() or finding.title.strip() or finding.type, LIMITS["Description"]
        ),
        "Resources": _asff_resources(finding, arn, partition),
        "ProductFields": product_fields,
        "RecordState": "ACTIVE",
        "Workflow": {"Status": "NEW"},  # customer-owned: only honoured on create, ignored on updates
    }
    if finding.remediation.strip():
        result["Remediation"] = {"Recommendation": {"Text": truncate(finding.remediation, LIMITS["Remediation"])}}
    return result


def asff_batches(findings: Iterable[T], size: int = MAX_BATCH) -> Iterator[list[T]]:
    """Chunks of at most `size` (≤ 100, the BatchImportFindings limit), in order."""
    if not 1 <= size <= MAX_BATCH:
        raise ValueError(f"batch size must be 1..{MAX_BATCH}")
    batch: list[T] = []
    for item in findings:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
