"""A recovery store of another state version stops the trading flow, on the real broker.

The trading flow runs with recovery on over the first half of a simulated stream and
drains; its risk gate's snapshot is then re-tagged with the state version older code
would have written (the state itself untouched). Resumed over the second half, the
flow must exit non-zero with `StateVersionError` naming the step, both versions and
the way out, and send no order.
"""

from __future__ import annotations

import os
import pickle
import sqlite3
import uuid
from pathlib import Path

import pytest
from test_end_to_end import ROOT, bounded, publish, run_flows
from test_end_to_end import run_env as end_to_end_env

from connectors.codec import encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import ORDERS
from dataflows.flows.account import ACCOUNT_STATE_VERSION
from dataflows.ops.process import start_flow, wait_all
from dataflows.settings import load_settings

pytestmark = pytest.mark.integration

STEP = "trading.risk_gate"
FLOW_TIMEOUT_S = 240


def retag(store: Path, step: str, version: int) -> int:
    """Give every snapshot of `step` in `store` state version `version`; return how many."""
    db = sqlite3.connect(store / "part-0.sqlite3")
    try:
        rows = db.execute(
            "SELECT rowid, ser_change FROM snaps WHERE step_id = ? AND ser_change IS NOT NULL",
            (step,),
        ).fetchall()
        for rowid, blob in rows:
            _, state = pickle.loads(blob)
            db.execute(
                "UPDATE snaps SET ser_change = ? WHERE rowid = ?",
                (pickle.dumps((version, state)), rowid),
            )
        db.commit()
    finally:
        db.close()
    return len(rows)


def test_resume_from_a_snapshot_of_another_state_version_fails_closed(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"version-{uuid.uuid4().hex[:8]}."
    env = end_to_end_env(kafka_bootstrap, prefix, tmp_path / "clickhouse") | {
        "HFL_TRADING__INSTRUMENTS": "AAPL,MSFT",
        "HFL_RISK__FILL_SYNC": "arrival",  # no gateway runs here
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    config = SimulationConfig(
        symbols=("AAPL", "MSFT"), seed=3, ticks_per_second=150.0, start_ns=1_700_000_000_000_000_000
    )
    lines = [encode(record) for record in simulate(config, 8_000)]
    publish(tmp_path, lines[:4_000], env)
    run_flows(("trading",), env, tmp_path)
    orders = len(read_log(kafka_bootstrap, prefix + ORDERS))
    assert orders > 0  # the gate has state worth resuming
    assert retag(tmp_path / "recovery" / "trading", STEP, ACCOUNT_STATE_VERSION - 1) > 0

    (tmp_path / "more").mkdir()
    publish(tmp_path / "more", lines[4_000:], env)
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    resumed = start_flow("trading", settings, tmp_path, bounded(env, ("trading",)))
    code = wait_all([resumed], FLOW_TIMEOUT_S)["trading"]

    assert code not in (0, None), resumed.tail()
    log = resumed.log.read_text()
    assert "StateVersionError" in log
    assert (
        f"recovery snapshot of step {STEP!r} has state version {ACCOUNT_STATE_VERSION - 1},"
        f" this code expects {ACCOUNT_STATE_VERSION}"
    ) in log
    assert "move their recovery stores (under var/recovery by default) aside" in log
    assert len(read_log(kafka_bootstrap, prefix + ORDERS)) == orders
