"""Docker mode without Docker: the code paths that differ from local mode, on real engines.

In the compose stack ClickHouse is a server reached over HTTP with one user per
component, each flow runs alone in its container (`hfl flow run`) serving its own
`/metrics`, and the dashboard reads the server (no embedded query endpoint). No
clickhouse-server can run here, so ClickHouse is `tests/support/http_front.py`: the
ClickHouse HTTP protocol over embedded chDB on 127.0.0.1 (what that covers and what it
does not: docs/deployment.md). Kafka is the real local broker.

The market data comes from a producer written only from docs/: it reads
docs/schemas/md.ticks.schema.json, builds ticks that satisfy it, and publishes them with
plain confluent-kafka, keyed as docs/topics.md says. The system must trade on them.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from confluent_kafka import Producer
from support.loopback import free_port

from sinks.client import open_client

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META")
TICKS = 6_000
PASSWORDS = {"hfl_migrate": "m-pw", "hfl_persist": "p-pw", "hfl_dashboard": "d-pw"}
SQL_USER = ("hfl_sql", "s-pw")
# Trading stops 3 s after its ticks are drained; the gateway and persist stop once their
# upstream has exited (a drain file) and their inputs are drained, whatever the load.
IDLE_EXIT_S = {"trading": "3", "gateway": "600", "persist": "600"}
UPSTREAM = {"gateway": "trading", "persist": "gateway"}
FLOW_TIMEOUT_S = 300


def server_url(port: int, user: str, password: str | None = None) -> str:
    secret = PASSWORDS.get(user, SQL_USER[1]) if password is None else password
    return f"http://{user}:{secret}@127.0.0.1:{port}/hfl"


@pytest.fixture(scope="module")
def clickhouse_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A ClickHouse HTTP endpoint on 127.0.0.1 with the stack's users (a child process)."""
    users = ",".join(
        [*(f"{u}:{p}" for u, p in PASSWORDS.items()), f"{SQL_USER[0]}:{SQL_USER[1]}:ro"]
    )
    front = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "support.http_front",
            str(tmp_path_factory.mktemp("chdb")),
            "--users",
            users,
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert front.stdout is not None
    port = int(front.stdout.readline())
    try:
        yield port
    finally:
        front.send_signal(signal.SIGTERM)
        front.wait(timeout=30)


def docs_only_ticks() -> list[tuple[bytes, bytes]]:
    """(key, value) pairs built from the published contract alone: the JSON Schema of
    md.ticks says which fields, types and bounds; topics.md says the key is the
    instrument. Prices follow a random walk with some momentum per instrument."""
    schema = json.loads((ROOT / "docs" / "schemas" / "md.ticks.schema.json").read_text())
    check = jsonschema.Draft202012Validator(schema)
    rng = random.Random(5)
    start_ns, step_ns = 1_700_000_000_000_000_000, int(1e9 / 150)
    price = dict.fromkeys(SYMBOLS, 100.0)
    drift = dict.fromkeys(SYMBOLS, 0.0)
    seq = dict.fromkeys(SYMBOLS, 0)
    out = []
    for n in range(TICKS):
        name = SYMBOLS[n % len(SYMBOLS)]
        drift[name] = 0.6 * drift[name] + rng.gauss(0.0, 4e-4)
        price[name] *= math.exp(drift[name])
        seq[name] += 1
        tick = {
            "instrument": name,
            "seq": seq[name],
            "kind": "trade",
            "price": round(price[name], 4),
            "size": float(rng.randint(1, 500)),
            "ts_event": start_ns + n * step_ns,
            "ts_init": time.time_ns(),
        }
        assert set(schema["required"]) <= set(tick)
        check.validate(tick)
        out.append((name.encode(), json.dumps(tick).encode()))
    return out


