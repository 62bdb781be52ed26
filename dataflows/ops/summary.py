"""The end-of-run summary, read from ClickHouse.

Performance figures come from the run's report analysis (`dataflows.ops.report`):
returns sampled at a declared frequency, daily unless asked, so a run shorter than two
periods shows "n/a" for annualised figures instead of annualising per-second marks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

from dataflows.ops.report import Analysis
from sinks.query import query


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """Headline figures of one run (rows with `ts_event >= since_ns`)."""

    ticks: int
    features: int
    predictions_labelled: int
    accuracy: float | None
    majority_baseline: float | None
    signals: int
    orders: int
    fills: int
    dlq: int
    denials: dict[str, int] = field(default_factory=dict)
    positions: dict[str, Decimal] = field(default_factory=dict)
    pnl: Decimal | None = None
    equity: Decimal | None = None
    analysis: Analysis | None = None
    report_path: str | None = None

    def render(self) -> str:
        """Human-readable summary."""
        lines = [
            f"ticks processed        {self.ticks}",
            f"feature vectors        {self.features}",
            f"model accuracy         {_fmt(self.accuracy)} (prequential, "
            f"{self.predictions_labelled} labelled predictions; always guessing the "
            f"majority label scores {_fmt(self.majority_baseline)})",
            f"signals                {self.signals}",
            f"orders                 {self.orders}",
            f"fills                  {self.fills}",
            f"P&L                    {self.pnl}  (equity {self.equity})",
            *self._performance_lines(),
            f"dead letters (DLQ)     {self.dlq}",
            "denials by reason      "
            + (
                ", ".join(f"{reason}={count}" for reason, count in sorted(self.denials.items()))
                or "none"
            ),
            "final positions        "
            + (
                ", ".join(
                    f"{name}={qty.normalize():f}"
                    for name, qty in sorted(self.positions.items())
                    if qty
                )
                or "flat"
            ),
        ]
        if self.report_path:
            lines.append(f"report                 {self.report_path}")
        return "\n".join(lines)

    def _performance_lines(self) -> list[str]:
        analysis = self.analysis
        if analysis is None:
            return ["performance            n/a (no equity marks)"]
        f, t = analysis.figures, analysis.trade_stats
        lines = [
            f"returns                {f.periods} x {analysis.frequency.describe()}",
            f"total return           {_pct(f.total_return)}",
        ]
        if f.periods < 2:
            lines.append(
                f"Sharpe, Sortino, vol   n/a: need two or more {analysis.frequency.name} "
                f"returns, the run has {f.periods} (an intraday view: hfl report RUN_ID "
                "--frequency 1min)"
            )
        else:
            lines += [
                f"Sharpe / Sortino       {_fmt(f.sharpe)} / {_fmt(f.sortino)}",
                f"Calmar / Omega         {_fmt(f.calmar)} / {_fmt(f.omega)}",
                f"annual volatility      {_pct(f.annual_volatility)}",
                f"VaR / CVaR {f.confidence:.0%}       {_pct(f.var)} / {_pct(f.cvar)} per period",
                f"beta to benchmark      {_fmt(f.beta)}",
            ]
        lines += [
            f"max drawdown           {_pct(analysis.max_drawdown_every_mark)} (every equity "
            f"mark; longest {f.max_drawdown_periods} {analysis.frequency.name} periods)",
            f"round trips            {t.trades}: win rate {_pct(t.win_rate)}, profit factor "
            f"{_fmt(t.profit_factor)}, expectancy {_fmt(t.expectancy)}",
        ]
        return lines


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f} %"


def _scalar(url: str, sql: str) -> int:
    return int(query(url, sql)[1][0][0])


def summarize(
    url: str,
    since_ns: int,
    account: str,
    initial_cash: Decimal,
    *,
    analysis: Analysis | None = None,
    report_path: str | None = None,
) -> RunSummary:
    """Read the figures of the run whose events start at `since_ns`.

    `analysis` (the run's report figures) supplies the performance lines.
    """
    since = f"fromUnixTimestamp64Nano({since_ns}, 'UTC')"

    def count(table: str, extra: str = "") -> int:
        return _scalar(url, f"SELECT count() FROM {table} FINAL WHERE ts_event >= {since}{extra}")

    accuracy_rows = query(
        url,
        (
            "SELECT count(), avg(toUInt8(probability_up > 0.5) = label), avg(label) "
            f"FROM predictions FINAL WHERE ts_event >= {since} AND label IS NOT NULL"
        ),
    )[1]
    labelled, accuracy, up_share = accuracy_rows[0]
    labelled = int(labelled)
    denials = dict(
        query(
            url,
            (
                "SELECT reason, count() FROM risk_decisions FINAL WHERE outcome = 'denied' AND "
                f"ts_event >= {since} GROUP BY reason"
            ),
        )[1]
    )
    positions = dict(
        query(
            url,
            (
                "SELECT instrument, argMax(quantity, (ts_event, ts_init)) FROM positions FINAL "
                f"WHERE account = '{account}' AND ts_event >= {since} GROUP BY instrument"
            ),
        )[1]
    )
    equity = [
        row[0]
        for row in query(
            url,
            (
                f"SELECT equity FROM pnl FINAL WHERE account = '{account}' AND ts_event >= {since} "
                "ORDER BY ts_event"
            ),
        )[1]
    ]
    return RunSummary(
        ticks=count("ticks"),
        features=count("features"),
        predictions_labelled=labelled,
        accuracy=float(accuracy) if labelled else None,
        majority_baseline=max(float(up_share), 1 - float(up_share)) if labelled else None,
        signals=count("signals"),
        orders=count("orders"),
        fills=count("fills"),
        dlq=_scalar(url, f"SELECT count() FROM dlq FINAL WHERE ts_init >= {since}"),
        denials={str(k): int(v) for k, v in denials.items()},
        positions={str(k): Decimal(v) for k, v in positions.items()},
        equity=equity[-1] if equity else None,
        pnl=(equity[-1] - initial_cash) if equity else None,
        analysis=analysis,
        report_path=report_path,
    )
