"""Findings as Security Hub holds them (ASFF, written by the findings forwarder through
eksight.core.finding_formats.to_asff), turned back into the finding fields the console shows.

Thinner than a findings file: Security Hub receives HIGH and above only, the ASFF keeps at most five evidence
auditIDs and no anomaly details. The client is injected (boto3's `securityhub`); findings are read with
GetFindings filtered to eksight's generator, and entries without eksight's ProductFields are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from eksight.tools.console.source import MAX_FINDINGS, FindingsSource, finding_or_none

GENERATOR_PREFIX = "eksight/"  # to_asff's GeneratorId: eksight/<rule id>
FILTERS = {
    "GeneratorId": [{"Value": GENERATOR_PREFIX, "Comparison": "PREFIX"}],
    "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}],
}


def from_security_hub(client: Any, region: str, max_findings: int = MAX_FINDINGS) -> FindingsSource:
    """The active eksight findings of Security Hub in the client's region (the newest `max_findings`)."""
    return FindingsSource(
        _read(client, max_findings * 2), kind="securityhub", name=f"Security Hub {region}", max_findings=max_findings
    )


def _read(client: Any, limit: int) -> Iterator[dict[str, Any] | None]:
    """Stops after `limit` entries so a huge account does not fill memory (the source then says it is capped
    only if more than max_findings were eksight's)."""
    pages = client.get_paginator("get_findings").paginate(
        Filters=FILTERS,
        SortCriteria=[{"Field": "FirstObservedAt", "SortOrder": "desc"}],
        PaginationConfig={"PageSize": 100},
    )
    seen = 0
    for page in pages:
        for asff in page.get("Findings", []):
            if seen >= limit:
                return
            seen += 1
            yield from_asff(asff)


def from_asff(asff: Mapping[str, Any]) -> dict[str, Any] | None:
    """The finding fields an ASFF finding carries, or None when it is not eksight's."""
    fields = asff.get("ProductFields") or {}
    if "eksight/finding_id" not in fields:
        return None
    resources = asff.get("Resources") or []
    cluster: Mapping[str, Any] = next((r for r in resources if r.get("Type") == "AwsEksCluster"), {})
    who: Mapping[str, Any] = next((r for r in resources[1:2] if r.get("Type") != "AwsEksCluster"), {})
    details = (who.get("Details") or {}).get("Other") or {}
    principal = {key.removeprefix("k8s/"): value for key, value in details.items() if key.startswith("k8s/")}
    if str(who.get("Id", "")).startswith("arn:"):
        principal["arn"] = who["Id"]
    evidence = [a for a in fields.get("k8s/auditID", "").split(",") if a]
    return finding_or_none(
        {
            "id": fields["eksight/finding_id"],
            "type": fields.get("eksight/type", ""),
            "severity": (asff.get("Severity") or {}).get("Label", ""),
            "title": asff.get("Title", ""),
            "description": asff.get("Description", ""),
            "detector": fields.get("eksight/detector", ""),
            "rule_id": fields.get("eksight/rule_id", ""),
            "cluster": fields.get("eksight/cluster")
            or ((cluster.get("Details") or {}).get("AwsEksCluster") or {}).get("Name", ""),
            "account": asff.get("AwsAccountId", ""),
            "region": cluster.get("Region", ""),
            "principal": principal,
            "evidence": evidence,
            "first_seen": asff.get("FirstObservedAt") or asff.get("CreatedAt"),
            "last_seen": asff.get("LastObservedAt") or asff.get("UpdatedAt"),
            "count": int(fields.get("eksight/count", "1") or 1),
            "mitre": [m for m in fields.get("eksight/mitre", "").split(",") if m],
            "source_ips": [ip for ip in fields.get("eksight/source_ips", "").split(",") if ip],
            "user_agents": [ua for ua in fields.get("k8s/userAgent", "").split(" | ") if ua],
            "remediation": ((asff.get("Remediation") or {}).get("Recommendation") or {}).get("Text", ""),
            "security_hub_id": asff.get("Id"),
        }
    )
