"""The one place where accounted amounts are quantised.

Orders, fills, positions, cash and limits are `Decimal` with nine decimal places,
matching the `Decimal(38, 9)` columns in ClickHouse.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
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
    if not isinstance(value, Decimal):
        value = Decimal(value)
    # Rounding passed by position: as a keyword, the C decimal parses it at about
    # twice the cost of the whole quantisation (the gate quantises several per signal).
    return value.quantize(QUANTUM, ROUND_HALF_EVEN)


@lru_cache(maxsize=4096)
def _quantize_float(value: float) -> Decimal:
    # The gate quantises the same reference price several times per decision; prices
    # repeat, so a small cache saves most of the conversions. Decimals are immutable.
    return Decimal(repr(value)).quantize(QUANTUM, ROUND_HALF_EVEN)


def quantize_lot(quantity: Decimal, lot_size: Decimal) -> Decimal:
    """Round a quantity toward zero to a whole number of lots.

    >>> quantize_lot(Decimal("7.9"), Decimal("1"))
    Decimal('7.000000000')
    >>> quantize_lot(Decimal("-7.9"), Decimal("0.5"))
    Decimal('-7.500000000')
    """
    lots = (quantity / lot_size).to_integral_value(ROUND_DOWN)
    return quantize(lots * lot_size)


def at_most(value: float, limit: Decimal) -> bool:
    """Return `value <= limit` exactly, as Python's float-to-Decimal comparison does.

    That comparison converts the float to a Decimal every time (about 0.6 us); this one
    compares two floats against the limit's nearest float, chosen once per limit, which
    gives the same answer: no float lies strictly between a limit and its nearest float.

    >>> at_most(0.1, Decimal("0.1")), at_most(0.30000000000000004, Decimal("0.3"))
    (False, False)
    >>> at_most(0.3, Decimal("0.3")), at_most(2.5, Decimal(3)), at_most(-1e300, Decimal(0))
    (True, True, True)
    """
    nearest, inclusive = _float_bound(limit)
    return value <= nearest if inclusive else value < nearest


@lru_cache(maxsize=256)
def _float_bound(limit: Decimal) -> tuple[float, bool]:
    """The float nearest `limit`, and whether a value equal to it is within the limit."""
    nearest = float(limit)
    return nearest, Decimal(nearest) <= limit
