"""Warm start end to end: checkpoints land in ClickHouse, a fresh flow continues from them.

Run A (trading and persist flows on the real broker and chDB) learns from a simulated
stream and checkpoints its models every 12 s of event time into `model_checkpoints`.
Run B is a fresh trading flow (its own namespace, no recovery snapshot) on the same
ticks with `model.warm_start=latest`: it reads A's newest checkpoints through the
running persist flow, verifies their digests and starts its models from them. From
the checkpoint on, B's predictions (fresh and labelled) equal A's, byte for byte.
A flow told to warm-start from a checkpoint whose stored blob was altered refuses to
start, naming the digest mismatch, and sends nothing. The same holds with a pooled
champion: then the pool writes one checkpoint (instrument `*`) holding the pooled
model and both instruments' model sets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from test_end_to_end import ROOT, bounded, hfl, publish, run_flows, sql
from test_end_to_end import run_env as end_to_end_env

from connectors import topic
from connectors.codec import encode, event_rows
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from dataflows.ops.process import start_flow, stop, wait_all
from dataflows.settings import load_settings
from sinks.query import read_port_file

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
TICKS = 6_000  # 30 s of event time: checkpoints at 12 s and 24 s
FLOW_TIMEOUT_S = 240.0
SERVER_TIMEOUT_S = 60.0


def run_env(bootstrap: str, prefix: str, store: Path, scope: str) -> dict[str, str]:
    return end_to_end_env(bootstrap, prefix, store) | {
        "HFL_TRADING__INSTRUMENTS": ",".join(SYMBOLS),
        "HFL_MODEL__CHALLENGERS": "hoeffding_tree",
        "HFL_MODEL__CHECKPOINT_INTERVAL_S": "12",
        "HFL_MODEL__PIPELINES__LOGISTIC__SCOPE": scope,
        # No gateway runs here: a gate waiting for its markers would end by giving up.
        "HFL_RISK__FILL_SYNC": "arrival",
    }


def by_instrument(records: list[dict[str, object]], after: dict[str, int]) -> dict[str, list]:
    """Predictions per instrument made after that instrument's checkpoint, in log order
    (a columnar record gives its rows: how rows share a record depends on batching)."""
    out: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in prediction_rows(records):
        name = str(row["instrument"])
        if int(row["ts_init"]) > after[name]:
            out[name].append(row)
    return dict(out)


def prediction_rows(records: list[dict[str, object]]) -> list[dict[str, Any]]:
    return [row for record in records for row in event_rows(topic.PREDICTIONS, record)]


# Copies the first checkpoint as id 'tampered' (older, so `latest` ignores it) with
# four characters of its blob changed: still base64, digest unchanged. Run in a child
# process, so the store is not left locked by this one.
TAMPER = """
import sys
from sinks.client import open_client
client = open_client(sys.argv[1])
client.command(
    "INSERT INTO model_checkpoints SELECT 'tampered', instrument, model, models, version_id,"
    " params_hash, code_version, seq, tick_id, size_bytes, sha256,"
    " concat(substring(blob, 1, 100), if(substring(blob, 101, 4) = 'AAAA', 'BBBB', 'AAAA'),"
    " substring(blob, 105)), ts_event - 1, ts_init, now64(3)"
    " FROM model_checkpoints FINAL ORDER BY ts_event LIMIT 1"
)
client.close()
"""


def tamper(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", TAMPER, url], cwd=ROOT, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def wait_for_query_server(url: str) -> None:
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    while read_port_file(url) is None:
        assert time.monotonic() < deadline, "the persist flow never served its store"
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("scope", "checkpointed_as"), [("per_instrument", SYMBOLS), ("pooled", ("*",))]
)
def test_fresh_flow_warm_started_from_clickhouse_checkpoint_predicts_like_the_running_one(
    kafka_bootstrap: str, tmp_path: Path, scope: str, checkpointed_as: tuple[str, ...]
) -> None:
    store = tmp_path / "clickhouse"
    config = SimulationConfig(
        symbols=SYMBOLS, seed=9, ticks_per_second=200.0, start_ns=1_700_000_000_000_000_000
    )
    lines = [encode(record) for record in simulate(config, TICKS)]
    prefix_a, prefix_b = (f"warm-{run}-{uuid.uuid4().hex[:6]}." for run in "ab")
    env_a = run_env(kafka_bootstrap, prefix_a, store, scope)
    env_b = run_env(kafka_bootstrap, prefix_b, store, scope) | {"HFL_MODEL__WARM_START": "latest"}
    for prefix, env, name in ((prefix_a, env_a, "a"), (prefix_b, env_b, "b")):
        create_topics(kafka_bootstrap, prefix=prefix)
        (tmp_path / name).mkdir()
        publish(tmp_path / name, lines, env)

    run_flows(("trading", "persist"), env_a, tmp_path / "a")

    checks = sql(
        env_a,
        "SELECT instrument, count() AS n, countIf(lower(hex(SHA256(base64Decode(blob))))"
        " = sha256) AS verified, max(toUnixTimestamp64Nano(ts_event)) AS last_ns"
        " FROM model_checkpoints FINAL GROUP BY instrument ORDER BY instrument",
    )
    assert [r["instrument"] for r in checks] == list(checkpointed_as)
    assert all(r["n"] >= 2 and r["verified"] == r["n"] for r in checks), checks
    last_ns = {str(r["instrument"]): int(r["last_ns"]) for r in checks}  # type: ignore[call-overload]
    checkpointed = {name: last_ns.get(name, last_ns.get("*", 0)) for name in SYMBOLS}
    listed = hfl(env_a, "models", "checkpoints")  # a table of ids, not an error
    assert "latest" not in listed and all(f"| {name} " in listed for name in checkpointed_as)
    tamper(env_a["HFL_CLICKHOUSE_URL"])

    settings_b = load_settings(ROOT / "config", env={**os.environ, **env_b})
    # Persist only serves the store to the warm start here: it runs until stopped, so a
    # slow start of the trading flows on a loaded machine never finds it gone.
    persist = start_flow("persist", settings_b, tmp_path / "b", env_b)
    try:
        wait_for_query_server(env_b["HFL_CLICKHOUSE_URL"])
        refused = start_flow(
            "trading", settings_b, tmp_path / "c", env_b | {"HFL_MODEL__WARM_START": "tampered"}
        )
        assert wait_all([refused], FLOW_TIMEOUT_S)["trading"] not in (0, None), refused.tail()
        assert "checkpoint digest mismatch" in refused.log.read_text()
        trading = start_flow("trading", settings_b, tmp_path / "b", bounded(env_b, ("trading",)))
        codes = wait_all([trading], FLOW_TIMEOUT_S)
    finally:
        stop(persist)
    assert codes == {"trading": 0}, trading.tail()
    assert f"warm start of {checkpointed_as[0]} from checkpoint" in trading.log.read_text()

    predictions = topic.PREDICTIONS
    expected = by_instrument(read_log(kafka_bootstrap, prefix_a + predictions), checkpointed)
    got = by_instrument(read_log(kafka_bootstrap, prefix_b + predictions), checkpointed)
    assert set(got) == set(SYMBOLS)
    for name in SYMBOLS:
        assert len(got[name]) > 500
        assert got[name] == expected[name]
    before = prediction_rows(read_log(kafka_bootstrap, prefix_b + predictions))
    assert all(int(r["ts_init"]) > checkpointed[str(r["instrument"])] for r in before)
