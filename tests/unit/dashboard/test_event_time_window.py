"""The dashboard selects the newest run's rows by event time, so replayed history shows."""

from __future__ import annotations

from typing import Any

from dashboard.snapshot import newest_run_start_ns

MINUTE_NS = 60_000_000_000
STARTED_NS = 1_800_000_000_000_000_000  # the run's wall-clock start


def store(first_tick_event_ns: int | None) -> Any:
    def query(sql: str) -> tuple[list[str], list[list[object]]]:
        if "FROM runs" in sql:
            return ["t"], [[STARTED_NS]]
        assert f"toInt64({STARTED_NS - MINUTE_NS})" in sql  # this run's ticks only
        return ["t"], [[first_tick_event_ns]]

    return query


def test_replayed_history_shows_from_its_first_event() -> None:
    sp500_1990 = 631_152_000_000_000_000
    assert newest_run_start_ns(store(sp500_1990)) == sp500_1990


def test_live_feed_shows_from_the_run_start() -> None:
    assert newest_run_start_ns(store(STARTED_NS + 5)) == STARTED_NS - MINUTE_NS


def test_run_without_ticks_yet_shows_from_the_run_start() -> None:
    assert newest_run_start_ns(store(None)) == STARTED_NS - MINUTE_NS
