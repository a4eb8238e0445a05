"""Where things live in the archive bucket. Shared by the stacks, the detector and the CLI.

Keys are Hive-style (``name=value``) so Athena partition projection and S3 Select work without a crawler.
Firehose expands ``!{timestamp:...}`` with its own arrival time (UTC); the events inside carry their own
event time, which is what detection uses.
"""

from __future__ import annotations

AUDIT_ROOT = "audit/"
"""Firehose deliveries: CloudWatch Logs envelopes, newline-delimited, GZIP. The detector's S3 trigger."""

DELIVERY_ERRORS_ROOT = "delivery-errors/"
"""Records Firehose could not process or deliver (e.g. ``decompression-failed``), kept as-is."""

QUARANTINE_ROOT = "quarantine/"
"""Records the detector could not decode, written with the reason (detection issue)."""

FINDINGS_ROOT = "findings/"
"""Every finding, all severities, as JSON lines (GZIP), one object per archive object it was detected in, under that
object's year/month/day/hour (account, region and cluster are fields of each finding, and in the object's name): a
finding that grows across objects appears once per object with its running total (the ledger's fold), so readers
keep each id's latest row."""

ATHENA_RESULTS_ROOT = "athena-results/"
"""Query results of the hunting workgroup (SSE-KMS, the archive key)."""

_TIME_PARTITIONS = "year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"


def cluster_prefix(account: str, region: str, cluster: str) -> str:
    """Static part of a cluster's delivery prefix (what an S3 listing or an IAM resource can name)."""
    return f"{AUDIT_ROOT}account={account}/region={region}/cluster={cluster}/"


def delivery_prefix(account: str, region: str, cluster: str) -> str:
    return cluster_prefix(account, region, cluster) + _TIME_PARTITIONS


def delivery_error_prefix(account: str, region: str, cluster: str) -> str:
    # Firehose requires !{firehose:error-output-type} in the error prefix once the prefix uses expressions.
    return (
        f"{DELIVERY_ERRORS_ROOT}account={account}/region={region}/cluster={cluster}/"
        "!{firehose:error-output-type}/" + _TIME_PARTITIONS
    )


def parse_cluster_key(key: str) -> dict[str, str]:
    """Partition values (account, region, cluster, year, ...) encoded in an archive object key."""
    return dict(part.split("=", 1) for part in key.split("/") if "=" in part)


def derived_key(source_key: str, root: str, suffix: str) -> str:
    """Where something derived from one archive object is written: ``audit/<partitions>/<name>`` →
    ``<root><partitions>/<name><suffix>`` (same partitions, so Athena and lifecycle rules see the same layout; one
    object per source object, so a redelivered object overwrites its own output, never adds to it)."""
    rest = source_key[len(AUDIT_ROOT) :] if source_key.startswith(AUDIT_ROOT) else source_key
    return f"{root}{rest.lstrip('/')}{suffix}"


def findings_key(source_key: str) -> str:
    """``audit/account=A/region=R/cluster=C/year=…/hour=H/name`` → ``findings/year=…/hour=H/A.R.C.name.findings.jsonl.gz``."""
    parts = parse_cluster_key(source_key)
    if not all(column in parts for column in ("account", "region", "cluster", "year", "month", "day", "hour")):
        return derived_key(source_key, FINDINGS_ROOT, ".findings.jsonl.gz")
    name = source_key.rsplit("/", 1)[-1]
    hour = "/".join(f"{column}={parts[column]}" for column in ("year", "month", "day", "hour"))
    return f"{FINDINGS_ROOT}{hour}/{parts['account']}.{parts['region']}.{parts['cluster']}.{name}.findings.jsonl.gz"


def quarantine_key(source_key: str) -> str:
    return derived_key(source_key, QUARANTINE_ROOT, ".quarantine.jsonl.gz")
