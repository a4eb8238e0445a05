"""Loading the deployment config: read the file, deep-merge `defaults` into each region, validate, and check
what only the whole file can tell (a key's region, an ARN's account, one partition). Every problem is reported
once, at the field that holds the value, with a fix."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from eksight.config import regions
from eksight.config.models import (
    EVENT_BUS_ARN,
    KMS_KEY_ARN,
    ROLE_ARN,
    SNS_TOPIC_ARN,
    ConfigFile,
    DeploymentConfig,
    FindingsOptions,
    RegionDeployment,
    RegionEntry,
    RegionOptions,
)


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
        raise ConfigError(source, problems + _problems(error, raw)) from None
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
    for field_path, arn in _role_arns(file.defaults):
        yield from _role_account_problems(file, f"defaults.{field_path}", arn)
    for region, entry in file.regions.items():
        if region not in known:
            continue  # reported by _region_name_problems
        partitions.add(known[region])
        key_arn = entry.encryption.existing_kms_key_arn
        if key_arn:
            match = KMS_KEY_ARN.fullmatch(key_arn)
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
        for (field_path, arn), (_, default_arn) in zip(_role_arns(entry), _role_arns(file.defaults), strict=True):
            if arn != default_arn:  # an inherited role is checked once, at defaults
                yield from _role_account_problems(file, f"regions.{region}.{field_path}", arn)
        yield from _findings_problems(file, region, known[region], entry.findings)
    if len(partitions) > 1:
        yield (
            "regions",
            f"regions span partitions {sorted(partitions)}; one account lives in one "
            "partition. Fix: use one config file per partition",
        )


def _role_arns(options: RegionOptions) -> tuple[tuple[str, str | None], ...]:
    return (
        ("delivery.existing_role_arn", options.delivery.existing_role_arn),
        ("subscription.existing_role_arn", options.subscription.existing_role_arn),
    )


def _role_account_problems(file: ConfigFile, field_path: str, arn: str | None) -> Iterable[tuple[str, str]]:
    match = ROLE_ARN.fullmatch(arn) if arn else None
    if match and file.account and match["account"] != file.account:
        yield (
            field_path,
            f"role belongs to account {match['account']}, not {file.account}. Fix: use a role of the target account",
        )


def _findings_problems(
    file: ConfigFile, region: str, partition: str, findings: FindingsOptions
) -> Iterable[tuple[str, str]]:
    path = f"regions.{region}.findings"
    bus = EVENT_BUS_ARN.fullmatch(findings.central_bus_arn or "")
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
    topic = SNS_TOPIC_ARN.fullmatch(findings.notifications.sns_topic_arn or "")
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


def _problems(error: ValidationError, raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, message) per validation error. A bad value in `defaults` fails `defaults` and again every
    region that inherits it: it is reported once, at `defaults`."""
    located = [(item["loc"], _message(item)) for item in error.errors(include_url=False)]
    in_defaults = {(loc[1:], message) for loc, message in located if loc[:1] == ("defaults",)}
    return [
        (".".join(str(part) for part in loc) or "(root)", message)
        for loc, message in located
        if not (loc[:1] == ("regions",) and (loc[2:], message) in in_defaults and not _set_by_region(raw, loc))
    ]


def _message(item: ErrorDetails) -> str:
    kind = item["type"]
    if kind == "extra_forbidden":
        return "unknown field." + _spelling_hint(item["loc"]) + " Fix: remove it or correct its name"
    if kind == "value_error":
        return str(item["ctx"]["error"])
    if kind in _FIXES:
        return _FIXES[kind].format(**item.get("ctx", {}))
    return item["msg"]


def _set_by_region(raw: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Whether the region's own entry sets the value at `loc` (`regions.<region>.…`), rather than inheriting it."""
    node = raw["regions"][loc[1]]
    for part in loc[2:]:
        if not isinstance(node, dict):
            return True  # the region replaced this value as a whole: the merge only descends into objects
        if part not in node:
            return False
        node = node[part]
    return not isinstance(node, dict)


def _spelling_hint(loc: tuple[int | str, ...]) -> str:
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
