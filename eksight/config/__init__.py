"""The deployment config: one JSON file describing regions → clusters and options.

Validated once (at synth, by the generator and by the wizard) into frozen, typed objects. Every error
names the field and says how to fix it. `schema/eksight.config.schema.json` is generated from these
models (`make schema`); a test keeps the two in sync.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from eksight.config import filter_pattern, regions
from eksight.core.detection_options import DetectionOptions

# --- value types -------------------------------------------------------------------------------------

_PARTITION = r"aws(?:-cn|-us-gov)?"
BUCKET_ARN = re.compile(rf"^arn:{_PARTITION}:s3:::(?P<name>[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9])$")
KMS_KEY_ARN = re.compile(
    rf"^arn:(?P<partition>{_PARTITION}):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    r"key/(?P<key>(?:mrk-)?[0-9a-f-]{32,36})$"
)
EVENT_BUS_ARN = re.compile(
    rf"^arn:(?P<partition>{_PARTITION}):events:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    r"event-bus/(?P<name>[A-Za-z0-9._-]{1,256})$"
)
SNS_TOPIC_ARN = re.compile(
    rf"^arn:(?P<partition>{_PARTITION}):sns:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):(?P<name>[A-Za-z0-9_-]{{1,256}})$"
)
# Deliberately simple: one '@', a dotted domain, no spaces or commas. SNS confirms every address anyway.
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# hardening: the archive's break-glass principal (a role, a user, or the account root)
PRINCIPAL_ARN = re.compile(
    rf"^arn:{_PARTITION}:iam::(?P<account>\d{{12}}):(?:root|(?:role|user)/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}})$"
)
ROLE_ARN = re.compile(rf"^arn:{_PARTITION}:iam::(?P<account>\d{{12}}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}$")
CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")  # EKS CreateCluster name rule
NAME_PREFIX = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,19}$")

# CloudWatch Logs accepts only these retention values (PutRetentionPolicy).
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
MAX_CLUSTERS_PER_REGION = 60  # ~4 resources each; keeps a stack well under CloudFormation's 500

SeverityName = Literal["INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL"]  # eksight.core.findings.Severity
StorageClass = Literal["GLACIER_IR", "GLACIER", "DEEP_ARCHIVE", "STANDARD_IA", "INTELLIGENT_TIERING"]


class _Strict(BaseModel):
    # strict: "16" is not 16 and "yes" is not true — a config file should say what it means.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ArchiveOptions(_Strict):
    """The S3 archive of raw audit logs."""

    existing_bucket_arn: str | None = Field(
        None,
        description="Bring your own bucket (same account and region). eksight then creates no "
        "bucket, but still wires the bucket's ObjectCreated notification to its queue.",
    )
    versioning: bool = Field(True, description="Keep object versions (new bucket only).")
    expiration_days: int = Field(365, ge=1, description="Delete archived logs after this many days.")
    transition_days: int | None = Field(
        90, ge=1, description="Move logs to a colder storage class after this many days (null: never)."
    )
    transition_storage_class: StorageClass = Field("GLACIER_IR", description="Target of the transition.")
    noncurrent_version_expiration_days: int = Field(
        30, ge=1, description="Delete overwritten/deleted object versions after this many days."
    )
    access_logging: bool = Field(
        True, description="Create a separate access-log bucket and log every request to the archive."
    )

    # --- hardening: archive integrity (new bucket only; docs/security.md) -----------------------------------
    object_lock_days: int | None = Field(
        None,
        ge=1,
        le=36500,
        description="Object Lock in governance mode: every new object version cannot be deleted or overwritten "
        "for this many days (null: off). Needs versioning; only when the bucket is created.",
    )
    break_glass_principal_arn: str | None = Field(
        None,
        description="The one IAM principal (role, user or root) still allowed to delete archive objects and "
        "change the bucket's policy, lifecycle, versioning and Object Lock settings. Default: the account root.",
    )

    @field_validator("break_glass_principal_arn")
    @classmethod
    def _break_glass(cls, value: str | None) -> str | None:
        if value is not None and not PRINCIPAL_ARN.match(value):
            raise ValueError(
                f"malformed IAM principal ARN {value!r}. Fix: use arn:aws:iam::ACCOUNT:role/NAME, "
                "arn:aws:iam::ACCOUNT:user/NAME or arn:aws:iam::ACCOUNT:root"
            )
        return value

    # --- end hardening: archive integrity ---------------------------------------------------------------------

    @field_validator("existing_bucket_arn")
    @classmethod
    def _bucket_arn(cls, value: str | None) -> str | None:
        if value is not None and not BUCKET_ARN.match(value):
            raise ValueError(
                f"malformed S3 bucket ARN {value!r}. Fix: use arn:aws:s3:::BUCKET_NAME "
                "(bucket ARNs have no region or account)"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ArchiveOptions:
        if self.transition_days is not None and self.transition_days >= self.expiration_days:
            raise ValueError(
                f"transition_days ({self.transition_days}) must be smaller than expiration_days "
                f"({self.expiration_days}). Fix: lower transition_days or set it to null"
            )
        if self.object_lock_days is not None and not self.versioning:
            raise ValueError(
                "object_lock_days needs versioning (S3 Object Lock protects object versions). Fix: set "
                "versioning to true or object_lock_days to null"
            )
        if self.existing_bucket_arn:
            ignored = sorted(self.model_fields_set - {"existing_bucket_arn"})
            if ignored:
                raise ValueError(
                    f"{', '.join(ignored)} cannot be applied to an existing bucket. Fix: remove "
                    "them, or manage them on your bucket yourself"
                )
        return self


class EncryptionOptions(_Strict):
    """The KMS key that encrypts the archive and the delivery stream."""

    existing_kms_key_arn: str | None = Field(
        None,
        description="Use this customer-managed key (in the same region) instead of creating one. "
        "Its key policy must let IAM policies in this account grant use of it.",
    )
    key_deletion_window_days: int = Field(
        30, ge=7, le=30, description="Waiting period before a deleted key is destroyed (new key only)."
    )
    key_rotation_period_days: int = Field(
        365, ge=90, le=2560, description="Automatic rotation period of a new key (rotation is always on)."
    )

    @field_validator("existing_kms_key_arn")
    @classmethod
    def _key_arn(cls, value: str | None) -> str | None:
        if value is not None and not KMS_KEY_ARN.match(value):
            raise ValueError(
                f"malformed KMS key ARN {value!r}. Fix: use the key ARN "
                "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)"
            )
        return value


class DeliveryOptions(_Strict):
    """The Firehose delivery streams (one per cluster) that write to the archive."""

    buffering_interval_seconds: int = Field(
        60, ge=0, le=900, description="Deliver at least this often; lower means faster detection."
    )
    buffering_size_mib: int = Field(16, ge=1, le=128, description="Or when this much data is buffered.")
    existing_role_arn: str | None = Field(
        None,
        description="IAM role Firehose assumes to write to the bucket (see docs/byo.md for the "
        "permissions it needs). Default: a least-privilege role is created.",
    )
    error_log_retention_days: int = Field(30, description="Retention of the streams' CloudWatch error log group.")

    @field_validator("existing_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        return _check_role_arn(value)

    @field_validator("error_log_retention_days")
    @classmethod
    def _retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            higher = [d for d in LOG_RETENTION_DAYS if d >= value]
            raise ValueError(
                f"{value} is not a CloudWatch Logs retention period. Fix: use one of "
                f"{', '.join(map(str, LOG_RETENTION_DAYS))}" + (f" (next: {higher[0]})" if higher else "")
            )
        return value


class SubscriptionOptions(_Strict):
    """The CloudWatch Logs subscription filter on each cluster's log group."""

    filter_pattern: str | None = Field(
        None,
        description="Custom JSON filter pattern. Default: audit events at ResponseComplete, plus "
        "ResponseStarted for exec/attach/portforward, without health/metrics/version/swagger probes.",
    )
    existing_role_arn: str | None = Field(
        None, description="IAM role CloudWatch Logs assumes to put records into Firehose."
    )

    @field_validator("existing_role_arn")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        return _check_role_arn(value)

    @field_validator("filter_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                filter_pattern.validate(value)
            except filter_pattern.FilterPatternError as error:
                raise ValueError(f"{error}. Fix: correct the pattern or remove it to use the default") from None
        return value


class SecurityHubOptions(_Strict):
    """Forwarding findings to AWS Security Hub CSPM (BatchImportFindings, ASFF) in the same account/region."""

    enabled: bool = Field(
        True,
        description="Import findings into Security Hub (it must be enabled in the "
        "region; findings of a disabled hub end in the forwarder's dead-letter queue).",
    )
    min_severity: SeverityName = Field("HIGH", description="Forward findings of this severity and above.")


class NotificationOptions(_Strict):
    """Readable alerts (and the stack's CloudWatch alarms) through SNS. Off unless `email` or
    `sns_topic_arn` is set."""

    email: list[str] = Field(
        default_factory=list,
        description="Subscribe these addresses to a new, KMS-encrypted topic (each "
        "address must confirm the subscription).",
    )
    sns_topic_arn: str | None = Field(
        None,
        description="Publish to your own standard topic (same account and region) instead of creating "
        "one; its topic and key policies must let EventBridge and CloudWatch publish (docs/findings.md).",
    )
    min_severity: SeverityName = Field("HIGH", description="Notify findings of this severity and above.")

    @field_validator("email")
    @classmethod
    def _emails(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not EMAIL.match(address):
                raise ValueError(
                    f"{address!r} is not an email address. Fix: write one address per list "
                    "entry, like security@example.com"
                )
        duplicates = sorted({a for a in addresses if addresses.count(a) > 1})
        if duplicates:
            raise ValueError(f"duplicate address {', '.join(duplicates)}. Fix: list each address once")
        return addresses

    @field_validator("sns_topic_arn")
    @classmethod
    def _topic(cls, value: str | None) -> str | None:
        if value is not None and not SNS_TOPIC_ARN.match(value):
            raise ValueError(
                f"malformed SNS topic ARN {value!r}. Fix: use arn:aws:sns:REGION:ACCOUNT:TOPIC_NAME "
                "(a standard topic, not FIFO)"
            )
        return value

    @model_validator(mode="after")
    def _one_topic(self) -> NotificationOptions:
        if self.email and self.sns_topic_arn:
            raise ValueError(
                "email subscribes addresses to the topic eksight creates, but sns_topic_arn brings "
                "your own. Fix: remove email and subscribe the addresses to your topic, or remove "
                "sns_topic_arn"
            )
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.email or self.sns_topic_arn)


class FindingsOptions(_Strict):
    """Where findings go: the region's EventBridge bus (always), and from there Security Hub, SNS and
    optionally a central bus."""

    securityhub: SecurityHubOptions = SecurityHubOptions()
    notifications: NotificationOptions = NotificationOptions()
    central_bus_arn: str | None = Field(
        None,
        description="Also forward every finding to this EventBridge bus (e.g. a security account's; "
        "any region of the same partition). Its resource policy must allow this account (docs/findings.md).",
    )
    archive_retention_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="Keep every finding in the bus's EventBridge archive (replayable) for this many days.",
    )

    @field_validator("central_bus_arn")
    @classmethod
    def _bus(cls, value: str | None) -> str | None:
        if value is not None and not EVENT_BUS_ARN.match(value):
            raise ValueError(
                f"malformed EventBridge bus ARN {value!r}. Fix: use arn:aws:events:REGION:ACCOUNT:event-bus/BUS_NAME"
            )
        return value


