"""`make demo`: the whole pipeline on an embedded AWS, with a simulated cluster under attack.

  simulate → CloudWatch Logs (/aws/eks/<cluster>/cluster) → subscription → Firehose → S3 archive → SQS
    → the real detector handler → DynamoDB Local (baselines, ledger) → EventBridge findings bus
    → a capture queue, and the Security Hub rule → the real forwarder handler → Security Hub

The resources are the ones `cdk synth` produces for examples/demo.json, created by eksight.tools.emulator.provision
(moto cannot run Lambda functions, so the demo invokes the two handlers itself with the SQS batches Lambda would
pass them: the notification queue's and the Security Hub rule's queue). Events in = processed + quarantined, or
the demo fails.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from eksight.core.eks import cluster_log_group
from eksight.tools import PROJECT_ROOT
from eksight.tools.emulator.handlers import load_handler, point_logger_at

ROOT = PROJECT_ROOT
CONFIG = ROOT / "examples" / "demo.json"
DEMO_DIR = ROOT / "build" / "demo"  # what `make demo` keeps: the archive copy and the Lambdas' logs
ACCOUNT, REGION = "123456789012", "us-east-1"
MAX_PUT_EVENTS, MAX_PUT_BYTES = 2_000, 900_000  # per PutLogEvents (AWS: 10,000 events, 1 MiB)
LAMBDA_LOG = "lambdas.log"  # the handlers' Powertools JSON logs and metrics (stdout in Lambda)
MALFORMED = (
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"truncated-',
    "not json at all",
    '{"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete"}',
)


@dataclass
class DemoResult:
    events_in: int = 0
    filtered_out: int = 0
    records: int = 0
    quarantined: int = 0
    objects: int = 0
    findings: list[dict[str, Any]] = field(default_factory=list)  # as delivered by EventBridge (detail)
    securityhub: list[dict[str, Any]] = field(default_factory=list)  # ASFF, as Security Hub holds them
    seconds: dict[str, float] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    archive: Path | None = None  # a local copy of the archive bucket, when kept
    findings_file: Path | None = None  # every finding the bus delivered, as JSON lines (eksight ui --findings)

    @property
    def processed(self) -> int:
        return self.records - self.quarantined

    @property
    def lost(self) -> int:
        return self.events_in - self.records

    def summary_line(self) -> str:
        return (
            f"demo: events={self.events_in} processed={self.processed} quarantined={self.quarantined} "
            f"findings={len(self.findings)} securityhub={len(self.securityhub)} lost={self.lost}"
        )


def run(
    *,
    days: float = 9.0,
    scale: float = 0.3,
    seed: int = 11,
    attacks: str = "all",
    workdir: Path | None = None,
    say: Callable[[str], object] = print,
) -> DemoResult:
    """Run the demo; `say` receives progress lines. With a `workdir`, the archive bucket is copied to
    <workdir>/archive at the end (for `eksight hunt --local`) and the Lambdas' logs stay in <workdir>/lambdas.log."""
    from eksight.tools.emulator.emulators import embedded_aws
    from stacks.app_builder import synthesize  # imports the CDK: only when the demo runs

    result = DemoResult()
    with contextlib.ExitStack() as stack:
        work = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="eksight-demo-")))
        work.mkdir(parents=True, exist_ok=True)
        lambda_log = stack.enter_context((work / LAMBDA_LOG).open("w", encoding="utf-8"))
        clock = _Clock(result.seconds)
        with clock("synth"):
            say("1/6 synthesizing the stacks for examples/demo.json (cdk-nag included) ...")
            templates = synthesize(CONFIG, work / "cdk.out")
        with clock("simulate"):
            say(f"2/6 simulating {days:g} days of an EKS cluster with attacks after day 7 ...")
            sim = _simulate(work / "sim", days, scale, seed, attacks)
            result.labels = json.loads((sim / "labels.json").read_text())
        with clock("emulators"):
            say("3/6 starting the embedded AWS (moto server, DynamoDB Local) and creating the resources ...")
            endpoints = stack.enter_context(embedded_aws(ACCOUNT, REGION))
            aws = _Aws.create(templates, result.labels["cluster"])
        say(f"    moto at {endpoints.aws}, DynamoDB Local at {endpoints.dynamodb}")
        with clock("ingest"):
            say("4/6 writing the audit log into CloudWatch Logs (subscription → Firehose → S3 → SQS) ...")
            aws.put_audit_log(sim / "audit.jsonl.gz", result)
        with clock("detect"):
            say("5/6 running the detector Lambda handler on the archive notifications ...")
            aws.run_detector(work, result, lambda_log)
        with clock("forward"):
            say("6/6 forwarding HIGH+ findings to Security Hub with the forwarder handler ...")
            aws.run_forwarder(lambda_log)
            result.findings = aws.captured_findings()
            result.securityhub = aws.securityhub_findings()
        if workdir is not None:
            result.archive = aws.download_archive(work / "archive")
            result.findings_file = work / "findings.jsonl"
            result.findings_file.write_text("".join(json.dumps(f, sort_keys=True) + "\n" for f in result.findings))
    return result


