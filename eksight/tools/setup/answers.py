"""Setup answers → deployment config: one pure mapping shared by `eksight generate` and the web wizard.

Stable API (other front ends depend on it; extend by adding optional fields only):

- ``RegionAnswers(region, clusters, bucket_arn=None, kms_key_arn=None, sns_topic_arn=None)``: one region,
  with the resources that are regional (an existing bucket, KMS key or SNS topic lives in one region).
- ``Answers``: everything the generator asks. ``None`` (or an empty list/dict) means "not answered": the
  config then keeps eksight's default and the field is not written. Options apply to every region (they go
  under ``defaults``); the regional resources above go under their region.
- ``answers_to_config(answers, *, schema=None) -> dict``: the config file content (JSON-ready), holding
  ONLY values that differ from eksight's defaults. It does not validate: pass the result to
  ``eksight.config.parse`` (``validate_answers`` does both and returns the parsed deployment).
- ``Answers.to_dict()`` / ``Answers.from_dict(data)``: plain-JSON round trip (the answer cache, a web form).
- ``flag_for(field_path) -> str | None``: the ``eksight generate`` flag that sets a config field, so a
  ``ConfigError`` problem can name the flag that fixes it.

Defaults are read from the config models, so a default changed in ``eksight.config`` cannot drift here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pydantic import BaseModel

from eksight import config as cfg

NEVER: Final = "never"  # transition_days: never move archived logs to a colder storage class


@dataclass
class RegionAnswers:
    region: str
    clusters: list[str]
    bucket_arn: str | None = None
    kms_key_arn: str | None = None
    sns_topic_arn: str | None = None


@dataclass
class Answers:
    regions: list[RegionAnswers] = field(default_factory=list)
    name_prefix: str | None = None
    account: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    # the archive bucket eksight creates (regions that bring a bucket ignore these)
    versioning: bool | None = None
    expiration_days: int | None = None
    transition_days: int | Literal["never"] | None = None
    transition_storage_class: str | None = None
    access_logging: bool | None = None
    # the KMS key eksight creates (regions that bring a key ignore these)
    key_rotation_period_days: int | None = None
    key_deletion_window_days: int | None = None
    # existing IAM roles (IAM is global: one ARN for every region)
    firehose_role_arn: str | None = None
    cloudwatch_role_arn: str | None = None
    filter_pattern: str | None = None
    buffering_interval_seconds: int | None = None
    buffering_size_mib: int | None = None
    enable_audit_logging: bool | None = None
    learning_days: int | None = None
    securityhub: bool | None = None
    securityhub_min_severity: str | None = None
    notify_emails: list[str] = field(default_factory=list)
    notify_min_severity: str | None = None
    central_bus_arn: str | None = None
    output: str | None = None  # where to write the config (not part of it)

    def region(self, name: str) -> RegionAnswers | None:
        return next((r for r in self.regions if r.region == name), None)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Answers:
        """Inverse of to_dict. Unknown keys are ignored (older/newer caches still load); a value of the wrong
        type raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("answers must be a JSON object")
        values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
        regions = values.get("regions") or []
        if not isinstance(regions, list) or not all(isinstance(r, dict) for r in regions):
            raise ValueError("regions must be a list of objects")
        region_names = {f.name for f in dataclasses.fields(RegionAnswers)}
        values["regions"] = [
            RegionAnswers(**{k: v for k, v in r.items() if k in region_names})
            for r in regions
            if "region" in r and "clusters" in r
        ]
        answers = cls(**values)
        _check_types(answers)
        for region in answers.regions:
            _check_types(region)
        return answers

    def overlay(self, other: Answers) -> Answers:
        """These answers with every answered field of `other` taking precedence (flags over a cache)."""
        merged = {}
        for f in dataclasses.fields(self):
            value = getattr(other, f.name)
            merged[f.name] = value if _answered(value) else getattr(self, f.name)
        return Answers(**merged)


