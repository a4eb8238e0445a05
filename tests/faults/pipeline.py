"""The fault-injection suite's pipeline: the stacks `cdk synth` produces for examples/demo.json, provisioned into
one moto server + DynamoDB Local per test module (the local demo's `embedded_aws` and `_Aws.create`), with the two
real handlers driven the way Lambda's SQS event source mappings drive them (`Lambda`).

Each run of an audit object uses a cluster name of its own, so its findings, profiles, ledger entries, archive and
Security Hub findings never meet another run's; `Outcome` collects them with that name replaced, so a faulted run
compares equal to the fault-free run of the same events."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import re
import secrets
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import boto3
import pytest

from eksight.core.archive_layout import findings_key
from eksight.tools.emulator.handlers import point_logger_at
from lambdas.detector.composition import DetectorApp, DetectorClients, DetectorSettings, build, create_handler
from tests.faults.wire import LambdaTimedOut
from tests.lambdas.lambda_support import ROOT, SHARED_DATASETS, LambdaContext, emf_blobs, load_handler

DEV = SHARED_DATASETS / "dev-scenarios"
CONFIG = ROOT / "examples" / "demo.json"
ACCOUNT, REGION = "123456789012", "us-east-1"  # the config's; BatchImportFindings must come from this account
DETECTOR, FORWARDER = "eksight-detector", "eksight-securityhub-forwarder"
SCENARIOS = ("S03", "S05", "S06")  # signature scenarios of the dev cluster: anonymous access, privileged pod, binding


# ---- audit objects ------------------------------------------------------------------------------------------


@cache
def dev_lines() -> tuple[tuple[str, bytes], ...]:
    """(scenario id or "", raw audit event) for each event of the labelled dev cluster."""
    labels = json.loads((DEV / "labels.json").read_text())
    scenario_of = {a.encode(): s["id"] for s in labels["scenarios"] if s["id"] in SCENARIOS for a in s["auditIDs"]}
    audit_id = re.compile(rb'"auditID":\s*"([^"]+)"')
    return tuple(
        (scenario_of.get(match[1], "") if (match := audit_id.search(line)) else "", line)
        for line in gzip.decompress((DEV / "audit.jsonl.gz").read_bytes()).splitlines()
    )


def object_lines(benign: int = 300) -> list[bytes]:
    """`benign` ordinary events (profiles to learn) followed by the signature scenarios (findings to publish)."""
    lines = dev_lines()
    return [line for scenario, line in lines if not scenario][:benign] + [line for s, line in lines if s]


def firehose_object(cluster: str, lines: list[bytes], per_envelope: int = 100) -> bytes:
    """CloudWatch Logs DATA_MESSAGE envelopes of `cluster`'s log group, newline-delimited and gzipped once."""

    def millis(line: bytes) -> int:
        return int(datetime.fromisoformat(json.loads(line)["stageTimestamp"]).timestamp() * 1000)

    envelopes = [
        json.dumps(
            {
                "messageType": "DATA_MESSAGE",
                "owner": ACCOUNT,
                "logGroup": f"/aws/eks/{cluster}/cluster",
                "logStream": "kube-apiserver-audit-1abdea6d0f764575b219b884cf596055",
                "subscriptionFilters": ["eksight-audit"],
                "logEvents": [
                    {"id": str(n), "timestamp": millis(m), "message": m.decode()} for n, m in enumerate(chunk)
                ],
            }
        ).encode()
        for chunk in (lines[i : i + per_envelope] for i in range(0, len(lines), per_envelope))
    ]
    return gzip.compress(b"\n".join(envelopes) + b"\n")


def archive_key(cluster: str, name: str = "eksight-1-2024-09-15-20-58-00-0001.gz") -> str:
    return f"audit/account={ACCOUNT}/region={REGION}/cluster={cluster}/year=2024/month=09/day=15/hour=20/{name}"


def new_cluster(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}"


# ---- the account ----------------------------------------------------------------------------------------------


@dataclass
class Account:
    templates: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    capture_url: str  # a queue with every event of the findings bus (the demo's capture rule)
    session: Any = field(repr=False)

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def queue_arn(self, url: str) -> str:
        return str(
            self.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        )

    def resource(self, stack: str, kind: str, logical_prefix: str) -> dict[str, Any]:
        """The one resource of `kind` whose logical id starts with `logical_prefix` in the stack named `*-{stack}-*`."""
        [template] = [t for name, t in self.templates.items() if f"-{stack}-" in name]
        [found] = [
            r
            for logical, r in template["Resources"].items()
            if r["Type"] == kind and logical.startswith(logical_prefix)
        ]
        return found


