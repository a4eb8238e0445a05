"""Fixtures for the profile-store contract: one DynamoDB Local per test session (per xdist worker), a fresh
table per test, and a `backend` fixture parametrized over MemoryStateStore and DynamoStateStore."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from eksight.adapters.dynamodb import DynamoStateStore, create_table
from eksight.core.state import MemoryStateStore, StateStore
from eksight.tools.emulator.dynamodb_local import DynamoDBLocal, DynamoDBLocalError


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """A running DynamoDB Local. Missing Java or npm package is a test FAILURE, never a skip: CI has both."""
    server = DynamoDBLocal()
    problem = None
    try:
        server.start()
    except DynamoDBLocalError as error:
        problem = str(error)
    if problem is not None:  # outside the except block: one clear message, no chained traceback
        pytest.fail(
            f"DynamoDB Local is required by the DynamoStateStore tests and could not start: {problem}", pytrace=False
        )
    yield server
    server.stop()


class CountingClient:
    """Delegates to a boto3 client and counts the API calls made through it."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name.startswith("_") or name in {"get_waiter", "get_paginator"}:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return call


@dataclass
class DynamoTable:
    server: DynamoDBLocal
    client: Any  # boto3 DynamoDB client
    name: str

    def store(self, client: Any | None = None) -> DynamoStateStore:
        return DynamoStateStore(client if client is not None else self.client, self.name)


@pytest.fixture
def dynamo_table(dynamodb_local: DynamoDBLocal) -> Iterator[DynamoTable]:
    """A fresh table (from `table_definition`, TTL enabled) with a unique name; deleted afterwards."""
    client = dynamodb_local.client()
    name = f"eksight-profiles-{uuid.uuid4().hex[:12]}"
    create_table(client, name)
    yield DynamoTable(dynamodb_local, client, name)
    client.delete_table(TableName=name)


@dataclass
class Backend:
    name: str
    store: Any  # the StateStore under test (MemoryStateStore or DynamoStateStore)
    new_store: Callable[[], StateStore]  # another handle on the same data (Dynamo: with its own client)
    calls: Counter[str]  # API calls made by `store` (empty for memory)
    table: DynamoTable | None = None


@pytest.fixture(params=["memory", "dynamo"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "memory":
        memory = MemoryStateStore()
        return Backend("memory", memory, lambda: memory, Counter())
    table: DynamoTable = request.getfixturevalue("dynamo_table")
    client = CountingClient(table.client)
    return Backend("dynamo", table.store(client), lambda: table.store(table.server.client()), client.calls, table)
