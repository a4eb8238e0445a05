"""The deployment config: one JSON file describing regions → clusters and options.

`models` holds the validated, frozen types; `loading` reads a file into them (defaults merge, cross-field
checks, ConfigError); `reference` generates the JSON Schema and docs/configuration.md from the models.
"""

from eksight.config import filter_pattern, regions
from eksight.config.loading import ConfigError, load, parse
from eksight.config.models import (
    ACCOUNT_ID,
    BUCKET_ARN,
    CLUSTER_NAME,
    EMAIL,
    EVENT_BUS_ARN,
    KMS_KEY_ARN,
    LOG_RETENTION_DAYS,
    MAX_CLUSTERS_PER_REGION,
    NAME_PREFIX,
    ROLE_ARN,
    SNS_TOPIC_ARN,
    ArchiveOptions,
    ConfigFile,
    DeliveryOptions,
    DeploymentConfig,
    DetectorOptions,
    EncryptionOptions,
    FindingsOptions,
    NotificationOptions,
    RegionDeployment,
    RegionEntry,
    RegionOptions,
    SecurityHubOptions,
    SeverityName,
    StorageClass,
    SubscriptionOptions,
)
from eksight.config.reference import json_schema, markdown_reference
from eksight.core.detection_options import DetectionOptions

__all__ = [
    "ACCOUNT_ID",
    "BUCKET_ARN",
    "CLUSTER_NAME",
    "EMAIL",
    "EVENT_BUS_ARN",
    "KMS_KEY_ARN",
    "LOG_RETENTION_DAYS",
    "MAX_CLUSTERS_PER_REGION",
    "NAME_PREFIX",
    "ROLE_ARN",
    "SNS_TOPIC_ARN",
    "ArchiveOptions",
    "ConfigError",
    "ConfigFile",
    "DeliveryOptions",
    "DeploymentConfig",
    "DetectionOptions",
    "DetectorOptions",
    "EncryptionOptions",
    "FindingsOptions",
    "NotificationOptions",
    "RegionDeployment",
    "RegionEntry",
    "RegionOptions",
    "SecurityHubOptions",
    "SeverityName",
    "StorageClass",
    "SubscriptionOptions",
    "filter_pattern",
    "json_schema",
    "load",
    "markdown_reference",
    "parse",
    "regions",
]
