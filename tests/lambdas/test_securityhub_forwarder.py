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
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from lambda_support import SHARED_DATASETS, LambdaContext, emf_blobs, load_handler, metric_totals
from moto import mock_aws

from eksight.adapters.retry import Backoff
from eksight.adapters.securityhub import ImportFailed, SecurityHubImporter
from eksight.core.decode import SourceContext, decode_path
from eksight.core.detector import Detector
from eksight.core.finding_formats import to_eventbridge_entry
from eksight.core.findings import Finding, Severity, iso
from stacks.constructs import securityhub_forwarder as forwarder_stack

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


def sqs_event(*events: dict[str, Any]) -> dict[str, Any]:
    """What the queue's event source mapping hands the function: one record per EventBridge event."""
    return {
        "Records": [
            {
                "messageId": f"message-{n}",
                "receiptHandle": f"handle-{n}",
                "body": json.dumps(event),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764150000000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT}:forwarder",
                "awsRegion": REGION,
            }
            for n, event in enumerate(events)
        ]
    }


NO_FAILURES: dict[str, list[Any]] = {"batchItemFailures": []}


def test_a_finding_event_becomes_a_security_hub_finding(forwarder: tuple[ModuleType, Any]) -> None:
    handler, securityhub = forwarder
    finding = real_finding()

    assert handler.handler(sqs_event(bus_event(finding)), context()) == NO_FAILURES

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


def grown(finding: Finding) -> Finding:
    return replace(
        finding,
        count=finding.count + 5,
        last_seen=finding.last_seen + 600,
        evidence=[*finding.evidence, "more-1", "more-2"],
    )


def test_a_grown_finding_updates_the_same_id_with_a_later_updated_at(forwarder: tuple[ModuleType, Any]) -> None:
    handler, securityhub = forwarder
    finding = real_finding()
    handler.handler(sqs_event(bus_event(finding)), context())
    [before] = securityhub.get_findings()["Findings"]

    assert handler.handler(sqs_event(bus_event(grown(finding))), context()) == NO_FAILURES

    [after] = securityhub.get_findings()["Findings"]
    assert after["Id"] == before["Id"]
    assert datetime.fromisoformat(after["UpdatedAt"]) > datetime.fromisoformat(before["UpdatedAt"])
    assert after["UpdatedAt"] == iso(grown(finding).last_seen) and after["CreatedAt"] == before["CreatedAt"]
    assert after["ProductFields"]["eksight/count"] == str(finding.count + 5)


def test_one_batch_imports_the_latest_version_of_a_finding_it_holds_twice(forwarder: tuple[ModuleType, Any]) -> None:
    handler, securityhub = forwarder
    finding = real_finding()

    assert handler.handler(sqs_event(bus_event(grown(finding)), bus_event(finding)), context()) == NO_FAILURES

    [stored] = securityhub.get_findings()["Findings"]
    assert stored["UpdatedAt"] == iso(grown(finding).last_seen)


