"""Findings → EventBridge PutEvents entries and Security Hub ASFF, validated against botocore's service models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from eksight.core.decode import decode_path
from eksight.core.detector import Detector
from eksight.core.finding_formats import (
    DETAIL_SCHEMA_VERSION,
    asff_batches,
    entry_size,
    partition_for,
    to_asff,
    to_eventbridge_entry,
)
from eksight.core.findings import Finding, ResourceRef, Severity

DATASETS = Path(__file__).resolve().parents[2].parent / "shared" / "datasets"
ACCOUNT = "111122223333"
PRODUCT_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):securityhub:[a-z0-9-]+:\d{12}:product/\d{12}/default$")
# Documented ASFF limits the service model does not carry (botocore only has NonEmptyString patterns).
ASFF_STRING_MAX = {"Id": 512, "GeneratorId": 512, "Title": 256, "Description": 1024, "Text": 512}
ASFF_LIST_MAX = {"Resources": 32, "Types": 50}
ASFF_NAMESPACES = {
    "Software and Configuration Checks",
    "TTPs",
    "Effects",
    "Unusual Behaviors",
    "Sensitive Data Identifications",
}
CONTRACT = {
    "id",
    "type",
    "severity",
    "title",
    "description",
    "detector",
    "rule_id",
    "cluster",
    "account",
    "region",
    "principal",
    "evidence",
    "first_seen",
    "last_seen",
    "count",
    "mitre",
    "resources",
    "source_ips",
    "user_agents",
    "remediation",
    "details",
    "schema_version",
}


@pytest.fixture(scope="module")
def securityhub() -> Any:
    return botocore.session.get_session().get_service_model("securityhub")


@pytest.fixture(scope="module")
def events() -> Any:
    return botocore.session.get_session().get_service_model("events")


def run_engine() -> list[Finding]:
    path = DATASETS / "falco-k8s-audit"
    if not path.is_dir():
        pytest.skip(f"dataset absent: {path}")
    detector = Detector(cluster="prod", account=ACCOUNT, region="eu-west-1").run(decode_path(path))
    return detector.findings()


@pytest.fixture(scope="module")
def real_findings() -> list[Finding]:
    findings = run_engine()
    assert findings, "the engine should produce findings on the falco fixture"
    return findings


def make_finding(**overrides: Any) -> Finding:
    fields: dict[str, Any] = dict(
        id="f" * 32,
        type="PrivilegeEscalation:Kubernetes/ClusterAdminBound",
        severity=Severity.HIGH,
        title="Cluster-admin bound",
        description="A subject was bound to cluster-admin.",
        detector="rule",
        rule_id="EKS-301",
        cluster="prod",
        account=ACCOUNT,
        region="eu-west-1",
        principal={
            "name": "dev",
            "kind": "iam_role",
            "key": f"iam:arn:aws:iam::{ACCOUNT}:role/dev",
            "arn": f"arn:aws:iam::{ACCOUNT}:role/dev",
            "session": "alice",
        },
        first_seen=1_700_000_000.0,
        last_seen=1_700_000_100.0,
        count=3,
        evidence=["a1", "a2", "a3"],
        mitre=["T1098"],
        resources=[ResourceRef("", "clusterrolebindings", "evil")],
        source_ips=["198.51.100.7"],
        user_agents=["kubectl/v1.31"],
        remediation="Remove the binding.",
        details={"role": "cluster-admin"},
    )
    fields.update(overrides)
    return Finding(**fields)


def check_shape(value: Any, shape: Any, path: str, limits: dict[str, int] | None = None) -> None:
    """Recursively: only modelled members, required members present, enum/pattern/min/max from the model, plus
    documented ASFF limits (`limits`) keyed by member name."""
    limits = limits or {}
    name = path.rsplit(".", 1)[-1].split("[")[0]
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        assert set(value) <= set(shape.members), f"{path}: unknown members {set(value) - set(shape.members)}"
        assert set(shape.required_members) <= set(value), f"{path}: missing {set(shape.required_members) - set(value)}"
        for key, item in value.items():
            check_shape(item, shape.members[key], f"{path}.{key}", limits)
    elif shape.type_name == "list":
        assert isinstance(value, list), path
        assert len(value) <= min(shape.metadata.get("max", 10**9), ASFF_LIST_MAX.get(name, 10**9)), path
        for index, item in enumerate(value):
            check_shape(item, shape.member, f"{path}[{index}]", limits)
    elif shape.type_name == "map":
        assert isinstance(value, dict) and len(value) <= 50, path
        for key, item in value.items():
            assert isinstance(key, str) and 0 < len(key) <= 128 and key.strip(), f"{path} key {key!r}"
            assert isinstance(item, str) and len(item) <= 2048, f"{path}[{key}]"
            check_shape(item, shape.value, f"{path}[{key}]", limits)
    elif shape.type_name == "string":
        assert isinstance(value, str), path
        meta = shape.metadata
        assert meta.get("min", 0) <= len(value) <= min(meta.get("max", 10**9), limits.get(name, 10**9)), path
        if "enum" in meta:
            assert value in meta["enum"], f"{path}: {value!r}"
        if "pattern" in meta:
            assert re.search(meta["pattern"], value), f"{path}: {value!r} !~ {meta['pattern']}"
    elif shape.type_name == "timestamp":
        assert isinstance(value, datetime) and value.tzinfo is not None, path


def validate_asff(model: Any, finding: dict[str, Any]) -> None:
    check_shape(finding, model.shape_for("AwsSecurityFinding"), "Finding", ASFF_STRING_MAX)
    request = model.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": [finding]}, request)
    assert not report.has_errors(), report.generate_report()
    for key in ("CreatedAt", "UpdatedAt", "FirstObservedAt", "LastObservedAt"):
        assert datetime.fromisoformat(finding[key]).tzinfo is not None, key
    assert PRODUCT_ARN.match(finding["ProductArn"]), finding["ProductArn"]
    assert finding["SchemaVersion"] == "2018-10-08"
    assert finding["Severity"] == finding["FindingProviderFields"]["Severity"]
    assert finding["Types"] == finding["FindingProviderFields"]["Types"]
    for asff_type in finding["Types"]:
        assert asff_type.split("/")[0] in ASFF_NAMESPACES and len(asff_type.split("/")) == 3, asff_type
    assert finding["Resources"][0]["Type"] == "AwsEksCluster"
    assert len(json.dumps(finding).encode()) <= 240 * 1024


def validate_entry(model: Any, entry: dict[str, Any]) -> dict[str, Any]:
    check_shape(entry, model.shape_for("PutEventsRequestEntry"), "Entry")
    report = ParamValidator().validate({"Entries": [entry]}, model.operation_model("PutEvents").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert all(arn.startswith("arn:") for arn in entry["Resources"])
    assert entry_size(entry) <= 256 * 1024
    detail = json.loads(entry["Detail"])
    assert set(detail) >= CONTRACT, CONTRACT - set(detail)
    assert detail["schema_version"] == DETAIL_SCHEMA_VERSION
    return detail


# ---------------------------------------------------------------- ASFF


def test_real_findings_map_to_valid_asff(securityhub: Any, real_findings: list[Finding]) -> None:
    for finding in real_findings:
        asff = to_asff(finding)
        validate_asff(securityhub, asff)
        assert asff["AwsAccountId"] == ACCOUNT
        assert asff["Severity"]["Label"] == finding.severity.name
        assert asff["GeneratorId"] == f"eksight/{finding.rule_id}"
        assert asff["Resources"][0]["Id"] == f"arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/prod"
        assert asff["ProductFields"]["eksight/rule_id"] == finding.rule_id
        assert asff["ProductFields"]["k8s/auditID"].split(",")[0] == finding.evidence[0]


def test_asff_ids_are_stable_across_runs_and_distinct_per_finding(real_findings: list[Finding]) -> None:
    first = [to_asff(f)["Id"] for f in real_findings]
    second = [to_asff(f)["Id"] for f in run_engine()]
    assert first == second
    assert len(set(first)) == len(first)
    assert to_asff(make_finding())["Id"] != to_asff(make_finding(id="e" * 32))["Id"]


def test_a_later_updated_at_is_sent_as_a_later_update() -> None:
    finding = make_finding()
    base = to_asff(finding)
    later = to_asff(finding, updated_at=finding.last_seen + 600)
    assert base["UpdatedAt"] == base["LastObservedAt"]
    assert datetime.fromisoformat(later["UpdatedAt"]) > datetime.fromisoformat(base["UpdatedAt"])
    assert (later["Id"], later["CreatedAt"]) == (base["Id"], base["CreatedAt"])


@pytest.mark.parametrize(
    ("region", "partition"), [("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-1", "aws")]
)
def test_partition_follows_region(securityhub: Any, events: Any, region: str, partition: str) -> None:
    finding = make_finding(
        region=region, principal={"name": "system:anonymous", "kind": "anonymous", "key": "anonymous"}
    )
    asff = to_asff(finding)
    validate_asff(securityhub, asff)
    assert partition_for(region) == partition
    assert asff["ProductArn"].startswith(f"arn:{partition}:securityhub:{region}:{ACCOUNT}:")
    cluster = asff["Resources"][0]
    assert (cluster["Id"], cluster["Partition"]) == (f"arn:{partition}:eks:{region}:{ACCOUNT}:cluster/prod", partition)
    assert validate_entry(events, to_eventbridge_entry(finding, bus_name="b"))
    assert to_eventbridge_entry(finding, bus_name="b")["Resources"] == [cluster["Id"]]


def test_no_account_needs_an_explicit_one_for_asff_and_omits_eventbridge_resources(events: Any) -> None:
    finding = make_finding(account="", principal={"name": "u", "kind": "mapped_user", "key": "user:u"})
    with pytest.raises(ValueError, match="account"):
        to_asff(finding)
    assert to_asff(finding, aws_account_id=ACCOUNT)["AwsAccountId"] == ACCOUNT
    entry = to_eventbridge_entry(finding, bus_name="eksight-findings")
    validate_entry(events, entry)
    assert entry["Resources"] == []


def test_long_unicode_text_is_truncated_with_an_ellipsis(securityhub: Any) -> None:
    finding = make_finding(title="ü" * 1000, description="Ω🔥" * 5000, remediation="r" * 2000)
    asff = to_asff(finding)
    validate_asff(securityhub, asff)
    assert len(asff["Title"]) == 256 and asff["Title"].endswith("…")
    assert len(asff["Description"]) == 1024 and asff["Description"].startswith("Ω🔥Ω")
    assert asff["Description"].endswith("…")
    assert len(asff["Remediation"]["Recommendation"]["Text"]) == 512


def test_principal_and_kubernetes_targets_become_resources_capped_at_32(securityhub: Any) -> None:
    targets = [ResourceRef("ns", "pods", f"p{i}") for i in range(100)]
    asff = to_asff(make_finding(resources=targets))
    validate_asff(securityhub, asff)
    resources = asff["Resources"]
    assert len(resources) == 32
    assert resources[1]["Type"] == "AwsIamRole" and resources[1]["Id"] == f"arn:aws:iam::{ACCOUNT}:role/dev"
    assert resources[1]["Details"]["Other"]["k8s/session"] == "alice"
    assert resources[2] == {
        "Type": "Other",
        "Id": "k8s://prod/ns/pods/p0",
        "Partition": "aws",
        "Region": "eu-west-1",
        "Details": {"Other": {"k8s/namespace": "ns", "k8s/kind": "pods", "k8s/name": "p0"}},
    }
    user = to_asff(
        make_finding(
            principal={"name": "bob", "kind": "iam_user", "key": "iam:x", "arn": f"arn:aws:iam::{ACCOUNT}:user/bob"}
        )
    )["Resources"][1]
    assert user["Type"] == "AwsIamUser"
    sa = to_asff(
        make_finding(
            principal={
                "name": "system:serviceaccount:ci:deployer",
                "kind": "service_account",
                "key": "sa:ci/deployer",
                "namespace": "ci",
            }
        )
    )["Resources"][1]
    assert (sa["Type"], sa["Id"]) == ("Other", "sa:ci/deployer")


def test_product_fields_respect_map_limits(securityhub: Any) -> None:
    finding = make_finding(
        evidence=[f"audit-{i:05d}" for i in range(500)],
        user_agents=["x" * 5000],
        source_ips=[f"10.0.{i // 256}.{i % 256}" for i in range(1000)],
    )
    asff = to_asff(finding)
    validate_asff(securityhub, asff)
    fields = asff["ProductFields"]
    assert fields["k8s/auditID"] == ",".join(finding.evidence[:5])
    assert fields["eksight/count"] == "3" and fields["eksight/evidence_total"] == "500"
    assert all(len(v) <= 1024 for v in fields.values())


@pytest.mark.parametrize(
    ("finding_type", "detector", "expected"),
    [
        (
            "PrivilegeEscalation:Kubernetes/ClusterAdminBound",
            "rule",
            ["TTPs/Privilege Escalation/PrivilegeEscalation:Kubernetes-ClusterAdminBound"],
        ),
        (
            "Exfiltration:Kubernetes/FilesCopiedFromPod",
            "rule",
            ["Effects/Data Exfiltration/Exfiltration:Kubernetes-FilesCopiedFromPod"],
        ),
        (
            "Policy:Kubernetes/AnonymousAccessGranted",
            "rule",
            ["Software and Configuration Checks/AWS Security Best Practices/Policy:Kubernetes-AnonymousAccessGranted"],
        ),
        (
            "Discovery:Kubernetes/FirstSeenList",
            "anomaly",
            [
                "TTPs/Discovery/Discovery:Kubernetes-FirstSeenList",
                "Unusual Behaviors/User/Discovery:Kubernetes-FirstSeenList",
            ],
        ),
        ("Weird", "rule", ["Unusual Behaviors/Application/Weird"]),
    ],
)
def test_types_follow_the_tactic_prefix(finding_type: str, detector: str, expected: list[str]) -> None:
    assert to_asff(make_finding(type=finding_type, detector=detector))["Types"] == expected


def test_asff_batches_respect_the_import_limit() -> None:
    assert [len(b) for b in asff_batches(range(250))] == [100, 100, 50]
    assert [len(b) for b in asff_batches(range(7), size=3)] == [3, 3, 1]
    assert list(asff_batches([])) == []
    assert [x for b in asff_batches(range(250)) for x in b] == list(range(250))
    with pytest.raises(ValueError):
        list(asff_batches(range(3), size=101))


# ---------------------------------------------------------------- EventBridge


def test_real_findings_map_to_valid_eventbridge_entries(events: Any, real_findings: list[Finding]) -> None:
    for finding in real_findings:
        entry = to_eventbridge_entry(finding, bus_name="eksight-findings")
        detail = validate_entry(events, entry)
        assert {k: v for k, v in detail.items() if k != "schema_version"} == json.loads(json.dumps(finding.to_dict()))
        assert entry["Time"].timestamp() == pytest.approx(finding.last_seen)
        assert (entry["Source"], entry["DetailType"]) == ("io.github.eksight", "eksight Finding")


def test_entry_size_follows_the_documented_calculation() -> None:
    entry = {
        "Source": "s",
        "DetailType": "dt",
        "Detail": '{"a":"é"}',
        "Resources": ["arn:x", "arn:yy"],
        "EventBusName": "bus",
    }
    assert entry_size(entry) == 1 + 2 + 10 + 5 + 6 + 3
    assert entry_size({**entry, "Time": datetime.now()}) == entry_size(entry) + 14


def test_100k_evidence_ids_are_truncated_to_fit(events: Any) -> None:
    evidence = [f"{i:08d}-aaaa-bbbb-cccc-dddddddddddd" for i in range(100_000)]
    finding = make_finding(evidence=evidence)
    entry = to_eventbridge_entry(finding, bus_name="eksight-findings")
    detail = validate_entry(events, entry)
    assert detail["evidence_truncated"] is True and detail["evidence_total"] == 100_000
    kept = len(detail["evidence"])
    assert 1_000 < kept < 100_000 and detail["evidence"] == evidence[:kept]
    assert detail["description"] == finding.description and detail["details"] == finding.details
    # maximal: one more ID would not fit
    detail["evidence"] = evidence[: kept + 1]
    assert entry_size({**entry, "Detail": json.dumps(detail, ensure_ascii=False, separators=(",", ":"))}) > 256 * 1024
    assert to_eventbridge_entry(finding, bus_name="eksight-findings") == entry  # deterministic


def test_huge_description_and_details_shrink_after_evidence(events: Any) -> None:
    finding = make_finding(description="é" * 300_000, details={"blob": "x" * 300_000})
    detail = validate_entry(events, to_eventbridge_entry(finding, bus_name="b"))
    assert len(detail["description"]) == 1024 and detail["details"] == {} and detail["details_truncated"] is True
    assert detail["evidence"] == finding.evidence and "evidence_truncated" not in detail
    small = validate_entry(events, to_eventbridge_entry(make_finding(), bus_name="b"))
    assert "details_truncated" not in small and small["details"] == {"role": "cluster-admin"}


def test_impossible_sizes_raise() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        to_eventbridge_entry(make_finding(), bus_name="b", max_bytes=200)


def test_module_does_not_import_botocore() -> None:
    code = "import sys, eksight.core.finding_formats; print('botocore' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "False"


def test_an_adjusted_severity_is_shown_with_its_reason(securityhub: Any) -> None:
    reason = "routine for alice@example.com: at least 14 exec, attach or port-forward sessions to pods in kube-system"
    context = {"original": "MEDIUM", "severity": "LOW", "direction": "lowered", "reason": reason}
    asff = to_asff(make_finding(severity=Severity.LOW, details={"severity_context": context}))
    validate_asff(securityhub, asff)
    assert asff["Severity"]["Label"] == "LOW"
    assert asff["ProductFields"]["eksight/original_severity"] == "MEDIUM"
    assert asff["ProductFields"]["eksight/severity_context"] == f"lowered: {reason}"
    plain = to_asff(make_finding())["ProductFields"]
    assert "eksight/original_severity" not in plain and "eksight/severity_context" not in plain
