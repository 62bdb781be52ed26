"""One read of everything the dashboard shows, from ClickHouse, as plain JSON-ready data.

A snapshot is built by a background thread every `refresh_s` and served from memory to
every client, so the number of viewers never multiplies the queries. Each panel is one
query limited to the current run (`ts_event >= since`) and the configured account.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dashboard.config import DashboardConfig
from risk.var import drawdown

Query = Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]
Panel = dict[str, Any]
RECENT_ROWS = 20
CURVE_POINTS = 240


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """The rows a snapshot covers: one account from `since_ns` on."""

    account: str
    since_ns: int

    @property
    def since(self) -> str:
        """SQL expression for the start of the window."""
        return f"fromUnixTimestamp64Nano(toInt64({int(self.since_ns)}))"

    @property
    def account_sql(self) -> str:
        """The account as a quoted SQL string literal."""
        return "'" + self.account.replace("\\", "\\\\").replace("'", "\\'") + "'"


def records(query: Query, sql: str) -> list[dict[str, Any]]:
    """Run `sql` and return its rows as dicts keyed by column."""
    columns, rows = query(sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def scalar(query: Query, sql: str) -> Any:
    """Run `sql` and return the first column of its first row (None without rows)."""
    _, rows = query(sql)
    return rows[0][0] if rows else None


def newest_run_start_ns(query: Query) -> int:
    """Event time from which the newest run's rows show.

    The newest run in `runs` started at a wall-clock time (less a minute for the feed's
    head start); its ticks were ingested after that (`ts_init`). Panels select by event
    time, so a replay of history (the S&P 500 series: event times years back) shows
    from its first tick's event time, a live feed from the run's start.
    """
    started = scalar(query, "SELECT toUnixTimestamp64Nano(max(started_at)) FROM runs")
    run_start = max(0, int(started or 0) - 60_000_000_000)
    first_event = scalar(
        query,
        "SELECT toUnixTimestamp64Nano(minOrNull(ts_event)) FROM ticks "
        f"WHERE ts_init >= fromUnixTimestamp64Nano(toInt64({run_start}))",
    )
    return run_start if first_event is None else min(run_start, int(first_event))


def equity_panel(query: Query, window: Window) -> Panel:
    """Equity curve, latest P&L and the drawdown from the run's peak equity."""
    rows = records(
        query,
        "SELECT toUnixTimestamp64Nano(ts_event) AS ts, toFloat64(equity) AS equity, "
        "toFloat64(cash) AS cash, toFloat64(realized_pnl) AS realized, "
        "toFloat64(unrealized_pnl) AS unrealized, toFloat64(fees) AS fees, "
        "toFloat64(gross_exposure) AS gross, toFloat64(net_exposure) AS net "
        f"FROM pnl FINAL WHERE account = {window.account_sql} AND ts_event >= {window.since} "
        "ORDER BY ts_event",
    )
    if not rows:
        return {"points": 0}
    equity = [row["equity"] for row in rows]
    peak = max(equity)
    return rows[-1] | {
        "points": len(rows),
        "peak": peak,
        "drawdown": drawdown(equity[-1], peak),
        "curve": svg_chart([row["ts"] for row in rows[-CURVE_POINTS:]], equity[-CURVE_POINTS:]),
    }


def _utc(ts_ns: int) -> str:
    """Event time as `YYYY-MM-DD HH:MM:SS` UTC.

    >>> _utc(1_517_950_800_000_000_000)
    '2018-02-06 21:00:00'
    """
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def svg_chart(
    ts_ns: Sequence[int], values: Sequence[float], width: int = 600, height: int = 180
) -> str:
    """An SVG line chart with axes: equity from its low to its high on the left, event
    time (UTC) from the first to the last point below.

    >>> chart = svg_chart([0, 10**9], [100.0, 101.5])
    >>> "101.50" in chart and "100.00" in chart and "1970-01-01 00:00:01" in chart
    True
    """
    left, bottom, top = 90, 22, 8
    plot_w, plot_h = width - left - 4, height - bottom - top
    low, high = min(values, default=0.0), max(values, default=0.0)
    span = (high - low) or 1.0
    step = plot_w / max(1, len(values) - 1)
    points = " ".join(
        f"{round(left + i * step, 1):g},{round(top + plot_h - (v - low) / span * plot_h, 1):g}"
        for i, v in enumerate(values)
    )
    label = 'font-size="11" fill="#555" font-family="sans-serif"'
    axis_y, axis_x = top + plot_h, left
    first, last = (_utc(ts_ns[0]), _utc(ts_ns[-1])) if ts_ns else ("", "")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}">'
        f'<line x1="{axis_x}" y1="{top}" x2="{axis_x}" y2="{axis_y}" stroke="#999"/>'
        f'<line x1="{axis_x}" y1="{axis_y}" x2="{width - 4}" y2="{axis_y}" stroke="#999"/>'
        f'<text x="{left - 4}" y="{top + 10}" text-anchor="end" {label}>{high:,.2f}</text>'
        f'<text x="{left - 4}" y="{axis_y}" text-anchor="end" {label}>{low:,.2f}</text>'
        f'<text x="{left}" y="{height - 6}" {label}>{first}</text>'
        f'<text x="{width - 4}" y="{height - 6}" text-anchor="end" {label}>{last} UTC</text>'
        f'<polyline fill="none" stroke="#2a7" points="{points}"/></svg>'
    )


