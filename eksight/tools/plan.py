"""What a synthesized cloud assembly will deploy, per stack, in words (used by `make synth` / `make demo`).

Reads the templates in cdk.out — what CloudFormation will actually receive — rather than the config,
so the summary cannot drift from the stacks; the detector's suppressions and network lists are read from the
`detection` file inside its code asset, which is what the function will load.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eksight.config.filter_pattern import DEFAULT_FILTER_PATTERN

DEFAULT_PATTERN_SUMMARY = (
    "default: audit events at ResponseComplete/Panic, ResponseStarted for "
    "exec/attach/portforward, no health/metrics/version/swagger probes"
)


@dataclass
class StackPlan:
    name: str
    environment: str
    clusters: list[str] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)
    resource_counts: Counter[str] = field(default_factory=Counter)


def load_plans(assembly_dir: str | Path) -> list[StackPlan]:
    assembly = Path(assembly_dir)
    manifest = json.loads((assembly / "manifest.json").read_text())
    plans = []
    for artifact in manifest["artifacts"].values():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        template = json.loads((assembly / artifact["properties"]["templateFile"]).read_text())
        stack_name = artifact["properties"].get("stackName") or artifact["displayName"]
        plans.append(describe(stack_name, artifact.get("environment", ""), template, assembly))
    return sorted(plans, key=lambda plan: plan.name)


def describe(name: str, environment: str, template: dict[str, Any], assembly: Path | None = None) -> StackPlan:
    resources = template.get("Resources", {})
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in resources.values():
        by_type.setdefault(resource["Type"], []).append(resource.get("Properties", {}))
    plan = StackPlan(
        name=name,
        environment=environment.replace("aws://", ""),
        resource_counts=Counter(r["Type"] for r in resources.values()),
    )
    if "AWS::Events::EventBus" in by_type:
        _describe_detection(plan, resources, by_type, assembly)
        return plan

    filters = by_type.get("AWS::Logs::SubscriptionFilter", [])
    plan.clusters = [f["LogGroupName"].split("/")[3] for f in filters]
    audit = "enabled by this stack" if "Custom::EksAuditLogging" in by_type else "must already be on"
    plan.lines.append(("clusters", f"{', '.join(plan.clusters)}  (audit logging: {audit})"))
    if filters:
        pattern = filters[0]["FilterPattern"]
        shown = DEFAULT_PATTERN_SUMMARY if pattern == DEFAULT_FILTER_PATTERN else f"custom: {pattern}"
        plan.lines.append(("filter", f"{filters[0].get('FilterName', '?')} ({shown})"))

    plan.lines.append(("bucket", _bucket(by_type, template)))
    for stream in by_type.get("AWS::KinesisFirehose::DeliveryStream", []):
        destination = stream["ExtendedS3DestinationConfiguration"]
        hints = destination.get("BufferingHints", {})
        processors = [p["Type"] for p in destination.get("ProcessingConfiguration", {}).get("Processors", [])]
        prefix = _text(destination["Prefix"]).split("year=")[0]
        plan.lines.append(
            (
                "stream",
                f"{stream.get('DeliveryStreamName', '(generated name)')} → {prefix}year=…/  "
                f"[{hints.get('IntervalInSeconds')} s / {hints.get('SizeInMBs')} MiB, "
                f"{'+'.join(processors)}, {destination.get('CompressionFormat')}]",
            )
        )
    plan.lines.append(("key", _key(by_type)))
    queues = by_type.get("AWS::SQS::Queue", [])
    plan.lines.append(
        (
            "queue",
            f"{len(queues)} SQS queue(s) (notifications + dead-letter), "
            f"{'SSE-SQS' if all(q.get('SqsManagedSseEnabled') for q in queues) else 'KMS'}; "
            "S3 ObjectCreated on audit/",
        )
    )
    return plan


def _describe_detection(
    plan: StackPlan, resources: dict[str, Any], by_type: dict[str, list[dict[str, Any]]], assembly: Path | None
) -> None:
    services = {
        logical_id: r.get("Properties", {})
        .get("Environment", {})
        .get("Variables", {})
        .get("POWERTOOLS_SERVICE_NAME", logical_id)
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function"
    }
    detector_id, detector = next(
        (
            (logical_id, r["Properties"])
            for logical_id, r in resources.items()
            if r["Type"] == "AWS::Lambda::Function"
            and "STATE_TABLE" in r["Properties"].get("Environment", {}).get("Variables", {})
        ),
        (None, None),
    )
    if detector is not None:
        reserved = detector.get("ReservedConcurrentExecutions")
        variables = detector["Environment"]["Variables"]
        mapping = next(
            (
                m
                for m in by_type.get("AWS::Lambda::EventSourceMapping", [])
                if m.get("FunctionName") == {"Ref": detector_id}
            ),
            {},
        )
        window = mapping.get("MaximumBatchingWindowInSeconds", 0)
        plan.lines.append(
            (
                "detector",
                f"{detector.get('Runtime')} {'/'.join(detector.get('Architectures', []))}, "
                f"{detector.get('MemorySize')} MB, {detector.get('Timeout')} s, "
                f"{f'{reserved} reserved' if reserved else 'unreserved'}; SQS batches of "
                f"{mapping.get('BatchSize', '?')} (≤ {window} s), "
                f"learning {variables.get('LEARNING_DAYS', '?')} d",
            )
        )
        detection = _detection_options(assembly, detector, variables)
        if detection is not None:
            plan.lines.extend(_detection_lines(detection))
    for table in by_type.get("AWS::DynamoDB::Table", []):
        keys = "/".join(k["AttributeName"] for k in table.get("KeySchema", []))
        features = [table.get("BillingMode", "PROVISIONED").lower().replace("_", "-"), f"key {keys}"]
        if table.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            features.append("point-in-time recovery")
        if table.get("TimeToLiveSpecification", {}).get("Enabled"):
            features.append(f"TTL on {table['TimeToLiveSpecification']['AttributeName']}")
        if table.get("SSESpecification", {}).get("KMSMasterKeyId"):
            features.append(f"KMS {_text(table['SSESpecification']['KMSMasterKeyId'])}")
        plan.lines.append(("baselines", "DynamoDB, " + ", ".join(features)))
    archives = by_type.get("AWS::Events::Archive", [])
    plan.lines.append(
        (
            "bus",
            "custom EventBridge bus"
            + "".join(f", archive kept {a.get('RetentionDays', 'forever')} d" for a in archives),
        )
    )
    for rule in by_type.get("AWS::Events::Rule", []):
        severities = rule.get("EventPattern", {}).get("detail", {}).get("severity")
        for target in rule.get("Targets", []):
            plan.lines.append(
                (
                    "route",
                    f"{'/'.join(severities) if severities else 'every finding'} → "
                    f"{_target(target, resources, services)}",
                )
            )
    for topic in by_type.get("AWS::SNS::Topic", []):
        emails = [s for s in by_type.get("AWS::SNS::Subscription", []) if s.get("Protocol") == "email"]
        plan.lines.append(
            (
                "alerts",
                f"new SNS topic, {'KMS' if topic.get('KmsMasterKeyId') else 'unencrypted'}, "
                f"{len(emails)} email subscription(s)",
            )
        )
    alarms = by_type.get("AWS::CloudWatch::Alarm", [])
    if alarms:
        notified = sum(1 for a in alarms if a.get("AlarmActions"))
        plan.lines.append(
            (
                "alarms",
                f"{len(alarms)} CloudWatch alarms ({notified} notify SNS), "
                f"{len(by_type.get('AWS::CloudWatch::Dashboard', []))} dashboard",
            )
        )


def _detection_options(assembly: Path | None, function: dict[str, Any], variables: dict[str, Any]) -> Any:
    """The detector's `detection` options as packaged in its code asset (``asset.<hash>`` of the assembly, the
    file named by ``EKSIGHT_DETECTION_CONFIG``), or None when the assembly does not hold them."""
    key = function.get("Code", {}).get("S3Key")
    name = variables.get("EKSIGHT_DETECTION_CONFIG")
    if assembly is None or not isinstance(key, str) or not key.endswith(".zip") or not isinstance(name, str):
        return None
    path = assembly / f"asset.{key.removesuffix('.zip')}" / name
    if not path.is_file():
        return None
    from eksight.core.detection_options import DetectionOptions

    return DetectionOptions.model_validate_json(path.read_bytes())


def _detection_lines(detection: Any) -> list[tuple[str, str]]:
    lines = []
    source = detection.networks_object
    if detection.threat_networks or detection.trusted_networks or source is not None:
        extra = f" + s3://{source.bucket}/{source.key} (read at cold start)" if source is not None else ""
        lines.append(
            (
                "networks",
                f"{len(detection.threat_networks)} threat, {len(detection.trusted_networks)} trusted{extra}",
            )
        )
    for entry in detection.suppressions:
        until = f"until {entry.expires}" if entry.expires else "no expiry"
        lines.append(("suppress", f"{entry.label} ({until}): {entry.reason}"))
    return lines


def _target(target: dict[str, Any], resources: dict[str, Any], services: dict[str, str]) -> str:
    arn = target.get("Arn")
    if isinstance(arn, dict) and "Fn::GetAtt" in arn and arn["Fn::GetAtt"][0] in services:
        return f"Lambda {services[arn['Fn::GetAtt'][0]]}"
    if isinstance(arn, dict) and "Fn::GetAtt" in arn:  # a queue that a function of the stack reads
        for mapping in resources.values():
            properties = mapping.get("Properties", {})
            if mapping.get("Type") == "AWS::Lambda::EventSourceMapping" and properties.get("EventSourceArn") == arn:
                function = properties.get("FunctionName", {}).get("Ref")
                if function in services:
                    return f"SQS queue → Lambda {services[function]}"
    if isinstance(arn, dict) and "Ref" in arn and resources.get(arn["Ref"], {}).get("Type") == "AWS::SNS::Topic":
        return "alert topic (readable text)" if "InputTransformer" in target else "alert topic"
    text = _text(arn)
    if ":event-bus/" in text:
        return f"event bus {text}"
    if ":sns:" in text:
        return f"SNS topic {text}" + (" (readable text)" if "InputTransformer" in target else "")
    return text


def _bucket(by_type: dict[str, list[dict[str, Any]]], template: dict[str, Any]) -> str:
    buckets = by_type.get("AWS::S3::Bucket", [])
    archive = next((b for b in buckets if "KMSMasterKeyID" in json.dumps(b.get("BucketEncryption", {}))), None)
    if archive is None:
        notifications = by_type.get("Custom::S3BucketNotifications", [{}])
        return f"existing bucket {_text(notifications[0].get('BucketName', '?'))} (not modified; notification added)"
    rules = archive.get("LifecycleConfiguration", {}).get("Rules", [{}])[0]
    parts = [
        "new, KMS",
        "versioned" if archive.get("VersioningConfiguration") else "unversioned",
        f"expire after {rules.get('ExpirationInDays')} d",
    ]
    for transition in rules.get("Transitions", []):
        parts.append(f"{transition['StorageClass']} after {transition['TransitionInDays']} d")
    parts.append("access logs to a separate bucket" if archive.get("LoggingConfiguration") else "no access logs")
    return ", ".join(parts)


def _key(by_type: dict[str, list[dict[str, Any]]]) -> str:
    keys = by_type.get("AWS::KMS::Key", [])
    if keys:
        key = keys[0]
        return (
            f"new KMS key, rotation every {key.get('RotationPeriodInDays', 365)} d, "
            f"deletion window {key.get('PendingWindowInDays', 30)} d"
        )
    streams = by_type.get("AWS::KinesisFirehose::DeliveryStream", [{}])
    arn = streams[0].get("DeliveryStreamEncryptionConfigurationInput", {}).get("KeyARN", "?")
    return f"existing KMS key {_text(arn)}"


def _text(value: Any) -> str:
    """A readable rendering of a template value that may hold intrinsics."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(_text(part) for part in parts)
        if "Ref" in value:
            return "${" + str(value["Ref"]) + "}"
        if "Fn::GetAtt" in value:
            return "${" + ".".join(map(str, value["Fn::GetAtt"])) + "}"
        if "Fn::ImportValue" in value:  # another stack's output, e.g. the ingestion stack's key
            return "${import " + _text(value["Fn::ImportValue"]) + "}"
    return json.dumps(value)


