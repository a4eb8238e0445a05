"""`eksight generate`: ask (or take from flags) where the clusters are and how to deploy, write a valid
config holding only non-default values, then show the plan and what to run next.

Flow: cached answers? → more than one region? → region → clusters (picked from eks:ListClusters when
credentials work, typed otherwise) → another region? → advanced options menu → validate (eksight.config)
→ overwrite? → write → plan now? (cdk synth offline; cdk diff when credentials work; deploy / details /
quit) → next steps. Every prompt has a flag; a flag pre-answers its prompt. With --noninteractive nothing
is asked: a missing required flag is an error naming it, and only values that were given are written.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, get_args

import click

from eksight import config as cfg
from eksight.config import regions as aws_regions
from eksight.tools.setup import validators as v
from eksight.tools.setup.answers import NEVER, Answers, RegionAnswers, answers_to_config, flag_for, limits

DEFAULT_OUTPUT = "eksight.config.json"
SEVERITIES = list(get_args(cfg.SeverityName))
STORAGE_CLASSES = list(get_args(cfg.StorageClass))
EXIT_REFUSED = 1
EXIT_INVALID = 2
EXIT_ABORTED = 130


@dataclass
class Options:
    """The flags of `eksight generate` (None: not given)."""

    region_clusters: tuple[str, ...] = ()
    output: str | None = None
    bucket_arn: tuple[str, ...] = ()
    kms_key_arn: tuple[str, ...] = ()
    firehose_role_arn: str | None = None
    cloudwatch_role_arn: str | None = None
    filter_pattern: str | None = None
    versioning: bool | None = None
    expiration_days: int | None = None
    transition_days: str | None = None
    transition_storage_class: str | None = None
    access_logging: bool | None = None
    key_rotation_days: int | None = None
    key_deletion_window_days: int | None = None
    buffering_interval: int | None = None
    buffering_size: int | None = None
    enable_audit_logging: bool | None = None
    learning_days: int | None = None
    securityhub: bool | None = None
    securityhub_min_severity: str | None = None
    notify_email: tuple[str, ...] = ()
    sns_topic_arn: tuple[str, ...] = ()
    notify_min_severity: str | None = None
    central_bus_arn: str | None = None
    tag: tuple[str, ...] = ()
    name_prefix: str | None = None
    account: str | None = None
    overwrite: bool = False
    yes: bool = False
    plan: bool | None = None
    nocache: bool = False
    noninteractive: bool = False
    json: bool = False


class Failure(Exception):
    """Stops generate with an exit code; `problems` are (where, message, flag) triples."""

    def __init__(
        self, message: str, code: int = EXIT_INVALID, problems: list[tuple[str, str, str | None]] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.problems = problems or []


@dataclass
class Regional:
    """A regional ARN from a flag, placed once the regions are known."""

    flag: str
    region: str | None
    arn: str


# ---- flags → answers --------------------------------------------------------------------------------------


def answers_from_flags(opts: Options) -> tuple[Answers, list[Regional]]:
    """Every flag's value checked on its own; raises Failure listing every bad flag."""
    problems: list[tuple[str, str, str | None]] = []

    def bad(flag: str, message: str) -> None:
        problems.append((flag, message, flag))

    answers = Answers()
    seen: set[str] = set()
    for item in opts.region_clusters:
        try:
            region, clusters = v.parse_region_clusters(item)
        except ValueError as error:
            bad("--region-clusters", str(error))
            continue
        if region in seen:
            bad("--region-clusters", f"{region} given twice: list all its clusters in one --region-clusters")
            continue
        if answers.regions and (p := v.region_problem(region, aws_regions.partition_of(answers.regions[0].region))):
            bad("--region-clusters", p)
            continue
        seen.add(region)
        answers.regions.append(RegionAnswers(region, clusters))

    strings = {
        "--output": opts.output,
        "--firehose-role-arn": opts.firehose_role_arn,
        "--cloudwatch-role-arn": opts.cloudwatch_role_arn,
        "--filter-pattern": opts.filter_pattern,
        "--central-bus-arn": opts.central_bus_arn,
        "--name-prefix": opts.name_prefix,
        "--account": opts.account,
        "--transition-days": opts.transition_days,
    }
    for flag, value in strings.items():
        if value is not None and not value.strip():
            bad(flag, "empty value: give a value or leave the flag out")
    checks = [
        ("--firehose-role-arn", opts.firehose_role_arn, v.role_arn_problem),
        ("--cloudwatch-role-arn", opts.cloudwatch_role_arn, v.role_arn_problem),
        ("--filter-pattern", opts.filter_pattern, v.filter_pattern_problem),
        ("--central-bus-arn", opts.central_bus_arn, v.bus_arn_problem),
        ("--name-prefix", opts.name_prefix, v.name_prefix_problem),
        ("--account", opts.account, v.account_problem),
    ]
    for flag, value, check in checks:
        if value and value.strip() and (p := check(value.strip())):
            bad(flag, p)
    answers.output = opts.output.strip() if opts.output and opts.output.strip() else None
    answers.firehose_role_arn = opts.firehose_role_arn
    answers.cloudwatch_role_arn = opts.cloudwatch_role_arn
    answers.filter_pattern = opts.filter_pattern
    answers.central_bus_arn = opts.central_bus_arn
    answers.name_prefix = opts.name_prefix
    answers.account = opts.account
    answers.versioning = opts.versioning
    answers.expiration_days = opts.expiration_days
    if opts.transition_days is not None and opts.transition_days.strip():
        text = opts.transition_days.strip().lower()
        if text == NEVER:
            answers.transition_days = NEVER
        elif p := v.int_problem(text, *limits(cfg.ArchiveOptions, "transition_days")):
            bad("--transition-days", f"{p} (or 'never')")
        else:
            answers.transition_days = int(text)
    answers.transition_storage_class = opts.transition_storage_class
    answers.access_logging = opts.access_logging
    answers.key_rotation_period_days = opts.key_rotation_days
    answers.key_deletion_window_days = opts.key_deletion_window_days
    answers.buffering_interval_seconds = opts.buffering_interval
    answers.buffering_size_mib = opts.buffering_size
    answers.enable_audit_logging = opts.enable_audit_logging
    answers.learning_days = opts.learning_days
    answers.securityhub = opts.securityhub
    answers.securityhub_min_severity = opts.securityhub_min_severity
    answers.notify_min_severity = opts.notify_min_severity

    emails = [e.strip() for e in opts.notify_email]
    for email in emails:
        if not email:
            bad("--notify-email", "empty value: give an address")
        elif p := v.email_problem(email):
            bad("--notify-email", p)
    if len(set(emails)) != len(emails):
        bad("--notify-email", "the same address is given twice")
    answers.notify_emails = [e for e in emails if e]

    for item in opts.tag:
        try:
            key, value = v.parse_tag(item)
        except ValueError as error:
            bad("--tag", str(error))
            continue
        if key in answers.tags:
            bad("--tag", f"tag {key!r} given twice")
        answers.tags[key] = value

    regional: list[Regional] = []
    for flag, values, check in (
        ("--bucket-arn", opts.bucket_arn, v.bucket_arn_problem),
        ("--kms-key-arn", opts.kms_key_arn, v.kms_key_arn_problem),
        ("--sns-topic-arn", opts.sns_topic_arn, v.sns_topic_arn_problem),
    ):
        for item in values:
            item = item.strip()
            arn_region: str | None = None  # None: the region in the ARN
            arn = item
            if "=" in item and not item.startswith("arn:"):
                arn_region, _, arn = (part.strip() for part in item.partition("="))
            if not arn:
                bad(flag, "empty value: give an ARN (or REGION=ARN)")
            elif (p := check(arn)) or (arn_region and (p := v.region_problem(arn_region))):
                bad(flag, p)
            else:
                regional.append(Regional(flag, arn_region, arn))
    if opts.notify_email and opts.sns_topic_arn:
        bad(
            "--notify-email",
            "--notify-email subscribes addresses to a topic eksight creates, --sns-topic-arn "
            "brings your own: use one of them",
        )
    if problems:
        raise Failure("invalid flags", EXIT_INVALID, problems)
    return answers, regional