def publish_plainly(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    """Produce with confluent-kafka's own Producer, checking every delivery."""
    failures: list[str] = []

    def delivered(error: object, message: object) -> None:
        if error is not None:
            failures.append(str(error))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 10})
    for key, value in records:
        producer.produce(topic, value=value, key=key, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []


def hfl(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr[-3000:]
    return done


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


@dataclass(frozen=True)
class Run:
    env: dict[str, str]
    port: int
    metrics: dict[str, str]


@pytest.fixture(scope="module")
def run(
    kafka_bootstrap: str, clickhouse_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Run:
    """topics + migrate jobs, the docs-only producer, then the three flows as containers
    run them (`hfl flow run NAME`, each with its own metrics port), until they drain."""
    work = tmp_path_factory.mktemp("docker-mode")
    prefix = f"dm-{uuid.uuid4().hex[:8]}."
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": server_url(clickhouse_port, "hfl_dashboard"),
        "HFL_TRADING__INSTRUMENTS": ",".join(SYMBOLS),
        "HFL_MODEL__MIN_LABELLED": "20",
        "HFL_MODEL__SIGNAL__ENGINE": "hysteresis",  # chatty thresholds on purpose
        "HFL_MODEL__HORIZON_S": "1",
        "HFL_MODEL__ENTER_LONG": "0.51",
        "HFL_MODEL__ENTER_SHORT": "0.49",
        # Fills are booked as they arrive: the run's end then never waits on the gateway's
        # progress, which on a loaded 2-core machine can lag past the bounded end's guard.
        # Event-time fill sync is covered by tests/integration/test_end_to_end.py.
        "HFL_RISK__FILL_SYNC": "arrival",
        "HFL_RECOVERY__DIRECTORY": str(work / "recovery"),
        "HFL_RUN_ID": prefix.rstrip("."),
    }
    hfl(env, "topics", "create")
    hfl({**env, "HFL_CLICKHOUSE_URL": server_url(clickhouse_port, "hfl_migrate")}, "db", "migrate")
    publish_plainly(kafka_bootstrap, prefix + "md.ticks", docs_only_ticks())

    ports = {name: free_port() for name in IDLE_EXIT_S}
    children = {}
    for name, idle in IDLE_EXIT_S.items():
        own = {
            **env,
            "HFL_KAFKA__EXIT_WHEN_IDLE_S": idle,
            "HFL_KAFKA__DRAIN_FILE": str(work / f"{name}.drain"),
            "HFL_METRICS__PORT": str(ports[name]),
        }
        if name == "persist":
            own["HFL_CLICKHOUSE_URL"] = server_url(clickhouse_port, "hfl_persist")
        log = (work / f"{name}.log").open("wb")
        children[name] = subprocess.Popen(
            [sys.executable, "-m", "dataflows.commands", "flow", "run", name],
            cwd=ROOT,
            env={**os.environ, **own},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    metrics: dict[str, str] = {}
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while time.monotonic() < deadline and any(c.poll() is None for c in children.values()):
        for name, child in children.items():
            text = scrape(ports[name]) if child.poll() is None else None
            if text and f'component="{name}"' in text:
                metrics[name] = text
            upstream = UPSTREAM.get(name)
            if upstream and children[upstream].poll() is not None:
                (work / f"{name}.drain").touch()
        time.sleep(0.5)
    for name, child in children.items():
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        tail = (work / f"{name}.log").read_text(errors="replace")[-3000:]
        assert child.returncode == 0, f"{name} exited {child.returncode}\n{tail}"
    return Run(env=env, port=clickhouse_port, metrics=metrics)


def test_ticks_from_a_docs_only_producer_are_traded_and_stored_over_http(run: Run) -> None:
    client = open_client(server_url(run.port, "hfl_dashboard"), readonly=True)
    counts = client.query(
        "SELECT (SELECT count() FROM ticks FINAL), (SELECT count() FROM orders FINAL), "
        "(SELECT count() FROM fills FINAL), (SELECT count() FROM dlq FINAL)"
    ).result_rows[0]
    ticks, orders, fills, dead = counts
    assert (ticks, dead) == (TICKS, 0)
    assert orders > 0
    assert fills > 0


def test_each_flow_served_its_own_metrics_endpoint(run: Run) -> None:
    assert set(run.metrics) == set(IDLE_EXIT_S)
    for name, text in run.metrics.items():
        assert f'hfl_process_heartbeat_seconds{{component="{name}"}}' in text
    assert "hfl_persist_rows_total" in run.metrics["persist"]
    assert "hfl_pipeline_records_in_total" in run.metrics["trading"]


def test_hfl_sql_runs_as_the_read_only_sql_user(run: Run) -> None:
    env = {**run.env, "HFL_CLICKHOUSE_URL": server_url(run.port, SQL_USER[0])}
    rows = json.loads(
        hfl(env, "sql", "SELECT count() AS n FROM fills FINAL", "--format", "json").stdout
    )
    assert rows[0]["n"] > 0
    refused = hfl(env, "sql", "DROP TABLE fills", check=False)
    assert refused.returncode != 0  # the console's guard or the read-only session refuses it
    assert (
        json.loads(hfl(env, "sql", "SELECT count() AS n FROM fills", "--format", "json").stdout)[0][
            "n"
        ]
        > 0
    )


def test_a_wrong_password_is_refused_by_the_server(run: Run) -> None:
    client_error = None
    try:
        open_client(server_url(run.port, "hfl_dashboard", "wrong")).query("SELECT 1")
    except Exception as exc:  # clickhouse-connect's DatabaseError carrying code 516
        client_error = str(exc)
    assert client_error is not None and "516" in client_error


def test_dashboard_reads_the_server_and_exports_derived_metrics(run: Run) -> None:
    port = free_port()
    # Read-only pages without an API key (loopback only); keys are security's tests.
    env = {**run.env, "HFL_DASHBOARD__PORT": str(port), "HFL_DASHBOARD__OPEN_READ": "true"}
    board = subprocess.Popen(
        # The ticks carry 2023 event times, before the run's wall-clock start: show all rows.
        [sys.executable, "-m", "dataflows.commands", "dashboard", "--since-ns", "1"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline, positions, metrics = time.monotonic() + 90, None, ""
        while time.monotonic() < deadline:
            assert board.poll() is None, "the dashboard exited"
            probe = hfl(env, "probe", f"http://127.0.0.1:{port}/health/live", check=False)
            if probe.returncode == 0:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/positions") as page:
                    positions = json.loads(page.read())
                metrics = scrape(port) or ""
                if positions and "hfl_trading_equity_usd" in metrics:
                    break
            time.sleep(1)
        assert positions, "no positions read from the server"
        assert "hfl_trading_equity_usd" in metrics
    finally:
        os.killpg(board.pid, signal.SIGTERM)
        board.wait(timeout=30)


def test_topics_job_applies_the_partition_setting(kafka_bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient

    prefix = f"dm-parts-{uuid.uuid4().hex[:8]}."
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_KAFKA__TICKS_PARTITIONS": "3",
    }
    hfl(env, "topics", "create")
    topics = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=15).topics
    assert len(topics[prefix + "md.ticks"].partitions) == 3
    assert len(topics[prefix + "hfl.orders"].partitions) == 1
