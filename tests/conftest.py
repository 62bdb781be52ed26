"""Infrastructure for tests: a real Kafka broker and ClickHouse for the whole session.

Each is chosen in order: a URL from the environment (`HFL_TEST_KAFKA_BOOTSTRAP`,
`HFL_TEST_CLICKHOUSE_URL`), a container via testcontainers where a Docker engine
answers, else the local Tansu broker on a free loopback port (stopped when the
session ends) and embedded chDB. chDB hosts one data directory per process, so the
whole session shares one ClickHouse URL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client
from support.loopback import free_port

from connectors.broker import start_broker, stop_broker
from sinks.client import connect
from sinks.migration import migrate


def docker_available() -> bool:
    """True when a Docker engine answers (not merely when the client is installed)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # any failure means: no usable engine
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address of a real broker shared by the session's tests."""
    explicit = os.environ.get("HFL_TEST_KAFKA_BOOTSTRAP")
    if explicit:
        yield explicit
        return
    if docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer() as kafka:
            yield kafka.get_bootstrap_server()
        return
    folder: Path = tmp_path_factory.mktemp("broker")
    port = free_port()
    start_broker("127.0.0.1", port, folder / "broker.pid", folder / "broker.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_broker(folder / "broker.pid")


@pytest.fixture(scope="session")
def clickhouse_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The ClickHouse URL every integration test in this process uses."""
    explicit = os.environ.get("HFL_TEST_CLICKHOUSE_URL")
    if explicit:
        return explicit
    if docker_available():
        from testcontainers.clickhouse import ClickHouseContainer

        server = ClickHouseContainer()
        server.start()
        request.addfinalizer(server.stop)
        host, port = server.get_container_host_ip(), server.get_exposed_port(8123)
        return f"http://{server.username}:{server.password}@{host}:{port}/default"
    return f"chdb://{tmp_path_factory.mktemp('clickhouse')}"


@pytest.fixture(scope="session")
def clickhouse(clickhouse_url: str) -> Iterator[Client]:
    """The process's shared client for `clickhouse_url`, with the schema migrated."""
    client = connect(clickhouse_url)
    migrate(client)
    yield client