def place_regional(answers: Answers, regional: list[Regional]) -> None:
    """Put each --bucket-arn/--kms-key-arn/--sns-topic-arn on its region (named, or the ARN's own)."""
    problems: list[tuple[str, str, str | None]] = []
    names = [r.region for r in answers.regions]
    attribute = {"--bucket-arn": "bucket_arn", "--kms-key-arn": "kms_key_arn", "--sns-topic-arn": "sns_topic_arn"}
    for item in regional:
        region = item.region or v.arn_region(item.arn)
        if region is None:  # a bucket ARN names no region
            if len(names) != 1:
                problems.append(
                    (
                        item.flag,
                        f"{len(names)} regions are configured: say which one, {item.flag} REGION={item.arn}",
                        item.flag,
                    )
                )
                continue
            region = names[0]
        target = answers.region(region)
        if target is None:
            problems.append(
                (item.flag, f"{region} is not one of the configured regions ({', '.join(names)})", item.flag)
            )
            continue
        if getattr(target, attribute[item.flag]) not in (None, item.arn):
            problems.append((item.flag, f"{region} is given two values", item.flag))
            continue
        setattr(target, attribute[item.flag], item.arn)
    if problems:
        raise Failure("invalid flags", EXIT_INVALID, problems)


# ---- the interactive questions ----------------------------------------------------------------------------