_TYPES: dict[str, tuple[type, ...]] = {
    "regions": (list,),
    "tags": (dict,),
    "notify_emails": (list,),
    "clusters": (list,),
    "region": (str,),
    "transition_days": (int, str, type(None)),
    **{name: (bool, type(None)) for name in ("versioning", "access_logging", "enable_audit_logging", "securityhub")},
    **{
        name: (int, type(None))
        for name in (
            "expiration_days",
            "key_rotation_period_days",
            "key_deletion_window_days",
            "buffering_interval_seconds",
            "buffering_size_mib",
            "learning_days",
        )
    },
}


def _check_types(item: Answers | RegionAnswers) -> None:
    for f in dataclasses.fields(item):
        value = getattr(item, f.name)
        expected = _TYPES.get(f.name, (str, type(None)))
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            raise ValueError(f"{f.name}: unexpected {type(value).__name__}")
        strings = isinstance(value, list) and all(isinstance(x, str) for x in value)
        if f.name in ("clusters", "notify_emails") and not strings:
            raise ValueError(f"{f.name}: must hold strings")
        string_map = isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(x, str) for k, x in value.items()
        )
        if f.name == "tags" and not string_map:
            raise ValueError("tags: must map strings to strings")


def _answered(value: Any) -> bool:
    return value is not None and value != [] and value != {}


def _default(model: type[BaseModel], name: str) -> Any:
    info = model.model_fields[name]
    return info.default_factory() if info.default_factory else info.default  # type: ignore[call-arg]


def limits(model: type[BaseModel], name: str) -> tuple[int | None, int | None]:
    """(ge, le) of an integer field of a config model, for prompts and flag help."""
    ge = le = None
    for meta in model.model_fields[name].metadata:
        ge = getattr(meta, "ge", ge)
        le = getattr(meta, "le", le)
    return ge, le


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value


def _set_if_changed(target: dict[str, Any], path: tuple[str, ...], model: type[BaseModel], value: Any) -> None:
    if value is not None and value != _default(model, path[-1]):
        _put(target, path, value)


