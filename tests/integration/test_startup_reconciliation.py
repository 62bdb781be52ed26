"""`hfl up` reconciles before trading resumes: a store that knows an order the log lost
starts the trading flow halted (`risk.start_halted`): the gate is HALTED before it reads
any input, so no order is sent even by a model that signals on the first ticks, and the
kill's audit event, the alerts and the state change reach ClickHouse."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from connectors.codec import is_progress_marker
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import ALERTS, AUDIT, CONTROL, DECISIONS, ORDERS, RISK_EVENTS
from sinks.query import QueryError, query
from tests.integration.test_up import start_up, up_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# An order the store holds and the log never had: as if the log was lost after the
# order went out. Written in a child process (chDB: one process per store).
_PLANT = """
import sys
from decimal import Decimal
from connectors.codec import encode, loads
from risk.domain import Order, OrderType, Side
from sinks.client import connect
from sinks.migration import migrate
from sinks.writer import BatchWriter
client = connect(sys.argv[1])
migrate(client)
order = Order(client_order_id="lost-order", signal_id="s", account="paper-1",
              instrument="AAPL", side=Side.BUY, quantity=Decimal(1),
              order_type=OrderType.MARKET, limit_price=None, ts_event=1, ts_init=1)
BatchWriter(client).write("orders", [loads(encode(order))])
"""


def records(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return read_log(bootstrap, topic, timeout_s=10)


def wait_for_record(bootstrap: str, topic: str, match: dict[str, str], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(match.items() <= r.items() for r in records(bootstrap, topic)):
            return True
        time.sleep(1.0)
    return False


def wait_for_rows(url: str, sql: str, timeout_s: float) -> list[tuple[Any, ...]]:
    """Rows of `sql` once there are any (through the persist flow's query server)."""
    deadline = time.monotonic() + timeout_s
    rows: list[tuple[Any, ...]] = []
    while time.monotonic() < deadline and not rows:
        try:
            rows = query(url, sql)[1]
        except QueryError:  # the table or the query server may not be up yet
            rows = []
        time.sleep(1.0)
    return rows


def test_up_halts_trading_before_it_resumes_when_the_store_knows_an_order_the_log_lost(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"recon-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix=prefix)
    env = up_env(
        kafka_bootstrap,
        prefix,
        tmp_path,
        HFL_MODEL__MIN_LABELLED="20",
        HFL_MODEL__HORIZON_S="1",
        HFL_MODEL__SIGNAL__ENGINE="hysteresis",
    )
    subprocess.run(
        [sys.executable, "-c", _PLANT, env["HFL_CLICKHOUSE_URL"]], cwd=ROOT, env=env, check=True
    )
    up = start_up(tmp_path, env, 5)
    try:
        halted = wait_for_record(
            kafka_bootstrap, prefix + RISK_EVENTS, {"state": "halted", "trigger": "kill"}, 120
        )
        denied = wait_for_record(
            kafka_bootstrap, prefix + DECISIONS, {"reason": "kill_switch"}, 120
        )
        stored = wait_for_rows(
            env["HFL_CLICKHOUSE_URL"],
            "SELECT actor, reason FROM audit FINAL WHERE action = 'kill'",
            60,
        )
        up.send_signal(signal.SIGTERM)
        up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    log = (tmp_path / "up.err").read_text(errors="replace")
    assert "MISMATCH: trading starts HALTED" in log, log[-3000:]
    assert halted and denied, log[-3000:]
    alerts = records(kafka_bootstrap, prefix + ALERTS)
    assert any(a["name"] == "reconciliation_mismatch" for a in alerts)
    audit = {a["action"]: a for a in records(kafka_bootstrap, prefix + AUDIT)}
    assert audit["startup_reconciliation"]["reason"] == "mismatch"
    assert '"orders_unknown_to_log":1' in audit["startup_reconciliation"]["detail"]
    kill = audit["kill"]
    assert kill["actor"] == "hfl up"
    assert kill["reason"].startswith("startup reconciliation mismatch: ")
    assert '"orders_unknown_to_log":1' in kill["reason"]
    assert any(a["name"] == "trading_start_halted" for a in alerts)
    # The halt is the gate's first state change, before its first decision: no kill on
    # hfl.control that a warm model could outrun.
    assert records(kafka_bootstrap, prefix + CONTROL) == []
    first = records(kafka_bootstrap, prefix + DECISIONS)
    assert first and all(d["reason"] == "kill_switch" for d in first)
    sent = records(kafka_bootstrap, prefix + ORDERS)
    assert [r for r in sent if not is_progress_marker(r)] == []  # markers only, no order
    assert stored == [("hfl up", kill["reason"])]