class Console:
    """Human output: stdout, or stderr when stdout carries --json."""

    def __init__(self, json_mode: bool) -> None:
        self.json_mode = json_mode

    def say(self, text: str = "", **style: Any) -> None:
        click.secho(text, err=self.json_mode, **style)

    def working(self, text: str) -> contextlib.AbstractContextManager[None]:
        """A spinner with the seconds elapsed while a long step runs (eksight.tools.setup.progress)."""
        from eksight.tools.setup.progress import working

        return working(text, err=self.json_mode)

    def problems(self, problems: list[tuple[str, str, str | None]]) -> None:
        for where, message, flag in problems:
            hint = f"  [{flag}]" if flag and flag != where else ""
            click.secho(f"  - {where}: {message}{hint}", err=True)


def _summary(answers: Answers) -> str:
    regions = "; ".join(f"{r.region}: {', '.join(r.clusters)}" for r in answers.regions)
    extra = sum(
        1
        for key, value in answers.to_dict().items()
        if key not in ("regions", "output") and value not in (None, [], {})
    )
    extra += sum(1 for r in answers.regions for x in (r.bucket_arn, r.kms_key_arn, r.sns_topic_arn) if x)
    return regions + (f" (+ {extra} advanced option{'s' if extra != 1 else ''})" if extra else "")


def _default_region(taken: set[str], partition: str | None) -> str:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        region = os.environ.get(name, "")
        if region and region not in taken and v.region_problem(region, partition) is None:
            return region
    return ""


OTHER = "\0other"


def ask_clusters(ask: Any, out: Console, region: str) -> list[str]:
    from eksight.tools.setup import aws

    names, reason = aws.list_clusters(region)
    chosen: list[str] = []
    if names:
        choices = [(name, name) for name in names] + [("(other names: type them)", OTHER)]
        selected = ask.checkbox(
            f"Clusters in {region} (space selects, enter confirms):",
            choices,
            checked=names if len(names) == 1 else (),
            problem=lambda s: None if s else "select at least one cluster",
        )
        chosen = [s for s in selected if s != OTHER]
        if OTHER not in selected:
            return chosen
    elif names == []:
        out.say(f"No EKS clusters found in {region} with these credentials; type their names.")
    else:
        out.say(f"Could not list the EKS clusters in {region} ({reason}); type their names.")

    def problem(text: str) -> str | None:
        typed = v.split_list(text)
        return v.clusters_problem(chosen + typed)

    typed = ask.text(f"Cluster names in {region} (comma-separated):", problem=problem)
    return chosen + v.split_list(typed)


def ask_regions(ask: Any, out: Console) -> list[RegionAnswers]:
    multi = ask.confirm("Do you have clusters in more than one region?", default=False)
    regions: list[RegionAnswers] = []
    while True:
        partition = aws_regions.partition_of(regions[0].region) if regions else None
        taken = {r.region for r in regions}

        def problem(value: str, partition: str | None = partition, taken: set[str] = taken) -> str | None:
            if value.strip() in taken:
                return f"{value.strip()} is already configured"
            return v.region_problem(value, partition)

        region = ask.text(
            "AWS region of the clusters:" if not regions else "Next region:",
            default=_default_region(taken, partition),
            problem=problem,
        )
        regions.append(RegionAnswers(region, ask_clusters(ask, out, region)))
        if not multi or not ask.confirm("Configure another region?", default=False):
            return regions


def _int_prompt(ask: Any, message: str, model: Any, name: str, current: int | None) -> int:
    low, high = limits(model, name)
    default = current if current is not None else model.model_fields[name].default
    span = f"{low}-{high}" if high is not None else f"at least {low}"
    return int(ask.text(f"{message} ({span}):", default=str(default), problem=lambda t: v.int_problem(t, low, high)))


def _optional_arn(ask: Any, message: str, current: str | None, problem: Any) -> str | None:
    text = ask.text(
        message, default=current or "", problem=lambda t: problem(t) if t.strip() else None, instruction="(empty: none)"
    )
    return text or None


