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
