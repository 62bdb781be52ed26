"""Per-call stage timings for the pipeline bench; off (one attribute check) unless asked.

With `HFL_STAGE_LOG=<path>` in a process's environment, `record(stage, started_ns,
ended_ns, items, ...)` keeps one small tuple per call (a batch through a stage, not a
tick) in memory and the process writes them at exit to `<path>.<pid>` as JSON lines
`[stage, started_ns, ended_ns, items, age_ns]` (wall clock, so processes compare). The
bench (`dataflows.bench.stages`) reads them back and turns them into a latency
breakdown per stage. Without the variable nothing is kept: `record` returns at once.

A stage that knows how old its input is (the source: now minus the records' Kafka
timestamps, i.e. feed send -> broker -> this poll) passes `age_ns`, the mean age of the
batch's items at `started_ns`.

Timing a step: `started = stage.now()` before, `stage.record("features", started,
stage.now(), len(batch))` after (`now` is `time.time_ns`).
"""

from __future__ import annotations

import atexit
import os
import time
from pathlib import Path

from connectors.codec import dumps

ENV = "HFL_STAGE_LOG"
now = time.time_ns
_LIMIT = 2_000_000  # calls kept at most (about 100 MB): a bench run stays far below


class _Log:
    path: str | None = os.environ.get(ENV) or None
    rows: list[tuple[str, int, int, int, int | None]] = []


def enabled() -> bool:
    """True when this process keeps stage timings."""
    return _Log.path is not None


def record(
    stage: str, started_ns: int, ended_ns: int, items: int, age_ns: int | None = None
) -> None:
    """Keep one call's timing (a no-op unless `HFL_STAGE_LOG` is set)."""
    if _Log.path is None or len(_Log.rows) >= _LIMIT:
        return
    _Log.rows.append((stage, started_ns, ended_ns, items, age_ns))


def _write() -> None:
    if _Log.path is None or not _Log.rows:
        return
    target = Path(f"{_Log.path}.{os.getpid()}")
    target.write_bytes(b"\n".join(dumps(list(row)) for row in _Log.rows))


atexit.register(_write)
