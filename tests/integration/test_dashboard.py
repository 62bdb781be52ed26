"""The dashboard against the real broker, a running persist flow and its chDB store.

Ticks whose ingest time is two minutes old go through the persist flow; the dashboard
(served by uvicorn on a free port, as `hfl dashboard` does) reads them through the
persist flow's query endpoint, fires a `stale_data` alert that travels Kafka → persist
→ the `alerts` table, and its kill switch publishes a command and an audit record.
"""

from __future__ import annotations

import http.client
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import uvicorn
from support.loopback import free_port

from connectors.codec import encode
from connectors.feeds.publisher import publish
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.reader import read_log
from connectors.keyfile import WatchedKeyRing
from connectors.topic import CONTROL, TICKS
from dashboard.app import create_app
from dashboard.config import AlertThresholds, DashboardConfig
from dashboard.publisher import Publisher
from dataflows.ops.control import publish_control
from dataflows.ops.process import Child, start_flow, stop
from dataflows.settings import load_settings
from risk.access import Role
from sinks.query import QueryError, read_port_file, reader

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STALE_BY_NS = 120 * 1_000_000_000


@dataclass(frozen=True)
class Board:
    """A running dashboard and what it reads."""

    port: int
    bootstrap: str
    prefix: str
    query: Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()

    def post(self, path: str, body: dict[str, object], key: str = "") -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json", "X-Hfl-Key": key}
        connection.request("POST", path, body=orjson.dumps(body), headers=headers)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read())


def wait_for(condition: Callable[[], object], what: str, timeout_s: float = 60.0) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (QueryError, OSError):
            result = None  # not up yet
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stale_ticks(count: int) -> list[bytes]:
    """Simulated ticks whose event and ingest times are two minutes in the past."""
    config = SimulationConfig(
        symbols=("AAPL", "MSFT"),
        seed=3,
        ticks_per_second=50.0,
        start_ns=time.time_ns() - STALE_BY_NS,
    )
    return [encode(record) for record in simulate(config, count)]