def svg_polyline(values: Sequence[float], width: int = 600, height: int = 160) -> str:
    """An SVG line chart of `values`, scaled to fit, as markup (server-side chart).

    >>> svg_polyline([1.0, 3.0, 2.0], width=10, height=10)[-66:]
    '<polyline fill="none" stroke="#2a7" points="0,10 5,0 10,5"/></svg>'
    """
    low, high = min(values, default=0.0), max(values, default=0.0)
    span = (high - low) or 1.0
    step = width / max(1, len(values) - 1)
    points = " ".join(
        f"{round(i * step, 1):g},{round(height - (v - low) / span * height, 1):g}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="none"><polyline fill="none" stroke="#2a7" points="{points}"/></svg>'
    )


def positions_panel(query: Query, window: Window, max_position: float) -> list[Panel]:
    """Latest position per instrument with its use of the position limit."""
    rows = records(
        query,
        "SELECT instrument, toFloat64(argMax(quantity, ts_event)) AS quantity, "
        "toFloat64(argMax(average_price, ts_event)) AS average_price, "
        "toFloat64(argMax(realized_pnl, ts_event)) AS realized_pnl "
        f"FROM positions FINAL WHERE account = {window.account_sql} "
        f"AND ts_event >= {window.since} GROUP BY instrument ORDER BY instrument",
    )
    for row in rows:
        row["utilization"] = abs(row["quantity"]) / max_position if max_position > 0 else None
    return rows


