"""`hfl backtest` through the Kafka flows and in process give byte-identical ledgers.

The same seeded input runs twice as a user would run it: once with `--transport kafka`
(the broker, the three flows as processes, a bounded run) and once in process (the
flows' step functions in one loop, the persist flow under Bytewax in the same process).
Each run's decisions, orders, fills, order events, positions and P&L rows are read
back from its own ClickHouse store; their digests (sha256 of every row, all columns
but the insert time, in key order) must be equal, and the run must have traded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARGS = (
    "--simulate", "8000", "--rate", "200", "--seed", "11",
    "--set", "model.min_labelled=20", "--set", "model.horizon_s=1",
    "--set", "model.enter_long=0.51", "--set", "model.enter_short=0.49",
    "--set", "model.signal.engine=hysteresis",
)  # fmt: skip


def backtest(tmp_path: Path, env: dict[str, str], transport: str) -> dict[str, object]:
    run_id = f"parity-{transport}"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "dataflows.commands",
            "backtest",
            *ARGS,
            "--transport",
            transport,
            "--run-id",
            run_id,
            "--json",
            "--store",
            str(tmp_path / transport / "clickhouse"),
        ],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    return json.loads(line)  # type: ignore[no-any-return]


def test_kafka_and_in_process_backtests_give_identical_ledgers(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_CONFIG_DIR": str(ROOT / "config"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    kafka = backtest(tmp_path, env, "kafka")
    inprocess = backtest(tmp_path, env, "inprocess")

    assert kafka["ticks"] == inprocess["ticks"] == 8000
    assert kafka["ledger"] == inprocess["ledger"]
    ledger = inprocess["ledger"]
    assert isinstance(ledger, dict)
    for table in ("orders", "fills", "pnl", "risk_decisions"):
        rows = int(ledger[table].split("(")[1].split()[0].replace(",", ""))
        assert rows > 0, (table, ledger)
