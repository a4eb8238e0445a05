"""The Security Hub forwarder: an eksight finding event (what the detector put on the bus) → BatchImportFindings.

End to end against moto's Security Hub (`mock_aws`); retry logic of `SecurityHubImporter` against a real client
with botocore's `Stubber` (the service's answers scripted, our code not)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from lambda_support import SHARED_DATASETS, LambdaContext, emf_blobs, load_handler, metric_totals
from moto import mock_aws

from eksight.adapters.retry import Backoff
from eksight.adapters.securityhub import ImportFailed, SecurityHubImporter
from eksight.core.decode import SourceContext, decode_path
from eksight.core.detector import Detector
from eksight.core.finding_formats import to_eventbridge_entry
from eksight.core.findings import Finding, iso

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account: BatchImportFindings must come from the finding's AwsAccountId
PRODUCT_ARN = f"arn:aws:securityhub:{REGION}:{ACCOUNT}:product/{ACCOUNT}/default"
FALCO = SHARED_DATASETS / "falco-k8s-audit"


def real_finding() -> Finding:
    """A finding the engine raises on a real audit event (Falco's privileged-container trace)."""
    path = FALCO / "create_nginx_pod_privileged_2nd_container.json"
    if not path.exists():
        pytest.skip(f"dataset absent: {path}")
    context = SourceContext(cluster="prod", account=ACCOUNT, region=REGION)
    findings = Detector().run(decode_path(path, defaults=context)).findings()
    assert findings, "the engine no longer flags a privileged container"
    return max(findings, key=lambda f: f.severity)


def bus_event(finding: Finding) -> dict[str, Any]:
    """The event EventBridge hands a rule target for an entry the detector put on the bus."""
    entry = to_eventbridge_entry(finding, bus_name="eksight-findings")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": ACCOUNT,
        "time": entry["Time"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": entry["Resources"],
        "detail": json.loads(entry["Detail"]),
    }


@pytest.fixture
def forwarder(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ModuleType, Any]]:
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "POWERTOOLS_METRICS_NAMESPACE": "eksight",
        "POWERTOOLS_SERVICE_NAME": "eksight-securityhub-forwarder",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "SECURITYHUB_PRODUCT_ARN"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        securityhub = boto3.client("securityhub", region_name=REGION)
        securityhub.enable_security_hub()
        yield load_handler("securityhub_forwarder"), securityhub


def context() -> LambdaContext:
    return LambdaContext(function_name="eksight-securityhub-forwarder", region=REGION, account=ACCOUNT)


def test_a_finding_event_becomes_a_security_hub_finding(forwarder: tuple[ModuleType, Any]) -> None:
    handler, securityhub = forwarder
    finding = real_finding()

    assert handler.handler(bus_event(finding), context()) == {"imported": 1, "ignored": False}

    [stored] = securityhub.get_findings()["Findings"]
    cluster_arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod"
    assert stored["ProductArn"] == PRODUCT_ARN
    assert stored["Id"] == f"{cluster_arn}/eksight/{finding.rule_id}/{finding.id}"
    assert stored["AwsAccountId"] == ACCOUNT
    assert stored["Severity"]["Label"] == finding.severity.name
    assert stored["GeneratorId"] == f"eksight/{finding.rule_id}"
    assert stored["Resources"][0] == {
        "Type": "AwsEksCluster",
        "Id": cluster_arn,
        "Partition": "aws",
        "Region": REGION,
        "Details": {"AwsEksCluster": {"Name": "prod", "Arn": cluster_arn}},
    }
    assert [r["Id"] for r in stored["Resources"][2:]] == [
        f"k8s://prod/{r.namespace or '_'}/{r.kind}/{r.name}" for r in finding.resources
    ]
    assert (stored["CreatedAt"], stored["UpdatedAt"]) == (iso(finding.first_seen), iso(finding.last_seen))
    assert stored["ProductFields"]["eksight/finding_id"] == finding.id


