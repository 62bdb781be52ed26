"""`hfl models` promote and rollback round-trip through the running flows into ClickHouse.

The trading and persist flows run (recovery on) while a simulated stream arrives in
three parts. Between the parts, `hfl models promote linear` and then `hfl models
rollback` are sent, and the test waits until the trading flow's answer to each (its
audit events) is readable in the `audit` table through the persist flow's query
server: the command took effect in the running flow before the next ticks. After the
flows drain and stop, `hfl models list|show` and SQL read back who was champion when,
from `model_metrics`, `model_versions` and `audit`.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from test_end_to_end import ROOT, bounded, hfl, publish, sql  # shared end-to-end helpers

from connectors.codec import encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from dataflows.ops.process import start_flow, stop, wait_all
from dataflows.settings import load_settings
from risk.access import Role
from sinks.query import read_port_file

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
PART_TICKS = 2_000
# Long enough to outlast the pauses between parts (waiting for audit events).
AUDIT_TIMEOUT_S = 90.0
FLOW_TIMEOUT_S = 240.0


def wait_for_audit(env: dict[str, str], action: str, count: int) -> None:
    """Poll the `audit` table (through the running persist flow) for `count` `action` rows."""
    deadline = time.monotonic() + AUDIT_TIMEOUT_S
    query = f"SELECT count() AS n FROM audit FINAL WHERE action = '{action}'"
    while time.monotonic() < deadline:
        # Only through the query server: opening the store here would lock persist out.
        if read_port_file(env["HFL_CLICKHOUSE_URL"]) and sql(env, query)[0]["n"] >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {count} {action} audit events within {AUDIT_TIMEOUT_S}s")


def test_promote_then_rollback_round_trip_through_flows_into_clickhouse(
    kafka_bootstrap: str, tmp_path: Path, api_keys: dict[Role, str]
) -> None:
    prefix = f"models-{uuid.uuid4().hex[:8]}."
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "HFL_TRADING__INSTRUMENTS": ",".join(SYMBOLS),
        "HFL_MODEL__CHALLENGERS": "linear",
        "HFL_MODEL__PROMOTION__ENABLED": "false",
        "HFL_MODEL__HORIZON_S": "1",
        "HFL_MODEL__METRICS_INTERVAL_S": "2",
        # No gateway runs here: a gate waiting for its markers would end by giving up.
        "HFL_RISK__FILL_SYNC": "arrival",
        "HFL_RUN_ID": prefix.rstrip("."),
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    config = SimulationConfig(
        symbols=SYMBOLS, seed=5, ticks_per_second=100.0, start_ns=1_700_000_000_000_000_000
    )
    lines = [encode(record) for record in simulate(config, 3 * PART_TICKS)]
    parts = [lines[i : i + PART_TICKS] for i in range(0, len(lines), PART_TICKS)]
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    run = bounded(env, ("trading", "persist"))
    flows = [start_flow(name, settings, tmp_path, run) for name in ("trading", "persist")]
    try:
        for n, part in enumerate(parts):
            (tmp_path / f"part{n}").mkdir()
            publish(tmp_path / f"part{n}", part, env, end=n == len(parts) - 1)
            if n == 0:
                as_risk = env | {"HFL_API_KEY": api_keys[Role.RISK]}
                hfl(as_risk, "models", "promote", "linear", "--reason", "shadow")
                wait_for_audit(env, "model_promoted", len(SYMBOLS))
            elif n == 1:
                hfl(env, "models", "rollback", "--reason", "baseline")  # the admin key
                wait_for_audit(env, "model_rolled_back", len(SYMBOLS))
        codes = wait_all(flows, FLOW_TIMEOUT_S)
    finally:
        for flow in flows:
            stop(flow)
    assert codes == {"trading": 0, "persist": 0}, [flow.tail() for flow in flows]

    reigns = sql(
        env,
        "SELECT instrument, model, min(ts_event) AS first, max(ts_event) AS last "
        "FROM model_metrics FINAL WHERE role = 'champion' GROUP BY instrument, model",
    )
    by_model: dict[str, dict[str, tuple[str, str]]] = {}
    for row in reigns:
        by_model.setdefault(str(row["model"]), {})[str(row["instrument"])] = (
            str(row["first"]),
            str(row["last"]),
        )
    for name in SYMBOLS:
        linear_first, linear_last = by_model["linear"][name]
        _, logistic_last = by_model["logistic"][name]
        assert linear_first <= linear_last < logistic_last  # champion again after the rollback
    audit = sql(
        env,
        "SELECT actor, action, subject, JSONExtractString(detail, 'instrument') AS instrument "
        "FROM audit FINAL WHERE startsWith(action, 'model_') ORDER BY ts_event, instrument",
    )
    assert [(r["actor"], r["action"], r["subject"], r["instrument"]) for r in audit] == [
        ("pytest-risk", "model_promoted", "linear", "AAPL"),
        ("pytest-risk", "model_promoted", "linear", "MSFT"),
        ("pytest-admin", "model_rolled_back", "logistic", "AAPL"),
        ("pytest-admin", "model_rolled_back", "logistic", "MSFT"),
    ]
    listing = hfl(env, "models", "list")
    assert "linear" in listing and "challenger" in listing
    shown = hfl(env, "models", "show", "linear")
    assert "model_promoted" in shown and "model_rolled_back" in shown
    versions = sql(env, "SELECT count() AS n FROM model_versions FINAL WHERE model = 'linear'")
    assert versions[0]["n"] >= len(SYMBOLS)
