"""The one place where accounted amounts are quantised.

Orders, fills, positions, cash and limits are `Decimal` with nine decimal places,
matching the `Decimal(38, 9)` columns in ClickHouse.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache

QUANTUM = Decimal("0.000000001")
ZERO = Decimal(0)


def quantize(value: Decimal | float | int | str) -> Decimal:
    """Return `value` as a Decimal rounded half-even to nine decimal places.

    Floats go through `repr` so 0.1 stays 0.1 rather than its binary expansion.

    >>> quantize(0.1)
    Decimal('0.100000000')
    >>> quantize("2.0000000005")
    Decimal('2.000000000')
    """
    if isinstance(value, float):
        return _quantize_float(value)
    return Decimal(value).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


@lru_cache(maxsize=4096)
def _quantize_float(value: float) -> Decimal:
    # The gate quantises the same reference price several times per decision; prices
    # repeat, so a small cache saves most of the conversions. Decimals are immutable.
    return Decimal(repr(value)).quantize(QUANTUM, rounding=ROUND_HALF_EVEN)


def quantize_lot(quantity: Decimal, lot_size: Decimal) -> Decimal:
    """Round a quantity toward zero to a whole number of lots.

    >>> quantize_lot(Decimal("7.9"), Decimal("1"))
    Decimal('7.000000000')
    >>> quantize_lot(Decimal("-7.9"), Decimal("0.5"))
    Decimal('-7.500000000')
    """
    lots = (quantity / lot_size).to_integral_value(rounding="ROUND_DOWN")
    return quantize(lots * lot_size)
