"""Where a restart's time goes, read from the restarted flow's own log lines.

A flow logs `flow starting` (with the process age: interpreter start and imports),
`source resumed` per input (after Bytewax loaded its recovery state and the resume
check passed; `check_s` is the check alone) and `first records` per input. Between a
`kill -9` and the restarted flow's output passing the pre-kill point, the phases are:

- `start_s`: kill until `flow starting` (spawn, interpreter, imports, settings);
- `resume_s`: until the last `source resumed` (building the flow, loading snapshots,
  the resume check; `check_s` of it is the check);
- `first_records_s`: until the first `first records` (first fetch);
- `catch_up_s`: until the output passed the pre-kill point (reprocessing the epoch
  since the last snapshot, then new work).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import orjson

PHASES = ("start_s", "resume_s", "check_s", "first_records_s", "catch_up_s")


def restart_phases(
    log: Path, offset: int, killed_at: float, caught_up_at: float
) -> dict[str, float]:
    """Phases of the restart whose log lines start at byte `offset` of `log` (wall times)."""
    seen: dict[str, list[dict[str, object]]] = {}
    with log.open("rb") as handle:
        handle.seek(offset)
        for line in handle:
            if line.startswith(b"{"):
                entry = orjson.loads(line)
                seen.setdefault(str(entry.get("msg")), []).append(entry)
    starting = _at(seen["flow starting"][0])
    resumed = max(_at(e) for e in seen["source resumed"])
    first = min((_at(e) for e in seen.get("first records", [])), default=caught_up_at)
    return {
        "start_s": round(starting - killed_at, 3),
        "resume_s": round(resumed - starting, 3),
        "check_s": max(float(e["check_s"]) for e in seen["source resumed"]),  # type: ignore[arg-type]
        "first_records_s": round(max(0.0, first - resumed), 3),
        "catch_up_s": round(caught_up_at - max(first, resumed), 3),
    }


def phase_percentiles(phases: list[dict[str, float]], q: float) -> dict[str, float]:
    """Percentile `q` of each phase over restarts."""
    return {name: round(float(np.percentile([p[name] for p in phases], q)), 3) for name in PHASES}


def _at(entry: dict[str, object]) -> float:
    return datetime.fromisoformat(str(entry["ts"])).timestamp()
