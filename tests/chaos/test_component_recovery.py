"""R2: `kill -9` of the gateway or the persist flow at seeded points: tables equal golden.

The stack runs the replay with one flow killed at `HFL_CHAOS_KILLS` seeded progress
points (the trading flow's progress through the replay) and restarted from its
recovery store each time; then every table is compared with the golden run's, P&L,
positions and risk metrics included (fills are booked in event time, `risk.fill_sync`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connectors.topic import ORDER_EVENTS
from tests.chaos.harness import Dump, Run, compare_tables, dump, kill_repeatedly, percentile_s
from tests.chaos.phases import phase_percentiles

# What each killed flow writes, to time its catch-up (the persist flow writes no topic).
OUTPUT_TOPIC = {"gateway": ORDER_EVENTS, "persist": None}


@pytest.mark.parametrize("flow", ["gateway", "persist"])
def test_flow_killed_repeatedly_every_table_equals_golden(
    *,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    kills: int,
    golden: Dump,
    flow: str,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    run = Run(f"r2-{flow}", kafka_bootstrap, tmp_path_factory.mktemp(f"r2-{flow}"), len(lines))
    run.prepare(lines)
    for name in ("persist", "gateway", "trading"):
        run.start(name)
    done, reemitted = kill_repeatedly(
        run, flow, lines, kills, seed=2, output_topic=OUTPUT_TOPIC[flow]
    )
    tables = dump(run.store)
    figures, differing = compare_tables(golden, tables)
    recovery = [kill.recovery_s for kill in done if kill.recovery_s is not None]
    phases = [kill.phases for kill in done if kill.phases is not None]
    figures |= {
        "kills": len(done),
        "kill_tick_offsets": [kill.tick_offset for kill in done],
        "differing_tables": differing,
    }
    if recovery:
        figures |= {
            "reemitted_order_events_per_kill": reemitted,
            "recovery_s_p50": percentile_s(recovery, 50),
            "recovery_s_p99": percentile_s(recovery, 99),
            "recovery_phases_s_p50": phase_percentiles(phases, 50),
            "recovery_phases_s_p99": phase_percentiles(phases, 99),
        }
    record(f"R2-{flow}", figures)
    assert differing == []
