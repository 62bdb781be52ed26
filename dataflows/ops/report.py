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
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from risk import montecarlo
from risk import performance as perf

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
    success: tuple[SuccessMetric, ...] = field(default=())


# -- analysis ------------------------------------------------------------------------------


def _level_at(ts: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The last of `values` at or before each of `at` (the first value before any)."""
    index = np.searchsorted(ts, at, side="right") - 1
    return values[np.clip(index, 0, len(values) - 1)]  # type: ignore[no-any-return]


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
        levels = _level_at(data.benchmark_ts, data.benchmark, sample_ts)
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
        gross = _level_at(data.equity_ts, data.gross_exposure, sample_ts[1:])
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
    )
    return Analysis(**{**_fields(analysis), "success": success_metrics(analysis)})


def _fields(analysis: Analysis) -> dict[str, Any]:
    return {name: getattr(analysis, name) for name in Analysis.__dataclass_fields__}


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
        span_ns = max(int(data.equity_ts[-1] - data.equity_ts[0]), 1) if data.equity.size else 1
        years = span_ns / perf.NS_PER_DAY / 365.25
        return montecarlo.reshuffle_trades(
            np.array([t.pnl for t in trades]),
            initial_equity=initial,
            trades_per_year=len(trades) / years,
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


def _monte_carlo_table(mc: montecarlo.MonteCarlo) -> Table:
    def row(
        name: str, dist: montecarlo.Distribution, fmt: Callable[[float], str]
    ) -> tuple[str, ...]:
        return (name, *(fmt(v) for v in dist.percentiles), fmt(dist.mean))

    return Table(
        title="Monte Carlo distributions",
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, analyse(data, frequency)), encoding="utf-8")
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