@pytest.fixture(scope="module")
def account(synth: Callable[[Any], dict[str, dict[str, Any]]]) -> Iterator[Account]:
    from eksight.tools.emulator import demo
    from eksight.tools.emulator.emulators import embedded_aws

    templates = synth(CONFIG)
    with pytest.MonkeyPatch.context() as patch, embedded_aws(ACCOUNT, REGION):
        for name, value in {
            "POWERTOOLS_METRICS_NAMESPACE": "eksight",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }.items():
            patch.setenv(name, value)
        with contextlib.redirect_stdout(io.StringIO()):
            provisioned = demo._Aws.create(templates, "demo-eks")
        yield Account(templates, provisioned.outputs, provisioned.capture_queue, provisioned.session)


# ---- Lambda, as its SQS event source mapping runs it -------------------------------------------------------------


@dataclass
class Delivery:
    """What one pass over a queue did."""

    invocations: int = 0
    failed: Counter[str] = field(default_factory=Counter)  # message id → times reported in batchItemFailures
    timed_out: int = 0  # invocations stopped by `LambdaTimedOut`
    errors: int = 0  # invocations that raised (Lambda then returns the whole batch to the queue)
    last_error: str = ""  # the last of those exceptions, with its traceback's end
    stdout: str = ""  # what the handler printed: Powertools' JSON logs and EMF metrics

    @property
    def metrics(self) -> dict[str, float]:
        totals: Counter[str] = Counter()
        for blob in emf_blobs(self.stdout):
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                for metric in directive["Metrics"]:
                    value = blob[metric["Name"]]
                    totals[metric["Name"]] += sum(value) if isinstance(value, list) else value
        return dict(totals)

    def logs(self, message: str) -> list[dict[str, Any]]:
        lines = (line for line in self.stdout.splitlines() if line.startswith("{") and '"_aws"' not in line)
        return [entry for entry in map(json.loads, lines) if entry.get("message") == message]


@dataclass
class Lambda:
    """A function reading a queue: batches of up to `batch_size` messages; a message the function reports failed (or
    whose invocation timed out) becomes visible again at once, so the queue's redrive policy counts its receives."""

    account: Account
    queue_url: str
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    function_name: str
    batch_size: int
    body: Callable[[str], str] = lambda body: body  # what the emulator's deliveries lack (see `forwarder`)
    between_invocations: Callable[[], None] = lambda: None  # e.g. the mapping's batching window on a test's clock
    deadline: float = 0.0  # time.time() at which the running invocation times out

    def deliver(self, *, rounds: int | None = None, remaining_ms: int = 300_000) -> Delivery:
        """Invoke until the queue is empty (or for `rounds` invocations), each with `remaining_ms` to run (the
        context's remaining time counts down from it; `deadline` holds the running invocation's end)."""
        sqs, arn = self.account.client("sqs"), self.account.queue_arn(self.queue_url)
        delivery, out = Delivery(), io.StringIO()
        while rounds is None or delivery.invocations < rounds:
            messages: list[dict[str, Any]] = []
            while len(messages) < self.batch_size:
                received = sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                    AttributeNames=["All"],
                    VisibilityTimeout=60,
                ).get("Messages", [])
                if not received:
                    break
                messages += received
            if not messages:
                break
            delivery.invocations += 1
            event = {"Records": [_record(m, arn, self.body(m["Body"])) for m in messages]}
            context = CountdownContext(function_name=self.function_name, remaining_ms=remaining_ms)
            self.deadline = context.deadline
            try:
                with _printing_into(out, self.function_name):
                    response = self.handler(event, context)
                failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            except LambdaTimedOut:
                delivery.timed_out += 1
                failed = {m["MessageId"] for m in messages}
            except Exception:  # an invocation error (Powertools raises when every record failed): all retried
                delivery.errors += 1
                delivery.last_error = traceback.format_exc()[-2000:]
                failed = {m["MessageId"] for m in messages}
            done = [m for m in messages if m["MessageId"] not in failed]
            retried = [m for m in messages if m["MessageId"] in failed]
            delivery.failed.update(m["MessageId"] for m in retried)
            for start in range(0, len(done), 10):  # what the event source mapping does with the successes
                entries = [
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[start : start + 10])
                ]
                sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for start in range(0, len(retried), 10):  # visible again at once, as after their visibility timeout
                entries = [
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for n, m in enumerate(retried[start : start + 10])
                ]
                sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)
            self.between_invocations()
        delivery.stdout = out.getvalue()
        return delivery


