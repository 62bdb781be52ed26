"""One read of everything the dashboard shows, from ClickHouse, as plain JSON-ready data.

A snapshot is built by a background thread every `refresh_s` and served from memory to
every client, so the number of viewers never multiplies the queries. Each panel is one
query limited to one run and the configured account. A run is selected by its id (or
the newest run) in the `runs` table, and its rows by event time: from the first event
of the ticks it ingested (years back for a replay of history) to the last one once it
finished (`run_window`).
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
    """The rows a snapshot covers: one account, event time from `since_ns` to `until_ns`
    (0: open, the run goes on), and records ingested from `ingested_since_ns` on (dead
    letters have no event time of their own)."""

    account: str
    since_ns: int
    until_ns: int = 0
    ingested_since_ns: int = 0

    @property
    def since(self) -> str:
        """SQL expression for the start of the window."""
        return _ns(self.since_ns)

    def events(self, column: str = "ts_event") -> str:
        """SQL condition: `column` (an event time) within the window.

        >>> window = Window(account="a", since_ns=5, until_ns=9)
        >>> window.events("t").replace("fromUnixTimestamp64Nano", "")
        't >= (toInt64(5)) AND t <= (toInt64(9))'
        """
        condition = f"{column} >= {self.since}"
        if self.until_ns:
            condition += f" AND {column} <= {_ns(self.until_ns)}"
        return condition

    @property
    def account_sql(self) -> str:
        """The account as a quoted SQL string literal."""
        return _quote(self.account)


def _ns(ts_ns: int) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({int(ts_ns)}))"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def records(query: Query, sql: str) -> list[dict[str, Any]]:
    """Run `sql` and return its rows as dicts keyed by column."""
    columns, rows = query(sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def scalar(query: Query, sql: str) -> Any:
    """Run `sql` and return the first column of its first row (None without rows)."""
    _, rows = query(sql)
    return rows[0][0] if rows else None


# The feed may start before the run's row is written (`hfl up` starts the flows and the
# feed together): ticks ingested up to this long before its start still belong to it.
FEED_HEAD_START_NS = 60_000_000_000


def run_window(query: Query, account: str, run_id: str = "") -> Window:
    """The rows of run `run_id` (default: the newest run in `runs`) as a window.

    A run's `runs` row holds its wall-clock start (and end, once finished); the ticks
    it ingested are those whose `ts_init` (ingest time) falls in that span, less a
    minute for the feed's head start. Panels select by event time: from the first of
    those ticks' event time (a replay of the S&P 500 series starts years back; a live
    feed at the run's start) to, once the run finished, the last one, so the rows of a
    later run in the same store stay out. A run without ticks yet shows from its start.
    """
    where = f"WHERE run_id = {_quote(run_id)} " if run_id else ""
    _, rows = query(
        "SELECT toUnixTimestamp64Nano(started_at), toUnixTimestamp64Nano(finished_at) "
        f"FROM runs FINAL {where}ORDER BY started_at DESC LIMIT 1"
    )
    started, finished = (rows[0][0], rows[0][1]) if rows else (0, None)
    run_start = max(0, int(started or 0) - FEED_HEAD_START_NS)
    ingested = f"ts_init >= {_ns(run_start)}"
    if finished:
        ingested += f" AND ts_init <= {_ns(int(finished))}"
    _, events = query(
        "SELECT toUnixTimestamp64Nano(minOrNull(ts_event)), "
        f"toUnixTimestamp64Nano(maxOrNull(ts_event)) FROM ticks WHERE {ingested}"
    )
    first, last = events[0] if events else (None, None)
    since = run_start if first is None else min(run_start, int(first))
    until = int(last) if finished and last is not None else 0
    return Window(account=account, since_ns=since, until_ns=until, ingested_since_ns=run_start)


def newest_run_start_ns(query: Query) -> int:
    """Event time from which the newest run's rows show (`run_window`)."""
    return run_window(query, "").since_ns


