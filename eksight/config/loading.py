"""Loading the deployment config: read the file, deep-merge `defaults` into each region, validate, and check
what only the whole file can tell (a key's region, an ARN's account, one partition). Every problem is reported
with a fix, and once: a problem of a value that regions inherit from `defaults` is reported at `defaults`."""

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
        raise ConfigError(source, _reported_once(problems + _problems(error), raw)) from None
    problems += _cross_field_problems(file)
    if problems:
        raise ConfigError(source, _reported_once(problems, raw))
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
        for field_path, arn in (
            ("delivery.existing_role_arn", entry.delivery.existing_role_arn),
            ("subscription.existing_role_arn", entry.subscription.existing_role_arn),
        ):
            match = ROLE_ARN.fullmatch(arn) if arn else None
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


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    return [
        (".".join(str(part) for part in item["loc"]) or "(root)", _message(item))
        for item in error.errors(include_url=False)
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


def _reported_once(problems: list[tuple[str, str]], raw: dict[str, Any]) -> list[tuple[str, str]]:
    """A bad value in `defaults` fails `defaults` and again every region that inherits it, and a whole-file
    check repeats for each region that inherits the value: such a problem is reported once, at `defaults`.
    A problem only one region has (say, a key in another region) stays there, since that is where it is fixed."""
    entries = raw["regions"] if isinstance(raw.get("regions"), dict) else {}
    inherited: dict[tuple[str, str], list[int]] = {}  # (path below the region, message) → where in `problems`
    for index, (path, message) in enumerate(problems):
        parts = path.split(".")
        region_entry = entries.get(parts[1]) if parts[0] == "regions" and len(parts) > 2 else None
        if isinstance(region_entry, dict) and not _set_by_region(region_entry, parts[2:]):
            inherited.setdefault((".".join(parts[2:]), message), []).append(index)
    reported = set(problems)
    replaced: dict[int, tuple[str, str] | None] = {}  # index in `problems` → its report at defaults, or None
    for (sub_path, message), indexes in inherited.items():
        at_defaults = (f"defaults.{sub_path}", message)
        if at_defaults in reported or len(indexes) > 1:
            first, *rest = indexes
            replaced[first] = None if at_defaults in reported else at_defaults
            replaced.update(dict.fromkeys(rest))
    once = []
    for index, problem in enumerate(problems):
        replacement = replaced.get(index, problem)
        if replacement is not None:
            once.append(replacement)
    return once


def _set_by_region(entry: Any, sub_path: list[str]) -> bool:
    """Whether a region's own entry sets the value at `sub_path`, rather than inheriting it from `defaults`."""
    node = entry
    for part in sub_path:
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
