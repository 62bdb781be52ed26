"""R4: the broker paused (SIGSTOP, 10 s, then SIGCONT) five times during a run.

Nothing may be lost or duplicated: every table equals the golden run's. Time to
recover: from SIGCONT until the trading flow emits output for a later tick than
anything before the pause.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from connectors.topic import PREDICTIONS
from tests.chaos.harness import (
    Dump,
    PrivateBroker,
    Run,
    Tail,
    compare_tables,
    dump,
    kill_points,
    percentile_s,
    tick_times,
)

PAUSES = 5
PAUSE_S = 10.0


def pause_at(broker: PrivateBroker, run: Run, tail: Tail, at_ts: int) -> float:
    """Pause the broker once `tail` reached `at_ts`; return seconds from SIGCONT to progress."""
    deadline = time.monotonic() + 300
    tail.advance_past(at_ts - 1, deadline, run.logs)
    os.kill(broker.pid(), signal.SIGSTOP)
    try:
        time.sleep(PAUSE_S)
    finally:
        os.kill(broker.pid(), signal.SIGCONT)
    resumed = time.monotonic()
    # The harness's own consumer must not be what stalls after the pause.
    tail.reconnect()
    tail.advance_past(tail.max_ts, deadline, run.logs)
    return time.monotonic() - resumed


def test_broker_paused_five_times_loses_and_duplicates_nothing(
    private_broker: PrivateBroker,
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    golden: Dump,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    run = Run("r4", private_broker.bootstrap, tmp_path_factory.mktemp("r4"), len(lines))
    run.prepare(lines)
    for name in ("persist", "gateway", "trading"):
        run.start(name)  # a pause is no end: each flow ends at its writers' markers
    times = tick_times(lines)
    tail = Tail(run.bootstrap, run.prefix + PREDICTIONS)
    try:
        recovery = [
            pause_at(private_broker, run, tail, times[offset])
            for offset in kill_points(len(lines), PAUSES, seed=4)
        ]
    finally:
        tail.close()
    codes = run.finish()
    assert all(code == 0 for code in codes.values()), f"{codes}\n{run.logs()}"
    tables = dump(run.store)
    figures, differing = compare_tables(golden, tables)
    record(
        "R4-pause",
        figures
        | {
            "pauses": PAUSES,
            "pause_s": PAUSE_S,
            "differing_tables": differing,
            "recovery_s": [round(r, 3) for r in recovery],
            "recovery_s_p50": percentile_s(recovery, 50),
            "recovery_s_p99": percentile_s(recovery, 99),
        },
    )
    assert differing == []