@dataclass
class CountdownContext(LambdaContext):
    """A Lambda context whose remaining time runs down with the clock, from `remaining_ms` at creation."""

    deadline: float = 0.0

    def __post_init__(self) -> None:
        self.deadline = time.time() + self.remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


@contextlib.contextmanager
def _printing_into(out: io.StringIO, service: str) -> Iterator[None]:
    """The handler's prints (EMF metrics) and its Powertools logger (bound to the stdout it first saw) into `out`."""
    previous = point_logger_at(service, out)
    try:
        with contextlib.redirect_stdout(out):
            yield
    finally:
        for handler, stream in previous:
            handler.stream = stream  # as it was, closed or not (no flush of a closed one)


def _record(message: dict[str, Any], queue_arn: str, body: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


@dataclass
class Detector:
    """One detector container: the composition root on its own real clients (pointed at the emulators by the
    standard endpoint variables), where a test registers its faults before the first invocation."""

    app: DetectorApp
    clients: DetectorClients
    function: Lambda


def detector(account: Account) -> Detector:
    """A new container (cold start): settings from the stack's outputs, new clients, an empty profile cache."""
    environment = {
        "FINDINGS_BUS_NAME": account.outputs["FindingsBusName"],
        "ARCHIVE_BUCKET": account.outputs["ArchiveBucketName"],
        "STATE_TABLE": account.outputs["StateTableName"],
    }
    clients = DetectorClients(s3=boto3.client("s3"), events=boto3.client("events"), dynamodb=boto3.client("dynamodb"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERTOOLS_SERVICE_NAME", DETECTOR)  # read by Metrics()/Logger() in create_handler
        app = build(DetectorSettings.from_environ(environment), clients)
        handler = create_handler(app)
    batch = account.resource("detection", "AWS::Lambda::EventSourceMapping", "DetectorFunction")["Properties"]
    function = Lambda(account, account.outputs["NotificationQueueUrl"], handler, DETECTOR, batch["BatchSize"])
    return Detector(app, clients, function)


def forwarder(account: Account) -> tuple[Any, Lambda]:
    """The Security Hub forwarder module (a cold start: its module-scope client) and its queue's event source."""
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setenv("POWERTOOLS_SERVICE_NAME", FORWARDER)
        patch.delenv("SECURITYHUB_PRODUCT_ARN", raising=False)
        module = load_handler("securityhub_forwarder")
    batch = account.resource("detection", "AWS::Lambda::EventSourceMapping", "SecurityHubForwarder")["Properties"]
    return module, Lambda(
        account, account.outputs["SecurityHubQueueUrl"], module.handler, FORWARDER, batch["BatchSize"], _with_account
    )


def _with_account(body: str) -> str:
    # moto's EventBridge leaves the envelope's `account` empty; EventBridge always sets it (the forwarder drops
    # events of other accounts).
    event = json.loads(body)
    return json.dumps({**event, "account": event.get("account") or ACCOUNT})


# ---- what a run left behind -------------------------------------------------------------------------------------


def _normal(value: Any, cluster: str) -> Any:
    return json.loads(json.dumps(value, sort_keys=True).replace(cluster, "<cluster>"))


@dataclass
class Outcome:
    """Everything a run of one cluster's objects left in the account, the cluster's name replaced by <cluster>.
    Findings are keyed by their content without the id (the id hashes the cluster name)."""

    bus: Counter[str]  # finding (as JSON) → times it reached the findings bus
    archive: Counter[str]  # finding → times it is in the findings archive
    securityhub: Counter[str]  # (finding's content per its Security Hub twin) → Security Hub findings holding it
    profiles: dict[str, Any]  # profile key → (events learned, batches applied)
    ledger: dict[str, Any]  # ledger entry (rule/id hidden) → (count, batches applied)

    @classmethod
    def collect(cls, account: Account, cluster: str, keys: list[str]) -> Outcome:
        bus_events = [e for e in _drain(account, account.capture_url) if e["detail"].get("cluster") == cluster]
        content = {e["detail"]["id"]: _finding_text(e["detail"], cluster) for e in bus_events}
        s3, bucket = account.client("s3"), account.outputs["ArchiveBucketName"]
        archived = [
            json.loads(line)
            for key in keys
            for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=findings_key(key))["Body"].read()).splitlines()
        ]
        hub = [
            f
            for page in account.client("securityhub").get_paginator("get_findings").paginate()
            for f in page["Findings"]
            if any(cluster in resource["Id"] for resource in f["Resources"])
        ]
        return cls(
            bus=Counter(_finding_text(e["detail"], cluster) for e in bus_events),
            archive=Counter(_finding_text(f, cluster) for f in archived),
            securityhub=Counter(
                content.get(f["ProductFields"]["eksight/finding_id"], "not on the bus")
                + f" | {f['Severity']['Label']} {f['UpdatedAt'][:19]}"
                for f in hub
            ),
            profiles=_profiles(account, cluster),
            ledger=_ledger(account, cluster),
        )


def _finding_text(finding: dict[str, Any], cluster: str) -> str:
    return json.dumps(
        _normal({k: v for k, v in finding.items() if k not in ("id", "schema_version")}, cluster), sort_keys=True
    )


def _items(account: Account, pk_prefix: str) -> list[dict[str, Any]]:
    paginator = account.client("dynamodb").get_paginator("scan")
    table = account.outputs["StateTableName"]
    return [
        i for page in paginator.paginate(TableName=table) for i in page["Items"] if i["pk"]["S"].startswith(pk_prefix)
    ]


def _profiles(account: Account, cluster: str) -> dict[str, Any]:
    from eksight.core.behaviour.profile import loads

    out = {}
    for item in _items(account, f"{cluster}|"):
        if item["sk"]["S"] in ("profile", "peer"):
            profile = loads(item["blob"]["B"])
            out[f"{item['pk']['S'][len(cluster) :]}/{item['sk']['S']}"] = (profile.events, len(profile.applied))
    return out


def _ledger(account: Account, cluster: str) -> dict[str, Any]:
    from eksight.core.ledger import _DECODER

    entries = [_DECODER.decode(item["blob"]["B"]) for item in _items(account, f"{cluster}|finding")]
    return dict(Counter((e.count, e.first_seen, e.last_seen, tuple(e.evidence), len(e.applied)) for e in entries))


def _drain(account: Account, url: str) -> list[dict[str, Any]]:
    sqs, out = account.client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            out.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return out


def queue_depth(account: Account, url: str) -> int:
    attributes = account.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


# ---- a run: objects in, every queue drained, the outcome collected --------------------------------------------------


@dataclass
class Run:
    cluster: str
    keys: list[str]
    detection: Delivery
    forwarding: Delivery
    outcome: Outcome


def put_objects(account: Account, cluster: str, bodies: dict[str, bytes]) -> list[str]:
    keys = [archive_key(cluster, name) for name in bodies]
    for key, body in zip(keys, bodies.values(), strict=True):
        account.client("s3").put_object(Bucket=account.outputs["ArchiveBucketName"], Key=key, Body=body)
    return keys


def run_pipeline(
    account: Account,
    label: str,
    *,
    container: Detector | None = None,
    deliver: Callable[[Detector], Delivery] | None = None,
) -> Run:
    """One object of `object_lines()` through S3 → notification queue → detector → bus → Security Hub queue →
    forwarder → Security Hub, with `container` (faults registered on its clients); `deliver` drives the
    detector (default: until its queue is empty)."""
    cluster = new_cluster(label)
    [key] = put_objects(account, cluster, {"object.gz": firehose_object(cluster, object_lines())})
    container = container or detector(account)
    detection = deliver(container) if deliver else container.function.deliver()
    forwarding = forwarder(account)[1].deliver()
    return Run(cluster, [key], detection, forwarding, Outcome.collect(account, cluster, [key]))


@pytest.fixture(scope="module")
def reference(account: Account) -> Run:
    """The fault-free run every faulted run is compared with."""
    run = run_pipeline(account, "reference")
    outcome = run.outcome
    assert not run.detection.failed and not run.forwarding.failed
    assert outcome.bus and outcome.profiles and outcome.securityhub, "the reference run produced nothing to compare"
    assert set(outcome.bus.values()) == {1} and outcome.archive == outcome.bus
    return run