class DetectorOptions(_Strict):
    """The detector Lambda function that reads each new archive object (batches of 5 notifications)."""

    memory_mb: int = Field(1024, ge=512, le=10240, description="Memory (and with it CPU) of the function.")
    timeout_seconds: int = Field(
        300,
        ge=60,
        le=900,
        description="Function timeout. The notification queue's visibility timeout is "
        "set to 6 × (this + the 10 s batching window), as Lambda recommends.",
    )
    reserved_concurrency: int | None = Field(
        None,
        le=1000,
        description="Reserve (and cap) this many concurrent executions, at least 2 (null: share the account's "
        "unreserved pool). The queue's event source mapping is capped at the same number.",
    )

    # --- hardening: reserved concurrency vs. the SQS event source's maximum concurrency -----------------------
    @field_validator("reserved_concurrency")
    @classmethod
    def _concurrency(cls, value: int | None) -> int | None:
        if value is not None and value < 2:
            raise ValueError(
                f"reserved_concurrency {value} is below 2, the lowest maximum concurrency of an SQS event source: "
                "the queue poller would exceed it, and its throttled batches count as receives that push healthy "
                "archive objects to the dead-letter queue. Fix: use 2 or more, or null"
            )
        return value

    # --- end hardening: reserved concurrency ------------------------------------------------------------------