@pytest.fixture(scope="module")
def persist(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A persist flow on a fresh topic namespace and its own store, running until the end."""
    tmp_path = tmp_path_factory.mktemp("dashboard")
    prefix = f"board-{uuid.uuid4().hex[:8]}."
    url = f"chdb://{tmp_path / 'clickhouse'}"
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": url,
        "HFL_TRADING__INSTRUMENTS": "AAPL,MSFT",
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    child: Child = start_flow("persist", settings, tmp_path, env)
    # The sink (and the query endpoint with it) is built when the first rows arrive.
    publish(stale_ticks(200), CheckedProducer(kafka_bootstrap), prefix + TICKS)
    try:
        wait_for(lambda: read_port_file(url), "the persist flow's query endpoint")
        yield {"url": url, "prefix": prefix, "settings": settings}
    finally:
        stop(child)


@pytest.fixture(scope="module")
def board(persist: dict, kafka_bootstrap: str) -> Iterator[Board]:
    """The dashboard app on uvicorn in a thread, reading the persist flow's store."""
    query = reader(persist["url"])
    wait_for(lambda: query("SELECT count() FROM ticks")[1][0][0] == 200, "ticks persisted")
    config = DashboardConfig(
        clickhouse_url=persist["url"],
        bootstrap=kafka_bootstrap,
        topic_prefix=persist["prefix"],
        instruments=("AAPL", "MSFT"),
        models=("logistic",),
        max_gross_exposure=250_000.0,
        max_position=5_000.0,
        open_read=True,  # GETs without a key: loopback only
        port=free_port(),
        refresh_s=0.5,
        since_ns=time.time_ns() - 2 * STALE_BY_NS,
        alerts=AlertThresholds(stale_data_s=5.0),
    )
    settings = persist["settings"]
    app = create_app(
        config,
        query,
        Publisher(kafka_bootstrap, persist["prefix"]),
        lambda action, reason, token: (
            publish_control(settings, action, reason, "", token=token).command_id
        ),
        ring=WatchedKeyRing(settings.security.keys_file).ring,
        console=reader(persist["url"], console=True),
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    result = Board(config.port, kafka_bootstrap, persist["prefix"], query)
    try:
        wait_for(lambda: result.get("/health/live")[0] == 200, "the dashboard")
        yield result
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_stale_market_data_fires_an_alert_that_lands_in_clickhouse(board: Board) -> None:
    rows = wait_for(
        lambda: board.query(
            "SELECT name, severity, source, subject FROM alerts FINAL WHERE name = 'stale_data'"
        )[1],
        "the stale_data alert in the alerts table",
    )
    assert rows == [("stale_data", "critical", "dashboard", "market_data")]


def test_stale_market_data_fails_readiness_but_not_liveness(board: Board) -> None:
    status, body = board.get("/health/ready")
    checks = {check["name"]: check["ok"] for check in orjson.loads(body)["checks"]}
    assert status == 503
    assert checks["market_data"] is False
    assert checks["broker"] is True
    assert checks["clickhouse"] is True
    assert board.get("/health/live")[0] == 200


def test_metrics_endpoint_exports_health_alerts_and_pipeline_state(board: Board) -> None:
    wait_for(
        lambda: b'hfl_alerts_fired_total{name="stale_data"} 1.0' in board.get("/metrics")[1],
        "the fired-alert counter",
    )
    text = board.get("/metrics")[1].decode()
    assert 'hfl_health_check_up{check="market_data"} 0.0' in text
    assert "hfl_pipeline_ticks_stored_total 200.0" in text
    assert 'hfl_risk_trading_state{state="active"} 1.0' in text


def test_snapshot_sections_serve_json(board: Board) -> None:
    status, body = board.get("/api/pipeline")
    assert status == 200
    assert orjson.loads(body)["ticks"] == 200
    assert board.get("/api/nonsense")[0] == 404


def test_kill_switch_with_wrong_or_viewer_key_is_refused(
    board: Board, api_keys: dict[Role, str]
) -> None:
    status, body = board.post("/api/control", {"action": "kill"}, key="hfl.guess.a.b")
    assert (status, body["error"]) == (401, "unknown, revoked or wrong API key")
    status, body = board.post("/api/control", {"action": "kill"}, key=api_keys[Role.VIEWER])
    assert status == 403 and "may not kill" in body["error"]


def test_kill_switch_publishes_signed_command_and_audit_record(
    board: Board, api_keys: dict[Role, str]
) -> None:
    status, body = board.post(
        "/api/control",
        {"action": "kill", "reason": "test", "actor": "spoofed"},
        key=api_keys[Role.TRADER],
    )
    assert status == 200
    commands = [
        orjson.loads(c["payload"]) for c in read_log(board.bootstrap, board.prefix + CONTROL)
    ]
    assert [(c["action"], c["actor"], c["command_id"]) for c in commands] == [
        ("kill", "pytest-trader", body["command_id"])
    ]
    audit = wait_for(
        lambda: board.query(
            "SELECT action, actor, subject, reason FROM audit FINAL WHERE action = 'kill'"
        )[1],
        "the audit record",
    )
    assert audit == [("kill", "pytest-trader", "paper-1", "test")]


def test_sql_console_is_read_only(board: Board, api_keys: dict[Role, str]) -> None:
    key = api_keys[Role.TRADER]
    status, body = board.post("/api/sql", {"sql": "SELECT count() AS n FROM ticks"}, key=key)
    assert (status, body["columns"], body["rows"]) == (200, ["n"], [[200]])
    status, body = board.post("/api/sql", {"sql": "DROP TABLE ticks"}, key=key)
    assert status == 403
    assert "only SELECT" in body["error"]
    status, body = board.post("/api/sql", {"sql": "SELECT 1"}, key=api_keys[Role.VIEWER])
    assert status == 403
