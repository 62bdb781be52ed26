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
from support.processes import children, reap_leftovers

from connectors.broker import start_broker, stop_broker
from connectors.keyfile import save_keys
from risk.access import Role, new_key
from sinks.client import connect
from sinks.migration import migrate

# How long a test's child processes may take to exit after it, before they count as
# leftovers (a flow stopped with SIGTERM exits within a few seconds).
LEFTOVER_GRACE_S = 10.0


def docker_available() -> bool:
    """True when a Docker engine answers (not merely when the client is installed)."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:  # any failure means: no usable engine
        return False
    return True


@pytest.fixture(scope="session", autouse=True)
def api_keys(tmp_path_factory: pytest.TempPathFactory) -> dict[Role, str]:
    """A key of every role in a session key file; the admin's signs what tests publish.

    Set in this process's environment, so every flow and `hfl` command a test starts
    verifies and signs with them (`security.keys_file`, `HFL_API_KEY`).
    """
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    made = {role: new_key(f"pytest-{role}", role, created_ns=1) for role in Role}
    save_keys(path, [key for key, _ in made.values()])
    os.environ["HFL_SECURITY__KEYS_FILE"] = str(path)
    os.environ["HFL_API_KEY"] = str(made[Role.ADMIN][1])
    return {role: str(token) for role, (_, token) in made.items()}


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


@pytest.fixture(autouse=True)
def no_child_outlives_its_test() -> Iterator[None]:
    """Fail a test whose child processes (flows, brokers, dashboards) outlive it.

    Session and module fixtures (the shared broker, a module's demo) start before this
    fixture, so they and whatever they start meanwhile are not counted. Leftovers get
    `LEFTOVER_GRACE_S` to exit, then are killed by PID and the test fails naming them.
    """
    before = children(os.getpid())
    yield
    left = reap_leftovers(before, LEFTOVER_GRACE_S)
    if left:
        pytest.fail("child processes outlived the test (killed now):\n  " + "\n  ".join(left))