def _archive(ask: Any, answers: Answers, out: Console) -> None:
    kind = ask.select(
        "Archive bucket:",
        [("Bring an existing bucket", "existing"), ("Let eksight create it (choose its settings)", "new")],
    )
    if kind == "existing":
        for region in answers.regions:
            region.bucket_arn = _optional_arn(
                ask, f"Existing bucket ARN for {region.region}:", region.bucket_arn, v.bucket_arn_problem
            )
        return
    if len(answers.regions) == 1:
        answers.regions[0].bucket_arn = None
    elif any(r.bucket_arn for r in answers.regions):
        out.say("Regions that bring a bucket keep it; these settings apply to the buckets eksight creates.")
    answers.versioning = ask.confirm("Keep object versions?", default=answers.versioning is not False)
    answers.expiration_days = _int_prompt(
        ask, "Delete archived logs after how many days", cfg.ArchiveOptions, "expiration_days", answers.expiration_days
    )
    storage = ask.select(
        "Move logs to a colder storage class:",
        [(name, name) for name in STORAGE_CLASSES] + [("Never", NEVER)],
        default=NEVER if answers.transition_days == NEVER else (answers.transition_storage_class or "GLACIER_IR"),
    )
    if storage == NEVER:
        answers.transition_days = NEVER
    else:
        answers.transition_storage_class = storage
        low = limits(cfg.ArchiveOptions, "transition_days")[0] or 1
        high = answers.expiration_days - 1
        if high < low:
            out.say("Logs expire too soon for a transition; they stay in S3 Standard.")
            answers.transition_days = NEVER
            answers.access_logging = ask.confirm(
                "Log every request to a separate access-log bucket?", default=answers.access_logging is not False
            )
            return
        current = answers.transition_days if isinstance(answers.transition_days, int) else min(90, high)
        answers.transition_days = int(
            ask.text(
                f"After how many days ({low}-{high}):",
                default=str(current),
                problem=lambda t: v.int_problem(t, low, high),
            )
        )
    answers.access_logging = ask.confirm(
        "Log every request to a separate access-log bucket?", default=answers.access_logging is not False
    )


def _kms(ask: Any, answers: Answers, out: Console) -> None:
    kind = ask.select(
        "KMS key of the archive and the streams:",
        [("Use an existing key", "existing"), ("Let eksight create it (choose its settings)", "new")],
    )
    if kind == "existing":
        for region in answers.regions:
            region.kms_key_arn = _optional_arn(
                ask,
                f"KMS key ARN in {region.region}:",
                region.kms_key_arn,
                lambda t, r=region.region: v.kms_key_arn_problem(t, r),
            )
        return
    if len(answers.regions) == 1:
        answers.regions[0].kms_key_arn = None
    answers.key_rotation_period_days = _int_prompt(
        ask,
        "Rotate the key every how many days",
        cfg.EncryptionOptions,
        "key_rotation_period_days",
        answers.key_rotation_period_days,
    )
    answers.key_deletion_window_days = _int_prompt(
        ask,
        "Deletion waiting period in days",
        cfg.EncryptionOptions,
        "key_deletion_window_days",
        answers.key_deletion_window_days,
    )


def _roles(ask: Any, answers: Answers, out: Console) -> None:
    out.say(
        "Leave a role empty and eksight creates a least-privilege one (docs/byo.md lists what a brought role needs)."
    )
    answers.firehose_role_arn = _optional_arn(
        ask, "Firehose delivery role ARN:", answers.firehose_role_arn, v.role_arn_problem
    )
    answers.cloudwatch_role_arn = _optional_arn(
        ask, "CloudWatch Logs → Firehose role ARN:", answers.cloudwatch_role_arn, v.role_arn_problem
    )


def _filter(ask: Any, answers: Answers, out: Console) -> None:
    from eksight.config.filter_pattern import DEFAULT_FILTER_PATTERN

    out.say(f"Default pattern:\n  {DEFAULT_FILTER_PATTERN}")
    text = ask.text(
        "Subscription filter pattern:",
        default=answers.filter_pattern or "",
        problem=lambda t: v.filter_pattern_problem(t) if t.strip() else None,
        instruction="(empty: the default)",
    )
    answers.filter_pattern = text or None


def _buffering(ask: Any, answers: Answers, out: Console) -> None:
    answers.buffering_interval_seconds = _int_prompt(
        ask,
        "Deliver at least every N seconds",
        cfg.DeliveryOptions,
        "buffering_interval_seconds",
        answers.buffering_interval_seconds,
    )
    answers.buffering_size_mib = _int_prompt(
        ask, "Or when this many MiB are buffered", cfg.DeliveryOptions, "buffering_size_mib", answers.buffering_size_mib
    )


