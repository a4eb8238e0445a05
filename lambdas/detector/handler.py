"""Detector Lambda: SQS (S3 ObjectCreated notifications for ``audit/`` objects) → detection → EventBridge.

Cold start only: read the settings from the environment, create the AWS clients (standard variables:
``AWS_REGION``, ``AWS_ENDPOINT_URL``...), build the collaborators and the SQS entry point (`composition`, which
documents the batch, notification and idempotency behaviour). Environment: ``FINDINGS_BUS_NAME``,
``ARCHIVE_BUCKET`` (quarantine output), ``STATE_TABLE``, ``EKSIGHT_DETECTION_CONFIG`` (optional: a JSON file,
relative to this directory, holding the deployment config's ``detection`` section), ``LEARNING_DAYS`` (optional),
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_SERVICE_NAME``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING or __package__:  # lambdas.detector.handler: the repository (tests, local demo, type checker)
    from lambdas.detector.composition import DetectorClients, DetectorSettings, build, create_handler, process_object
else:  # the Lambda asset's root is this directory, so its modules are top-level there
    from composition import DetectorClients, DetectorSettings, build, create_handler, process_object

app = build(
    DetectorSettings.from_environ(os.environ),
    DetectorClients(s3=boto3.client("s3"), events=boto3.client("events"), dynamodb=boto3.client("dynamodb")),
)
# process_object is looked up per object, so the local demo can wrap it to count what the detector read.
lambda_handler = create_handler(app, lambda ref: app.detect(ref, process_object))
handler = lambda_handler  # the name the stack configures (handler.handler)
