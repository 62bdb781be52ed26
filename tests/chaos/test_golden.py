"""R0: two fault-free runs of the replay give identical tables (the premise of R1-R5)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.chaos.harness import Dump, Run, compare_tables, dump, run_clean


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
    figures, differing = compare_tables(golden, again)
    record("R0", {"ticks": len(lines), **figures, "differing_tables": differing})
    assert differing == []