def _audit(ask: Any, answers: Answers, out: Console) -> None:
    answers.enable_audit_logging = ask.confirm(
        "Turn on the EKS 'audit' log type of these clusters during deploy (other log types stay as they are)?",
        default=bool(answers.enable_audit_logging),
    )


def _learning(ask: Any, answers: Answers, out: Console) -> None:
    answers.learning_days = _int_prompt(
        ask,
        "Days the behavioural baselines learn before anomalies are raised",
        cfg.DetectionOptions,
        "learning_days",
        answers.learning_days,
    )


def _securityhub(ask: Any, answers: Answers, out: Console) -> None:
    answers.securityhub = ask.confirm(
        "Import findings into AWS Security Hub?", default=answers.securityhub is not False
    )
    if answers.securityhub:
        answers.securityhub_min_severity = ask.select(
            "Import findings of at least:",
            [(s, s) for s in SEVERITIES],
            default=answers.securityhub_min_severity or "HIGH",
        )


def _notifications(ask: Any, answers: Answers, out: Console) -> None:
    kind = ask.select(
        "Send readable alerts through SNS:",
        [
            ("To email addresses (eksight creates the topic)", "email"),
            ("To my existing SNS topic", "topic"),
            ("No alerts", "off"),
        ],
    )
    if kind == "off":
        answers.notify_emails = []
        for region in answers.regions:
            region.sns_topic_arn = None
        return
    if kind == "email":
        for region in answers.regions:
            region.sns_topic_arn = None
        text = ask.text(
            "Email addresses (comma-separated):",
            default=", ".join(answers.notify_emails),
            problem=lambda t: v.emails_problem(v.split_list(t)),
        )
        answers.notify_emails = v.split_list(text)
    else:
        answers.notify_emails = []
        for region in answers.regions:
            region.sns_topic_arn = _optional_arn(
                ask,
                f"SNS topic ARN in {region.region}:",
                region.sns_topic_arn,
                lambda t, r=region.region: v.sns_topic_arn_problem(t, r),
            )
    answers.notify_min_severity = ask.select(
        "Alert on findings of at least:", [(s, s) for s in SEVERITIES], default=answers.notify_min_severity or "HIGH"
    )


def _central_bus(ask: Any, answers: Answers, out: Console) -> None:
    answers.central_bus_arn = _optional_arn(
        ask,
        "Central EventBridge bus ARN (every finding is also sent there):",
        answers.central_bus_arn,
        v.bus_arn_problem,
    )


def _tags(ask: Any, answers: Answers, out: Console) -> None:
    if answers.tags and ask.confirm(f"Current tags: {_tags_text(answers.tags)}. Remove them all?", default=False):
        answers.tags = {}

    def problem(text: str) -> str | None:
        if not text.strip():
            return None
        try:
            v.parse_tag(text)
        except ValueError as error:
            return str(error)
        return None

    while text := ask.text("Tag as key=value:", problem=problem, instruction="(empty: done)"):
        key, value = v.parse_tag(text)
        answers.tags[key] = value


def _tags_text(tags: dict[str, str]) -> str:
    return ", ".join(f"{k}={val}" for k, val in tags.items())


def _prefix(ask: Any, answers: Answers, out: Console) -> None:
    text = ask.text(
        "Name prefix of stacks, filters and log groups:",
        default=answers.name_prefix or "eksight",
        problem=v.name_prefix_problem,
    )
    answers.name_prefix = text


def _account(ask: Any, answers: Answers, out: Console) -> None:
    text = ask.text(
        "Target AWS account id:",
        default=answers.account or "",
        problem=lambda t: v.account_problem(t) if t.strip() else None,
        instruction="(empty: the account of your credentials)",
    )
    answers.account = text or None


def _output(ask: Any, answers: Answers, out: Console) -> None:
    def problem(text: str) -> str | None:
        if not text.strip():
            return "enter a file path"
        path = Path(text.strip()).expanduser()
        if path.is_dir():
            return f"{text} is a directory: name the file, e.g. {path / DEFAULT_OUTPUT}"
        if not path.resolve().parent.is_dir():
            return f"directory {path.resolve().parent} does not exist"
        return None

    answers.output = ask.text("Write the config to:", default=answers.output or DEFAULT_OUTPUT, problem=problem)


