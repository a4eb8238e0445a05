"""The Lambda handlers' botocore session (eksight.adapters.botocore_session) reads the same service models as
botocore's own loader, only faster."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.loaders import Loader

from eksight.adapters.botocore_session import MsgspecJSONFileLoader, botocore_session

SERVICES = ("s3", "events", "dynamodb", "securityhub")  # the clients the handlers create
SHARED = ("endpoints", "partitions", "sdk-default-configuration", "_retry")


def ordered(data: Any) -> Any:
    """`data` with every mapping as its list of items: equal only if the keys come in the same order too."""
    if isinstance(data, dict):
        return [(key, ordered(value)) for key, value in data.items()]
    if isinstance(data, list):
        return [ordered(item) for item in data]
    return data


@pytest.mark.parametrize("name", SHARED)
def test_shared_data_is_read_the_same(name: str) -> None:
    ours = Loader(file_loader=MsgspecJSONFileLoader()).load_data(name)
    theirs = Loader().load_data(name)
    assert ordered(ours) == ordered(theirs)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("kind", ["service-2", "endpoint-rule-set-1"])
def test_service_models_are_read_the_same(service: str, kind: str) -> None:
    ours = Loader(file_loader=MsgspecJSONFileLoader()).load_service_model(service, kind)
    theirs = Loader().load_service_model(service, kind)
    assert ordered(ours) == ordered(theirs)


def test_the_session_reads_the_environment_and_uses_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    session = botocore_session()
    assert isinstance(session, botocore.session.Session)
    assert isinstance(session.get_component("data_loader").file_loader, MsgspecJSONFileLoader)
    client = session.create_client("events")
    assert client.meta.region_name == "eu-north-1"
    assert client.meta.endpoint_url == "http://localhost:4566"
