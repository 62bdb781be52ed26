"""The dashboard selects one run's rows (by run id, else the newest run) by event time,
so replayed history shows and a later run's rows stay out."""

from __future__ import annotations

from typing import Any

from dashboard.config import DashboardConfig
from dashboard.snapshot import (
    Window,
    newest_run_start_ns,
    orders_panel,
    read_snapshot,
    run_window,
)

MINUTE_NS = 60_000_000_000
STARTED_NS = 1_800_000_000_000_000_000  # the run's wall-clock start
FINISHED_NS = STARTED_NS + 30 * MINUTE_NS
SP500_1990 = 631_152_000_000_000_000


def store(
    first_tick_event_ns: int | None,
    last_tick_event_ns: int | None = None,
    finished_ns: int | None = None,
    seen: list[str] | None = None,
) -> Any:
    def query(sql: str) -> tuple[list[str], list[list[object]]]:
        if seen is not None:
            seen.append(sql)
        if "FROM runs" in sql:
            return ["started", "finished"], [[STARTED_NS, finished_ns]]
        assert f"toInt64({STARTED_NS - MINUTE_NS})" in sql  # this run's ticks only
        return ["first", "last"], [[first_tick_event_ns, last_tick_event_ns]]

    return query


def test_replayed_history_shows_from_its_first_event() -> None:
    assert newest_run_start_ns(store(SP500_1990)) == SP500_1990


def test_live_feed_shows_from_the_run_start() -> None:
    assert newest_run_start_ns(store(STARTED_NS + 5)) == STARTED_NS - MINUTE_NS


def test_run_without_ticks_yet_shows_from_the_run_start() -> None:
    assert newest_run_start_ns(store(None)) == STARTED_NS - MINUTE_NS


def test_a_run_is_selected_by_its_id() -> None:
    seen: list[str] = []
    window = run_window(store(SP500_1990, seen=seen), "paper-1", "demo-7-1800000000")
    assert "WHERE run_id = 'demo-7-1800000000'" in seen[0]
    assert window.since_ns == SP500_1990


def test_a_running_run_is_open_ended() -> None:
    window = run_window(store(SP500_1990, SP500_1990 + MINUTE_NS), "paper-1")
    assert window.until_ns == 0
    assert "<=" not in window.events()


def test_a_finished_run_ends_at_its_last_ingested_event() -> None:
    seen: list[str] = []
    last = SP500_1990 + 5 * MINUTE_NS
    window = run_window(store(SP500_1990, last, FINISHED_NS, seen), "paper-1")
    assert f"ts_init <= fromUnixTimestamp64Nano(toInt64({FINISHED_NS}))" in seen[1]
    assert (window.since_ns, window.until_ns) == (SP500_1990, last)
    assert f"ts_event <= fromUnixTimestamp64Nano(toInt64({last}))" in window.events()
    assert window.ingested_since_ns == STARTED_NS - MINUTE_NS


def test_working_orders_are_counted_beyond_the_listed_rows() -> None:
    def query(sql: str) -> tuple[list[str], list[list[object]]]:
        if "FROM orders" in sql:  # sent and no terminal event (expiry included)
            assert "NOT IN (SELECT client_order_id FROM order_events" in sql
            assert "'expired'" in sql
        if "count() OVER ()" in sql:  # the newest 20 rows, each with the count of all
            return ["client_order_id", "total"], [[f"o{n}", 100] for n in range(20)]
        return ["client_order_id"], []

    panel = orders_panel(query, Window(account="paper-1", since_ns=1))
    assert panel["working_count"] == 100
    assert len(panel["working"]) == 20
    assert "total" not in panel["working"][0]


def test_risk_panel_open_orders_is_the_working_orders_count() -> None:
    def query(sql: str) -> tuple[list[str], list[list[object]]]:
        if "FROM risk_metrics" in sql:  # the gate's last scheduled sample
            return ["metric", "value", "limit_value", "ts"], [["open_orders", 11.0, 100.0, 7]]
        if "FROM orders" in sql:
            return ["client_order_id", "total"], []  # every order since ended
        if "FROM runs" in sql:
            return ["started", "finished"], [[STARTED_NS, None]]
        if "minOrNull" in sql:
            return ["first", "last"], [[None, None]]
        if "FROM ticks" in sql:
            return ["ticks", "last_ingest", "last_insert"], [[0, None, None]]
        return ["x"], []

    snapshot = read_snapshot(query, DashboardConfig(clickhouse_url="", bootstrap=""), now_ns=1)
    (figure,) = snapshot["risk"]["metrics"]
    assert (figure["value"], figure["limit_value"], figure["sampled"]) == (0, 100.0, 11.0)
    assert snapshot["orders"]["working_count"] == 0
    assert snapshot["risk"]["metrics_ts"] == 7