def _menu_items(answers: Answers) -> list[tuple[str, Any]]:
    def shown(value: Any, model: Any, name: str) -> str:
        return str(value if value is not None else model.model_fields[name].default)

    buckets = [r.bucket_arn for r in answers.regions if r.bucket_arn]
    keys = [r.kms_key_arn for r in answers.regions if r.kms_key_arn]
    topics = [r.sns_topic_arn for r in answers.regions if r.sns_topic_arn]
    alerts = ", ".join(answers.notify_emails) if answers.notify_emails else ", ".join(topics) if topics else "off"
    hub = "off" if answers.securityhub is False else f"on, {answers.securityhub_min_severity or 'HIGH'}"
    roles = [
        name
        for name, arn in (("Firehose", answers.firehose_role_arn), ("CloudWatch Logs", answers.cloudwatch_role_arn))
        if arn
    ]
    interval = shown(answers.buffering_interval_seconds, cfg.DeliveryOptions, "buffering_interval_seconds")
    size = shown(answers.buffering_size_mib, cfg.DeliveryOptions, "buffering_size_mib")
    return [
        (f"Archive bucket [{', '.join(buckets) if buckets else 'new bucket'}]", _archive),
        (f"Encryption key [{', '.join(keys) if keys else 'new key'}]", _kms),
        (f"Existing IAM roles [{', '.join(roles) if roles else 'none: new roles'}]", _roles),
        (f"Subscription filter pattern [{'custom' if answers.filter_pattern else 'default'}]", _filter),
        (f"Firehose buffering [{interval} s / {size} MiB]", _buffering),
        (f"Enable audit logging during deploy [{'yes' if answers.enable_audit_logging else 'no'}]", _audit),
        (f"Learning period [{shown(answers.learning_days, cfg.DetectionOptions, 'learning_days')} days]", _learning),
        (f"Security Hub [{hub}]", _securityhub),
        (f"Notifications [{alerts}]", _notifications),
        (f"Central event bus [{answers.central_bus_arn or 'none'}]", _central_bus),
        (f"Tags [{_tags_text(answers.tags) or 'none'}]", _tags),
        (f"Name prefix [{answers.name_prefix or 'eksight'}]", _prefix),
        (f"Target account [{answers.account or 'from credentials'}]", _account),
        (f"Output file [{answers.output or DEFAULT_OUTPUT}]", _output),
        ("Done", None),
    ]


def advanced_menu(ask: Any, answers: Answers, out: Console) -> None:
    """Loops until Done; after each option the pointer rests on Done (shortcut keys pick any other)."""
    while True:
        items = _menu_items(answers)
        index = ask.select(
            "Advanced options (choose one; Done when finished):",
            [(title, i) for i, (title, _) in enumerate(items)],
            default=len(items) - 1,
            shortcuts=True,
        )
        handler = items[index][1]
        if handler is None:
            return
        handler(ask, answers, out)


# ---- writing -------------------------------------------------------------------------------------------------


def schema_reference(output: Path) -> str:
    """`$schema` for a config at `output`: the checkout's schema as a path relative to the config (so the file
    names no absolute path of this machine), else the published $id."""
    from eksight.tools.setup.planning import project_root

    root = project_root()
    schema = root / "schema" / "eksight.config.schema.json" if root else None
    if schema is None or not schema.is_file():
        return str(cfg.json_schema()["$id"])
    folder = output.expanduser().resolve().parent
    try:
        relative = os.path.relpath(schema, folder)
    except ValueError:  # Windows: another drive has no relative path
        return schema.as_uri()
    return relative if relative.startswith(".") else f"./{relative}"


def offer_existing(ask: Any, out: Console, path: Path) -> Answers | None:
    """`path` exists: its answers as the defaults, or None to start over (it is replaced at the end)."""
    from eksight.tools.setup.answers import answers_from_config

    try:
        content = json.loads(path.read_text(encoding="utf-8"))
        existing, dropped = answers_from_config(content) if isinstance(content, dict) else (None, [])
    except (OSError, ValueError) as error:
        out.say(f"{path} exists but is not a readable JSON config ({error}).", fg="yellow")
        existing, dropped = None, []
    choices = [("Start over (replace it when done)", "replace"), ("Quit (leave it as it is)", "quit")]
    if existing is not None:
        choices.insert(0, ("Load it: its values become the defaults of every question", "load"))
        if dropped:
            out.say(f"Note: generate does not ask about {', '.join(dropped)}: loading it drops them.", fg="yellow")
    choice = ask.select(f"{path} exists.", choices, default=choices[0][1])
    if choice == "quit":
        raise Failure(f"{path} left as it was; nothing written", EXIT_REFUSED)
    return existing if choice == "load" else None