def equity_panel(query: Query, window: Window) -> Panel:
    """Equity curve, latest P&L and the drawdown from the run's peak equity."""
    rows = records(
        query,
        "SELECT toUnixTimestamp64Nano(ts_event) AS ts, toFloat64(equity) AS equity, "
        "toFloat64(cash) AS cash, toFloat64(realized_pnl) AS realized, "
        "toFloat64(unrealized_pnl) AS unrealized, toFloat64(fees) AS fees, "
        "toFloat64(gross_exposure) AS gross, toFloat64(net_exposure) AS net "
        f"FROM pnl FINAL WHERE account = {window.account_sql} AND {window.events()} "
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


DAY_NS = 86_400 * 1_000_000_000
AXIS_TICKS = 3


def _utc(ts_ns: int, span_ns: int | None = None) -> str:
    """Event time (UTC): in full, or as an axis label of a chart spanning `span_ns`: the
    date over spans of days or more, else the time of day.

    >>> _utc(1_517_950_800_000_000_000)
    '2018-02-06 21:00:00'
    >>> _utc(1_517_950_800_000_000_000, span_ns=30 * DAY_NS)
    '2018-02-06'
    >>> _utc(1_517_950_800_000_000_000, span_ns=60 * 10**9)
    '21:00:00'
    """
    moment = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    if span_ns is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d" if span_ns >= 2 * DAY_NS else "%H:%M:%S")


def svg_chart(
    ts_ns: Sequence[int], values: Sequence[float], width: int = 380, height: int = 190
) -> str:
    """An SVG line chart with axes: the value scale on the left (low, middle, high, with
    grid lines), and an event-time scale (UTC) below, points placed by their event time.

    >>> chart = svg_chart([0, 10**9, 4 * 10**9], [100.0, 101.5, 101.0])
    >>> "101.50" in chart and "100.75" in chart and "100.00" in chart
    True
    >>> "00:00:00" in chart and "00:00:04" in chart and "event time (UTC, 1970-01-01)" in chart
    True
    >>> chart.split('points="')[1].split('"')[0]  # 1 s of 4 s: a quarter of 262 px along
    '84,156 149.5,8 346,57.3'
    """
    left, right, bottom, top = 84, 34, 34, 8
    plot_w, plot_h = width - left - right, height - bottom - top
    low, high = min(values, default=0.0), max(values, default=0.0)
    if high == low:  # a flat curve (no trade yet): in the middle of a small scale
        pad = max(abs(high) * 1e-4, 0.01)
        low, high = low - pad, high + pad
    span = high - low
    first, last = (ts_ns[0], ts_ns[-1]) if ts_ns else (0, 0)
    duration = (last - first) or 1

    def x(ts: int) -> float:
        return round(left + (ts - first) / duration * plot_w, 1)

    def y(value: float) -> float:
        return round(top + plot_h - (value - low) / span * plot_h, 1)

    points = " ".join(f"{x(t):g},{y(v):g}" for t, v in zip(ts_ns, values, strict=True))
    label = 'font-size="11" fill="#555" font-family="sans-serif"'
    grid = 'stroke="#e3e6ea"'
    axis_y = top + plot_h
    day = f", {_utc(first, DAY_NS * 2)}" if last - first < 2 * DAY_NS else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}">',
    ]
    for value in (high, (high + low) / 2, low):
        parts += [
            f'<line x1="{left}" y1="{y(value)}" x2="{width - right}" y2="{y(value)}" {grid}/>',
            f'<text x="{left - 4}" y="{y(value) + 4}" text-anchor="end" {label}>'
            f"{value:,.2f}</text>",
        ]
    for index in range(AXIS_TICKS + 1):
        ts = first + (last - first) * index // AXIS_TICKS
        anchor = "middle"
        parts += [
            f'<line x1="{x(ts)}" y1="{axis_y}" x2="{x(ts)}" y2="{axis_y + 4}" stroke="#999"/>',
            f'<text x="{x(ts)}" y="{axis_y + 16}" text-anchor="{anchor}" {label}>'
            f"{_utc(ts, last - first)}</text>",
        ]
    parts += [
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{axis_y}" stroke="#999"/>',
        f'<line x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}" stroke="#999"/>',
        f'<text x="{left + plot_w / 2:g}" y="{height - 2}" text-anchor="middle" {label}>'
        f"event time (UTC{day})</text>",
        f'<polyline fill="none" stroke="#2a7" points="{points}"/></svg>',
    ]
    return "".join(parts)


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
        f"AND {window.events()} GROUP BY instrument ORDER BY instrument",
    )
    for row in rows:
        row["utilization"] = abs(row["quantity"]) / max_position if max_position > 0 else None
    return rows