def orders_panel(query: Query, window: Window) -> Panel:
    """Working orders (no terminal event yet) and the most recent fills."""
    working = records(
        query,
        "SELECT client_order_id, instrument, side, toFloat64(quantity) AS quantity, "
        "toUnixTimestamp64Nano(ts_event) AS ts FROM orders FINAL "
        f"WHERE account = {window.account_sql} AND ts_event >= {window.since} "
        "AND client_order_id NOT IN (SELECT client_order_id FROM order_events "
        f"WHERE ts_event >= {window.since} "
        "AND kind IN ('filled', 'canceled', 'rejected', 'expired')) "
        f"ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )
    fills = records(
        query,
        "SELECT client_order_id, fill_id, instrument, side, toFloat64(quantity) AS quantity, "
        "toFloat64(price) AS price, toUnixTimestamp64Nano(ts_event) AS ts FROM fills FINAL "
        f"WHERE account = {window.account_sql} AND ts_event >= {window.since} "
        f"ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )
    return {"working": working, "fills": fills}


def signals_panel(query: Query, window: Window) -> list[Panel]:
    """The most recent signals with the decision each got."""
    return records(
        query,
        "SELECT s.signal_id AS signal_id, s.instrument AS instrument, s.direction AS direction, "
        "s.probability_up AS probability_up, d.outcome AS outcome, d.reason AS reason, "
        "toUnixTimestamp64Nano(s.ts_event) AS ts FROM signals AS s FINAL "
        "LEFT JOIN risk_decisions AS d FINAL ON d.signal_id = s.signal_id "
        f"WHERE s.ts_event >= {window.since} ORDER BY s.ts_event DESC LIMIT {RECENT_ROWS}",
    )


def risk_panel(query: Query, window: Window) -> Panel:
    """Trading state (newest state change, else active), decisions by outcome and reason,
    and the gate's latest portfolio risk figures with their limits (`risk_metrics`;
    per-instrument and per-pair figures such as ``volatility:<instrument>`` left out)."""
    state = records(
        query,
        "SELECT state, trigger, reason, toUnixTimestamp64Nano(ts_event) AS ts "
        f"FROM risk_events FINAL WHERE account = {window.account_sql} AND instrument = '' "
        f"AND ts_event >= {window.since} ORDER BY ts_event DESC LIMIT 1",
    )
    decisions = records(
        query,
        "SELECT outcome, reason, count() AS n FROM risk_decisions FINAL "
        f"WHERE account = {window.account_sql} AND ts_event >= {window.since} "
        "GROUP BY outcome, reason ORDER BY outcome, reason",
    )
    figures = records(
        query,
        "SELECT metric, argMax(value, ts_event) AS value, "
        "argMax(limit_value, ts_event) AS limit_value FROM risk_metrics FINAL "
        f"WHERE account = {window.account_sql} AND ts_event >= {window.since} "
        "AND metric NOT LIKE '%:%' GROUP BY metric ORDER BY metric",
    )
    denials = {row["reason"]: row["n"] for row in decisions if row["outcome"] == "denied"}
    approved = sum(row["n"] for row in decisions if row["outcome"] == "approved")
    current = state[0] if state else {"state": "active", "trigger": "", "reason": "", "ts": 0}
    return {"state": current, "approved": approved, "denials": denials, "metrics": figures}


def models_panel(query: Query, window: Window) -> Panel:
    """Each model's latest prequential scores per instrument (River's own metrics, as the
    trading flow reports them to `model_metrics`) and recent drift alarms."""
    scores = records(
        query,
        "SELECT instrument, model, role, n_labelled, `values` AS scores, memory_bytes "
        f"FROM model_metrics FINAL WHERE ts_event >= {window.since} "
        "ORDER BY ts_event DESC LIMIT 1 BY instrument, model",
    )
    scores.sort(key=lambda row: (row["model"], row["instrument"]))
    drift = records(
        query,
        "SELECT instrument, model, detector, stream, value, "
        "toUnixTimestamp64Nano(ts_event) AS ts FROM drift_events FINAL "
        f"WHERE ts_event >= {window.since} ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )
    drift_total = scalar(
        query, f"SELECT count() FROM drift_events FINAL WHERE ts_event >= {window.since}"
    )
    return {"scores": scores, "drift": drift, "drift_total": int(drift_total or 0)}


def pipeline_panel(query: Query, window: Window, now_ns: int) -> Panel:
    """Ticks stored, age of the newest tick, rows landed and dead letters by reason."""
    ticks = records(
        query,
        "SELECT count() AS ticks, toUnixTimestamp64Nano(max(ts_init)) AS last_ingest, "
        "toUnixTimestamp64Milli(max(_inserted_at)) AS last_insert "
        f"FROM ticks WHERE ts_event >= {window.since}",
    )[0]
    dlq = records(
        query,
        f"SELECT reason, count() AS n FROM dlq FINAL WHERE ts_init >= {window.since} "
        "GROUP BY reason ORDER BY reason",
    )
    last_ingest = int(ticks["last_ingest"] or 0)
    return {
        "ticks": int(ticks["ticks"]),
        # Rows may land while the panel is read, after `now_ns`: ages never go negative.
        "tick_age_s": max(0.0, (now_ns - last_ingest) / 1e9) if last_ingest else None,
        "persist_age_s": max(0.0, (now_ns / 1e6 - ticks["last_insert"]) / 1e3)
        if ticks["last_insert"]
        else None,
        "dlq": {row["reason"]: row["n"] for row in dlq},
    }


def tail_panel(query: Query, table: str, window: Window) -> list[Panel]:
    """The newest rows of an event log table (`alerts` or `audit`)."""
    return records(
        query,
        f"SELECT * EXCEPT (_inserted_at, ts_event, ts_init), "
        f"toUnixTimestamp64Nano(ts_event) AS ts FROM {table} FINAL "
        f"WHERE ts_event >= {window.since} ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )


def read_snapshot(query: Query, config: DashboardConfig, now_ns: int | None = None) -> Panel:
    """Read every panel once; `now_ns` (default the wall clock) dates the snapshot."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    since_ns = config.since_ns or newest_run_start_ns(query)
    window = Window(account=config.account, since_ns=since_ns)
    equity = equity_panel(query, window)
    risk = risk_panel(query, window)
    if config.max_gross_exposure > 0 and "gross" in equity:
        risk["gross_utilization"] = equity["gross"] / config.max_gross_exposure
    return {
        "ts": now_ns,
        "since_ns": since_ns,
        "account": config.account,
        "equity": equity,
        "positions": positions_panel(query, window, config.max_position),
        "orders": orders_panel(query, window),
        "signals": signals_panel(query, window),
        "risk": risk,
        "models": models_panel(query, window),
        "pipeline": pipeline_panel(query, window, now_ns),
        "alerts": tail_panel(query, "alerts", window),
        "audit": tail_panel(query, "audit", window),
    }
