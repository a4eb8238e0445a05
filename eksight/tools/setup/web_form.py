"""The web wizard's form ↔ the deployment config: what the page shows and sends, and where each problem goes.

The page (eksight/tools/setup/static/) sends its answers; `config_from` maps them with
`eksight.tools.setup.answers.answers_to_config` (the mapping `eksight generate` uses), `check` runs
`eksight.config.parse` (the single validator) and maps every problem's field path to the form field that shows
it. What the stacks will contain is not guessed here: the preview synthesizes them (eksight.tools.setup.planning).
No HTTP in this module; the server is eksight.tools.setup.wizard.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, get_args

from eksight.config import ConfigError, DeploymentConfig, RegionOptions, SeverityName, StorageClass, regions
from eksight.core.detection_options import DetectionOptions
from eksight.tools.setup import aws, bundle, planning
from eksight.tools.setup.answers import Answers, answers_to_config

PARTITION_LABELS = {"aws": "AWS (commercial)", "aws-cn": "AWS China", "aws-us-gov": "AWS GovCloud (US)"}

# The form's fields, by the config path they write (the page's `data-path` attributes use the same paths).
# Options common to all regions are written under `defaults`; region-bound resources under each region.
GLOBAL_FIELDS = (
    "name_prefix",
    "account",
    "tags",
    "detection.learning_days",
    "regions",
    "defaults.enable_audit_logging",
    "defaults.archive.versioning",
    "defaults.archive.expiration_days",
    "defaults.archive.transition_days",
    "defaults.archive.transition_storage_class",
    "defaults.archive.access_logging",
    "defaults.encryption.key_rotation_period_days",
    "defaults.encryption.key_deletion_window_days",
    "defaults.delivery.buffering_interval_seconds",
    "defaults.delivery.buffering_size_mib",
    "defaults.delivery.existing_role_arn",
    "defaults.subscription.existing_role_arn",
    "defaults.subscription.filter_pattern",
    "defaults.findings.securityhub.enabled",
    "defaults.findings.securityhub.min_severity",
    "defaults.findings.notifications.email",
    "defaults.findings.notifications.min_severity",
    "defaults.findings.central_bus_arn",
)
REGION_FIELDS = (
    "clusters",
    "archive.existing_bucket_arn",
    "encryption.existing_kms_key_arn",
    "findings.notifications.sns_topic_arn",
)
FORM_LEVEL = "(form)"  # problems no single field owns (shown in the summary only)


def form_field(path: str, config: dict[str, Any] | None = None) -> str:
    """The form field (its `data-path`) that should show a problem reported at config `path`.

    `regions.R` itself is the region's picker; a region's option that the form sets for all regions maps to
    its `defaults.` field; object-level problems go to the field the message is about.
    """
    parts = path.split(".")
    if parts[0] == "regions" and len(parts) >= 2:
        region, rest = parts[1], parts[2:]
        regions_raw = (config or {}).get("regions")
        region_entry = regions_raw.get(region) if isinstance(regions_raw, dict) else None
        for size in range(len(rest), 0, -1):
            sub = ".".join(rest[:size])
            if sub in REGION_FIELDS:
                return f"regions.{region}.{sub}"
            if f"defaults.{sub}" in GLOBAL_FIELDS:
                return f"defaults.{sub}"
            owner = _object_owner(sub, region_entry, region)
            if owner:
                return owner
        return f"regions.{region}"
    if parts[0] == "defaults":
        for size in range(len(parts), 1, -1):
            candidate = ".".join(parts[:size])
            if candidate in GLOBAL_FIELDS:
                return candidate
            owner = _object_owner(".".join(parts[1:size]), None, None)
            if owner:
                return owner
        return FORM_LEVEL
    for size in range(len(parts), 0, -1):
        candidate = ".".join(parts[:size])
        if candidate in GLOBAL_FIELDS:
            return candidate
    return FORM_LEVEL


def _object_owner(sub: str, region_entry: Any, region: str | None) -> str | None:
    """Problems raised by a whole options object (its model validator) → the field they are about."""
    if sub == "archive":
        brought = (
            isinstance(region_entry, dict)
            and isinstance(region_entry.get("archive"), dict)
            and region_entry["archive"].get("existing_bucket_arn")
        )
        return f"regions.{region}.archive.existing_bucket_arn" if brought else "defaults.archive.transition_days"
    if sub == "findings.notifications":
        return (
            f"regions.{region}.findings.notifications.sns_topic_arn"
            if region
            else "defaults.findings.notifications.email"
        )
    return None


def config_from(body: dict[str, Any]) -> dict[str, Any]:
    """The draft config of a request: `{"answers": Answers.to_dict()}` (the page) or `{"config": {...}}`.
    Raises ValueError when neither is well formed."""
    if "answers" in body:
        try:
            return answers_to_config(Answers.from_dict(body["answers"]))
        except (TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"malformed answers: {error}") from None
    config = body.get("config")
    if not isinstance(config, dict):
        raise ValueError('send {"answers": {...}} or {"config": {...}}')
    return config


def check(config: Any) -> tuple[DeploymentConfig | None, list[dict[str, str]]]:
    """(the parsed config or None, problems as {path, field, message}, one per field and message)."""
    try:
        return bundle.validate(config), []
    except ConfigError as error:
        problems: list[dict[str, str]] = []
        seen: set[tuple[str, str]] = set()
        raw = config if isinstance(config, dict) else None
        for path, message in error.problems:
            field = form_field(path, raw)
            if (field, message) not in seen:
                seen.add((field, message))
                problems.append({"path": path, "field": field, "message": message})
        return None, problems


def stack_names(deployment: DeploymentConfig) -> list[str]:
    """The stacks a valid config deploys, per region (in the config's order) its ingestion stack, then the
    detection stack plugged into it. What each one holds comes from synthesizing them (the preview)."""
    return [name for d in deployment.regions for name in (d.stack_name, d.detection_stack_name)]


def preview(config: dict[str, Any]) -> dict[str, Any]:
    """What each stack of a valid config will create, read from its synthesized template by eksight.tools.plan
    (what `make synth` prints): {"ok": True, "stacks": [...], "seconds": s}, or {"ok": False, "message": why}.
    Synthesizes a temporary copy of the config file (offline, ~15-45 s)."""
    with tempfile.TemporaryDirectory(prefix="eksight-preview-") as work:
        config_path = Path(work) / bundle.CONFIG_NAME
        config_path.write_text(bundle.config_text(config), encoding="utf-8")
        try:
            synthesis = planning.synthesize(config_path, Path(work) / "cdk.out")
        except planning.PlanError as error:
            return {"ok": False, "message": str(error)}
    return {"ok": True, "stacks": synthesis.to_json(), "seconds": round(synthesis.seconds, 1)}


def discover_clusters(region: str) -> dict[str, Any]:
    """eks:ListClusters in `region` with whatever credentials this computer has; a message when they fail."""
    names, reason = aws.list_clusters(region)
    if names is not None:
        return {"ok": True, "clusters": names}
    if reason == aws.NO_CREDENTIALS:
        return {
            "ok": False,
            "message": "No AWS credentials on this computer, so clusters cannot be listed. Type "
            "the cluster names instead, or set up credentials (aws configure, "
            "AWS_PROFILE or aws sso login) and try again.",
        }
    return {
        "ok": False,
        "message": f"Could not list the clusters in {region} ({reason}). Type the cluster names instead.",
    }


def region_catalog() -> list[dict[str, Any]]:
    """Every region where EKS runs, grouped by partition, with the region's description from botocore."""
    import botocore.session

    described: dict[str, str] = {}
    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        described.update({name: entry.get("description", "") for name, entry in partition["regions"].items()})
    by_partition: dict[str, list[dict[str, str]]] = {p: [] for p in regions.PARTITIONS}
    for name, partition in sorted(regions.eks_regions().items()):
        by_partition[partition].append({"name": name, "description": described.get(name, "")})
    return [
        {"partition": p, "label": PARTITION_LABELS.get(p, p), "regions": rs} for p, rs in by_partition.items() if rs
    ]


def page_meta() -> dict[str, Any]:
    """What the page needs to build its form: regions, defaults, choices and the bundle's names."""
    defaults = RegionOptions.model_validate({}).model_dump(mode="json")
    defaults["learning_days"] = DetectionOptions.model_validate({}).learning_days
    return {
        "regions": region_catalog(),
        "defaults": defaults,
        "severities": list(get_args(SeverityName)),
        "storage_classes": list(get_args(StorageClass)),
        "global_fields": list(GLOBAL_FIELDS),
        "region_fields": list(REGION_FIELDS),
        "bundle_name": bundle.BUNDLE_NAME,
        "config_name": bundle.CONFIG_NAME,
        "command": bundle.CLOUDSHELL_COMMAND,
    }