def write_config(path: Path, content: dict[str, Any]) -> None:
    text = json.dumps(content, indent=2) + "\n"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def config_problems(error: cfg.ConfigError) -> list[tuple[str, str, str | None]]:
    return [(where, message, flag_for(where)) for where, message in error.problems]


# ---- the command --------------------------------------------------------------------------------------------


@dataclass
class Result:
    path: str = ""
    written: bool = False
    regions: dict[str, list[str]] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    plan: list[dict[str, Any]] | None = None
    diff: dict[str, dict[str, int]] | None = None
    deployed: bool = False
    next_commands: list[str] = field(default_factory=list)
    cloudshell: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "path": self.path,
            "written": self.written,
            "regions": self.regions,
            "clusters": sorted({c for names in self.regions.values() for c in names}),
            "config": self.config,
            "plan": self.plan,
            "diff": self.diff,
            "deployed": self.deployed,
            "next_commands": self.next_commands,
            "cloudshell": self.cloudshell,
            "seconds": self.seconds,
        }


def run(opts: Options) -> int:
    out = Console(opts.json)
    try:
        result = _generate(opts, out)
    except Failure as failure:
        if opts.json:
            click.echo(
                json.dumps(
                    {
                        "ok": False,
                        "error": str(failure),
                        "problems": [
                            {"field": where, "message": message, "flag": flag}
                            for where, message, flag in failure.problems
                        ],
                    }
                )
            )
        else:
            click.secho(f"eksight generate: {failure}", fg="red", err=True)
            out.problems(failure.problems)
        return failure.code
    except (KeyboardInterrupt, EOFError):
        click.echo("\nAborted.", err=True)
        if opts.json:  # --json always answers with JSON
            click.echo(json.dumps({"ok": False, "error": "aborted", "problems": []}))
        return EXIT_ABORTED
    if opts.json:
        click.echo(json.dumps(result.to_json(), indent=2))
    return 0


def _missing(flag: str) -> NoReturn:
    raise Failure(
        f"missing {flag} (--noninteractive asks nothing)",
        EXIT_INVALID,
        [(flag.split()[0], "required with --noninteractive", None)],
    )