# What ends an order at the gateway (`OrderEventKind.is_terminal`).
TERMINAL_KINDS = "('filled', 'canceled', 'rejected', 'expired')"


def orders_panel(query: Query, window: Window) -> Panel:
    """Working orders (sent, no terminal event yet): how many, the newest of them, and
    the most recent fills. The count is the gate's own `open_orders` figure as the
    store sees it (orders and order events persisted so far)."""
    working_sql = (
        f"FROM orders FINAL WHERE account = {window.account_sql} AND {window.events()} "
        "AND client_order_id NOT IN (SELECT client_order_id FROM order_events "
        f"WHERE ts_event >= {window.since} AND kind IN {TERMINAL_KINDS})"
    )
    # One query for the rows and their count, so both see the same orders: the store
    # takes new orders between two queries (50 at once at the end of a demo).
    working = records(
        query,
        "SELECT client_order_id, instrument, side, toFloat64(quantity) AS quantity, "
        f"toUnixTimestamp64Nano(ts_event) AS ts, count() OVER () AS total {working_sql} "
        f"ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )
    working_count = int(working[0]["total"]) if working else 0
    for row in working:
        del row["total"]
    fills = records(
        query,
        "SELECT client_order_id, fill_id, instrument, side, toFloat64(quantity) AS quantity, "
        "toFloat64(price) AS price, toUnixTimestamp64Nano(ts_event) AS ts FROM fills FINAL "
        f"WHERE account = {window.account_sql} AND {window.events()} "
        f"ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )
    return {"working": working, "working_count": working_count, "fills": fills}


def signals_panel(query: Query, window: Window) -> list[Panel]:
    """The most recent signals with the decision each got."""
    return records(
        query,
        "SELECT s.signal_id AS signal_id, s.instrument AS instrument, s.direction AS direction, "
        "s.probability_up AS probability_up, d.outcome AS outcome, d.reason AS reason, "
        "toUnixTimestamp64Nano(s.ts_event) AS ts FROM signals AS s FINAL "
        "LEFT JOIN risk_decisions AS d FINAL ON d.signal_id = s.signal_id "
        f"WHERE {window.events('s.ts_event')} ORDER BY s.ts_event DESC LIMIT {RECENT_ROWS}",
    )


def risk_panel(query: Query, window: Window) -> Panel:
    """Trading state (newest state change, else active), decisions by outcome and reason,
    and the gate's latest portfolio risk figures with their limits (`risk_metrics`;
    per-instrument and per-pair figures such as ``volatility:<instrument>`` left out)."""
    state = records(
        query,
        "SELECT state, trigger, reason, toUnixTimestamp64Nano(ts_event) AS ts "
        f"FROM risk_events FINAL WHERE account = {window.account_sql} AND instrument = '' "
        f"AND {window.events()} ORDER BY ts_event DESC LIMIT 1",
    )
    decisions = records(
        query,
        "SELECT outcome, reason, count() AS n FROM risk_decisions FINAL "
        f"WHERE account = {window.account_sql} AND {window.events()} "
        "GROUP BY outcome, reason ORDER BY outcome, reason",
    )
    figures = records(
        query,
        "SELECT metric, argMax(value, ts_event) AS value, "
        "argMax(limit_value, ts_event) AS limit_value, "
        "toUnixTimestamp64Nano(max(ts_event)) AS ts FROM risk_metrics FINAL "
        f"WHERE account = {window.account_sql} AND {window.events()} "
        "AND metric NOT LIKE '%:%' GROUP BY metric ORDER BY metric",
    )
    denials = {row["reason"]: row["n"] for row in decisions if row["outcome"] == "denied"}
    approved = sum(row["n"] for row in decisions if row["outcome"] == "approved")
    current = state[0] if state else {"state": "active", "trigger": "", "reason": "", "ts": 0}
    return {
        "state": current,
        "approved": approved,
        "denials": denials,
        "metrics": figures,
        "metrics_ts": max((row["ts"] for row in figures), default=0),
    }


def with_working_orders(risk: Panel, working_count: int) -> Panel:
    """The risk panel with `open_orders` counted as the orders panel counts them.

    The gate writes its figures on a schedule of event time, so its last `open_orders`
    is a sample: at the end of a run it still says 11 while every order since filled,
    and during one it lags the orders and fills that landed after it. The panel shows
    the working orders now (sent, no terminal event), with the gate's limit, and keeps
    the gate's sample as `sampled` with its time.

    >>> risk = {"metrics": [{"metric": "open_orders", "value": 11.0, "limit_value": 100.0,
    ...                      "ts": 5}]}
    >>> with_working_orders(risk, 0)["metrics"]
    [{'metric': 'open_orders', 'value': 0, 'limit_value': 100.0, 'ts': 5, 'sampled': 11.0}]
    """
    rows = [
        row | {"value": working_count, "sampled": row["value"]}
        if row["metric"] == "open_orders"
        else row
        for row in risk["metrics"]
    ]
    return risk | {"metrics": rows}


def models_panel(query: Query, window: Window) -> Panel:
    """Each model's latest prequential scores per instrument (River's own metrics, as the
    trading flow reports them to `model_metrics`) and recent drift alarms."""
    scores = records(
        query,
        "SELECT instrument, model, role, n_labelled, `values` AS scores, memory_bytes "
        f"FROM model_metrics FINAL WHERE {window.events()} "
        "ORDER BY ts_event DESC LIMIT 1 BY instrument, model",
    )
    scores.sort(key=lambda row: (row["model"], row["instrument"]))
    drift = records(
        query,
        "SELECT instrument, model, detector, stream, value, "
        "toUnixTimestamp64Nano(ts_event) AS ts FROM drift_events FINAL "
        f"WHERE {window.events()} ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )
    drift_total = scalar(query, f"SELECT count() FROM drift_events FINAL WHERE {window.events()}")
    return {"scores": scores, "drift": drift, "drift_total": int(drift_total or 0)}


def pipeline_panel(query: Query, window: Window, now_ns: int) -> Panel:
    """Ticks stored, age of the newest tick, rows landed and dead letters by reason."""
    ticks = records(
        query,
        "SELECT count() AS ticks, toUnixTimestamp64Nano(max(ts_init)) AS last_ingest, "
        "toUnixTimestamp64Milli(max(_inserted_at)) AS last_insert "
        f"FROM ticks WHERE {window.events()}",
    )[0]
    dlq = records(
        query,
        "SELECT reason, count() AS n FROM dlq FINAL "
        f"WHERE ts_init >= {_ns(window.ingested_since_ns)} GROUP BY reason ORDER BY reason",
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
        f"WHERE {window.events()} ORDER BY ts_event DESC LIMIT {RECENT_ROWS}",
    )


def read_snapshot(query: Query, config: DashboardConfig, now_ns: int | None = None) -> Panel:
    """Read every panel once; `now_ns` (default the wall clock) dates the snapshot."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    if config.since_ns:
        window = Window(
            account=config.account, since_ns=config.since_ns, ingested_since_ns=config.since_ns
        )
    else:
        window = run_window(query, config.account, config.run_id)
    since_ns = window.since_ns
    equity = equity_panel(query, window)
    orders = orders_panel(query, window)
    risk = with_working_orders(risk_panel(query, window), orders["working_count"])
    if config.max_gross_exposure > 0 and "gross" in equity:
        risk["gross_utilization"] = equity["gross"] / config.max_gross_exposure
    return {
        "ts": now_ns,
        "since_ns": since_ns,
        "until_ns": window.until_ns,
        "run_id": config.run_id,
        "account": config.account,
        "equity": equity,
        "positions": positions_panel(query, window, config.max_position),
        "orders": orders,
        "signals": signals_panel(query, window),
        "risk": risk,
        "models": models_panel(query, window),
        "pipeline": pipeline_panel(query, window, now_ns),
        "alerts": tail_panel(query, "alerts", window),
        "audit": tail_panel(query, "audit", window),
    }
