"""Shared ClickHouse for integration tests.

chDB hosts one engine per process and one data directory per engine, so the whole
test session shares a single URL: ``HFL_TEST_CLICKHOUSE_URL`` when set (a server or a
chdb URL), else an embedded engine in a session temporary directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from sinks.client import connect
from sinks.migration import migrate


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ClickHouse URL every integration test in this process uses."""
    explicit = os.environ.get("HFL_TEST_CLICKHOUSE_URL")
    if explicit:
        return explicit
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture(scope="session")
def clickhouse(clickhouse_url: str) -> Iterator[Client]:
    """The process's shared client for `clickhouse_url`, with the schema migrated."""
    client = connect(clickhouse_url)
    migrate(client)
    yield client