def _generate(opts: Options, out: Console) -> Result:
    from eksight.tools.setup import aws, cache, planning

    started = time.monotonic()
    interactive = not (opts.noninteractive or opts.yes)
    overwrite = opts.overwrite or opts.yes
    if interactive and not sys.stdin.isatty():
        raise Failure(
            "standard input is not a terminal: pass --noninteractive (or --yes) and the flags "
            "(eksight generate --help lists them)"
        )
    flags, regional = answers_from_flags(opts)
    answers = flags
    from_cache = False
    ask = None
    loaded = False  # the existing config's answers are the defaults
    target = Path(flags.output or DEFAULT_OUTPUT).expanduser()
    if target.is_dir():
        raise Failure(f"--output {target} is a directory: name the file, e.g. {target / DEFAULT_OUTPUT}")
    replace_confirmed = overwrite or not target.exists()
    if not interactive and not replace_confirmed:
        raise Failure(f"{target} exists: pass --overwrite to replace it (or --output another path)", EXIT_REFUSED)
    if interactive:
        from eksight.tools.setup.prompts import Prompts

        ask = Prompts(to_stderr=opts.json)
        if not replace_confirmed:
            existing = offer_existing(ask, out, target)
            replace_confirmed = True
            if existing is not None:
                loaded = True
                answers = existing.overlay(flags)
                if flags.regions:
                    answers.regions = flags.regions
                elif not ask.confirm(
                    f"Keep its regions and clusters ({_summary(Answers(regions=existing.regions))})?", default=True
                ):
                    answers.regions = []
        cached = None if opts.nocache or loaded else cache.load()
        if cached and ask.confirm(
            f"Use the answers of your last run ({cached.age_text()}): {_summary(cached.answers)}?", default=True
        ):
            answers = cached.answers.overlay(flags)
            from_cache = True
            if flags.regions:  # the flags' regions replace the cached ones, with what belonged to them
                answers.regions = flags.regions
    if not answers.regions:
        if ask is None:
            _missing("--region-clusters REGION=cluster1,cluster2")
        answers.regions = ask_regions(ask, out)
    place_regional(answers, regional)
    if ask is not None and not from_cache and ask.confirm("Configure advanced options?", default=False):
        advanced_menu(ask, answers, out)

    while True:
        output = Path(answers.output or DEFAULT_OUTPUT).expanduser()
        try:
            content = answers_to_config(answers, schema=schema_reference(output))
            deployment = cfg.parse(content, source=str(output))
            if output.is_dir():
                raise Failure(f"--output {output} is a directory: name the file, e.g. {output / DEFAULT_OUTPUT}")
            break
        except cfg.ConfigError as error:
            problems = config_problems(error)
            if ask is None:
                raise Failure(
                    f"the config would not be valid; nothing written to {output}", EXIT_INVALID, problems
                ) from None
            out.say(f"The config would not be valid ({len(problems)} problem(s)); nothing written:", fg="red")
            out.problems(problems)
            if not ask.confirm("Change the answers in the advanced options?", default=True):
                raise Failure("nothing written", EXIT_INVALID) from None
            advanced_menu(ask, answers, out)
    if ask is not None:
        cache.save(answers)

    result = Result(
        path=str(output.resolve()),
        config=content,
        cloudshell=aws.in_cloudshell(),
        regions={r.region: list(r.clusters) for r in deployment.regions},
    )
    if output.exists() and not overwrite and not (replace_confirmed and output.resolve() == target.resolve()):
        if ask is None:
            raise Failure(f"{output} exists: pass --overwrite to replace it (or --output another path)", EXIT_REFUSED)
        if not ask.confirm(f"{output} exists. Overwrite it?", default=False):
            raise Failure(f"{output} left as it was; nothing written", EXIT_REFUSED)
    write_config(output, content)
    result.written = True
    result.seconds["to_config"] = round(time.monotonic() - started, 2)
    out.say(
        f"Wrote {output} ({len(deployment.regions)} region(s), "
        f"{sum(len(r.clusters) for r in deployment.regions)} cluster(s)); it is valid.",
        fg="green",
    )

    run_plan = opts.plan
    if run_plan is None:
        run_plan = (
            ask.confirm(
                f"Synthesize and show the plan now (offline, about {25 * len(result.regions)} s)?", default=True
            )
            if ask is not None
            else False
        )
    identity = None
    if run_plan:
        identity = _plan(ask, out, output, result)
    root = planning.project_root()
    account = answers.account or (identity or {}).get("Account")
    steps = planning.next_steps(output, list(result.regions), account=account, cloudshell=result.cloudshell, root=root)
    if result.deployed:
        steps = [s for s in steps if s.command.startswith("eksight check")]
    result.next_commands = [s.command for s in steps]
    out.say()
    out.say(planning.render_steps(steps, cloudshell=result.cloudshell))
    result.seconds["total"] = round(time.monotonic() - started, 2)
    return result


def _plan(ask: Any, out: Console, output: Path, result: Result) -> dict[str, str] | None:
    from eksight.tools.setup import aws, planning

    with tempfile.TemporaryDirectory(prefix="eksight-plan-") as tmp:
        try:
            with out.working(f"Synthesizing the stacks (offline, about {25 * len(result.regions)} s)…"):
                synthesis = planning.synthesize(output, Path(tmp) / "assembly")
        except planning.PlanError as error:
            raise Failure(f"config written to {output}, but synthesis failed: {error}", EXIT_INVALID) from None
        result.plan = synthesis.to_json()
        result.seconds["synth"] = round(synthesis.seconds, 2)
        out.say(synthesis.summary())
        identity = aws.caller_identity()
        if identity is None:
            out.say("No working AWS credentials: skipped `cdk diff` (the plan above needs none).")
            return None
        try:
            with out.working(f"Comparing with account {identity.get('Account')} (cdk diff)…"):
                diffs, text = planning.diff(synthesis.assembly)
        except planning.PlanError as error:
            out.say(f"cdk diff did not work: {error}", fg="yellow")
            return identity
        result.diff = {
            name: {"add": d.add, "change": d.change, "remove": d.remove, "replace": d.replace}
            for name, d in diffs.items()
        }
        for stack_diff in diffs.values():
            out.say(f"  {stack_diff.text()}")
        while ask is not None:
            choice = ask.select(
                "Deploy now?",
                [(f"Deploy ({synthesis.deploy})", "deploy"), ("Show details", "details"), ("Quit", "quit")],
            )
            if choice == "details":
                out.say(text)
                continue
            if choice == "deploy":
                code = planning.deploy(output)
                result.deployed = code == 0
                if code != 0:
                    raise Failure(f"cdk deploy failed (exit {code})", code)
            break
        return identity