def answers_to_config(answers: Answers, *, schema: str | None = None) -> dict[str, Any]:
    """The config file for these answers: only what differs from eksight's defaults (pure; no validation)."""
    config: dict[str, Any] = {}
    if schema:
        config["$schema"] = schema
    _set_if_changed(config, ("name_prefix",), cfg.ConfigFile, answers.name_prefix)
    if answers.account is not None:
        config["account"] = answers.account
    if answers.tags:
        config["tags"] = dict(answers.tags)

    defaults: dict[str, Any] = {}
    archive = cfg.ArchiveOptions
    _set_if_changed(defaults, ("archive", "versioning"), archive, answers.versioning)
    _set_if_changed(defaults, ("archive", "expiration_days"), archive, answers.expiration_days)
    if answers.transition_days == NEVER:
        _put(defaults, ("archive", "transition_days"), None)
    else:
        _set_if_changed(defaults, ("archive", "transition_days"), archive, answers.transition_days)
    if answers.transition_days != NEVER:
        _set_if_changed(defaults, ("archive", "transition_storage_class"), archive, answers.transition_storage_class)
    _set_if_changed(defaults, ("archive", "access_logging"), archive, answers.access_logging)
    encryption = cfg.EncryptionOptions
    _set_if_changed(defaults, ("encryption", "key_rotation_period_days"), encryption, answers.key_rotation_period_days)
    _set_if_changed(defaults, ("encryption", "key_deletion_window_days"), encryption, answers.key_deletion_window_days)
    delivery = cfg.DeliveryOptions
    _set_if_changed(defaults, ("delivery", "existing_role_arn"), delivery, answers.firehose_role_arn)
    _set_if_changed(defaults, ("delivery", "buffering_interval_seconds"), delivery, answers.buffering_interval_seconds)
    _set_if_changed(defaults, ("delivery", "buffering_size_mib"), delivery, answers.buffering_size_mib)
    subscription = cfg.SubscriptionOptions
    _set_if_changed(defaults, ("subscription", "existing_role_arn"), subscription, answers.cloudwatch_role_arn)
    _set_if_changed(defaults, ("subscription", "filter_pattern"), subscription, answers.filter_pattern)
    _set_if_changed(defaults, ("enable_audit_logging",), cfg.RegionOptions, answers.enable_audit_logging)

    hub = cfg.SecurityHubOptions
    _set_if_changed(defaults, ("findings", "securityhub", "enabled"), hub, answers.securityhub)
    if answers.securityhub is not False:  # a threshold of a disabled forwarder means nothing
        _set_if_changed(defaults, ("findings", "securityhub", "min_severity"), hub, answers.securityhub_min_severity)
    notifications = cfg.NotificationOptions
    if answers.notify_emails:
        _put(defaults, ("findings", "notifications", "email"), list(answers.notify_emails))
    if answers.notify_emails or any(r.sns_topic_arn for r in answers.regions):  # otherwise notifications are off
        _set_if_changed(
            defaults, ("findings", "notifications", "min_severity"), notifications, answers.notify_min_severity
        )
    _set_if_changed(defaults, ("findings", "central_bus_arn"), cfg.FindingsOptions, answers.central_bus_arn)
    if defaults:
        config["defaults"] = defaults

    if answers.learning_days is not None and answers.learning_days != _default(cfg.DetectionOptions, "learning_days"):
        config["detection"] = {"learning_days": answers.learning_days}

    regions: dict[str, Any] = {}
    for entry in answers.regions:
        region: dict[str, Any] = {"clusters": list(entry.clusters)}
        if entry.bucket_arn:
            _put(region, ("archive", "existing_bucket_arn"), entry.bucket_arn)
        if entry.kms_key_arn:
            _put(region, ("encryption", "existing_kms_key_arn"), entry.kms_key_arn)
        if entry.sns_topic_arn:
            _put(region, ("findings", "notifications", "sns_topic_arn"), entry.sns_topic_arn)
        regions[entry.region] = region
    config["regions"] = regions
    return config


def validate_answers(
    answers: Answers, *, source: str = "answers", schema: str | None = None
) -> tuple[dict[str, Any], cfg.DeploymentConfig]:
    """answers_to_config + eksight.config.parse; raises eksight.config.ConfigError."""
    content = answers_to_config(answers, schema=schema)
    return content, cfg.parse(content, source=source)


# config field (path below `defaults.`/`regions.<r>.`) → the `eksight generate` flag that sets it
_FLAGS = {
    "clusters": "--region-clusters",
    "regions": "--region-clusters",
    "name_prefix": "--name-prefix",
    "account": "--account",
    "tags": "--tag",
    "archive.existing_bucket_arn": "--bucket-arn",
    "archive.versioning": "--versioning/--no-versioning",
    "archive.expiration_days": "--expiration-days",
    "archive.transition_days": "--transition-days",
    "archive.transition_storage_class": "--transition-storage-class",
    "archive.access_logging": "--access-logging/--no-access-logging",
    "archive": "--bucket-arn / --expiration-days / --transition-days",
    "encryption.existing_kms_key_arn": "--kms-key-arn",
    "encryption.key_rotation_period_days": "--key-rotation-days",
    "encryption.key_deletion_window_days": "--key-deletion-window-days",
    "delivery.existing_role_arn": "--firehose-role-arn",
    "delivery.buffering_interval_seconds": "--buffering-interval",
    "delivery.buffering_size_mib": "--buffering-size",
    "subscription.existing_role_arn": "--cloudwatch-role-arn",
    "subscription.filter_pattern": "--filter-pattern",
    "enable_audit_logging": "--enable-audit-logging",
    "detection.learning_days": "--learning-days",
    "findings.securityhub.enabled": "--securityhub/--no-securityhub",
    "findings.securityhub.min_severity": "--securityhub-min-severity",
    "findings.notifications.email": "--notify-email",
    "findings.notifications.sns_topic_arn": "--sns-topic-arn",
    "findings.notifications.min_severity": "--notify-min-severity",
    "findings.notifications": "--notify-email / --sns-topic-arn",
    "findings.central_bus_arn": "--central-bus-arn",
}


