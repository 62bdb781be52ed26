"""Positions and account P&L as the book sees them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class Position:
    """Net holding of one instrument after a fill."""

    account: str
    instrument: str
    quantity: Decimal
    average_price: Decimal
    realized_pnl: Decimal
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PnlSnapshot:
    """Account equity marked to the latest prices at event time `ts_event`."""

    account: str
    cash: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    equity: Decimal
    gross_exposure: Decimal
    net_exposure: Decimal
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskMetric:
    """One real-time portfolio risk figure of `account` computed at event time `ts_event`.

    `metric` is a bounded name (var_hist, cvar_ewma, beta, drawdown, stress_<name>,
    volatility:<instrument>, correlation:<a>:<b>...); money figures are fractions of
    equity; `limit_value` is the configured limit (0 when there is none), so
    value / limit_value is the limit's utilisation.
    """

    metrics_id: str
    account: str
    metric: str
    value: float
    limit_value: float
    ts_event: int
    ts_init: int
