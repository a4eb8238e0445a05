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

from eksight.adapters.botocore_session import botocore_session

if TYPE_CHECKING or __package__:  # lambdas.detector.handler: the repository (tests, local demo, type checker)
    from lambdas.detector.composition import DetectorClients, DetectorSettings, build, create_handler, process_object
else:  # the Lambda asset's root is this directory, so its modules are top-level there
    from composition import DetectorClients, DetectorSettings, build, create_handler, process_object

session = boto3.Session(botocore_session=botocore_session())
app = build(
    DetectorSettings.from_environ(os.environ),
    DetectorClients(s3=session.client("s3"), events=session.client("events"), dynamodb=session.client("dynamodb")),
)
# process_object is looked up per object, so the local demo can wrap it to count what the detector read.
lambda_handler = create_handler(app, lambda ref: app.detect(ref, process_object))
handler = lambda_handler  # the name the stack configures (handler.handler)
