"""Create a synthesized CloudFormation template's resources through plain boto3 calls.

Meant for emulators (in-process ``moto.mock_aws``, or a moto server via ``AWS_ENDPOINT_URL``), so that tests
and demos exercise the wiring CDK actually synthesized, not a hand-copied list of resources. It is not
CloudFormation: Create only (no update, delete or rollback; a failure leaves what was created so far),
no Conditions, Rules are not evaluated, Parameters take their Default. Resources are created in dependency
order (Ref, Fn::GetAtt, Fn::Sub and DependsOn). Lambda functions and Step Functions are not run; the
custom resources they back are executed in-process instead, and everything not created is listed in
``ProvisionedStack.skipped`` with the reason.

Stacks that import another's exports (``Fn::ImportValue``, e.g. the detection stack importing the
ingestion stack's archive and queue) get them through ``imports=``: pass the ``exports`` of the stack
provisioned before (``ProvisionedStack.exports``).

The detection stack's DynamoDB table, EventBridge bus, archive and rules (with their targets, dead-letter
queues, retry policies and input transformers), SNS topic, policy and subscriptions, CloudWatch alarms and
dashboard are created. Not created: the Lambda functions (their handlers are called in-process by whoever
needs them), and therefore their event source mapping, invoke permissions and asynchronous-invocation
config, which moto would reject for a function that does not exist.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Any

import boto3
from botocore.exceptions import ClientError, ParamValidationError

from eksight.core.eks import cluster_log_group
from eksight.tools.emulator.handlers import load_handler

LIFECYCLE_FIELDS = {
    "Id",
    "Status",
    "Prefix",
    "ExpirationInDays",
    "Transitions",
    "NoncurrentVersionExpiration",
    "NoncurrentVersionTransitions",
    "AbortIncompleteMultipartUpload",
}
NOTIFICATION_TYPES = ("TopicConfigurations", "QueueConfigurations", "LambdaFunctionConfigurations")
SKIPPED_TYPES = {
    "AWS::Lambda::Function": "Lambda functions are not run; the custom resources they back run in-process",
    "AWS::StepFunctions::StateMachine": "the Provider framework's waiter; the provisioner polls is_complete itself",
    "AWS::CDK::Metadata": "CDK-internal metadata, nothing to create",
    "AWS::Lambda::EventSourceMapping": "its function is not created; call the handler with the queue's messages",
    "AWS::Lambda::Permission": "its function is not created (EventBridge targets still name the function's ARN)",
    "AWS::Lambda::EventInvokeConfig": "its function is not created (retries and the DLQ are Lambda-side)",
}
_NO_VALUE = object()
# A `create_<type>` method: (logical id, resolved Properties) -> (Ref value, Fn::GetAtt attributes).
Creator = Callable[[str, dict[str, Any]], tuple[str, dict[str, Any]]]


class ProvisionError(RuntimeError):
    """A resource could not be created; the message names the logical id and what to fix."""


@dataclass(frozen=True)
class Skipped:
    logical_id: str
    type: str
    reason: str


@dataclass
class ProvisionedStack:
    stack_name: str
    region: str
    account: str
    physical_ids: dict[str, str] = field(default_factory=dict)  # logical id -> Ref value of created resources
    attributes: dict[str, dict[str, Any]] = field(default_factory=dict)  # logical id -> Fn::GetAtt values
    outputs: dict[str, Any] = field(default_factory=dict)
    exports: dict[str, Any] = field(default_factory=dict)  # export name -> value (for a later stack's imports=)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # template settings that were not applied, and why


def provision(
    template: dict[str, Any],
    *,
    session: boto3.Session | None = None,
    region: str,
    account: str = "123456789012",
    stack_name: str = "eksight-local",
    poll_interval: float = 5.0,
    timeout: float = 900.0,
    sleep: Callable[[float], None] = time.sleep,
    imports: Mapping[str, Any] | None = None,
) -> ProvisionedStack:
    """Create `template`'s resources in `region` of the endpoint `session` points at, which must be `account`
    (checked with STS). `stack_name` feeds AWS::StackName and generated names; delivery streams and the
    audit-logging custom resources are polled every `poll_interval` seconds (through `sleep`, which tests
    replace) for at most `timeout` seconds. `imports` resolves Fn::ImportValue (export name -> value).
    Raises ProvisionError naming the resource that failed."""
    session = session or boto3.Session(region_name=region)
    caller = session.client("sts", region_name=region).get_caller_identity()["Account"]
    if caller != account:
        raise ProvisionError(
            f"the endpoint's account is {caller}, the template is for {account} (with moto, set MOTO_ACCOUNT_ID)"
        )
    return _Provisioner(
        template, session, region, account, stack_name, poll_interval, timeout, sleep, dict(imports or {})
    ).run()


class _Provisioner:
    def __init__(
        self,
        template: dict[str, Any],
        session: boto3.Session,
        region: str,
        account: str,
        stack_name: str,
        poll_interval: float,
        timeout: float,
        sleep: Callable[[float], None],
        imports: dict[str, Any],
    ) -> None:
        self.template, self.session, self.region, self.account = template, session, region, account
        self.imports = imports
        self.poll_interval, self.max_polls, self.sleep = poll_interval, int(timeout / poll_interval) + 1, sleep
        self.partition = session.get_partition_for_region(region)
        self.stack_id = f"arn:{self.partition}:cloudformation:{region}:{account}:stack/{stack_name}/{uuid.uuid4()}"
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::StackId": self.stack_id,
            "AWS::NotificationARNs": [],
        }
        self.result = ProvisionedStack(stack_name, region, account)
        self.refs: dict[str, Any] = {}
        self.atts: dict[str, dict[str, Any]] = {}
        self.skipped_reason: dict[str, str] = {}
        self.deferred: list[tuple[str, Callable[[], Any]]] = []  # (logical id, call) after all resources
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, region_name=self.region)
        return self._clients[service]

    def run(self) -> ProvisionedStack:
        resources = self.template.get("Resources", {})
        for logical_id in _dependency_order(resources):
            resource = resources[logical_id]
            kind = resource["Type"]
            creator: Creator | None = getattr(self, "create_" + re.sub(r"\W+", "_", kind).lower(), None)
            reason = SKIPPED_TYPES.get(kind) or ("" if creator else "no local implementation of this type")
            if "Condition" in resource:
                reason = "conditional resources are not supported"
            if reason or creator is None:
                self.skip(logical_id, kind, reason)
                continue
            properties = self.resolve(resource.get("Properties", {}))
            try:
                ref, attributes = creator(logical_id, properties)
            except (ClientError, ParamValidationError) as error:
                raise ProvisionError(f"{logical_id} ({kind}): {error}") from error
            self.refs[logical_id] = self.result.physical_ids[logical_id] = ref
            self.atts[logical_id] = self.result.attributes[logical_id] = attributes
        for logical_id, action in self.deferred:
            try:
                action()
            except ClientError as error:
                raise ProvisionError(f"{logical_id}: {error}") from error
        for name, output in self.template.get("Outputs", {}).items():
            value = self.result.outputs[name] = self.resolve(output["Value"])
            if "Export" in output:
                self.result.exports[self.resolve(output["Export"]["Name"])] = value
        return self.result

    def skip(self, logical_id: str, kind: str, reason: str) -> None:
        self.result.skipped.append(Skipped(logical_id, kind, reason))
        self.skipped_reason[logical_id] = reason
        # Lambda functions and state machines get placeholder names/ARNs so the IAM policies and custom
        # resource ServiceTokens naming them still resolve; anything else that refers to a skipped resource fails.
        arn_format = {
            "AWS::Lambda::Function": ("lambda", "function:"),
            "AWS::StepFunctions::StateMachine": ("states", "stateMachine:"),
        }.get(kind)
        if arn_format and "Condition" not in self.template["Resources"][logical_id]:
            name = self.generated_name(logical_id, 64)
            arn = f"arn:{self.partition}:{arn_format[0]}:{self.region}:{self.account}:{arn_format[1]}{name}"
            self.refs[logical_id] = arn if arn_format[0] == "states" else name
            self.atts[logical_id] = {"Arn": arn}

    def generated_name(self, logical_id: str, limit: int, lower: bool = False) -> str:
        suffix = secrets.token_hex(6)
        name = f"{self.pseudo['AWS::StackName']}-{logical_id}"[: limit - len(suffix) - 1] + "-" + suffix
        return name.lower() if lower else name

    # ---- intrinsic functions -------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in map(self.resolve, value) if item is not _NO_VALUE]
        if isinstance(value, dict):
            if len(value) == 1 and next(iter(value)) in _INTRINSICS:
                ((name, argument),) = value.items()
                return _INTRINSICS[name](self, argument)
            return {k: v for k, v in ((k, self.resolve(v)) for k, v in value.items()) if v is not _NO_VALUE}
        return value

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        parameter = self.template.get("Parameters", {}).get(name)
        if parameter is not None and "Default" in parameter:
            return parameter["Default"]
        why = f" (skipped: {self.skipped_reason[name]})" if name in self.skipped_reason else ""
        raise ProvisionError(f"cannot resolve Ref {name!r}{why}")

    def import_value(self, name: Any) -> Any:
        name = self.resolve(name)
        if name not in self.imports:
            raise ProvisionError(
                f"cannot resolve Fn::ImportValue {name!r}: provision the exporting stack first "
                "and pass its exports as imports="
            )
        return self.imports[name]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        try:
            return self.atts[logical_id][attribute]
        except KeyError:
            why = f" (skipped: {self.skipped_reason[logical_id]})" if logical_id in self.skipped_reason else ""
            raise ProvisionError(f"cannot resolve Fn::GetAtt {logical_id}.{attribute}{why}") from None

    def sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], self.resolve(argument[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self.get_att(*name.split(".", 1)))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    # ---- resource types ------------------------------------------------------------------------------
    def create_aws_kms_key(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kms = self.client("kms")
        extra = {"Policy": json.dumps(p["KeyPolicy"])} if "KeyPolicy" in p else {}
        key = kms.create_key(
            Description=p.get("Description", ""),
            KeyUsage=p.get("KeyUsage", "ENCRYPT_DECRYPT"),
            KeySpec=p.get("KeySpec", "SYMMETRIC_DEFAULT"),
            Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in p.get("Tags", [])],
            **extra,
        )["KeyMetadata"]
        if p.get("EnableKeyRotation"):
            period = {"RotationPeriodInDays": p["RotationPeriodInDays"]} if "RotationPeriodInDays" in p else {}
            kms.enable_key_rotation(KeyId=key["KeyId"], **period)
        return key["KeyId"], {"Arn": key["Arn"], "KeyId": key["KeyId"]}

    def create_aws_s3_bucket(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        s3, name = self.client("s3"), p.get("BucketName") or self.generated_name(logical_id, 63, lower=True)
        location = (
            {} if self.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": self.region}}
        )
        s3.create_bucket(Bucket=name, **location)
        apply: dict[str, Callable[[Any], object]] = {
            "OwnershipControls": lambda v: s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=v),
            "PublicAccessBlockConfiguration": lambda v: s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=v
            ),
            "BucketEncryption": lambda v: s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [
                        {("Apply" if k == "ServerSideEncryptionByDefault" else "") + k: x for k, x in rule.items()}
                        for rule in v["ServerSideEncryptionConfiguration"]
                    ]
                },
            ),
            "VersioningConfiguration": lambda v: s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=v),
            "LifecycleConfiguration": lambda v: s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in v["Rules"]]}
            ),
            "Tags": lambda v: s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": v}),
            # Deferred: moto (unlike S3) refuses logging until the target bucket's policy lets
            # logging.s3 write, and that policy names this bucket, so it can only be created after it.
            "LoggingConfiguration": lambda v: self.deferred.append(
                (
                    logical_id,
                    lambda: s3.put_bucket_logging(
                        Bucket=name,
                        BucketLoggingStatus={
                            "LoggingEnabled": {
                                "TargetBucket": v["DestinationBucketName"],
                                "TargetPrefix": v.get("LogFilePrefix", ""),
                            }
                        },
                    ),
                )
            ),
        }
        ignored = {f for rule in p.get("LifecycleConfiguration", {}).get("Rules", []) for f in rule} - LIFECYCLE_FIELDS
        self.result.notes += [f"{logical_id}: lifecycle rule field {f} not applied" for f in sorted(ignored)]
        for key, value in p.items():
            if key in apply:
                apply[key](value)
            elif key != "BucketName":
                self.result.notes.append(f"{logical_id}: {key} not applied (not implemented locally)")
        return name, {
            "Arn": f"arn:{self.partition}:s3:::{name}",
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.{self.region}.amazonaws.com",
        }

    def create_aws_s3_bucketpolicy(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.client("s3").put_bucket_policy(Bucket=p["Bucket"], Policy=json.dumps(p["PolicyDocument"]))
        return p["Bucket"], {}

    def create_aws_sqs_queue(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        sqs = self.client("sqs")
        name = p.get("QueueName") or self.generated_name(logical_id, 75) + (".fifo" if p.get("FifoQueue") else "")
        attributes = {
            k: json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in p.items()
            if k not in ("QueueName", "Tags")
        }
        url = sqs.create_queue(
            QueueName=name, Attributes=attributes, tags={t["Key"]: t["Value"] for t in p.get("Tags", [])}
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {"Arn": arn, "QueueName": name, "QueueUrl": url}

    def create_aws_sqs_queuepolicy(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        for url in p["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=url, Attributes={"Policy": json.dumps(p["PolicyDocument"])}
            )
        return logical_id, {}

    def create_aws_iam_role(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        iam, name = self.client("iam"), p.get("RoleName") or self.generated_name(logical_id, 64)
        optional = {k: p[k] for k in ("Description", "MaxSessionDuration", "PermissionsBoundary") if k in p}
        role = iam.create_role(
            RoleName=name,
            Path=p.get("Path", "/"),
            Tags=p.get("Tags", []),
            AssumeRolePolicyDocument=json.dumps(p["AssumeRolePolicyDocument"]),
            **optional,
        )["Role"]
        for arn in p.get("ManagedPolicyArns", []):
            try:
                iam.attach_role_policy(RoleName=name, PolicyArn=arn)
            except ClientError as error:
                raise ProvisionError(
                    f"{logical_id}: cannot attach {arn} ({error}); moto only knows AWS managed "
                    "policies when MOTO_IAM_LOAD_MANAGED_POLICIES=true"
                ) from error
        for policy in p.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def create_aws_iam_policy(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        iam, document = self.client("iam"), json.dumps(p["PolicyDocument"])
        for kind in ("Role", "User", "Group"):
            for principal in p.get(kind + "s", []):
                getattr(iam, f"put_{kind.lower()}_policy")(
                    **{kind + "Name": principal}, PolicyName=p["PolicyName"], PolicyDocument=document
                )
        return p["PolicyName"], {}

    def create_aws_logs_loggroup(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        logs, name = self.client("logs"), p.get("LogGroupName") or self.generated_name(logical_id, 512)
        logs.create_log_group(
            logGroupName=name,
            tags={t["Key"]: t["Value"] for t in p.get("Tags", [])},
            **({"kmsKeyId": p["KmsKeyId"]} if "KmsKeyId" in p else {}),
        )
        if "RetentionInDays" in p:
            logs.put_retention_policy(logGroupName=name, retentionInDays=p["RetentionInDays"])
        return name, {"Arn": f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{name}:*"}

    def create_aws_logs_logstream(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = p.get("LogStreamName") or self.generated_name(logical_id, 512)
        self.client("logs").create_log_stream(logGroupName=p["LogGroupName"], logStreamName=name)
        return name, {}

    def create_aws_kinesisfirehose_deliverystream(
        self, logical_id: str, p: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        firehose, name = self.client("firehose"), p.get("DeliveryStreamName") or self.generated_name(logical_id, 64)
        firehose.create_delivery_stream(
            DeliveryStreamName=name, **{k: v for k, v in p.items() if k != "DeliveryStreamName" and v != []}
        )  # CFN and API names agree
        for _ in range(self.max_polls):
            stream = firehose.describe_delivery_stream(DeliveryStreamName=name)["DeliveryStreamDescription"]
            if stream["DeliveryStreamStatus"] != "CREATING":
                break
            self.sleep(self.poll_interval)
        if stream["DeliveryStreamStatus"] != "ACTIVE":
            raise ProvisionError(f"{logical_id}: delivery stream {name} is {stream['DeliveryStreamStatus']}")
        return name, {"Arn": stream["DeliveryStreamARN"]}

    def create_aws_logs_subscriptionfilter(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name, group = p.get("FilterName") or self.generated_name(logical_id, 512), p["LogGroupName"]
        optional = {k[0].lower() + k[1:]: p[k] for k in ("RoleArn", "Distribution") if k in p}
        try:
            self.client("logs").put_subscription_filter(
                logGroupName=group,
                filterName=name,
                filterPattern=p["FilterPattern"],
                destinationArn=p["DestinationArn"],
                **optional,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            raise ProvisionError(
                f"{logical_id}: log group {group} does not exist. EKS creates it when the cluster's control-plane "
                "logging is first enabled: turn on the cluster's 'audit' log type (or enable_audit_logging) "
                "and provision again"
            ) from error
        return name, {}

    def create_aws_dynamodb_table(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        dynamodb, name = self.client("dynamodb"), p.get("TableName") or self.generated_name(logical_id, 255)
        sse = p.get("SSESpecification", {})
        extra = (
            {
                "SSESpecification": {
                    "Enabled": sse["SSEEnabled"],
                    "SSEType": sse.get("SSEType", "KMS"),
                    **({"KMSMasterKeyId": sse["KMSMasterKeyId"]} if "KMSMasterKeyId" in sse else {}),
                }
            }
            if sse.get("SSEEnabled")
            else {}
        )
        if p.get("Tags"):
            extra["Tags"] = p["Tags"]
        table = dynamodb.create_table(
            TableName=name,
            KeySchema=p["KeySchema"],
            AttributeDefinitions=p["AttributeDefinitions"],
            BillingMode=p.get("BillingMode", "PROVISIONED"),
            **extra,
        )["TableDescription"]
        if p.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            try:
                dynamodb.update_continuous_backups(
                    TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
                )
            except ClientError as error:  # DynamoDB Local has no backups
                if error.response["Error"]["Code"] != "UnknownOperationException":
                    raise
                self.result.notes.append(
                    f"{logical_id}: point-in-time recovery not applied (the endpoint has "
                    "no continuous backups, e.g. DynamoDB Local)"
                )
        if p.get("TimeToLiveSpecification", {}).get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "Enabled": True,
                    "AttributeName": p["TimeToLiveSpecification"]["AttributeName"],
                },
            )
        handled = {
            "TableName",
            "KeySchema",
            "AttributeDefinitions",
            "BillingMode",
            "SSESpecification",
            "Tags",
            "PointInTimeRecoverySpecification",
            "TimeToLiveSpecification",
        }
        self.result.notes += [
            f"{logical_id}: {key} not applied (not implemented locally)" for key in sorted(set(p) - handled)
        ]
        return name, {"Arn": table["TableArn"], "StreamArn": table.get("LatestStreamArn", "")}

    def create_aws_events_eventbus(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = p.get("Name") or self.generated_name(logical_id, 256)
        optional = {k: p[k] for k in ("Description", "KmsKeyIdentifier", "Tags") if p.get(k)}
        arn = self.client("events").create_event_bus(Name=name, **optional)["EventBusArn"]
        return name, {"Arn": arn, "Name": name}

    def create_aws_events_archive(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = p.get("ArchiveName") or self.generated_name(logical_id, 48)
        optional = {k: p[k] for k in ("Description", "RetentionDays") if k in p}
        if "EventPattern" in p:
            optional["EventPattern"] = json.dumps(p["EventPattern"])
        arn = self.client("events").create_archive(ArchiveName=name, EventSourceArn=p["SourceArn"], **optional)[
            "ArchiveArn"
        ]
        return name, {"Arn": arn, "ArchiveName": name}

    def create_aws_events_eventbuspolicy(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        # moto stores the policy (DescribeEventBus shows it) but does not evaluate it on PutEvents.
        statement = {**p["Statement"], "Sid": p["StatementId"]}
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.client("events").put_permission(EventBusName=p["EventBusName"], Policy=json.dumps(policy))
        return p["StatementId"], {}

    def create_aws_events_rule(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        events, name = self.client("events"), p.get("Name") or self.generated_name(logical_id, 64)
        bus = {"EventBusName": p["EventBusName"]} if "EventBusName" in p else {}
        optional = {k: p[k] for k in ("Description", "State", "ScheduleExpression", "RoleArn", "Tags") if k in p}
        if "EventPattern" in p:
            optional["EventPattern"] = json.dumps(p["EventPattern"])
        arn = events.put_rule(Name=name, **bus, **optional)["RuleArn"]
        if p.get("Targets"):  # CloudFormation's target shape is the API's
            response = events.put_targets(Rule=name, Targets=p["Targets"], **bus)
            if response.get("FailedEntryCount"):
                raise ProvisionError(f"{logical_id}: targets rejected: {response['FailedEntries']}")
        ref = f"{p['EventBusName']}|{name}" if bus and p["EventBusName"] != "default" else name
        return ref, {"Arn": arn}

    def create_aws_glue_database(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        database = p["DatabaseInput"]
        self.client("glue").create_database(CatalogId=p["CatalogId"], DatabaseInput=database)
        return database["Name"], {}

    def create_aws_glue_table(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        table = p["TableInput"]  # CloudFormation's TableInput is the API's
        self.client("glue").create_table(CatalogId=p["CatalogId"], DatabaseName=p["DatabaseName"], TableInput=table)
        return table["Name"], {}

    def create_aws_athena_workgroup(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        optional = {k: p[k] for k in ("Description", "Tags") if k in p}
        if "WorkGroupConfiguration" in p:  # same keys as the API's Configuration
            optional["Configuration"] = p["WorkGroupConfiguration"]
        self.client("athena").create_work_group(Name=p["Name"], **optional)
        return p["Name"], {}

    def create_aws_athena_namedquery(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        optional = {k: p[k] for k in ("Description", "WorkGroup") if k in p}
        query_id = self.client("athena").create_named_query(
            Name=p["Name"], Database=p["Database"], QueryString=p["QueryString"], **optional
        )["NamedQueryId"]
        return query_id, {"NamedQueryId": query_id}

    def create_aws_sns_topic(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = p.get("TopicName") or self.generated_name(logical_id, 256)
        attributes = {k: str(p[k]) for k in ("DisplayName", "KmsMasterKeyId", "FifoTopic") if k in p}
        arn = self.client("sns").create_topic(Name=name, Attributes=attributes, Tags=p.get("Tags", []))["TopicArn"]
        return arn, {"TopicArn": arn, "TopicName": name}

    def create_aws_sns_topicpolicy(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        for topic in p["Topics"]:
            self.client("sns").set_topic_attributes(
                TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(p["PolicyDocument"])
            )
        return logical_id, {}

    def create_aws_sns_subscription(self, _: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        attributes = {
            k: json.dumps(p[k])
            if isinstance(p[k], dict)
            else str(p[k]).lower()
            if isinstance(p[k], bool)
            else str(p[k])
            for k in ("FilterPolicy", "RawMessageDelivery", "RedrivePolicy")
            if k in p
        }
        arn = self.client("sns").subscribe(
            TopicArn=p["TopicArn"],
            Protocol=p["Protocol"],
            Endpoint=p["Endpoint"],
            Attributes=attributes,
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
        return arn, {"Arn": arn}

    def create_aws_cloudwatch_alarm(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = p.get("AlarmName") or self.generated_name(logical_id, 255)
        self.client("cloudwatch").put_metric_alarm(AlarmName=name, **{k: v for k, v in p.items() if k != "AlarmName"})
        return name, {"Arn": f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:{name}"}

    def create_aws_cloudwatch_dashboard(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        name = p.get("DashboardName") or self.generated_name(logical_id, 255)
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=p["DashboardBody"])
        return name, {}

    def create_custom_s3bucketnotifications(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """What CDK's notifications handler does on Create: replace the bucket's configuration when the bucket
        is the stack's own (Managed), otherwise keep every existing notification and add the stack's."""
        s3, bucket, incoming = self.client("s3"), p["BucketName"], p["NotificationConfiguration"]
        config = incoming
        if str(p.get("Managed", "true")).lower() != "true":
            existing = s3.get_bucket_notification_configuration(Bucket=bucket)
            config = {
                t: existing.get(t, []) + [self._with_id(n) for n in incoming.get(t, [])] for t in NOTIFICATION_TYPES
            }
            bridge = incoming.get("EventBridgeConfiguration", existing.get("EventBridgeConfiguration"))
            config = {k: v for k, v in config.items() if v} | ({"EventBridgeConfiguration": bridge} if bridge else {})
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration=config,
            SkipDestinationValidation=str(p.get("SkipDestinationValidation", "false")).lower() == "true",
        )
        return logical_id, {}

    def _with_id(self, notification: dict[str, Any]) -> dict[str, Any]:
        # CDK uses f"{StackId}-{hash(...)}" so a later Delete can find its own entries; a stable digest here.
        digest = hashlib.sha256(json.dumps(notification, sort_keys=True).encode()).hexdigest()[:16]
        return {**notification, "Id": f"{self.stack_id}-{digest}"}

    def create_custom_eksauditlogging(self, logical_id: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run lambdas/audit_logging/handler.py as the Provider framework would: on_event, then is_complete
        (given on_event's result) every poll_interval until it says complete."""
        handler, eks, logs = _audit_logging_handler(), self.client("eks"), self.client("logs")
        event = {
            "RequestType": "Create",
            "ResourceType": "Custom::EksAuditLogging",
            "LogicalResourceId": logical_id,
            "StackId": self.stack_id,
            "RequestId": str(uuid.uuid4()),
            "ResourceProperties": p,
        }
        try:
            response = handler.on_event(event, None, eks=eks)
            event = {**event, **response}
            for _ in range(self.max_polls):
                if handler.is_complete(event, None, eks=eks, logs=logs)["IsComplete"]:
                    return response["PhysicalResourceId"], dict(response.get("Data", {}))
                self.sleep(self.poll_interval)
        except RuntimeError as error:  # the handler's own, readable failures
            raise ProvisionError(f"{logical_id}: {error}") from error
        raise ProvisionError(
            f"{logical_id}: audit logging of EKS cluster {p['ClusterName']!r} not ready in time "
            f"(the update must succeed and {cluster_log_group(p['ClusterName'])} must exist)"
        )


