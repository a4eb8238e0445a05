"""The deployment config's models: one JSON file describing regions → clusters and options.

Validated once (at synth, by the generator and by the wizard) into frozen, typed objects. Every error
names the field and says how to fix it. Loading (defaults merge, cross-field checks) is in `loading`; the
JSON Schema and docs/configuration.md are generated from these models by `reference` (`make schema`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from eksight.config import filter_pattern
from eksight.core.detection_options import DetectionOptions

# --- value types -------------------------------------------------------------------------------------

# Anchored with \A and \Z, not ^ and $: `$` also matches before a trailing newline, so "prod\n" would pass and
# then break synth. ASCII: `\d` and `\w` would otherwise accept any Unicode digit or letter.
_PARTITION = r"aws(?:-cn|-us-gov)?"
BUCKET_ARN = re.compile(rf"\Aarn:{_PARTITION}:s3:::(?P<name>[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9])\Z", re.ASCII)
KMS_KEY_ARN = re.compile(
    rf"\Aarn:(?P<partition>{_PARTITION}):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    r"key/(?P<key>(?:mrk-)?[0-9a-f-]{32,36})\Z",
    re.ASCII,
)
EVENT_BUS_ARN = re.compile(
    rf"\Aarn:(?P<partition>{_PARTITION}):events:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):"
    r"event-bus/(?P<name>[A-Za-z0-9._-]{1,256})\Z",
    re.ASCII,
)
SNS_TOPIC_ARN = re.compile(
    rf"\Aarn:(?P<partition>{_PARTITION}):sns:(?P<region>[a-z0-9-]+):(?P<account>\d{{12}}):(?P<name>[A-Za-z0-9_-]{{1,256}})\Z",
    re.ASCII,
)
# Deliberately simple: one '@', a dotted domain, no spaces or commas. SNS confirms every address anyway.
EMAIL = re.compile(
    r"\A[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z",
    re.ASCII,
)
ROLE_ARN = re.compile(
    rf"\Aarn:{_PARTITION}:iam::(?P<account>\d{{12}}):role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}}\Z", re.ASCII
)
ACCOUNT_ID = re.compile(r"\A\d{12}\Z", re.ASCII)
# The archive's break-glass principal: a role, a user, or the account root.
PRINCIPAL_ARN = re.compile(
    rf"\Aarn:{_PARTITION}:iam::(?P<account>\d{{12}}):(?:root|(?:role|user)/(?:[\w+=,.@-]+/)*[\w+=,.@-]{{1,64}})\Z",
    re.ASCII,
)
CLUSTER_NAME = re.compile(r"\A[0-9A-Za-z][A-Za-z0-9_-]{0,99}\Z")  # EKS CreateCluster name rule
NAME_PREFIX = re.compile(r"\A[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,19}\Z")

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
    # Archive integrity (a bucket eksight creates; docs/security.md)
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
        if value is not None and not PRINCIPAL_ARN.fullmatch(value):
            raise ValueError(
                f"malformed IAM principal ARN {value!r}. Fix: use arn:aws:iam::ACCOUNT:role/NAME, "
                "arn:aws:iam::ACCOUNT:user/NAME or arn:aws:iam::ACCOUNT:root"
            )
        return value

    @field_validator("existing_bucket_arn")
    @classmethod
    def _bucket_arn(cls, value: str | None) -> str | None:
        if value is not None and not BUCKET_ARN.fullmatch(value):
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
        if value is not None and not KMS_KEY_ARN.fullmatch(value):
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
            if not EMAIL.fullmatch(address):
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
        if value is not None and not SNS_TOPIC_ARN.fullmatch(value):
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
        if value is not None and not EVENT_BUS_ARN.fullmatch(value):
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
            if not CLUSTER_NAME.fullmatch(name):
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
        if not NAME_PREFIX.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid name prefix. Fix: use 1-20 lowercase letters, digits and "
                "single dashes, starting with a letter"
            )
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        if value is not None and not ACCOUNT_ID.fullmatch(value):
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


def _check_role_arn(value: str | None) -> str | None:
    if value is not None and not ROLE_ARN.fullmatch(value):
        raise ValueError(f"malformed IAM role ARN {value!r}. Fix: use arn:aws:iam::ACCOUNT:role/NAME")
    return value


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
