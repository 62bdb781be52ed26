"""Pre-trade risk limits, account-wide defaults and per-instrument overrides."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
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
        max_concentration: Largest |worst-case position value| / equity on the
            instrument, as a fraction.
        group: Sector or group the instrument counts towards (`AccountLimits.
            max_group_concentration`); "" for none.
        max_volatility: Largest annualised realised volatility of the instrument.
        scale_on_volatility: Above `max_volatility`, scale the target position down by
            max_volatility / volatility instead of denying.
        max_correlation: Largest correlation of the instrument with the rest of the
            book for an order that increases the position in the book's direction.
        time_in_force_ns: How long (event time) the gate's orders stay working before
            what has not filled expires.
    """

    max_order_quantity: Decimal
    max_order_notional: Decimal
    max_position: Decimal
    max_gross_exposure: Decimal
    price_collar_pct: float
    max_reference_age_ns: int
    max_concentration: float = 1.0
    group: str = ""
    max_volatility: float = 10.0
    scale_on_volatility: bool = False
    max_correlation: float = 0.3
    time_in_force_ns: int = 5 * _NS_PER_S

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
        found.extend(
            _positive_floats(
                price_collar_pct=self.price_collar_pct,
                max_concentration=self.max_concentration,
                max_volatility=self.max_volatility,
                max_correlation=self.max_correlation,
            )
        )
        if self.max_reference_age_ns <= 0:
            found.append(
                f"max_reference_age_ns must be positive, got {self.max_reference_age_ns!r}"
            )
        if self.time_in_force_ns <= 0:
            found.append(f"time_in_force_ns must be positive, got {self.time_in_force_ns!r}")
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


def _positive_floats(**values: float) -> list[str]:
    return [
        f"{name} must be positive and finite, got {value!r}"
        for name, value in values.items()
        if not math.isfinite(value) or value <= 0
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountLimits:
    """Limits on the account as a whole (fractions of equity unless named otherwise).

    Attributes:
        max_open_orders: Most orders working at once.
        max_net_exposure: Largest |worst-case net exposure| (money) after the order.
        max_group_concentration: Largest worst-case gross value of one group / equity.
        var_budget: Largest 1-day 99 % VaR of the post-trade book, historical and EWMA.
        cvar_budget: Largest 1-day 99 % CVaR of the post-trade book, historical and EWMA.
        max_beta: Largest |beta| of the post-trade book to the market proxy.
        drawdown_soft: Drawdown from the high-water mark that moves the account to
            REDUCING.
        drawdown_hard: Drawdown that HALTS the account.
        daily_loss: Loss since the start of the (UTC, event-time) day that HALTS it.
        max_orders_per_window: Approved orders allowed per `order_window_ns`.
        order_window_ns: The order-rate throttle's sliding window.
        max_fills_without_human: Fills allowed since the last operator command before
            the account HALTS (repeated-execution throttle); 0 turns it off.
    """

    max_open_orders: int = 1_000
    max_net_exposure: Decimal = Decimal(10_000_000)
    max_group_concentration: float = 1.0
    var_budget: float = 0.02
    cvar_budget: float = 0.03
    max_beta: float = 0.5
    drawdown_soft: float = 0.05
    drawdown_hard: float = 0.10
    daily_loss: float = 0.05
    max_orders_per_window: int = 100
    order_window_ns: int = _NS_PER_S
    max_fills_without_human: int = 0

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ConfigError("invalid account limits: " + "; ".join(problems))

    def problems(self) -> list[str]:
        """Return every reason these limits are unusable (empty when they are fine)."""
        found = _positive_floats(
            max_group_concentration=self.max_group_concentration,
            var_budget=self.var_budget,
            cvar_budget=self.cvar_budget,
            max_beta=self.max_beta,
            drawdown_soft=self.drawdown_soft,
            drawdown_hard=self.drawdown_hard,
            daily_loss=self.daily_loss,
        )
        if not self.max_net_exposure.is_finite() or self.max_net_exposure <= 0:
            found.append(f"max_net_exposure must be positive, got {self.max_net_exposure!r}")
        for name, value in (
            ("max_open_orders", self.max_open_orders),
            ("max_orders_per_window", self.max_orders_per_window),
            ("order_window_ns", self.order_window_ns),
        ):
            if value <= 0:
                found.append(f"{name} must be positive, got {value!r}")
        if self.max_fills_without_human < 0:
            found.append("max_fills_without_human must be >= 0 (0 turns it off)")
        if self.drawdown_soft > self.drawdown_hard:
            found.append("drawdown_soft must not exceed drawdown_hard")
        return found


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


def with_max_position(limits: LimitProvider, instrument: str, max_position: Decimal) -> LimitBook:
    """`limits` with `instrument`'s position limit set to `max_position` (an operator's
    `hfl limits set`); the instrument's other limits and every other instrument's stay.

    >>> book = with_max_position(RiskLimits.default(), "AAPL", Decimal(5))
    >>> book.for_instrument("AAPL").max_position, book.for_instrument("MSFT") == book.default
    (Decimal('5'), True)

    Raises:
        TypeError: `limits` is neither a `LimitBook` nor one `RiskLimits` for all.
    """
    match limits:
        case LimitBook():
            book = limits
        case RiskLimits():
            book = LimitBook(default=limits)
        case _:
            raise TypeError(f"cannot change a limit of {type(limits).__name__}")
    changed = replace(book.for_instrument(instrument), max_position=max_position)
    return LimitBook(
        default=book.default, per_instrument={**book.per_instrument, instrument: changed}
    )