def test_a_grown_finding_updates_the_same_id_with_a_later_updated_at(forwarder: tuple[ModuleType, Any]) -> None:
    handler, securityhub = forwarder
    finding = real_finding()
    handler.handler(bus_event(finding), context())
    [before] = securityhub.get_findings()["Findings"]

    grown = replace(
        finding,
        count=finding.count + 5,
        last_seen=finding.last_seen + 600,
        evidence=[*finding.evidence, "more-1", "more-2"],
    )
    assert handler.handler(bus_event(grown), context()) == {"imported": 1, "ignored": False}

    [after] = securityhub.get_findings()["Findings"]
    assert after["Id"] == before["Id"]
    assert datetime.fromisoformat(after["UpdatedAt"]) > datetime.fromisoformat(before["UpdatedAt"])
    assert after["UpdatedAt"] == iso(grown.last_seen) and after["CreatedAt"] == before["CreatedAt"]
    assert after["ProductFields"]["eksight/count"] == str(finding.count + 5)


def test_security_hub_events_are_not_forwarded_back(
    forwarder: tuple[ModuleType, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, securityhub = forwarder
    handler.handler(bus_event(real_finding()), context())
    [stored] = securityhub.get_findings()["Findings"]
    capsys.readouterr()
    imported = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Security Hub Findings - Imported",
        "source": "aws.securityhub",
        "account": ACCOUNT,
        "time": "2026-11-26T10:00:00Z",
        "region": REGION,
        "resources": [stored["ProductArn"] + "/" + stored["Id"]],
        "detail": {"findings": [stored]},
    }

    assert handler.handler(imported, context()) == {"imported": 0, "ignored": True}

    assert len(securityhub.get_findings()["Findings"]) == 1
    assert metric_totals(emf_blobs(capsys.readouterr().out))["ForeignEventsIgnored"] == 1


def test_a_refused_import_raises_so_eventbridge_retries(
    forwarder: tuple[ModuleType, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = forwarder
    stubbed = boto3.client("securityhub", region_name=REGION)
    monkeypatch.setattr(handler, "securityhub", stubbed)
    finding = real_finding()
    with Stubber(stubbed) as stub:
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 0,
                "FailedFindings": [
                    {
                        "Id": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod/eksight/{finding.rule_id}/{finding.id}",
                        "ErrorCode": "InvalidAccess",
                        "ErrorMessage": "Security Hub is not enabled",
                    }
                ],
            },
        )
        with pytest.raises(ImportFailed, match="InvalidAccess: Security Hub is not enabled"):
            handler.handler(bus_event(finding), context())
        stub.assert_no_pending_responses()
    assert metric_totals(emf_blobs(capsys.readouterr().out))["ForwardFailures"] == 1


def test_a_malformed_detail_raises(forwarder: tuple[ModuleType, Any]) -> None:
    handler, _ = forwarder
    event = bus_event(real_finding())
    del event["detail"]["rule_id"]
    with pytest.raises(ValueError, match="not an eksight finding detail"):
        handler.handler(event, context())


# ---- SecurityHubImporter retry logic (Stubber) ----------------------------------------------------------------


def findings(count: int) -> list[Finding]:
    base = real_finding()
    return [replace(base, id=f"{n:032x}") for n in range(count)]


def importer(client: Any, sleeps: list[float], attempts: int = 5) -> SecurityHubImporter:
    return SecurityHubImporter(
        client, PRODUCT_ARN, backoff=Backoff(attempts=attempts, sleep=sleeps.append, random=lambda: 1.0)
    )


def test_only_failed_findings_are_imported_again() -> None:
    client = boto3.client("securityhub", region_name=REGION)
    sleeps: list[float] = []
    shub = importer(client, sleeps)
    batch = [shub.to_asff(f) for f in findings(3)]
    with Stubber(client) as stub:
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 2,
                "FailedFindings": [{"Id": batch[1]["Id"], "ErrorCode": "InternalFailure", "ErrorMessage": "try later"}],
            },
            {"Findings": batch},
        )
        stub.add_response(
            "batch_import_findings",
            {"FailedCount": 0, "SuccessCount": 1, "FailedFindings": []},
            {"Findings": [batch[1]]},
        )

        result = shub.import_findings(findings(3))

        stub.assert_no_pending_responses()
    assert (result.imported, result.failed, result.requests) == (3, 0, 2)
    assert sleeps == [0.2]


