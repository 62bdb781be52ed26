"""R1 and R3: `kill -9` of the trading flow at seeded points loses and duplicates nothing.

The stack runs the replay with the trading flow killed at `HFL_CHAOS_KILLS` seeded
progress points and restarted from its recovery store each time; then every table is
compared with the golden run's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from connectors.topic import PREDICTIONS
from tests.chaos.harness import (
    TABLES,
    Dump,
    Kill,
    Run,
    compare,
    dump,
    kill_repeatedly,
    percentile_s,
)
from tests.chaos.phases import phase_percentiles

LAST_TICKS = 1_000


@dataclass(frozen=True, slots=True)
class KilledRun:
    """Tables of a run whose trading flow was killed repeatedly, and the kills."""

    tables: Dump
    kills: list[Kill]
    reemitted: list[int]


@pytest.fixture(scope="module")
def trading_killed(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], kills: int
) -> KilledRun:
    run = Run("r1", kafka_bootstrap, tmp_path_factory.mktemp("r1"), len(lines))
    run.prepare(lines)
    for name in ("persist", "gateway", "trading"):
        run.start(name)
    done, reemitted = kill_repeatedly(
        run, "trading", lines, kills, seed=1, output_topic=PREDICTIONS
    )
    return KilledRun(tables=dump(run.store), kills=done, reemitted=reemitted)


def test_trading_killed_repeatedly_orders_and_fills_equal_golden(
    golden: Dump, trading_killed: KilledRun, record: Callable[[str, dict[str, Any]], None]
) -> None:
    orders = compare(golden, trading_killed.tables, "orders")
    fills = compare(golden, trading_killed.tables, "fills")
    recovery = [kill.recovery_s for kill in trading_killed.kills if kill.recovery_s is not None]
    phases = [kill.phases for kill in trading_killed.kills if kill.phases is not None]
    record(
        "R1",
        {
            "kills": len(trading_killed.kills),
            "kill_tick_offsets": [kill.tick_offset for kill in trading_killed.kills],
            "orders": orders.rows,
            "fills": fills.rows,
            "lost": orders.lost + fills.lost,
            "duplicated": orders.duplicated + fills.duplicated + orders.extra + fills.extra,
            "mismatched": orders.mismatched + fills.mismatched,
            "reemitted_predictions_per_kill": trading_killed.reemitted,
            "other_tables_differing": sorted(
                table
                for table in TABLES
                if table not in ("orders", "fills")
                and not compare(golden, trading_killed.tables, table).clean
            ),
            "recovery_s": recovery,
            "recovery_s_p50": percentile_s(recovery, 50),
            "recovery_s_p99": percentile_s(recovery, 99),
            "recovery_phases_s_p50": phase_percentiles(phases, 50),
            "recovery_phases_s_p99": phase_percentiles(phases, 99),
        },
    )
    assert orders.rows > 0
    assert fills.rows > 0
    assert orders.clean, orders
    assert fills.clean, fills


def last_ticks(tables: Dump, table: str, count: int) -> dict[str, bytes]:
    """Rows of `table` for the last `count` ticks of the replay, encoded, by tick id."""
    ticks = sorted(tables.tables["ticks"], key=lambda row: (row["ts_event"], row["seq"]))
    wanted = {row["tick_id"] for row in ticks[-count:]}
    return {
        f"{row['tick_id']}/{row.get('model', '')}": orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
        for row in tables.tables[table]
        if row["tick_id"] in wanted
    }


@pytest.mark.parametrize("table", ["features", "predictions"])
def test_trading_killed_repeatedly_last_ticks_bit_identical(
    golden: Dump,
    trading_killed: KilledRun,
    table: str,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    expected = last_ticks(golden, table, LAST_TICKS)
    got = last_ticks(trading_killed.tables, table, LAST_TICKS)
    lost = len(expected.keys() - got.keys())
    extra = len(got.keys() - expected.keys())
    mismatched = sum(expected[key] != got[key] for key in expected.keys() & got.keys())
    record(
        f"R3-{table}",
        {
            "ticks": LAST_TICKS,
            "rows": len(expected),
            "lost": lost,
            "duplicated": extra,
            "mismatched": mismatched,
        },
    )
    assert expected
    assert (lost, extra, mismatched) == (0, 0, 0)
