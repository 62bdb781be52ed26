"""Pre-trade risk limits, account-wide defaults and per-instrument overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from risk.domain.error import ConfigError

_NS_PER_S = 1_000_000_000


class LimitProvider(Protocol):
    """Anything that hands out the limits that apply to one instrument."""

    def for_instrument(self, instrument: str) -> RiskLimits:
        """Return the limits for orders on `instrument`."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskLimits:
    """The pre-trade limits applied to one order.

    Attributes:
        max_order_quantity: Largest quantity of a single order.
        max_order_notional: Largest quantity * reference price of a single order.
        max_position: Largest absolute position on the instrument, counting every working
            order on the side the new order increases as if it filled (worst case).
        max_gross_exposure: Largest Σ over instruments of worst-case |position + working| *
            reference price once the new order is counted. Taken from the limits of the
            order's instrument, so an override can hold a risky name to a tighter book.
        price_collar_pct: Largest |limit price - reference| / reference, as a fraction
            (0.05 is 5 %). Market orders trade at the reference, so they only need one.
        max_reference_age_ns: Oldest reference price, relative to the intent's `ts_event`,
            that still counts as a reference.
    """

    max_order_quantity: Decimal
    max_order_notional: Decimal
    max_position: Decimal
    max_gross_exposure: Decimal
    price_collar_pct: float
    max_reference_age_ns: int

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid risk limits: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Return every reason these limits are unusable (empty when they are fine)."""
        found = [
            f"{name} must be a positive Decimal, got {value!r}"
            for name, value in (
                ("max_order_quantity", self.max_order_quantity),
                ("max_order_notional", self.max_order_notional),
                ("max_position", self.max_position),
                ("max_gross_exposure", self.max_gross_exposure),
            )
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0
        ]
        if not math.isfinite(self.price_collar_pct) or self.price_collar_pct <= 0:
            found.append(f"price_collar_pct must be positive, got {self.price_collar_pct!r}")
        if self.max_reference_age_ns <= 0:
            found.append(
                f"max_reference_age_ns must be positive, got {self.max_reference_age_ns!r}"
            )
        return found

    @classmethod
    def default(cls) -> RiskLimits:
        """Return conservative limits for a small paper account.

        >>> RiskLimits.default().max_order_notional
        Decimal('100000')
        """
        return cls(
            max_order_quantity=Decimal(10_000),
            max_order_notional=Decimal(100_000),
            max_position=Decimal(10_000),
            max_gross_exposure=Decimal(1_000_000),
            price_collar_pct=0.05,
            max_reference_age_ns=60 * _NS_PER_S,
        )

    def for_instrument(self, instrument: str) -> RiskLimits:
        """Return these limits: one set for every instrument."""
        return self


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitBook:
    """Account-wide limits with per-instrument overrides.

    >>> tight = RiskLimits.default()
    >>> book = LimitBook(default=RiskLimits.default(), per_instrument={"TSLA": tight})
    >>> book.for_instrument("TSLA") is tight, book.for_instrument("AAPL") is book.default
    (True, True)
    """

    default: RiskLimits
    # A plain dict (not MappingProxyType) so the book pickles into Bytewax snapshots.
    per_instrument: dict[str, RiskLimits] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_instrument", dict(self.per_instrument))

    def for_instrument(self, instrument: str) -> RiskLimits:
        """Return the override for `instrument`, or the default limits."""
        return self.per_instrument.get(instrument, self.default)
