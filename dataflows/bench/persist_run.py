"""The persist flow after a pipeline bench run: its sustained rows per second and CPU.

`hfl bench pipeline --persist` runs this once the trading flow (and gateway) ended and
before the baseline: the persist flow, bounded, over everything the run wrote (its
`md.ticks` and every event topic), into a fresh embedded ClickHouse store of the run,
alone on the machine. It reads a backlog, so what it measures is its capacity:
`persist_rows_per_s` (rows written, from its own `hfl_persist_rows_total`, between its
first records and its exit) and `persist_cpu_us_per_tick` (its CPU over that span per
input tick). It keeps up when that capacity is at least the rate at which the measured
pipeline produced rows (`persist_rows_per_tick` x `ticks_per_s`): `persist_keeps_up`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from connectors.telemetry.metric import multiprocess_registry
from dataflows.bench.baseline import CpuSampler
from dataflows.ops.process import start_flow, stop
from dataflows.settings import Settings
from risk.domain.error import HflError

ROWS_METRIC = "hfl_persist_rows"


def run_persist(
    settings: Settings,
    run_dir: Path,
    env: dict[str, str],
    sampler: CpuSampler,
    *,
    ticks: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Run the persist flow over the run's topics to their end; its figures."""
    metrics = run_dir / "persist-metrics"
    metrics.mkdir(exist_ok=True)
    env = {
        **env,
        "HFL_CLICKHOUSE_URL": f"chdb://{(run_dir / 'clickhouse').resolve()}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
    }
    child = start_flow("persist", settings, run_dir, env, recovery=True)
    sampler.watch("persist", child.process.pid)
    first_ns = None
    deadline = time.monotonic() + timeout_s
    try:
        while child.process.poll() is None and time.monotonic() < deadline:
            if first_ns is None and "first records" in child.log.read_text(errors="replace"):
                first_ns = time.time_ns()
            time.sleep(0.1)
        ended_ns = time.time_ns()
        code = child.process.poll()
    finally:
        stop(child)
    if code != 0:
        state = "did not end" if code is None else f"exited with {code}"
        raise HflError(f"persist flow {state}; last log:\n{child.tail()}")
    rows = _rows_written(metrics)
    span_s = (ended_ns - first_ns) / 1e9 if first_ns is not None else None
    used = sampler.used_s("persist", first_ns, ended_ns) if first_ns is not None else None
    return {
        "persist_rows": rows,
        "persist_rows_per_tick": round(rows / ticks, 3) if ticks else None,
        "persist_s": round(span_s, 2) if span_s else None,
        "persist_rows_per_s": round(rows / span_s, 1) if span_s else None,
        "persist_cpu_us_per_tick": round(used * 1e6 / ticks, 1) if used and ticks else None,
    }


def _rows_written(directory: Path) -> int:
    """Rows the persist flow counted as written, over every table."""
    total = 0.0
    for family in multiprocess_registry(str(directory)).collect():
        if family.name == ROWS_METRIC:
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return int(total)