class RegionOptions(_Strict):
    """Options of a region's ingestion and detection stacks (under `defaults`, or a region's own)."""

    archive: ArchiveOptions = ArchiveOptions()
    encryption: EncryptionOptions = EncryptionOptions()
    delivery: DeliveryOptions = DeliveryOptions()
    subscription: SubscriptionOptions = SubscriptionOptions()
    detector: DetectorOptions = DetectorOptions()
    findings: FindingsOptions = FindingsOptions()
    enable_audit_logging: bool = Field(
        False,
        description="Turn on the EKS 'audit' control-plane log type for every listed cluster "
        "during deploy (other log types are left as they are; never turned off on delete).",
    )


class RegionEntry(RegionOptions):
    """A region: the clusters to ingest, plus any option of `defaults` to override for this region."""

    clusters: Annotated[list[str], Field(min_length=1, max_length=MAX_CLUSTERS_PER_REGION)] = Field(
        description="EKS cluster names in this region."
    )

    @field_validator("clusters")
    @classmethod
    def _clusters(cls, names: list[str]) -> list[str]:
        for name in names:
            if not CLUSTER_NAME.match(name):
                raise ValueError(
                    f"{name!r} is not a valid EKS cluster name. Fix: use 1-100 letters, digits, '-' or "
                    "'_', starting with a letter or digit"
                )
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate cluster {', '.join(duplicates)}. Fix: list each cluster once")
        return names


