"""An embedded AWS for the local demo: moto's server on 127.0.0.1 and DynamoDB Local (real DynamoDB semantics
for the baselines table), reached by every boto3 client through the standard endpoint variables
(AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_DYNAMODB): handlers run unmodified against them."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from eksight.tools.emulator.dynamodb_local import start_dynamodb_local
from eksight.tools.emulator.moto_fixes import tls_only_denies_are_neutral

# DynamoDB Local accepts only letters and digits in the access key id.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "eksightdemo",
    "AWS_SECRET_ACCESS_KEY": "eksightdemo",
    "AWS_SESSION_TOKEN": "eksightdemo",
}


@dataclass(frozen=True)
class Endpoints:
    aws: str
    dynamodb: str
    account: str
    region: str


def _reset(endpoint: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=30).close()


@contextmanager
def embedded_aws(account: str = "123456789012", region: str = "us-east-1") -> Iterator[Endpoints]:
    """Start both emulators, point this process's boto3 at them (environment), stop both on exit."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise

    saved = {
        name: os.environ.get(name)
        for name in (
            *FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
            "MOTO_ACCOUNT_ID",
            "MOTO_IAM_LOAD_MANAGED_POLICIES",
            "AWS_PROFILE",
            "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE",
            "AWS_EC2_METADATA_DISABLED",
        )
    }
    os.environ.update(
        {
            **FAKE_CREDENTIALS,
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "MOTO_ACCOUNT_ID": account,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    with ExitStack() as stack:
        try:
            stack.enter_context(tls_only_denies_are_neutral())
            dynamodb = stack.enter_context(start_dynamodb_local())
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            stack.callback(server.stop)
            host, port = server.get_host_and_port()
            endpoints = Endpoints(f"http://{host}:{port}", dynamodb, account, region)
            # The server shares moto's in-process backends: start from a clean slate (state of an earlier mock in
            # this process, IAM without AWS managed policies) and drop it again at the end.
            _reset(endpoints.aws)
            stack.callback(_reset, endpoints.aws)
            os.environ["AWS_ENDPOINT_URL"] = endpoints.aws
            os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoints.dynamodb
            yield endpoints
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
