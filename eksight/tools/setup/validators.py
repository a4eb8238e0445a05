"""Checks of single answers, shared by the prompts (immediate feedback) and the flags (clear errors).

Each `*_problem` returns None when the value is fine, else one sentence saying what is wrong and how to fix
it. The rules are the config's own (eksight.config, eksight.config.regions, eksight.config.filter_pattern), so a value that
passes here only fails later for cross-field reasons (which `eksight.config.parse` reports per field).
"""

from __future__ import annotations

from eksight import config as cfg
from eksight.config import filter_pattern, regions


def region_problem(value: str, partition: str | None = None) -> str | None:
    value = value.strip()
    if not value:
        return "enter a region name, such as us-east-1"
    known = regions.eks_regions()
    if value not in known:
        close = regions.closest_regions(value)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return f"{value!r} is not an AWS region where EKS runs{hint}"
    if partition and known[value] != partition:
        return (
            f"{value} is in partition {known[value]}, the other regions in {partition}; one config holds "
            "one partition. Fix: write a separate config for it"
        )
    return None


def split_list(text: str) -> list[str]:
    """'a, b,c' → ['a', 'b', 'c']; empty items are kept as '' so they can be reported."""
    return [part.strip() for part in text.split(",")] if text.strip() else []


def clusters_problem(names: list[str]) -> str | None:
    if not names:
        return "name at least one cluster"
    for name in names:
        if not name:
            return "empty cluster name (two commas in a row?)"
        if not cfg.CLUSTER_NAME.match(name):
            return (
                f"{name!r} is not a valid EKS cluster name: 1-100 letters, digits, '-' or '_', starting "
                "with a letter or digit"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        return f"{', '.join(duplicates)} listed twice"
    if len(names) > cfg.MAX_CLUSTERS_PER_REGION:
        return f"at most {cfg.MAX_CLUSTERS_PER_REGION} clusters per region"
    return None


def bucket_arn_problem(value: str) -> str | None:
    if not cfg.BUCKET_ARN.match(value):
        return f"{value!r} is not an S3 bucket ARN: use arn:aws:s3:::BUCKET_NAME (no region or account)"
    return None


def kms_key_arn_problem(value: str, region: str | None = None) -> str | None:
    match = cfg.KMS_KEY_ARN.match(value)
    if not match:
        return f"{value!r} is not a KMS key ARN: use arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (not an alias)"
    if region and match["region"] != region:
        return f"that key is in {match['region']}; KMS keys are regional: use a key in {region}"
    return None


def role_arn_problem(value: str) -> str | None:
    if not cfg.ROLE_ARN.match(value):
        return f"{value!r} is not an IAM role ARN: use arn:aws:iam::ACCOUNT:role/NAME"
    return None


def sns_topic_arn_problem(value: str, region: str | None = None) -> str | None:
    match = cfg.SNS_TOPIC_ARN.match(value)
    if not match:
        return f"{value!r} is not an SNS topic ARN: use arn:aws:sns:REGION:ACCOUNT:TOPIC_NAME"
    if region and match["region"] != region:
        return f"that topic is in {match['region']}; findings of {region} need a topic in {region}"
    return None


def bus_arn_problem(value: str) -> str | None:
    if not cfg.EVENT_BUS_ARN.match(value):
        return f"{value!r} is not an EventBridge bus ARN: use arn:aws:events:REGION:ACCOUNT:event-bus/NAME"
    return None


def arn_region(value: str) -> str | None:
    """The region field of a regional ARN (arn:PARTITION:SERVICE:REGION:...)."""
    parts = value.split(":")
    return parts[3] if len(parts) > 4 and parts[3] else None


def filter_pattern_problem(value: str) -> str | None:
    try:
        filter_pattern.validate(value)
    except filter_pattern.FilterPatternError as error:
        return str(error)
    return None


def email_problem(value: str) -> str | None:
    if not cfg.EMAIL.match(value):
        return f"{value!r} is not an email address"
    return None


def emails_problem(values: list[str]) -> str | None:
    if not values:
        return "enter at least one address"
    for value in values:
        if problem := email_problem(value):
            return problem
    duplicates = sorted({v for v in values if values.count(v) > 1})
    return f"{', '.join(duplicates)} listed twice" if duplicates else None


def name_prefix_problem(value: str) -> str | None:
    if not cfg.NAME_PREFIX.match(value):
        return f"{value!r}: use 1-20 lowercase letters, digits and single dashes, starting with a letter"
    return None


def account_problem(value: str) -> str | None:
    if not (len(value) == 12 and value.isdigit()):
        return f"{value!r} is not an AWS account id: use the 12-digit id"
    return None


def parse_tag(text: str) -> tuple[str, str]:
    """'key=value' → (key, value); raises ValueError with the fix (no blank key or value)."""
    key, sep, value = text.partition("=")
    key, value = key.strip(), value.strip()
    if not sep or not key:
        raise ValueError(f"{text!r} is not KEY=VALUE")
    if not value:
        raise ValueError(f"tag {key!r} has no value: write {key}=VALUE")
    if key.lower().startswith("aws:"):
        raise ValueError(f"tag key {key!r} uses the reserved 'aws:' prefix")
    if len(key) > 128 or len(value) > 256:
        raise ValueError(f"tag {key!r}: keys are 1-128 characters, values at most 256")
    return key, value


def parse_region_clusters(text: str) -> tuple[str, list[str]]:
    """'us-east-1=prod,staging' → ('us-east-1', ['prod', 'staging']); raises ValueError with the fix."""
    region, sep, clusters = text.partition("=")
    region = region.strip()
    if not sep or not region:
        raise ValueError(f"{text!r} is not REGION=cluster1,cluster2")
    if problem := region_problem(region):
        raise ValueError(problem)
    names = split_list(clusters)
    if problem := clusters_problem(names):
        raise ValueError(f"{region}: {problem}")
    return region, names


def int_problem(text: str, low: int | None, high: int | None) -> str | None:
    try:
        value = int(text.strip())
    except ValueError:
        return "enter a whole number"
    if low is not None and value < low:
        return f"must be at least {low}"
    if high is not None and value > high:
        return f"must be at most {high}"
    return None