_INTRINSICS: dict[str, Callable[[_Provisioner, Any], Any]] = {
    "Ref": lambda s, a: s.ref(a),
    "Fn::GetAtt": lambda s, a: s.get_att(*(a.split(".", 1) if isinstance(a, str) else (a[0], s.resolve(a[1])))),
    "Fn::Join": lambda s, a: s.resolve(a[0]).join(str(part) for part in s.resolve(a[1])),
    "Fn::Select": lambda s, a: s.resolve(a[1])[int(s.resolve(a[0]))],
    "Fn::Split": lambda s, a: s.resolve(a[1]).split(s.resolve(a[0])),
    "Fn::Sub": lambda s, a: s.sub(a),
    "Fn::ImportValue": lambda s, a: s.import_value(a),
}


def _references(value: Any) -> set[str]:
    """Logical ids (and pseudo parameters / parameters, filtered by the caller) that `value` refers to."""
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    if not isinstance(value, dict):
        return set()
    if len(value) == 1:
        ((name, argument),) = value.items()
        if name == "Ref":
            return {argument}
        if name == "Fn::GetAtt":
            return {argument.split(".", 1)[0] if isinstance(argument, str) else argument[0]}
        if name == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            names = {m.split(".", 1)[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)} - set(variables)
            return names | _references(variables)
    return set().union(*map(_references, value.values())) if value else set()