def flag_for(field_path: str) -> str | None:
    """The generate flag behind a ConfigError field path such as 'regions.eu-west-1.encryption.existing_kms_key_arn'."""
    parts = field_path.split(".")
    if parts[0] == "regions" and len(parts) > 2:
        parts = parts[2:]
    elif parts[0] == "regions" and len(parts) == 2:
        return "--region-clusters"
    elif parts[0] == "defaults":
        parts = parts[1:]
    while parts:
        candidate = ".".join(parts)
        if candidate in _FLAGS:
            return _FLAGS[candidate]
        parts = parts[:-1]  # a list index (email.0) or a model-level problem (archive)
    return None


# `defaults.` path → Answers attribute, for the options generate asks about (answers_from_config)
_DEFAULTS_FIELDS = {
    ("archive", "versioning"): "versioning",
    ("archive", "expiration_days"): "expiration_days",
    ("archive", "transition_days"): "transition_days",
    ("archive", "transition_storage_class"): "transition_storage_class",
    ("archive", "access_logging"): "access_logging",
    ("encryption", "key_rotation_period_days"): "key_rotation_period_days",
    ("encryption", "key_deletion_window_days"): "key_deletion_window_days",
    ("delivery", "existing_role_arn"): "firehose_role_arn",
    ("delivery", "buffering_interval_seconds"): "buffering_interval_seconds",
    ("delivery", "buffering_size_mib"): "buffering_size_mib",
    ("subscription", "existing_role_arn"): "cloudwatch_role_arn",
    ("subscription", "filter_pattern"): "filter_pattern",
    ("enable_audit_logging",): "enable_audit_logging",
    ("findings", "securityhub", "enabled"): "securityhub",
    ("findings", "securityhub", "min_severity"): "securityhub_min_severity",
    ("findings", "notifications", "email"): "notify_emails",
    ("findings", "notifications", "min_severity"): "notify_min_severity",
    ("findings", "central_bus_arn"): "central_bus_arn",
}
_REGION_FIELDS = {
    ("clusters",): "clusters",
    ("archive", "existing_bucket_arn"): "bucket_arn",
    ("encryption", "existing_kms_key_arn"): "kms_key_arn",
    ("findings", "notifications", "sns_topic_arn"): "sns_topic_arn",
}


def _leaves(data: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(data, dict) and data:
        return [leaf for key, value in data.items() for leaf in _leaves(value, (*path, str(key)))]
    return [(path, data)]


def answers_from_config(content: dict[str, Any]) -> tuple[Answers, list[str]]:
    """A config file's content as answers (to edit it with generate's questions), and the fields generate does not
    ask about (dotted paths), which answers_to_config would drop. Inverse of answers_to_config on what it writes."""
    answers, unknown = Answers(tags=dict(content.get("tags") or {})), []
    for (key, *rest), value in _leaves({k: v for k, v in content.items() if k not in ("$schema", "tags")}):
        path = tuple(rest)
        if key in ("name_prefix", "account") and not rest:
            setattr(answers, key, value)
        elif key == "detection" and path == ("learning_days",):
            answers.learning_days = value
        elif key == "defaults" and path in _DEFAULTS_FIELDS:
            name = _DEFAULTS_FIELDS[path]
            setattr(answers, name, NEVER if name == "transition_days" and value is None else value)
        elif key == "regions" and rest:
            region = answers.region(rest[0]) or RegionAnswers(rest[0], [])
            if region not in answers.regions:
                answers.regions.append(region)
            if tuple(rest[1:]) in _REGION_FIELDS:
                setattr(region, _REGION_FIELDS[tuple(rest[1:])], value)
            else:
                unknown.append(".".join((key, *rest)))
        else:
            unknown.append(".".join((key, *rest)))
    return answers, unknown