class ConfigFile(_Strict):
    """eksight deployment config (eksight.config.json)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, title="eksight deployment config", populate_by_name=True
    )

    schema_: str | None = Field(None, alias="$schema", description="Path or URL of this file's schema.")
    name_prefix: str = Field(
        "eksight", description="Prefix of stack names, filter names and log groups (lowercase, ≤ 20)."
    )
    account: str | None = Field(
        None, description="Target AWS account (12 digits). Default: the account of your credentials."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Tags applied to every resource.")
    defaults: RegionOptions = Field(
        RegionOptions(), description="Options for every region; a region's own options override them."
    )
    detection: DetectionOptions = Field(DetectionOptions(), description="Signature-rule tuning (allow-lists).")
    regions: Annotated[dict[str, RegionEntry], Field(min_length=1)] = Field(
        description="AWS region → clusters (and per-region options)."
    )

    @field_validator("name_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not NAME_PREFIX.match(value):
            raise ValueError(
                f"{value!r} is not a valid name prefix. Fix: use 1-20 lowercase letters, digits and "
                "single dashes, starting with a letter"
            )
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{12}", value):
            raise ValueError(f"{value!r} is not an AWS account id. Fix: use the 12-digit account id")
        return value

    @field_validator("tags")
    @classmethod
    def _tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > 40:
            raise ValueError(f"{len(tags)} tags; eksight leaves room for its own. Fix: use at most 40")
        for key, value in tags.items():
            if key.lower().startswith("aws:"):
                raise ValueError(f"tag key {key!r} uses the reserved 'aws:' prefix. Fix: rename it")
            if not 1 <= len(key) <= 128 or len(value) > 256:
                raise ValueError(f"tag {key!r}: keys are 1-128 characters, values ≤ 256. Fix: shorten it")
        return tags


# --- resolved, per-region view used by the stacks ------------------------------------------------------


@dataclass(frozen=True)
class RegionDeployment:
    name_prefix: str
    account: str | None
    region: str
    partition: str
    clusters: tuple[str, ...]
    options: RegionOptions
    tags: dict[str, str]
    detection: DetectionOptions = field(default_factory=DetectionOptions)

    @property
    def stack_name(self) -> str:
        return f"{self.name_prefix}-ingestion-{self.region}"

    @property
    def detection_stack_name(self) -> str:
        return f"{self.name_prefix}-detection-{self.region}"

    @property
    def detector(self) -> DetectorOptions:
        return self.options.detector

    @property
    def findings(self) -> FindingsOptions:
        return self.options.findings

    @property
    def filter_pattern(self) -> str:
        return self.options.subscription.filter_pattern or filter_pattern.DEFAULT_FILTER_PATTERN


@dataclass(frozen=True)
class DeploymentConfig:
    source: str
    file: ConfigFile
    regions: tuple[RegionDeployment, ...]


class ConfigError(Exception):
    """A config file that cannot be deployed; `problems` are (field path, message with fix) pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem{'s' if len(problems) != 1 else ''}"]
        lines += [f"  - {path}: {message}" for path, message in problems]
        super().__init__("\n".join(lines))