def _dependency_order(resources: dict[str, Any]) -> list[str]:
    """Topological order (template order among independent resources); a cycle is an error."""
    needs = {}
    for logical_id, resource in resources.items():
        depends_on = resource.get("DependsOn", [])
        needs[logical_id] = (
            _references(resource.get("Properties", {}))
            | set([depends_on] if isinstance(depends_on, str) else depends_on)
        ) & set(resources)
    order: list[str] = []
    while len(order) < len(resources):
        ready = [r for r in resources if r not in order and needs[r] <= set(order)]
        if not ready:
            raise ProvisionError(f"circular dependency among {sorted(set(resources) - set(order))}")
        order.extend(ready)
    return order


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape -> the S3 API's (the fields in LIFECYCLE_FIELDS)."""

    def transition(t: dict[str, Any], days: str) -> dict[str, Any]:
        return {days: t["TransitionInDays"], "StorageClass": t["StorageClass"]}

    api = {
        "ID": rule.get("Id"),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
        "Expiration": {"Days": rule["ExpirationInDays"]} if "ExpirationInDays" in rule else None,
        "Transitions": [transition(t, "Days") for t in rule.get("Transitions", [])] or None,
        "NoncurrentVersionExpiration": rule.get("NoncurrentVersionExpiration"),
        "NoncurrentVersionTransitions": [
            transition(t, "NoncurrentDays") for t in rule.get("NoncurrentVersionTransitions", [])
        ]
        or None,
        "AbortIncompleteMultipartUpload": rule.get("AbortIncompleteMultipartUpload"),
    }
    return {key: value for key, value in api.items() if value is not None}


@cache
def _audit_logging_handler() -> ModuleType:
    return load_handler("audit_logging")
