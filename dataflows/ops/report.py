"""`hfl report`: one self-contained HTML file a quant can read offline.

`analyse` turns a run's rows (`RunData`: equity marks, the traded instruments'
equal-weighted index as benchmark, fills, model scores, drift events, post-trade tables)
into figures with `risk.performance` and `risk.montecarlo`; `render` lays them out
with plotly, whose JavaScript is inlined once, so the file opens with no network.

Statistics use returns sampled at the declared frequency (daily unless asked), so a
short run honestly shows "n/a" where a figure needs more periods; charts use every
equity mark (downsampled to at most `PLOT_POINTS`). The specification's success
metrics are reported as met / not met / n/a, never promised.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from risk import decomposition, montecarlo
from risk import performance as perf
from risk.domain.error import HflError
from sinks.query import query

PLOT_POINTS = 2_000
VAR_CONFIDENCE = 0.99
ROLLING_WINDOW = 63  # a quarter of daily returns
MONTE_CARLO_PATHS = 1_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    """A titled table of already formatted or numeric cells."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunData:
    """What a report needs of one run, in event-time order.

    Attributes:
        run_id: The run's id.
        account: The account reported on.
        initial_cash: Equity before the first mark (opens the first period).
        equity_ts: Event time (ns) of each equity mark.
        equity: Equity at each mark.
        gross_exposure: Sum of |position value| at each mark.
        net_exposure: Sum of position value at each mark.
        benchmark_ts: Event time (ns) of each benchmark level.
        benchmark: Equal-weighted index of the traded instruments' prices (starts at 1).
        executions: The account's fills.
        model_scores: Latest prequential scores per model and instrument.
        score_history: (name, ts_ns, value) series of one score per model, for a chart.
        drift_events: Drift detections.
        post_trade: Execution-quality, attribution and risk-decomposition tables.
    """

    run_id: str
    account: str
    initial_cash: float
    equity_ts: np.ndarray
    equity: np.ndarray
    gross_exposure: np.ndarray
    net_exposure: np.ndarray
    benchmark_ts: np.ndarray
    benchmark: np.ndarray
    executions: tuple[perf.Execution, ...] = ()
    model_scores: Table | None = None
    score_history: tuple[tuple[str, np.ndarray, np.ndarray], ...] = ()
    drift_events: Table | None = None
    post_trade: tuple[Table, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SuccessMetric:
    """One of the specification's strategy figures against its target."""

    name: str
    value: float
    target: str
    met: bool | None  # None: undefined on this run (too few periods or trades)
    shown: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis:
    """Every figure the report shows."""

    frequency: perf.Frequency
    sample_ts: np.ndarray
    returns: np.ndarray
    benchmark_returns: np.ndarray | None
    figures: perf.Performance
    max_drawdown_every_mark: float
    trades: tuple[perf.Trade, ...]
    trade_stats: perf.TradeStatistics
    turnover: float
    exposure: float
    time_in_market: float
    daily_var: float
    daily_cvar: float
    monte_carlo: montecarlo.MonteCarlo | None
    monte_carlo_note: str
    trade_reshuffle: montecarlo.MonteCarlo | None
    success: tuple[SuccessMetric, ...] = field(default=())


# -- analysis ------------------------------------------------------------------------------


def _level_at(ts: np.ndarray, values: np.ndarray, at: np.ndarray, period_ns: int) -> np.ndarray:
    """The last of `values` in or before the period of each of `at` (the first before any).

    Periods, not instants: the benchmark's close of a day pairs with the equity's close
    of that day even when the last tick came after the last equity mark.
    """
    index = np.searchsorted(ts // period_ns, at // period_ns, side="right") - 1
    return values[np.clip(index, 0, len(values) - 1)]


def analyse(data: RunData, frequency: perf.Frequency = perf.DAILY) -> Analysis:
    """Compute the report's figures from `data` at `frequency` (see module docs)."""
    if data.equity.size:
        sample_ts, sampled = perf.sample_equity(data.equity_ts, data.equity, frequency.period_ns)
        sampled = np.concatenate(([data.initial_cash], sampled[1:]))
    else:
        sample_ts, sampled = np.zeros(0, dtype=np.int64), np.zeros(0)
    returns = perf.simple_returns(sampled) if sampled.size > 1 else np.zeros(0)
    benchmark_returns = None
    if data.benchmark.size and returns.size:
        levels = _level_at(data.benchmark_ts, data.benchmark, sample_ts, frequency.period_ns)
        levels[0] = data.benchmark[0]
        benchmark_returns = perf.simple_returns(levels)
    figures = perf.performance(
        returns, frequency, benchmark=benchmark_returns, confidence=VAR_CONFIDENCE
    )
    trades = tuple(perf.round_trips(data.executions))
    trade_stats = perf.trade_statistics([t.pnl for t in trades])
    closes = sampled[1:]
    turnover = math.nan
    exposure = time_in_market = math.nan
    if closes.size:
        buckets = sample_ts[1:] // frequency.period_ns
        traded = np.zeros(closes.size)
        for fill in data.executions:
            slot = int(np.searchsorted(buckets, fill.ts_event // frequency.period_ns))
            if slot < traded.size:
                traded[slot] += abs(fill.quantity * fill.price)
        turnover = perf.turnover(traded, closes)
        gross = _level_at(data.equity_ts, data.gross_exposure, sample_ts[1:], frequency.period_ns)
        exposure, time_in_market = perf.exposure(gross, closes)
    per_day = perf.NS_PER_DAY / frequency.period_ns
    day_scale = math.sqrt(per_day) if frequency.is_intraday else 1.0
    mc, note = _monte_carlo(returns, trades, data.initial_cash, frequency, data)
    analysis = Analysis(
        frequency=frequency,
        sample_ts=sample_ts,
        returns=returns,
        benchmark_returns=benchmark_returns,
        figures=figures,
        max_drawdown_every_mark=perf.max_drawdown(
            perf.simple_returns(np.concatenate(([data.initial_cash], data.equity)))
        )
        if data.equity.size
        else math.nan,
        trades=trades,
        trade_stats=trade_stats,
        turnover=turnover,
        exposure=exposure,
        time_in_market=time_in_market,
        daily_var=-figures.var * day_scale,
        daily_cvar=-figures.cvar * day_scale,
        monte_carlo=mc,
        monte_carlo_note=note,
        trade_reshuffle=_trade_reshuffle(trades, data)
        if mc is not None and returns.size >= 20
        else None,
    )
    return Analysis(**{**_fields(analysis), "success": success_metrics(analysis)})


def _fields(analysis: Analysis) -> dict[str, Any]:
    return {name: getattr(analysis, name) for name in Analysis.__dataclass_fields__}


def _trade_reshuffle(trades: tuple[perf.Trade, ...], data: RunData) -> montecarlo.MonteCarlo | None:
    """The closed trades in 1,000 random orders: how much of the drawdown was sequence."""
    if len(trades) < 5:
        return None
    return montecarlo.reshuffle_trades(
        np.array([t.pnl for t in trades]),
        initial_equity=data.initial_cash,
        trades_per_year=len(trades) / _years(data),
        paths=MONTE_CARLO_PATHS,
    )


def _years(data: RunData) -> float:
    span_ns = max(int(data.equity_ts[-1] - data.equity_ts[0]), 1) if data.equity.size else 1
    return span_ns / perf.NS_PER_DAY / 365.25


def _monte_carlo(
    returns: np.ndarray,
    trades: tuple[perf.Trade, ...],
    initial: float,
    frequency: perf.Frequency,
    data: RunData,
) -> tuple[montecarlo.MonteCarlo | None, str]:
    if returns.size >= 20:
        return montecarlo.bootstrap_returns(
            returns,
            periods_per_year=frequency.periods_per_year,
            initial_equity=initial,
            paths=MONTE_CARLO_PATHS,
            block=min(20, max(1, returns.size // 10)),
        ), ""
    if len(trades) >= 5:
        return montecarlo.reshuffle_trades(
            np.array([t.pnl for t in trades]),
            initial_equity=initial,
            trades_per_year=len(trades) / _years(data),
            paths=MONTE_CARLO_PATHS,
        ), (
            f"Only {returns.size} {frequency.name} returns: the fan reshuffles the "
            f"{len(trades)} closed trades instead (per-trade Sharpe annualised by the run's "
            "trade rate)."
        )
    return None, (
        f"Only {returns.size} {frequency.name} returns and {len(trades)} closed trades: "
        "too few for a Monte Carlo."
    )


def success_metrics(analysis: Analysis) -> tuple[SuccessMetric, ...]:
    """The specification's figures (Sharpe > 1.5, ... volatility < 15 %) as met or not."""
    f, t = analysis.figures, analysis.trade_stats

    def metric(
        name: str, value: float, target: str, test: Callable[[float], bool], pct: bool
    ) -> SuccessMetric:
        defined = not math.isnan(value)
        shown = _pct(value) if pct else _num(value)
        return SuccessMetric(
            name=name, value=value, target=target, met=test(value) if defined else None, shown=shown
        )

    return (
        metric("Sharpe ratio", f.sharpe, "> 1.5", lambda v: v > 1.5, False),
        metric("Max drawdown", -f.max_drawdown, "< 10 %", lambda v: v < 0.10, True),
        metric("Win rate", t.win_rate, "> 55 %", lambda v: v > 0.55, True),
        metric("Profit factor", t.profit_factor, "> 1.5", lambda v: v > 1.5, False),
        metric("Calmar ratio", f.calmar, "> 2", lambda v: v > 2.0, False),
        metric(
            f"Daily VaR ({VAR_CONFIDENCE:.0%})",
            analysis.daily_var,
            "< 2 %",
            lambda v: v < 0.02,
            True,
        ),
        metric(
            f"Daily CVaR ({VAR_CONFIDENCE:.0%})",
            analysis.daily_cvar,
            "< 3 %",
            lambda v: v < 0.03,
            True,
        ),
        metric("Beta to benchmark", f.beta, "|beta| < 0.5", lambda v: abs(v) < 0.5, False),
        metric("Annual volatility", f.annual_volatility, "< 15 %", lambda v: v < 0.15, True),
    )


# -- rendering -----------------------------------------------------------------------------


def _num(value: float, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f} %"


def _dates(ts_ns: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(int(t) / 1e9, tz=UTC) for t in ts_ns]


def _downsample(ts: np.ndarray, *series: np.ndarray) -> tuple[np.ndarray, ...]:
    if ts.size <= PLOT_POINTS:
        return (ts, *series)
    keep = np.unique(np.linspace(0, ts.size - 1, PLOT_POINTS).astype(int))
    return (ts[keep], *(s[keep] for s in series))


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    empty = '<p class="note">No rows.</p>' if not table.rows else ""
    return (
        f"<h3>{html.escape(table.title)}</h3>{note}{empty}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _num(value, 4)
    return str(value)


class _Charts:
    """Plotly figures as HTML fragments; the first one carries plotly.js inline."""

    def __init__(self) -> None:
        self._first = True

    def html(self, figure: go.Figure, chart_id: str) -> str:
        figure.update_layout(
            template="plotly_white",
            height=380,
            margin={"l": 60, "r": 60, "t": 40, "b": 40},
            legend={"orientation": "h", "yanchor": "top", "y": -0.12, "x": 0},
        )
        fragment = pio.to_html(
            figure,
            include_plotlyjs=self._first,
            full_html=False,
            div_id=chart_id,
            config={"displaylogo": False},
        )
        self._first = False
        return f'<div class="chart">{fragment}</div>'


def _equity_chart(data: RunData) -> go.Figure:
    ts, equity = _downsample(data.equity_ts, data.equity)
    figure = go.Figure()
    figure.add_scatter(x=_dates(ts), y=equity, name="equity", mode="lines")
    if data.benchmark.size:
        bts, level = _downsample(data.benchmark_ts, data.benchmark)
        figure.add_scatter(
            x=_dates(bts),
            y=data.initial_cash * level / data.benchmark[0],
            name="benchmark (equal-weighted traded instruments, buy and hold)",
            mode="lines",
        )
    figure.update_layout(title="Equity against the benchmark", yaxis_title="equity")
    return figure


def _underwater_chart(data: RunData) -> go.Figure:
    equity = np.concatenate(([data.initial_cash], data.equity))
    ts = np.concatenate((data.equity_ts[:1], data.equity_ts))
    drawdown = equity / np.maximum.accumulate(equity) - 1.0
    ts, drawdown = _downsample(ts, drawdown)
    figure = go.Figure(go.Scatter(x=_dates(ts), y=100 * drawdown, fill="tozeroy", mode="lines"))
    figure.update_layout(title="Underwater (drawdown from the running peak, %)")
    return figure


def monthly_returns(sample_ts: np.ndarray, returns: np.ndarray) -> dict[tuple[int, int], float]:
    """Compound the period returns by (year, month) of each period's end (UTC)."""
    months: dict[tuple[int, int], float] = {}
    for when, value in zip(_dates(sample_ts[1:]), returns.tolist(), strict=True):
        key = (when.year, when.month)
        months[key] = (1.0 + months.get(key, 0.0)) * (1.0 + value) - 1.0
    return months


def _monthly_chart(analysis: Analysis) -> go.Figure | None:
    months = monthly_returns(analysis.sample_ts, analysis.returns)
    if not months:
        return None
    years = sorted({year for year, _ in months})
    grid = [[months.get((year, m), math.nan) * 100 for m in range(1, 13)] for year in years]
    text = [[("" if math.isnan(v) else f"{v:.1f}") for v in row] for row in grid]
    figure = go.Figure(
        go.Heatmap(
            z=grid,
            x=["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
            y=[str(y) for y in years],
            text=text,
            texttemplate="%{text}",
            colorscale="RdYlGn",
            zmid=0,
            colorbar={"title": "%"},
        )
    )
    figure.update_layout(title="Monthly returns (%)")
    return figure


def _rolling_chart(analysis: Analysis) -> go.Figure | None:
    returns = analysis.returns
    window = ROLLING_WINDOW if returns.size >= 2 * ROLLING_WINDOW else returns.size // 4
    if window < 5:
        return None
    per_year = analysis.frequency.periods_per_year
    sharpe, vol = [], []
    for end in range(window, returns.size + 1):
        part = returns[end - window : end]
        sharpe.append(perf.sharpe_ratio(part, per_year))
        vol.append(perf.annual_volatility(part, per_year))
    dates = _dates(analysis.sample_ts[window:])
    figure = go.Figure()
    figure.add_scatter(x=dates, y=sharpe, name=f"Sharpe ({window} periods)", mode="lines")
    figure.add_scatter(
        x=dates, y=np.array(vol) * 100, name="volatility %", mode="lines", yaxis="y2"
    )
    figure.update_layout(
        title=f"Rolling Sharpe and annualised volatility ({window} {analysis.frequency.name})",
        yaxis2={"overlaying": "y", "side": "right", "title": "volatility %"},
    )
    return figure


def _exposure_chart(data: RunData) -> go.Figure:
    with np.errstate(divide="ignore", invalid="ignore"):
        gross = 100 * data.gross_exposure / data.equity
        net = 100 * data.net_exposure / data.equity
    ts, gross, net = _downsample(data.equity_ts, gross, net)
    figure = go.Figure()
    figure.add_scatter(x=_dates(ts), y=gross, name="gross", mode="lines")
    figure.add_scatter(x=_dates(ts), y=net, name="net", mode="lines")
    figure.update_layout(title="Exposure (% of equity)")
    return figure


def _trade_chart(analysis: Analysis) -> go.Figure | None:
    if not analysis.trades:
        return None
    figure = go.Figure(go.Histogram(x=[t.pnl for t in analysis.trades], nbinsx=50))
    figure.update_layout(title=f"Trade P&L ({len(analysis.trades)} closed round trips)")
    return figure


def _fan_chart(mc: montecarlo.MonteCarlo) -> go.Figure:
    steps = np.arange(mc.fan.shape[1])
    low, q1, median, q3, high = mc.fan
    figure = go.Figure()
    figure.add_scatter(x=steps, y=high, mode="lines", line={"width": 0}, showlegend=False)
    figure.add_scatter(
        x=steps, y=low, mode="lines", fill="tonexty", name="5-95 %", line={"width": 0}
    )
    figure.add_scatter(x=steps, y=q3, mode="lines", line={"width": 0}, showlegend=False)
    figure.add_scatter(
        x=steps, y=q1, mode="lines", fill="tonexty", name="25-75 %", line={"width": 0}
    )
    figure.add_scatter(x=steps, y=median, mode="lines", name="median")
    figure.update_layout(
        title=f"Monte Carlo fan: {mc.method}, {mc.paths} paths",
        xaxis_title="step",
        yaxis_title="equity",
    )
    return figure


def _score_chart(data: RunData) -> go.Figure | None:
    if not data.score_history:
        return None
    figure = go.Figure()
    for name, ts, values in data.score_history:
        figure.add_scatter(x=_dates(ts), y=values, name=name, mode="lines")
    figure.update_layout(title="Model prequential score over event time")
    return figure


def statistics_table(analysis: Analysis) -> Table:
    """Every statistic with its formula's source."""
    f, t = analysis.figures, analysis.trade_stats
    rows: list[tuple[str, str]] = [
        ("Frequency", analysis.frequency.describe()),
        ("Periods (returns)", str(f.periods)),
        ("Total return", _pct(f.total_return)),
        ("Annual return (CAGR)", _pct(f.annual_return)),
        ("Annual volatility", _pct(f.annual_volatility)),
        ("Sharpe ratio", _num(f.sharpe)),
        ("Sortino ratio", _num(f.sortino)),
        ("Calmar ratio", _num(f.calmar)),
        ("Omega ratio", _num(f.omega)),
        ("Max drawdown (sampled)", _pct(f.max_drawdown)),
        ("Max drawdown (every equity mark)", _pct(analysis.max_drawdown_every_mark)),
        ("Max drawdown duration", f"{f.max_drawdown_periods} periods"),
        ("Tail ratio", _num(f.tail_ratio)),
        ("Probabilistic Sharpe (P[true Sharpe > 0])", _pct(_psr(analysis.returns))),
        (f"VaR {f.confidence:.0%} (one period)", _pct(f.var)),
        (f"CVaR {f.confidence:.0%} (one period)", _pct(f.cvar)),
        ("Alpha (annual)", _pct(f.alpha)),
        ("Beta", _num(f.beta)),
        ("Closed trades", str(t.trades)),
        ("Win rate", _pct(t.win_rate)),
        ("Profit factor", _num(t.profit_factor)),
        ("Expectancy per trade", _num(t.expectancy, 2)),
        ("Average win / loss", f"{_num(t.average_win, 2)} / {_num(t.average_loss, 2)}"),
        ("Turnover (traded notional / equity per period)", _pct(analysis.turnover)),
        ("Gross exposure (mean)", _pct(analysis.exposure)),
        ("Time in market", _pct(analysis.time_in_market)),
    ]
    return Table(
        title="Performance statistics",
        columns=("figure", "value"),
        rows=tuple(rows),
        note="Return figures equal empyrical-reloaded on the same returns; formulas in "
        "risk/performance.py.",
    )


def _psr(returns: np.ndarray) -> float:
    """Bailey and López de Prado's probabilistic Sharpe ratio against zero, or NaN."""
    if returns.size < 3:
        return math.nan
    skew, kurtosis = perf.moments(returns)
    sharpe = perf.sharpe_ratio(returns, 1.0)
    if not math.isfinite(sharpe) or math.isnan(skew):
        return math.nan
    return perf.probabilistic_sharpe_ratio(sharpe, 0.0, returns.size, skew, kurtosis)


def _monte_carlo_table(mc: montecarlo.MonteCarlo) -> Table:
    def row(
        name: str, dist: montecarlo.Distribution, fmt: Callable[[float], str]
    ) -> tuple[str, ...]:
        return (name, *(fmt(v) for v in dist.percentiles), fmt(dist.mean))

    return Table(
        title=f"Monte Carlo distributions: {mc.method}",
        columns=("figure", *(f"p{p:g}" for p in montecarlo.PERCENTILES), "mean"),
        rows=(
            row("final equity", mc.final_equity, lambda v: _num(v, 0)),
            row("Sharpe", mc.sharpe, _num),
            row("max drawdown", mc.max_drawdown, _pct),
        ),
        note=f"{mc.method}, {mc.paths} paths; probability of ruin (equity ever at or below "
        f"{_num(mc.ruin_level, 0)}): {_pct(mc.probability_of_ruin)}.",
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{margin-bottom:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px} td,th{border:1px solid #ddd;padding:4px 10px;
text-align:right} th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.met{color:#0a7a28;font-weight:600} .not-met{color:#b3261e;font-weight:600}
.na{color:#777} .note{color:#555;font-size:90%} .grid{display:grid;
grid-template-columns:1fr 1fr;gap:12px} .chart{min-width:0}
"""


def render(data: RunData, analysis: Analysis) -> str:
    """Return the report as one HTML document (plotly.js inline, no network needed)."""
    charts = _Charts()
    parts: list[str] = []
    span = ""
    if data.equity.size:
        first, last = _dates(data.equity_ts[[0, -1]])
        span = f"{first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S} UTC"
    parts.append(
        f"<h1>Run {html.escape(data.run_id)}</h1><p>Account {html.escape(data.account)}, "
        f"{span}; {len(data.equity)} equity marks, {len(data.executions)} fills. "
        f"{html.escape(analysis.frequency.describe())}.</p>"
    )
    parts.append(
        '<h2>Success metrics (reported, never promised)</h2><table id="success">'
        "<tr><th>figure</th><th>value</th><th>target</th><th>status</th></tr>"
    )
    for metric in analysis.success:
        status, css = {True: ("met", "met"), False: ("not met", "not-met"), None: ("n/a", "na")}[
            metric.met
        ]
        parts.append(
            f"<tr><td>{html.escape(metric.name)}</td><td>{metric.shown}</td>"
            f'<td>{html.escape(metric.target)}</td><td class="{css}">{status}</td></tr>'
        )
    parts.append("</table>")
    parts.append('<h2>Statistics</h2><div id="statistics">')
    parts.append(_table_html(statistics_table(analysis)) + "</div>")
    parts.append('<h2>Equity and risk</h2><div class="grid">')
    parts.append(charts.html(_equity_chart(data), "equity"))
    parts.append(charts.html(_underwater_chart(data), "underwater"))
    for chart, chart_id, why in (
        (_monthly_chart(analysis), "monthly", "no complete period"),
        (_rolling_chart(analysis), "rolling", "fewer than 20 periods"),
    ):
        if chart is None:
            parts.append(f'<p class="note" id="{chart_id}">No {chart_id} chart: {why}.</p>')
        else:
            parts.append(charts.html(chart, chart_id))
    parts.append(charts.html(_exposure_chart(data), "exposure"))
    trade_chart = _trade_chart(analysis)
    parts.append(
        charts.html(trade_chart, "trades")
        if trade_chart is not None
        else '<p class="note" id="trades">No closed trades.</p>'
    )
    parts.append("</div><h2>Monte Carlo</h2>")
    if analysis.monte_carlo_note:
        parts.append(f'<p class="note">{html.escape(analysis.monte_carlo_note)}</p>')
    if analysis.monte_carlo is not None:
        parts.append(charts.html(_fan_chart(analysis.monte_carlo), "fan"))
        parts.append(_table_html(_monte_carlo_table(analysis.monte_carlo)))
    if analysis.trade_reshuffle is not None:
        parts.append(_table_html(_monte_carlo_table(analysis.trade_reshuffle)))
    parts.append('<h2>Post-trade</h2><div id="post-trade">')
    parts.extend(_table_html(table) for table in data.post_trade)
    if not data.post_trade:
        parts.append('<p class="note">No post-trade tables for this run.</p>')
    parts.append('</div><h2>Model</h2><div id="model">')
    score_chart = _score_chart(data)
    if score_chart is not None:
        parts.append(charts.html(score_chart, "scores"))
    for table in (data.model_scores, data.drift_events):
        if table is not None:
            parts.append(_table_html(table))
    parts.append("</div>")
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>hfl report {html.escape(data.run_id)}</title><style>{_STYLE}</style>"
        f"</head><body>{body}</body></html>"
    )


def write_report(data: RunData, path: Path, frequency: perf.Frequency = perf.DAILY) -> Path:
    """Analyse `data`, render it and write the HTML to `path`; return the path."""
    return render_report(data, analyse(data, frequency), path)


def render_report(data: RunData, analysis: Analysis, path: Path) -> Path:
    """Render an analysed run to `path` (parents created); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, analysis), encoding="utf-8")
    return path


def trades_table(trades: Sequence[perf.Trade], limit: int = 20) -> Table:
    """The largest round trips by |P&L|."""
    largest = sorted(trades, key=lambda t: -abs(t.pnl))[:limit]
    return Table(
        title=f"Largest round trips (of {len(trades)})",
        columns=("instrument", "side", "opened", "closed", "max quantity", "P&L"),
        rows=tuple(
            (
                t.instrument,
                "long" if t.side > 0 else "short",
                f"{_dates(np.array([t.opened_ns]))[0]:%Y-%m-%d %H:%M:%S}",
                f"{_dates(np.array([t.closed_ns]))[0]:%Y-%m-%d %H:%M:%S}",
                t.quantity,
                t.pnl,
            )
            for t in largest
        ),
    )


# -- loading a run from ClickHouse -----------------------------------------------------------

MANIFEST = "run.json"
_PLOT_BUCKETS_S = (1, 5, 10, 30, 60, 300, 900, 1_800, 3_600, 7_200, 14_400, 21_600, 43_200, 86_400)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunWindow:
    """Which rows belong to a run: its account and event-time window."""

    run_id: str
    account: str
    initial_cash: float
    since_ns: int
    until_ns: int


def write_manifest(run_dir: Path, window: RunWindow) -> Path:
    """Record a run's window next to its logs, so `hfl report RUN_ID` finds its rows."""
    path = run_dir / MANIFEST
    path.write_text(json.dumps(asdict(window), indent=2), encoding="utf-8")
    return path


def read_manifest(path: Path) -> RunWindow:
    """Read a manifest written by `write_manifest`."""
    return RunWindow(**json.loads(path.read_text(encoding="utf-8")))


def find_window(
    url: str, run_id: str, *, account: str, initial_cash: float, root: Path
) -> RunWindow:
    """Return the run's window: its manifest under var/runs, else the `runs` table."""
    manifest = root / "var" / "runs" / run_id / MANIFEST
    if manifest.exists():
        return read_manifest(manifest)
    rows = query(
        url,
        "SELECT toUnixTimestamp64Nano(min(started_at)), "
        "toUnixTimestamp64Nano(max(ifNull(finished_at, now64(9)))) FROM runs FINAL "
        f"WHERE run_id = {_quote(run_id)} HAVING count() > 0",
    )[1]
    if not rows:
        msg = f"no run {run_id!r}: neither {manifest} nor a row in the runs table"
        raise HflError(msg)
    since, until = (int(v) for v in rows[0])
    return RunWindow(
        run_id=run_id, account=account, initial_cash=initial_cash, since_ns=since, until_ns=until
    )


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _plot_bucket_ns(span_ns: int, period_ns: int) -> int:
    """The largest bucket of `_PLOT_BUCKETS_S` giving >= PLOT_POINTS points, <= `period_ns`."""
    chosen = _PLOT_BUCKETS_S[0]
    for seconds in _PLOT_BUCKETS_S:
        if span_ns // (seconds * perf.NS_PER_SECOND) >= PLOT_POINTS:
            chosen = seconds
    return min(chosen * perf.NS_PER_SECOND, period_ns)


def load_run(url: str, window: RunWindow, frequency: perf.Frequency = perf.DAILY) -> RunData:
    """Read one run's rows from ClickHouse at `url` into `RunData` (see `RunData`)."""
    account = _quote(window.account)
    between = (
        f"ts_event >= fromUnixTimestamp64Nano({window.since_ns}, 'UTC') AND "
        f"ts_event <= fromUnixTimestamp64Nano({window.until_ns}, 'UTC')"
    )
    marks = query(
        url,
        "SELECT toUnixTimestamp64Nano(ts_event), toFloat64(equity), toFloat64(gross_exposure), "
        f"toFloat64(net_exposure) FROM pnl FINAL WHERE account = {account} AND {between} "
        "ORDER BY ts_event",
    )[1]
    columns = list(zip(*marks, strict=True)) if marks else [(), (), (), ()]
    fills = query(
        url,
        "SELECT instrument, toUnixTimestamp64Nano(ts_event), side, toFloat64(quantity), "
        f"toFloat64(price), toFloat64(fee) FROM fills FINAL WHERE account = {account} AND "
        f"{between} ORDER BY ts_event, fill_id",
    )[1]
    executions = tuple(
        perf.Execution(
            instrument=str(name),
            ts_event=int(ts),
            quantity=float(qty) if side == "buy" else -float(qty),
            price=float(price),
            fee=float(fee),
        )
        for name, ts, side, qty, price, fee in fills
    )
    instruments = sorted({e.instrument for e in executions})
    benchmark_ts, benchmark, prices = _benchmark(url, between, instruments, window, frequency)
    return RunData(
        run_id=window.run_id,
        account=window.account,
        initial_cash=window.initial_cash,
        equity_ts=np.array(columns[0], dtype=np.int64),
        equity=np.array(columns[1], dtype=np.float64),
        gross_exposure=np.array(columns[2], dtype=np.float64),
        net_exposure=np.array(columns[3], dtype=np.float64),
        benchmark_ts=benchmark_ts,
        benchmark=benchmark,
        executions=executions,
        model_scores=_model_scores(url, between),
        score_history=_score_history(url, between),
        drift_events=_drift_events(url, between),
        post_trade=_post_trade(url, window, frequency, prices),
    )


def _benchmark(
    url: str,
    between: str,
    instruments: list[str],
    window: RunWindow,
    frequency: perf.Frequency,
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The traded instruments' equal-weighted index, and each one's (bucket ts, price)."""
    bucket = _plot_bucket_ns(window.until_ns - window.since_ns, frequency.period_ns)
    names = ", ".join(_quote(n) for n in instruments)
    where = f"{between} AND instrument IN ({names})" if instruments else between
    rows = query(
        url,
        f"SELECT intDiv(toUnixTimestamp64Nano(ts_event), {bucket}) AS b, instrument, "
        "toUnixTimestamp64Nano(max(ts_event)), argMax(price, ts_event) FROM ticks FINAL "
        f"WHERE {where} GROUP BY b, instrument ORDER BY b, instrument",
    )[1]
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0), {}
    buckets = sorted({int(r[0]) for r in rows})
    slot = {b: i for i, b in enumerate(buckets)}
    names_seen = sorted({str(r[1]) for r in rows})
    column = {n: j for j, n in enumerate(names_seen)}
    grid = np.full((len(buckets), len(names_seen)), np.nan)
    stamps = np.zeros(len(buckets), dtype=np.int64)
    for b, name, ts, price in rows:
        grid[slot[int(b)], column[str(name)]] = float(price)
        stamps[slot[int(b)]] = max(stamps[slot[int(b)]], int(ts))
    for j in range(grid.shape[1]):  # forward fill, then back fill the start
        values = grid[:, j]
        seen = np.where(~np.isnan(values), np.arange(values.size), 0)
        np.maximum.accumulate(seen, out=seen)
        values = values[seen]
        first = values[~np.isnan(values)][0]
        grid[:, j] = np.where(np.isnan(values), first, values)
    index = (grid / grid[0]).mean(axis=1)
    prices = {n: (stamps, grid[:, column[n]]) for n in names_seen}
    return stamps, index, prices


def _model_scores(url: str, between: str) -> Table:
    rows = query(
        url,
        "SELECT instrument, model, argMax(version_id, ts_event), argMax(role, ts_event), "
        "argMax(n_labelled, ts_event), argMax(`values`, ts_event) FROM model_metrics FINAL "
        f"WHERE {between} GROUP BY instrument, model ORDER BY instrument, model",
    )[1]
    keys = sorted({str(k) for row in rows for k in dict(row[5])})[:8]
    return Table(
        title="Prequential scores (latest per instrument and model)",
        columns=("instrument", "model", "version", "role", "labelled", *keys),
        rows=tuple(
            (
                str(i),
                str(m),
                str(v),
                str(r),
                int(n),
                *(float(dict(vals).get(k, math.nan)) for k in keys),
            )
            for i, m, v, r, n, vals in rows
        ),
    )


def _score_history(url: str, between: str) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    rows = query(
        url,
        "SELECT instrument, model, toUnixTimestamp64Nano(ts_event), `values`['accuracy'] "
        f"FROM model_metrics FINAL WHERE {between} AND mapContains(`values`, 'accuracy') "
        "ORDER BY instrument, model, ts_event",
    )[1]
    series: dict[str, tuple[list[int], list[float]]] = {}
    for instrument, model, ts, value in rows:
        times, values = series.setdefault(f"{instrument} {model} accuracy", ([], []))
        times.append(int(ts))
        values.append(float(value))
    return tuple(
        (name, *_downsample(np.array(t, dtype=np.int64), np.array(v)))  # type: ignore[misc]
        for name, (t, v) in sorted(series.items())[:10]
    )


def _drift_events(url: str, between: str) -> Table:
    rows = query(
        url,
        "SELECT toString(ts_event), instrument, model, detector, stream, value FROM "
        f"drift_events FINAL WHERE {between} ORDER BY ts_event LIMIT 200",
    )[1]
    return Table(
        title="Drift events (first 200)",
        columns=("event time", "instrument", "model", "detector", "stream", "value"),
        rows=tuple(tuple(r) for r in rows),
    )


def _post_trade(
    url: str,
    window: RunWindow,
    frequency: perf.Frequency,
    prices: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[Table, ...]:
    params = f"since_ns = {window.since_ns}, until_ns = {window.until_ns}"
    account = _quote(window.account)
    tables = []
    columns, rows = query(url, f"SELECT * FROM post_trade_quality({params})")
    tables.append(
        Table(
            title="Execution quality per instrument and side",
            columns=tuple(columns),
            rows=tuple(tuple(r) for r in rows),
            note="Slippage in bps against the decision price and the arrival tick (positive "
            "= cost); latency in event time. View post_trade_quality (docs/post-trade.md).",
        )
    )
    for key, title in (
        ("instrument", "P&L attribution by instrument"),
        ("model, model_version", "P&L attribution by model version"),
    ):
        columns, rows = query(
            url,
            f"SELECT {key}, count() AS fills, sum(fee) AS fees, sum(pnl) AS pnl FROM "
            f"pnl_attribution({params}) WHERE account = {account} GROUP BY {key} ORDER BY pnl",
        )
        tables.append(
            Table(
                title=title,
                columns=tuple(columns),
                rows=tuple(tuple(r) for r in rows),
                note="Each fill marked to the window's last price; sums to the window's P&L "
                "for a book flat at its start. View pnl_attribution.",
            )
        )
    columns, rows = query(
        url,
        f"SELECT signal_id, instrument, sum(pnl) AS pnl FROM pnl_attribution({params}) "
        f"WHERE account = {account} GROUP BY signal_id, instrument ORDER BY abs(pnl) DESC "
        "LIMIT 10",
    )
    tables.append(
        Table(title="Largest P&L by signal", columns=tuple(columns), rows=tuple(map(tuple, rows)))
    )
    tables.extend(_book_risk(url, window, frequency, prices))
    return tuple(tables)


def _book_risk(
    url: str,
    window: RunWindow,
    frequency: perf.Frequency,
    prices: dict[str, tuple[np.ndarray, np.ndarray]],
) -> tuple[Table, ...]:
    """The final book's VaR decomposition and stress losses, from the run's own prices."""
    held = query(
        url,
        "SELECT instrument, toFloat64(argMax(quantity, (ts_event, ts_init))) FROM positions "
        f"FINAL WHERE account = {_quote(window.account)} AND ts_event <= "
        f"fromUnixTimestamp64Nano({window.until_ns}, 'UTC') GROUP BY instrument",
    )[1]
    names = [str(n) for n, q in held if q and str(n) in prices]
    title = f"Risk decomposition of the final book (historical, {VAR_CONFIDENCE:.0%}, one period)"
    columns = ("instrument", "value held", "marginal VaR", "component VaR", "component CVaR")
    if not names:
        return (Table(title=title, columns=columns, rows=(), note="The book ends flat."),)
    quantity = {str(n): float(q) for n, q in held}
    closes = []
    for name in names:
        ts, level = prices[name]
        _, sampled = perf.sample_equity(ts, level, frequency.period_ns)
        closes.append(sampled)
    length = min(len(c) for c in closes)
    matrix = np.column_stack([c[-length:] for c in closes])
    if length < 3:
        note = f"Only {length - 1} {frequency.name} returns: too few to decompose VaR or stress."
        return (Table(title=title, columns=columns, rows=(), note=note),)
    returns = matrix[1:] / matrix[:-1] - 1.0
    holdings = np.array([quantity[n] for n in names]) * matrix[-1]
    return (
        decomposition_table(names, holdings, returns, frequency),
        stress_table(names, holdings, returns, frequency),
    )


def decomposition_table(
    names: Sequence[str], holdings: np.ndarray, returns: np.ndarray, frequency: perf.Frequency
) -> Table:
    """Marginal and component historical VaR/CVaR per instrument, and the book's."""
    result = decomposition.historical(holdings, returns, VAR_CONFIDENCE)
    rows = tuple(
        (
            name,
            float(holdings[i]),
            float(result.marginal_var[i]),
            float(result.component_var[i]),
            float(result.component_cvar[i]),
        )
        for i, name in enumerate(names)
    )
    return Table(
        title=f"Risk decomposition of the final book (historical, {VAR_CONFIDENCE:.0%}, "
        "one period)",
        columns=("instrument", "value held", "marginal VaR", "component VaR", "component CVaR"),
        rows=(*rows, ("book", float(holdings.sum()), math.nan, result.value_at_risk, result.cvar)),
        note=f"{len(returns)} {frequency.name} returns of the instruments held; components "
        "sum to the book's VaR and CVaR (risk.decomposition).",
    )


def stress_table(
    names: Sequence[str], holdings: np.ndarray, returns: np.ndarray, frequency: perf.Frequency
) -> Table:
    """The live risk model's stress scenarios, and the worst real window, on the book."""
    per_day = perf.NS_PER_DAY / frequency.period_ns if frequency.is_intraday else 1.0
    losses = montecarlo.stress_book(
        dict(zip(names, holdings.tolist(), strict=True)),
        returns,
        list(names),
        periods_per_day=per_day,
        confidence=VAR_CONFIDENCE,
    )
    rows: list[tuple[Any, ...]] = [(name, loss) for name, loss in losses.items()]
    span = min(21, len(returns))
    book = returns @ holdings
    worst = min(range(len(returns) - span + 1), key=lambda k: float(book[k : k + span].sum()))
    window = {n: returns[worst : worst + span, i] for i, n in enumerate(names)}
    rows.append(
        (
            f"worst {span} {frequency.name} periods of the run, replayed",
            montecarlo.historical_scenario(
                dict(zip(names, holdings.tolist(), strict=True)), window
            ),
        )
    )
    return Table(
        title="Stress scenarios on the final book (loss, money)",
        columns=("scenario", "loss"),
        rows=tuple(rows),
        note="market -10 % through betas to the held instruments' mean, volatility x3 and "
        "correlations -> 1 as VaR at the same confidence: the live risk model's scenarios "
        "(risk.monitor.stress_loss).",
    )
