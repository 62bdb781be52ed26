"""The end-of-run summary, read from ClickHouse."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from risk.performance import max_drawdown, sharpe_ratio, simple_returns
from sinks.query import query

SECONDS_PER_YEAR = 252 * 23_400  # trading seconds: P&L snapshots are per second


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
    sharpe: float | None = None
    max_drawdown: float | None = None

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
            f"Sharpe                 {_fmt(self.sharpe)} (per-second equity, annualised)",
            f"max drawdown           {_fmt(self.max_drawdown)}",
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
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _scalar(url: str, sql: str) -> int:
    return int(query(url, sql)[1][0][0])


def summarize(url: str, since_ns: int, account: str, initial_cash: Decimal) -> RunSummary:
    """Read the figures of the run whose events start at `since_ns`."""
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
    returns = (
        simple_returns([float(value) for value in equity]) if len(equity) > 1 else np.array([])
    )
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
        sharpe=sharpe_ratio(returns, SECONDS_PER_YEAR) if returns.size > 1 else None,
        max_drawdown=max_drawdown(returns) if returns.size else None,
    )