def load(path: str | Path) -> DeploymentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            str(path),
            [("(file)", f"not found. Fix: copy examples/minimal.json to {path} and edit it, or pass -c config=PATH")],
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(
            str(path),
            [(f"line {error.lineno} column {error.colno}", f"invalid JSON: {error.msg}. Fix: correct the syntax")],
        ) from None
    return parse(raw, source=str(path))


def parse(raw: Any, source: str = "config") -> DeploymentConfig:
    if not isinstance(raw, dict):
        raise ConfigError(source, [("(root)", "must be a JSON object. Fix: start from examples/minimal.json")])
    problems = list(_region_name_problems(raw.get("regions")))
    try:
        file = ConfigFile.model_validate(_apply_defaults(raw))
    except ValidationError as error:
        raise ConfigError(source, problems + _problems(error)) from None
    problems += _cross_field_problems(file)
    if problems:
        raise ConfigError(source, problems)
    deployments = tuple(
        RegionDeployment(
            name_prefix=file.name_prefix,
            account=file.account,
            region=region,
            partition=regions.partition_of(region),
            clusters=tuple(entry.clusters),
            options=entry,
            tags=dict(file.tags),
            detection=file.detection,
        )
        for region, entry in file.regions.items()
    )
    return DeploymentConfig(source=source, file=file, regions=deployments)


def _apply_defaults(raw: dict[str, Any]) -> dict[str, Any]:
    """Each region's options = `defaults` deep-merged with the region's own (the region wins)."""
    defaults = raw.get("defaults") or {}
    regions_raw = raw.get("regions")
    if not isinstance(defaults, dict) or not isinstance(regions_raw, dict):
        return raw  # let validation report the wrong type
    merged = {
        name: _merge_region(defaults, entry) if isinstance(entry, dict) else entry
        for name, entry in regions_raw.items()
    }
    return {**raw, "regions": merged}