def test_security_hub_events_are_not_forwarded_back(
    forwarder: tuple[ModuleType, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, securityhub = forwarder
    handler.handler(sqs_event(bus_event(real_finding())), context())
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

    assert handler.handler(sqs_event(imported), context()) == NO_FAILURES

    assert len(securityhub.get_findings()["Findings"]) == 1
    assert metric_totals(emf_blobs(capsys.readouterr().out))["ForeignEventsIgnored"] == 1


@pytest.mark.parametrize(
    "envelope",
    [{"account": "999999999999"}, {"region": "eu-west-1"}, {"source": "io.github.eksight.forged"}],
    ids=["other-account", "other-region", "other-source"],
)
def test_a_finding_event_from_elsewhere_is_ignored_next_to_real_ones(
    forwarder: tuple[ModuleType, Any], capsys: pytest.CaptureFixture[str], envelope: dict[str, str]
) -> None:
    """A forged event (an attacker's copy of a real finding, downgraded) never reaches Security Hub, and does not
    hold back the genuine finding of the same batch."""
    handler, securityhub = forwarder
    genuine = real_finding()
    forged = replace(genuine, id="f" * 32, severity=Severity.HIGH, title="Benign: scheduled maintenance (ignore)")
    capsys.readouterr()

    assert handler.handler(sqs_event({**bus_event(forged), **envelope}, bus_event(genuine)), context()) == NO_FAILURES

    assert [f["ProductFields"]["eksight/finding_id"] for f in securityhub.get_findings()["Findings"]] == [genuine.id]
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert (totals["ForeignEventsIgnored"], totals["FindingsImported"]) == (1, 1)


def test_a_refused_finding_fails_only_its_own_message(
    forwarder: tuple[ModuleType, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    handler, _ = forwarder
    stubbed = boto3.client("securityhub", region_name=REGION)
    monkeypatch.setattr(handler, "securityhub", stubbed)
    refused, accepted = findings(2)
    with Stubber(stubbed) as stub:
        stub.add_response(
            "batch_import_findings",
            {
                "FailedCount": 1,
                "SuccessCount": 1,
                "FailedFindings": [
                    {
                        "Id": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/prod/eksight/{refused.rule_id}/{refused.id}",
                        "ErrorCode": "InvalidAccess",
                        "ErrorMessage": "Security Hub is not enabled",
                    }
                ],
            },
        )
        response = handler.handler(sqs_event(bus_event(refused), bus_event(accepted)), context())
        stub.assert_no_pending_responses()
    assert response == {"batchItemFailures": [{"itemIdentifier": "message-0"}]}
    totals = metric_totals(emf_blobs(capsys.readouterr().out))
    assert (totals["ForwardFailures"], totals["FindingsImported"]) == (1, 1)


def test_a_malformed_detail_raises(forwarder: tuple[ModuleType, Any]) -> None:
    handler, _ = forwarder
    event = bus_event(real_finding())
    del event["detail"]["rule_id"]
    with pytest.raises(ValueError, match="not an eksight finding detail"):
        handler.handler(sqs_event(event), context())


# ---- a burst against a throttled Security Hub, through the queue --------------------------------------------------


class ThrottledSecurityHub:
    """moto's Security Hub behind a token bucket (`rate` calls per second, `burst` at once) on a simulated clock
    that only the importer's backoff sleeps advance, and refusing every `refuse_every`-th finding of an accepted
    call as ``InternalFailure`` once (Security Hub's partial failures). Records which finding ids it stored
    with each accepted call."""

    def __init__(self, client: Any, *, rate: float, burst: float, refuse_every: int) -> None:
        self.client, self.rate, self.burst, self.refuse_every = client, rate, burst, refuse_every
        self.now = 0.0
        self.tokens, self.filled_at = burst, 0.0
        self.throttled = 0
        self.refused: set[str] = set()
        self.stored: list[str] = []

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def batch_import_findings(self, Findings: list[dict[str, Any]]) -> dict[str, Any]:
        self.tokens = min(self.burst, self.tokens + (self.now - self.filled_at) * self.rate)
        self.filled_at = self.now
        if self.tokens < 1:
            self.throttled += 1
            raise ClientError(
                {"Error": {"Code": "TooManyRequestsException", "Message": "Rate exceeded"}},
                "BatchImportFindings",
            )
        self.tokens -= 1
        refuse = [f for n, f in enumerate(Findings) if n % self.refuse_every == 0 and f["Id"] not in self.refused]
        self.refused.update(f["Id"] for f in refuse)
        accepted = [f for f in Findings if f not in refuse]
        response = self.client.batch_import_findings(Findings=accepted)
        assert not response["FailedFindings"]
        self.stored += [f["Id"] for f in accepted]
        return {
            "FailedCount": len(refuse),
            "SuccessCount": len(accepted),
            "FailedFindings": [{"Id": f["Id"], "ErrorCode": "InternalFailure", "ErrorMessage": "busy"} for f in refuse],
        }


def test_a_burst_of_1000_findings_reaches_a_throttled_security_hub_once_each(
    forwarder: tuple[ModuleType, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the stack's queue settings (batches of 100, 5 receives before the dead-letter queue): none is
    dead-lettered, and Security Hub stores each finding exactly once."""
    handler, securityhub = forwarder
    hub = ThrottledSecurityHub(securityhub, rate=1.0, burst=2.0, refuse_every=7)
    monkeypatch.setattr(handler, "securityhub", hub)
    monkeypatch.setattr(handler, "backoff", Backoff(sleep=hub.sleep, random=lambda: 1.0))
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName="forwarder-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(forwarder_stack.MAX_RECEIVES)}
    url = sqs.create_queue(QueueName="forwarder", Attributes={"RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    burst = findings(1000)
    for start in range(0, len(burst), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(n), "MessageBody": json.dumps(bus_event(f))} for n, f in enumerate(burst[start : start + 10])
            ],
        )

    invocations = 0
    while True:
        messages: list[dict[str, Any]] = []
        while len(messages) < forwarder_stack.BATCH_SIZE:
            received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"])
            if not received.get("Messages"):
                break
            messages += received["Messages"]
        if not messages:
            break
        invocations += 1
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m["Attributes"],
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:forwarder",
                    "awsRegion": REGION,
                }
                for m in messages
            ]
        }
        failed = {f["itemIdentifier"] for f in handler.handler(event, context())["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] in failed:  # visible again at once, as after its visibility timeout
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    assert hub.throttled > 0 and hub.refused, "the stand-in never pushed back: the test proves nothing"
    dead = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert dead["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert len(hub.stored) == len(set(hub.stored)) == 1000
    paginator = securityhub.get_paginator("get_findings")
    assert sum(len(page["Findings"]) for page in paginator.paginate()) == 1000
    assert invocations == 10


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
    handler.handler(sqs_event(bus_event(real_finding())), elsewhere)
    assert [f["ProductArn"] for f in securityhub.get_findings()["Findings"]] == [PRODUCT_ARN]


def test_product_arn_comes_from_the_function_arn(forwarder: tuple[ModuleType, Any]) -> None:
    handler, _ = forwarder
    assert handler.product_arn_for("arn:aws-cn:lambda:cn-north-1:111122223333:function:fwd") == (
        "arn:aws-cn:securityhub:cn-north-1:111122223333:product/111122223333/default"
    )
    with pytest.raises(ValueError):
        handler.product_arn_for("not-an-arn")
