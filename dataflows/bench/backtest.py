"""`hfl bench backtest`: in-process backtest ticks per second on a fixed replay, and the
ratio against the Kafka flows on the same input.

The input is fixed: `ticks` simulated ticks (seed 7, 500 ticks per event second, the ten
configured instruments). Each transport runs as `hfl backtest --json` in its own process
and its own store, in the same minutes: first in process, then through the broker and
the three flows. The time is the run's own (`BacktestResult.seconds`): in process from the
first batch to the last row written; through Kafka from the flows' start (their start-up
included: a live run pays it too) to the last flow's exit. Both runs' ledgers (decisions,
orders, fills, order events, positions, P&L) are compared and the answer printed.

On a loaded machine wall time favours the transport with more processes (each gets its
share of the cores), so the CPU seconds of each command and every process it waited for
are printed too (`cpu_ratio`: Kafka's CPU over in-process CPU for the same input; the
broker, when the backtest started it, is not among them).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SEED = 7
RATE = 500.0


def _run(root: Path, work: Path, transport: str, ticks: int, persist: bool) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "dataflows.commands", "backtest",
        "--simulate", str(ticks), "--seed", str(SEED), "--rate", str(RATE),
        "--transport", transport, "--run-id", f"bench-{transport}", "--json",
        "--store", str(work / transport / "clickhouse"),
    ]  # fmt: skip
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        command,
        cwd=work,
        env={**os.environ, "PYTHONPATH": path, "HFL_CONFIG_DIR": str(root / "config")},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{transport} backtest failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    result: dict[str, Any] = json.loads(line)
    # CPU of the command and every process it waited for (flows, the persist child),
    # start-up and imports included: what the run cost, whatever else ran beside it.
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def bench_backtest(root: Path, *, ticks: int) -> dict[str, Any]:
    """Run both transports on the same `ticks`; print and return the figures."""
    with tempfile.TemporaryDirectory(prefix="hfl-bench-backtest-") as tmp:
        work = Path(tmp)
        inprocess = _run(root, work, "inprocess", ticks, True)
        kafka = _run(root, work, "kafka", ticks, True)
    in_rate = inprocess["ticks"] / inprocess["seconds"]
    kafka_rate = kafka["ticks"] / kafka["seconds"]
    figures = {
        "ticks": ticks,
        "inprocess_s": inprocess["seconds"],
        "inprocess_ticks_per_s": round(in_rate, 1),
        "kafka_s": kafka["seconds"],
        "kafka_ticks_per_s": round(kafka_rate, 1),
        "ratio": round(in_rate / kafka_rate, 2),
        "inprocess_cpu_s": round(inprocess["cpu_s"], 2),
        "kafka_cpu_s": round(kafka["cpu_s"], 2),
        "cpu_ratio": round(kafka["cpu_s"] / inprocess["cpu_s"], 2),
        "same_ledgers": inprocess["ledger"] == kafka["ledger"],
        "ledger": inprocess["ledger"],
    }
    print(json.dumps(figures), flush=True)
    return figures