class _Clock:
    def __init__(self, into: dict[str, float]) -> None:
        self.into = into

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.into[name] = time.perf_counter() - start


def _simulate(out: Path, days: float, scale: float, seed: int, attacks: str) -> Path:
    from eksight.tools.simulator import Config, generate

    generate(
        Config(
            out=out,
            days=days,
            seed=seed,
            scale=scale,
            cluster="demo-eks",
            account=ACCOUNT,
            region=REGION,
            attacks=attacks,
            cwl=False,
        )
    )
    return out


class _LambdaContext:
    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "demo"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@dataclass
class _Aws:
    session: Any
    cluster: str
    outputs: dict[str, Any]
    capture_queue: str
    forward_queue: str
    log_stream: str

    @classmethod
    def create(cls, templates: dict[str, dict[str, Any]], cluster: str) -> _Aws:
        import boto3

        from eksight.tools.emulator import provision

        session = boto3.Session(region_name=REGION)
        session.client("logs").create_log_group(logGroupName=cluster_log_group(cluster))  # EKS does this
        names = sorted(templates)
        ingestion_name = next(n for n in names if "-ingestion-" in n)
        detection_name = next(n for n in names if "-detection-" in n)
        ingestion = provision(
            templates[ingestion_name],
            session=session,
            region=REGION,
            account=ACCOUNT,
            stack_name=ingestion_name,
            poll_interval=0.2,
        )
        detection = provision(
            templates[detection_name],
            session=session,
            region=REGION,
            account=ACCOUNT,
            stack_name=detection_name,
            poll_interval=0.2,
            imports=ingestion.exports,
        )
        outputs = {**ingestion.outputs, **detection.outputs}
        capture, forward = cls._capture_queues(session, outputs)
        session.client("securityhub").enable_security_hub()
        stream = f"kube-apiserver-audit-{secrets.token_hex(16)}"
        session.client("logs").create_log_stream(logGroupName=cluster_log_group(cluster), logStreamName=stream)
        return cls(session, cluster, outputs, capture, forward, stream)

    @staticmethod
    def _capture_queues(session: Any, outputs: dict[str, Any]) -> tuple[str, str]:
        """A queue receiving every finding from the bus (what a SIEM rule would see), and the stack's own
        Security Hub queue (the rule's target, which the forwarder function reads)."""
        sqs, events = session.client("sqs"), session.client("events")
        bus = outputs["FindingsBusName"]
        url = sqs.create_queue(QueueName="eksight-demo-capture")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        from eksight.core.finding_formats import FINDINGS_DETAIL_TYPE, FINDINGS_SOURCE

        events.put_rule(
            Name="eksight-demo-capture",
            EventBusName=bus,
            EventPattern=json.dumps({"source": [FINDINGS_SOURCE], "detail-type": [FINDINGS_DETAIL_TYPE]}),
        )
        events.put_targets(Rule="eksight-demo-capture", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
        return url, outputs["SecurityHubQueueUrl"]

    # --- 4. ingestion ------------------------------------------------------------------------------------

    def put_audit_log(self, audit_path: Path, result: DemoResult) -> None:
        """Write the simulated events as EKS does, keeping only what the synthesized subscription filter
        forwards (moto does not evaluate filter patterns), plus a few malformed records."""
        from eksight.config import filter_pattern

        pattern = filter_pattern.parse(self.outputs.get("SubscriptionFilterPattern") or self._filter_pattern())
        logs = self.session.client("logs")
        batch: list[dict[str, Any]] = []
        size = 0
        now = int(time.time() * 1000)
        with gzip.open(audit_path, "rt", encoding="utf-8") as lines:
            kept = [line.rstrip("\n") for line in lines]
        messages = []
        for line in kept:
            if pattern.matches(line):
                messages.append(line)
            else:
                result.filtered_out += 1
        step = max(1, len(messages) // (len(MALFORMED) + 1))
        for i, bad in enumerate(MALFORMED):
            messages.insert(step * (i + 1), bad)
        for i, message in enumerate(messages):
            batch.append({"timestamp": now + i // 50, "message": message})
            size += len(message) + 26
            if len(batch) >= MAX_PUT_EVENTS or size >= MAX_PUT_BYTES:
                logs.put_log_events(
                    logGroupName=cluster_log_group(self.cluster), logStreamName=self.log_stream, logEvents=batch
                )
                batch, size = [], 0
        if batch:
            logs.put_log_events(
                logGroupName=cluster_log_group(self.cluster), logStreamName=self.log_stream, logEvents=batch
            )
        result.events_in = len(messages)

    def _filter_pattern(self) -> str:
        filters = self.session.client("logs").describe_subscription_filters(
            logGroupName=cluster_log_group(self.cluster)
        )["subscriptionFilters"]
        return filters[0]["filterPattern"]

    # --- 5. detection ------------------------------------------------------------------------------------

    def run_detector(self, work: Path, result: DemoResult, log: Any) -> None:
        detection = json.loads(CONFIG.read_text()).get("detection", {})
        config_file = work / "detection.json"
        config_file.write_text(json.dumps(detection))
        os.environ.update(
            {
                "FINDINGS_BUS_NAME": self.outputs["FindingsBusName"],
                "ARCHIVE_BUCKET": self.outputs["ArchiveBucketName"],
                "STATE_TABLE": self.outputs["StateTableName"],
                "EKSIGHT_DETECTION_CONFIG": str(config_file),
                "POWERTOOLS_METRICS_NAMESPACE": "eksight",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            }
        )
        handler = _load_lambda("detector", "eksight-detector", log)
        process_object = handler.process_object

        def counted(*args: Any, **kwargs: Any) -> Any:  # each object's counts, as the handler gets them
            outcome = process_object(*args, **kwargs)
            result.objects += 1
            result.records += outcome.records
            result.quarantined += outcome.records_quarantined
            return outcome

        handler.process_object = counted
        sqs = self.session.client("sqs")
        queue_url = self.outputs["NotificationQueueUrl"]
        queue_arn = self.outputs["NotificationQueueArn"]
        idle = 0
        while idle < 3:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=5, WaitTimeSeconds=0, VisibilityTimeout=600
            ).get("Messages", [])
            if not messages:
                idle += 1
                time.sleep(0.2)
                continue
            idle = 0
            event = {"Records": [_sqs_record(m, queue_arn) for m in messages]}
            with contextlib.redirect_stdout(log):
                response = handler.lambda_handler(event, _LambdaContext("eksight-detector"))
            failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            if failed:
                raise RuntimeError(f"the detector failed {len(failed)} notification(s); see {log.name}")

    # --- 6. findings -------------------------------------------------------------------------------------

    def run_forwarder(self, log: Any) -> None:
        """Batches of up to 100 from the Security Hub queue, as the stack's event source mapping reads them."""
        handler = _load_lambda("securityhub_forwarder", "eksight-securityhub-forwarder", log)
        sqs = self.session.client("sqs")
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.forward_queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        messages = self._drain_messages(self.forward_queue)
        for message in messages:
            # moto's EventBridge leaves the envelope's `account` empty; EventBridge always sets it, and the forwarder
            # drops events of any other account, so give moto's events the account moto runs as.
            event = json.loads(message["Body"])
            if event.get("account") is None:
                message["Body"] = json.dumps({**event, "account": ACCOUNT})
        for start in range(0, len(messages), 100):
            batch = messages[start : start + 100]
            with contextlib.redirect_stdout(log):
                response = handler.lambda_handler(
                    {"Records": [_sqs_record(m, queue_arn) for m in batch]},
                    _LambdaContext("eksight-securityhub-forwarder"),
                )
            if response.get("batchItemFailures"):
                raise RuntimeError(f"the forwarder failed {len(response['batchItemFailures'])} finding(s)")

    def captured_findings(self) -> list[dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for body in self._drain(self.capture_queue):
            detail = json.loads(body)["detail"]
            latest[detail["id"]] = detail  # a finding re-published as it grows: keep its latest total
        return list(latest.values())

    def securityhub_findings(self) -> list[dict[str, Any]]:
        paginator = self.session.client("securityhub").get_paginator("get_findings")
        return [f for page in paginator.paginate() for f in page["Findings"]]

    def download_archive(self, into: Path) -> Path:
        """The archive bucket's objects under `into`, keys as paths."""
        shutil.rmtree(into, ignore_errors=True)
        s3, bucket = self.session.client("s3"), self.outputs["ArchiveBucketName"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                target = into / item["Key"]
                target.parent.mkdir(parents=True, exist_ok=True)
                s3.download_file(bucket, item["Key"], str(target))
        return into

    def _drain(self, url: str) -> list[str]:
        return [message["Body"] for message in self._drain_messages(url)]

    def _drain_messages(self, url: str) -> list[dict[str, Any]]:
        sqs, drained = self.session.client("sqs"), list[dict[str, Any]]()
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return drained
            for message in messages:
                drained.append(message)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _load_lambda(name: str, service: str, log: Any) -> Any:
    """lambdas/<name>/handler.py, its Powertools logger writing into `log`. Powertools keeps one logger per
    service name for the whole process, bound to the stream it first saw; pointing it at this run's log keeps a
    second handler (or a second run) from logging into a file an earlier run has closed."""
    os.environ["POWERTOOLS_SERVICE_NAME"] = service
    with contextlib.redirect_stdout(log):
        handler = load_handler(name)
    point_logger_at(service, log)
    return handler


def _sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
            "SenderId": ACCOUNT,
            "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


# --- the report ------------------------------------------------------------------------------------------------

SEVERITY_ORDER = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL")
LISTED = ("CRITICAL", "HIGH", "MEDIUM")  # listed one by one; LOW and INFORMATIONAL are counted
MAX_LISTED = 25
WIDTH = 110


def report(result: DemoResult, out: TextIO = sys.stdout) -> None:
    """What happened, read top to bottom: the pipeline's counts, the simulated attacks and whether they were
    caught, the MEDIUM+ findings by severity (what happened first, then why the rule cares), where to look next."""

    def say(text: str = "") -> None:
        print(text, file=out)

    by_severity = Counter(f["severity"] for f in result.findings)
    say()
    say(
        f"Ingested {result.events_in:,} audit records through CloudWatch Logs → Firehose → S3 "
        f"({result.objects} archive objects; {result.filtered_out:,} health/metrics probes dropped by the "
        "subscription filter first)."
    )
    say(
        f"Detector: {result.processed:,} processed, {result.quarantined} quarantined (malformed records, kept under "
        f"quarantine/ with their reason), {result.lost} lost."
    )
    say(
        "Findings on the EventBridge bus: "
        + (", ".join(f"{s} {by_severity[s]}" for s in SEVERITY_ORDER if by_severity[s]) or "none")
    )
    say(f"Security Hub (HIGH and above, via the forwarder): {len(result.securityhub)} findings.")
    attacks = attack_table(result)
    say()
    say("Simulated attacks (the simulator's labels) and the strongest finding citing their events:")
    for line in attacks:
        say(f"  {line}")
    shown = sorted(
        (f for f in result.findings if f["severity"] in LISTED),
        key=lambda f: (SEVERITY_ORDER.index(f["severity"]), f["first_seen"]),
    )
    for severity in LISTED:
        group = [f for f in shown[:MAX_LISTED] if f["severity"] == severity]
        if not group:
            continue
        say()
        say(f"{severity} ({by_severity[severity]})")
        for finding in group:
            for line in describe(finding):
                say(line)
    if len(shown) > MAX_LISTED:
        say()
        say(f"... and {len(shown) - MAX_LISTED} more MEDIUM+ findings")
    quiet = [f"{s} {by_severity[s]}" for s in SEVERITY_ORDER if s not in LISTED and by_severity[s]]
    if quiet:
        say(f"Not listed: {', '.join(quiet)} (audit trail and learning-period anomalies).")
    say()
    say("Timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items()))
    say()
    say("Where to look next:")
    for command, why in next_steps(result):
        say(f"  {command}")
        say(f"      {why}")


def describe(finding: dict[str, Any]) -> list[str]:
    """A finding as a few lines: title, who/when/how often, what happened, then why it matters."""
    principal = finding.get("principal", {}).get("name", "?")
    anomaly = (finding.get("details") or {}).get("anomaly")
    lines = [
        f"  {finding['title']}",
        f"      who: {principal}   first: {finding['first_seen'][:19]}Z   ×{finding['count']}",
    ]
    if anomaly:
        lines += _wrapped("what: ", anomaly["deviation"]) + _wrapped("usual: ", anomaly["baseline"])
    else:
        specific, generic = split_description(finding.get("rule_id", ""), finding.get("description", ""))
        lines += _wrapped("what: ", specific) if specific else []
        lines += _wrapped("why: ", generic) if generic else []
    return lines


def split_description(rule_id: str, description: str) -> tuple[str, str]:
    """(what happened, the rule's own explanation): a rule's finding describes the rule, then the event."""
    from eksight.core.rules import all_rules

    generic = next((r.description for r in all_rules() if r.id == rule_id), "")
    if generic and description.startswith(generic):
        return description[len(generic) :].strip(), generic
    return description, ""


def attack_table(result: DemoResult) -> list[str]:
    """One row per simulated attack: detected at MEDIUM+ or not, and the strongest finding citing its events."""
    rows = [("attack", "detected", "strongest finding")]
    for scenario in result.labels.get("scenarios", []):
        strongest = _strongest(result.findings, set(scenario["auditIDs"]))
        caught = strongest is not None and strongest["severity"] in LISTED
        rows.append(
            (
                f"{scenario['id']} {scenario['name']}",
                "yes" if caught else "MISSED",
                f"{strongest['severity']}: {strongest['title']}" if strongest else "-",
            )
        )
    first, second = (max(len(row[i]) for row in rows) for i in (0, 1))
    table = [f"{a:<{first}}  {b:<{second}}  {c}" for a, b, c in rows]
    detected = sum(1 for row in rows[1:] if row[1] == "yes")
    return [*table, f"{detected}/{len(rows) - 1} detected at MEDIUM or above."]


def _strongest(findings: list[dict[str, Any]], audit_ids: set[str]) -> dict[str, Any] | None:
    citing = [f for f in findings if audit_ids & set(f["evidence"])]
    return min(citing, key=lambda f: (SEVERITY_ORDER.index(f["severity"]), f["first_seen"]), default=None)


def next_steps(result: DemoResult) -> list[tuple[str, str]]:
    attacker = next(
        (
            (f.get("principal") or {}).get("name")
            for f in sorted(result.findings, key=lambda f: SEVERITY_ORDER.index(f["severity"]))
            if any(set(s["auditIDs"]) & set(f["evidence"]) for s in result.labels.get("scenarios", []))
        ),
        None,
    )
    audit = _shown_path(result.archive / "audit") if result.archive else "<archive dir>/audit"
    steps = []
    if result.findings_file:
        steps.append(
            (
                f"eksight ui --findings {_shown_path(result.findings_file)} --archive {audit}",
                "the findings console: filter, open a finding, its evidence, timeline and plots",
            )
        )
    if attacker:
        steps.append(
            (
                f"eksight hunt principal-activity --local {audit} --principal {shlex.quote(attacker)}",
                "everything an attacker did, from the archive this demo wrote",
            )
        )
    steps += [
        ("eksight replay <exported audit logs> --cluster <name>", "the same detection on your own audit logs"),
        ("eksight ui   (or: eksight generate)", "write a deployment config for your clusters"),
        ("docs/findings.md, docs/baselines.md", "the finding format and routing; how anomalies are scored"),
    ]
    return steps


def _shown_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def _wrapped(label: str, text: str) -> list[str]:
    indent = " " * 6
    return textwrap.wrap(
        text, WIDTH, initial_indent=indent + label, subsequent_indent=indent + " " * len(label), break_long_words=False
    )


def main() -> int:
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    started = time.perf_counter()
    result = run(say=lambda line: print(line, flush=True), workdir=DEMO_DIR)
    report(result)
    print(f"(demo took {time.perf_counter() - started:.0f} s; the Lambdas' logs: {_shown_path(DEMO_DIR / LAMBDA_LOG)})")
    print(result.summary_line())
    return 0 if result.lost == 0 and result.findings and result.securityhub else 1


if __name__ == "__main__":
    sys.exit(main())
