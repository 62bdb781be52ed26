"""R0: two fault-free runs of the replay give identical tables (the premise of R1-R5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.chaos.harness import FILL_TIMING_DEPENDENT, TABLES, Dump, Run, compare, dump, run_clean


def test_two_fault_free_runs_give_identical_tables(
    kafka_bootstrap: str,
    tmp_path: Path,
    lines: list[bytes],
    golden: Dump,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    run = Run("again", kafka_bootstrap, tmp_path, len(lines))
    run_clean(run, lines)
    again = dump(run.store)
    differences = {
        table: compare(golden, again, table)
        for table in TABLES
        if table not in FILL_TIMING_DEPENDENT
    }
    timing = {table: compare(golden, again, table) for table in FILL_TIMING_DEPENDENT}
    record(
        "R0",
        {
            "ticks": len(lines),
            "rows": {table: d.rows for table, d in differences.items()},
            "lost": sum(d.lost for d in differences.values()),
            "duplicated": sum(d.duplicated for d in differences.values()),
            "mismatched": sum(d.mismatched + d.extra for d in differences.values()),
            "differing_tables": sorted(t for t, d in differences.items() if not d.clean),
            "fill_timing_dependent_mismatched": {t: d.mismatched for t, d in timing.items()},
        },
    )
    assert {table: d for table, d in differences.items() if not d.clean} == {}