def deploy_command(config: str | None, assembly: str = "cdk.out") -> str:
    """`cdk deploy` of what was summarised: the config's stacks (`-c config=`; without it cdk.json's sample
    config would be deployed), or the synthesized assembly itself."""
    source = f"-c config={shlex.quote(config)}" if config else f"--app {shlex.quote(assembly)}"
    return f"npx cdk deploy --all {source}"


def render(plans: list[StackPlan], deploy: str) -> str:
    """The plan of each stack, then `deploy` (the complete command that deploys them)."""
    out = []
    for plan in plans:
        out.append(f"{plan.name}  ({plan.environment})")
        out.extend(f"  {label:<9} {text}" for label, text in plan.lines)
        total = sum(plan.resource_counts.values())
        out.append(f"  {'resources':<9} {total} CloudFormation resources")
        out.append("")
    one = deploy.replace(" --all ", " ", 1) + " STACK"
    out.append(f"{len(plans)} stack(s). Deploy all with `{deploy}` (one: `{one}`).")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    """python -m eksight.tools.plan [ASSEMBLY_DIR [CONFIG]]: CONFIG is the one the assembly was synthesized from."""
    assembly = argv[0] if argv else "cdk.out"
    config = argv[1] if len(argv) > 1 else None
    print(render(load_plans(assembly), deploy_command(config, assembly)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
