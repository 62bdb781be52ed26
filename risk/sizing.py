"""Position sizing: how much to hold for a desired direction."""

from __future__ import annotations

import math
from decimal import Decimal
from enum import StrEnum

from risk.domain.money import quantize, quantize_lot

_FLAT = quantize(0)
_SIGNS = {1: Decimal(1), -1: Decimal(-1)}  # Decimal(direction), built once


class SizingMethod(StrEnum):
    """How the gate turns signals into target positions.

    `vol_target` sizes each signal alone, when it arrives; the others build the whole
    book from every instrument's latest signal on the risk model's schedule
    (`risk.optimizer.portfolio_weights`).
    """

    VOL_TARGET = "vol_target"
    INVERSE_VOL = "inverse_vol"
    RISK_PARITY = "risk_parity"
    MEAN_VARIANCE = "mean_variance"


def target_quantity(
    direction: int, reference_price: float, *, target_notional: Decimal, lot_size: Decimal
) -> Decimal:
    """Return the signed quantity worth `target_notional` in `direction`, in whole lots.

    The quantity is rounded toward zero so the position never exceeds the target notional.

    Args:
        direction: -1 short, 0 flat, +1 long.
        reference_price: The price the quantity is sized at; must be positive and finite.
        target_notional: Money to hold per unit of direction.
        lot_size: The instrument's trading increment.

    Raises:
        ValueError: If the price is not positive and finite or the lot size not positive.

    >>> target_quantity(1, 101.0, target_notional=Decimal(10_000), lot_size=Decimal(1))
    Decimal('99.000000000')
    >>> target_quantity(-1, 3.0, target_notional=Decimal(10), lot_size=Decimal("0.5"))
    Decimal('-3.000000000')
    >>> target_quantity(0, 50.0, target_notional=Decimal(10_000), lot_size=Decimal(1))
    Decimal('0E-9')
    """
    if not math.isfinite(reference_price) or reference_price <= 0:
        msg = f"reference price must be positive and finite, got {reference_price!r}"
        raise ValueError(msg)
    if lot_size <= 0:
        msg = f"lot size must be positive, got {lot_size!r}"
        raise ValueError(msg)
    if direction == 0:
        return _FLAT
    sign = _SIGNS.get(direction) or Decimal(direction)
    raw = sign * target_notional / quantize(reference_price)
    return quantize_lot(raw, lot_size)


def volatility_target_notional(
    equity: float, target_volatility: float, volatility: float | None, *, cap: Decimal
) -> Decimal:
    """Return the notional at which one position alone runs at `target_volatility`.

    equity * target / realised volatility (both annualised), never above `cap`; with no
    usable volatility estimate yet, `cap`.

    >>> volatility_target_notional(1_000_000.0, 0.15, 0.5, cap=Decimal(400_000))
    Decimal('300000.000000000')
    """
    if volatility is None or not volatility > 0 or not math.isfinite(volatility):
        return cap
    return min(cap, quantize(equity * target_volatility / volatility))