def test_throttling_backs_off_and_retries_the_whole_call() -> None:
    client = boto3.client("securityhub", region_name=REGION)
    sleeps: list[float] = []
    shub = importer(client, sleeps)
    batch = [shub.to_asff(f) for f in findings(2)]
    with Stubber(client) as stub:
        stub.add_client_error(
            "batch_import_findings",
            "TooManyRequestsException",
            "Rate exceeded",
            429,
            expected_params={"Findings": batch},
        )
        stub.add_client_error(
            "batch_import_findings", "ThrottlingException", "Rate exceeded", 400, expected_params={"Findings": batch}
        )
        stub.add_response(
            "batch_import_findings", {"FailedCount": 0, "SuccessCount": 2, "FailedFindings": []}, {"Findings": batch}
        )

        assert shub.import_findings(findings(2)).imported == 2

        stub.assert_no_pending_responses()
    assert sleeps == [0.2, 0.4]


def test_import_retries_are_bounded_and_report_reasons() -> None:
    client = boto3.client("securityhub", region_name=REGION)
    sleeps: list[float] = []
    shub = importer(client, sleeps, attempts=3)
    batch = [shub.to_asff(f) for f in findings(2)]
    with Stubber(client) as stub:
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 2,
                "SuccessCount": 0,
                "FailedFindings": [
                    {"Id": batch[0]["Id"], "ErrorCode": "InvalidInput", "ErrorMessage": "bad Types"},
                    {"Id": batch[1]["Id"], "ErrorCode": "InternalFailure", "ErrorMessage": "down"},
                ],
            },
            {"Findings": batch},
        )
        for _ in range(2):
            stub.add_response(
                "batch_import_findings",
                {
                    "FailedCount": 1,
                    "SuccessCount": 0,
                    "FailedFindings": [{"Id": batch[1]["Id"], "ErrorCode": "InternalFailure", "ErrorMessage": "down"}],
                },
                {"Findings": [batch[1]]},
            )

        with pytest.raises(ImportFailed) as raised:
            shub.import_findings(findings(2))

        stub.assert_no_pending_responses()
    result = raised.value.result
    assert (result.imported, result.failed, result.requests) == (0, 2, 3)
    assert dict(result.reasons) == {"InvalidInput: bad Types": 1, "InternalFailure: down": 1}
    assert sleeps == [0.2, 0.4]


def test_batches_of_at_most_100() -> None:
    client = boto3.client("securityhub", region_name=REGION)
    shub = importer(client, [])
    many = findings(230)
    with Stubber(client) as stub:
        for size in (100, 100, 30):
            stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": size, "FailedFindings": []})
        assert shub.import_findings(many).requests == 3
        stub.assert_no_pending_responses()


def test_the_stacks_product_arn_wins(forwarder: tuple[ModuleType, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    handler, securityhub = forwarder
    settings = handler.ForwarderSettings.from_environ({"SECURITYHUB_PRODUCT_ARN": PRODUCT_ARN})
    monkeypatch.setattr(handler, "settings", settings)  # what the function's environment says at cold start
    elsewhere = LambdaContext(function_name="fwd", region="eu-west-1", account="999999999999")
    handler.handler(bus_event(real_finding()), elsewhere)
    assert [f["ProductArn"] for f in securityhub.get_findings()["Findings"]] == [PRODUCT_ARN]


def test_product_arn_comes_from_the_function_arn(forwarder: tuple[ModuleType, Any]) -> None:
    handler, _ = forwarder
    assert handler.product_arn_for("arn:aws-cn:lambda:cn-north-1:111122223333:function:fwd") == (
        "arn:aws-cn:securityhub:cn-north-1:111122223333:product/111122223333/default"
    )
    with pytest.raises(ValueError):
        handler.product_arn_for("not-an-arn")