def _merge_region(defaults: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    archive = entry.get("archive")
    if isinstance(archive, dict) and archive.get("existing_bucket_arn"):
        # A bucket brought by this region owns its settings: default bucket settings don't apply to it.
        defaults = {key: value for key, value in defaults.items() if key != "archive"}
    return _deep_merge(defaults, entry)


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _region_name_problems(regions_raw: Any) -> Iterable[tuple[str, str]]:
    for region in regions_raw if isinstance(regions_raw, dict) else ():
        if region not in regions.eks_regions():
            close = regions.closest_regions(region)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            yield (
                f"regions.{region}",
                f"unknown AWS region or EKS is not offered there{hint}. Fix: use a region name such as us-east-1",
            )


def _cross_field_problems(file: ConfigFile) -> Iterable[tuple[str, str]]:
    known = regions.eks_regions()
    partitions = set()
    for region, entry in file.regions.items():
        if region not in known:
            continue  # reported by _region_name_problems
        partitions.add(known[region])
        key_arn = entry.encryption.existing_kms_key_arn
        if key_arn:
            match = KMS_KEY_ARN.match(key_arn)
            assert match  # field validator guarantees the shape
            if match["region"] != region:
                yield (
                    f"regions.{region}.encryption.existing_kms_key_arn",
                    f"key is in {match['region']}, but KMS keys are regional. Fix: use a key in "
                    f"{region} (for a multi-Region key, the replica's ARN in {region})",
                )
            elif file.account and match["account"] != file.account:
                yield (
                    f"regions.{region}.encryption.existing_kms_key_arn",
                    f"key belongs to account {match['account']}, not {file.account}. Fix: use a "
                    "key of the target account",
                )
        for field_path, arn in (
            ("delivery.existing_role_arn", entry.delivery.existing_role_arn),
            ("subscription.existing_role_arn", entry.subscription.existing_role_arn),
        ):
            match = ROLE_ARN.match(arn) if arn else None
            if match and file.account and match["account"] != file.account:
                yield (
                    f"regions.{region}.{field_path}",
                    f"role belongs to account {match['account']}, not {file.account}. Fix: use a "
                    "role of the target account",
                )
        yield from _findings_problems(file, region, known[region], entry.findings)
    if len(partitions) > 1:
        yield (
            "regions",
            f"regions span partitions {sorted(partitions)}; one account lives in one "
            "partition. Fix: use one config file per partition",
        )


def _findings_problems(
    file: ConfigFile, region: str, partition: str, findings: FindingsOptions
) -> Iterable[tuple[str, str]]:
    path = f"regions.{region}.findings"
    bus = EVENT_BUS_ARN.match(findings.central_bus_arn or "")
    if bus:
        if bus["partition"] != partition:
            yield (
                f"{path}.central_bus_arn",
                f"bus is in partition {bus['partition']}, but {region} is in {partition}; EventBridge "
                f"cannot forward across partitions. Fix: use a bus ARN starting arn:{partition}:events:",
            )
        elif bus["region"] not in regions.eks_regions():
            yield (
                f"{path}.central_bus_arn",
                f"unknown region {bus['region']!r} in the bus ARN. Fix: use the "
                "central bus's region, such as us-east-1",
            )
        elif regions.eks_regions()[bus["region"]] != partition:
            yield (
                f"{path}.central_bus_arn",
                f"the bus's region {bus['region']} is not in partition {partition}. Fix: correct the ARN",
            )
    topic = SNS_TOPIC_ARN.match(findings.notifications.sns_topic_arn or "")
    if topic:
        if topic["partition"] != partition or topic["region"] != region:
            yield (
                f"{path}.notifications.sns_topic_arn",
                f"topic is in {topic['region']} ({topic['partition']}), but findings of {region} are "
                f"published in {region}. Fix: use a topic in {region}",
            )
        elif file.account and topic["account"] != file.account:
            yield (
                f"{path}.notifications.sns_topic_arn",
                f"topic belongs to account {topic['account']}, not {file.account}. Fix: use a topic of the "
                "target account, or forward to another account with central_bus_arn",
            )


def _check_role_arn(value: str | None) -> str | None:
    if value is not None and not ROLE_ARN.match(value):
        raise ValueError(f"malformed IAM role ARN {value!r}. Fix: use arn:aws:iam::ACCOUNT:role/NAME")
    return value


_FIXES = {
    "missing": "required. Fix: add it",
    "greater_than_equal": "must be ≥ {ge}. Fix: set it to {ge} or more",
    "less_than_equal": "must be ≤ {le}. Fix: set it to {le} or less",
    "too_short": "must not be empty. Fix: list at least {min_length}",
    "too_long": "has too many entries. Fix: at most {max_length}; split the rest into another config",
    "int_type": "must be a whole number. Fix: write it without quotes or decimals",
    "int_parsing": "must be a whole number. Fix: write it without quotes or decimals",
    "bool_type": "must be true or false. Fix: write true or false without quotes",
    "bool_parsing": "must be true or false. Fix: write true or false without quotes",
    "string_type": "must be a string. Fix: put the value in double quotes",
    "dict_type": "must be an object. Fix: use {{ ... }}",
    "list_type": "must be a list. Fix: use [ ... ]",
    "literal_error": "must be one of {expected}. Fix: pick one of them",
}


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"]) or "(root)"
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown field." + _spelling_hint(item["loc"]) + " Fix: remove it or correct its name"
        elif kind == "value_error":
            message = str(item["ctx"]["error"])
        elif kind in _FIXES:
            message = _FIXES[kind].format(**item.get("ctx", {}))
        else:
            message = item["msg"]
        problems.append((path, message))
    return problems


def _spelling_hint(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = ConfigFile
    for part in loc[:-1]:
        if isinstance(part, str) and part in model.model_fields:
            annotation = model.model_fields[part].annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                model = annotation
        elif model is ConfigFile and part not in model.model_fields:
            model = RegionEntry  # a key under `regions`
    names = [f.alias or n for n, f in model.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def json_schema() -> dict[str, Any]:
    schema = ConfigFile.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://github.com/eksight/eksight/schema/eksight.config.schema.json"
    return schema


_LIMIT_SYMBOLS = {"ge": "≥", "le": "≤", "min_length": "min items", "max_length": "max items"}


def markdown_reference() -> str:
    """docs/configuration.md, generated from the models so the two cannot drift (`make schema`)."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `eksight/config.py` by `make schema`; the JSON Schema is "
        "`schema/eksight.config.schema.json`. Every region's options are `defaults` deep-merged with the "
        "region's own (the region wins; a region that brings its own bucket ignores default bucket "
        "settings).",
        "",
    ]

    def table(model: type[BaseModel], path: str, skip: tuple[str, ...] = ()) -> None:
        lines.extend(
            [
                f"## `{path}`",
                "",
                " ".join((model.__doc__ or "").split()),
                "",
                "| field | type | default | limits | meaning |",
                "| --- | --- | --- | --- | --- |",
            ]
        )
        nested = []
        for name, info in model.model_fields.items():
            annotation = info.annotation
            if name in skip:
                continue
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((annotation, f"{path}.{name}" if path != "(root)" else name))
                continue
            default = (
                "required"
                if info.is_required()
                else json.dumps(info.default_factory() if info.default_factory else info.default)
            )  # type: ignore[call-arg]
            kind = re.sub(
                r"typing\.|eksight\.config\.|eksight\.core\.detection_options\.|<class '|'>", "", str(annotation)
            ).replace(" | ", " or ")
            limits = ", ".join(
                f"{symbol} {getattr(m, attr)}"
                for m in info.metadata
                for attr, symbol in _LIMIT_SYMBOLS.items()
                if getattr(m, attr, None) is not None
            )
            description = (info.description or "").replace("|", "\\|")
            lines.append(f"| `{info.alias or name}` | {kind} | `{default}` | {limits} | {description} |")
        lines.append("")
        for model_type, sub_path in nested:
            table(model_type, sub_path)

    table(ConfigFile, "(root)")
    table(RegionEntry, "regions.<region>", skip=tuple(RegionOptions.model_fields))
    lines.append("Each region also accepts every option of `defaults` above, overriding it for that region.")
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"
