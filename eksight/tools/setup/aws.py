"""The few AWS calls `eksight generate` makes, each optional: they fail fast (short connect timeout, no
retries) and any credential, endpoint or permission error reads as "not available", never as a crash.
boto3 is imported lazily."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

CONNECT_TIMEOUT = 3
READ_TIMEOUT = 10
NO_CREDENTIALS = "no AWS credentials"  # the reason given when this computer has none


def client(service: str, region: str | None = None) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service,
        region_name=region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        config=Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"total_max_attempts": 1, "mode": "standard"},
        ),
    )


def _reason(error: Exception) -> str:
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(error, NoCredentialsError):
        return NO_CREDENTIALS
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code") or "request refused"
    return type(error).__name__


def list_clusters(region: str) -> tuple[list[str] | None, str]:
    """(cluster names, "") — or (None, why not) when credentials, the endpoint or permissions fail."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        pages = client("eks", region).get_paginator("list_clusters").paginate()
        return sorted(name for page in pages for name in page.get("clusters", [])), ""
    except (BotoCoreError, ClientError) as error:
        return None, _reason(error)


def caller_identity() -> dict[str, str] | None:
    """sts:GetCallerIdentity ({Account, Arn, UserId}), or None when credentials don't work."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        identity = client("sts").get_caller_identity()
    except (BotoCoreError, ClientError):
        return None
    return {key: identity[key] for key in ("Account", "Arn", "UserId") if key in identity}


def in_cloudshell(environ: Mapping[str, str] | None = None) -> bool:
    variables = os.environ if environ is None else environ
    return variables.get("AWS_EXECUTION_ENV", "").lower() == "cloudshell"
