"""Pre-trade controls: small pure checks run in one fixed order.

Each `check_*` returns a `Denial` naming the failed control and by how much, or None.
`run_checks` applies them in this order and stops at the first denial:

1. trading state: HALTED denies every new order, REDUCING every order that could
   increase |position| (counting working orders on the order's side),
2. zero quantity,
3. reference price present and fresh,
4. price collar (limit orders only; market orders trade at the reference): the gate
   sends marketable limits priced off the signal's price (`marketable_limit`), so it
   denies a signal whose price is further from the latest reference than the collar;
   and, against the last market price from the flow's own ticks when a fresh one is
   known (`check_market_collar`), a reference (the price a signal saw) further from
   the market than the collar,
5. max order quantity,
6. max order notional (quantity * reference),
7. max position, worst case: position plus every working order on the side this order
   increases, plus this order,
8. max gross exposure, worst case, once this order is counted.

Controls 7 and 8 deny only orders that push exposure up, so an account that is over a
limit (say after the limit was lowered) can always trade back towards flat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Protocol

from risk.domain.enums import DenialReason, OrderType, Side, TradingState
from risk.domain.money import QUANTUM, at_most, quantize
from risk.domain.order import OrderIntent
from risk.limit import RiskLimits


@dataclass(frozen=True, slots=True, kw_only=True)
class Denial:
    """Which control failed and a human-readable account of by how much."""

    reason: DenialReason
    detail: str


class ExposureView(Protocol):
    """What the exposure checks need to know about the account's current book."""

    def worst_case_long(self, instrument: str) -> Decimal:
        """Return position plus every working buy on `instrument`."""
        ...

    def worst_case_short(self, instrument: str) -> Decimal:
        """Return position minus every working sell on `instrument`."""
        ...

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        """Return the worst-case gross exposure of every instrument but `instrument`."""
        ...

    def reference_ts_event(self, instrument: str) -> int | None:
        """Return the event time of `instrument`'s reference price, or None if none."""
        ...


def _fmt(value: Decimal) -> str:
    """Return `value` without trailing zeros, never in exponent form.

    >>> _fmt(Decimal("12.500000000")), _fmt(Decimal("100.000000000"))
    ('12.5', '100')
    """
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def halted_denial(trigger: str) -> Denial:
    """The denial of a HALTED account or instrument; a kill names the kill switch.

    >>> halted_denial("kill").reason, halted_denial("drawdown").reason
    (<DenialReason.KILL_SWITCH: 'kill_switch'>, <DenialReason.HALTED: 'halted'>)
    """
    if trigger == "kill":
        return Denial(reason=DenialReason.KILL_SWITCH, detail="kill switch is on")
    return Denial(reason=DenialReason.HALTED, detail=f"halted by {trigger or 'control'}")


def reduces_position(intent: OrderIntent, view: ExposureView) -> bool:
    """True when the order can only bring |position| towards zero, never through it.

    Working orders on the same side count as if they filled, so several reducing
    orders together can never flip the position.
    """
    if intent.side is Side.BUY:
        return view.worst_case_long(intent.instrument) + intent.quantity <= 0
    return view.worst_case_short(intent.instrument) - intent.quantity >= 0


def check_trading_state(
    intent: OrderIntent, view: ExposureView, state: TradingState, trigger: str
) -> Denial | None:
    """Deny every order while HALTED and every non-reducing order while REDUCING."""
    if state is TradingState.ACTIVE:
        return None
    if state is TradingState.HALTED:
        return halted_denial(trigger)
    if intent.quantity <= 0 or reduces_position(intent, view):
        return None  # zero quantity gets its own, more telling denial next
    return Denial(
        reason=DenialReason.REDUCE_ONLY,
        detail=f"{intent.side} {_fmt(intent.quantity)} would not reduce the position "
        f"(reducing since {trigger or 'control'})",
    )


def check_zero_quantity(intent: OrderIntent) -> Denial | None:
    """Deny an intent that would trade nothing (already at target)."""
    if intent.quantity <= 0:
        return Denial(
            reason=DenialReason.ZERO_QUANTITY,
            detail=f"quantity {_fmt(intent.quantity)} <= 0",
        )
    return None


def check_reference_price(
    intent: OrderIntent, reference_ts_event: int | None, limits: RiskLimits
) -> Denial | None:
    """Deny when there is no usable reference price or it is older than the limit allows."""
    price = intent.reference_price
    if price is None or reference_ts_event is None:
        return Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
    if not math.isfinite(price) or price <= 0:
        return Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail=f"unusable {price!r}")
    age_ns = intent.ts_event - reference_ts_event
    if age_ns > limits.max_reference_age_ns:
        return Denial(
            reason=DenialReason.NO_REFERENCE_PRICE,
            detail=f"stale: age {age_ns} ns > limit {limits.max_reference_age_ns} ns",
        )
    return None


@lru_cache(maxsize=64)
def collar_fraction(price_collar_pct: float) -> Decimal:
    """The collar as an exact Decimal fraction (`RiskLimits.price_collar_pct` is a float).

    >>> collar_fraction(0.05)
    Decimal('0.05')
    """
    return Decimal(repr(price_collar_pct))


def within_collar(limit_price: Decimal, reference: Decimal, collar: Decimal) -> bool:
    """True when |limit - reference| <= reference * collar, exactly (Decimals).

    >>> within_collar(Decimal("105"), Decimal("100"), Decimal("0.05"))
    True
    >>> within_collar(Decimal("105.000000001"), Decimal("100"), Decimal("0.05"))
    False
    """
    return abs(limit_price - reference) <= reference * collar


_INSIDE_COLLAR = Decimal("0.9999")


def marketable_limit(side: Side, price: float, collar: Decimal) -> Decimal:
    """The limit price of a marketable order priced off `price`: `price` plus the collar
    for a buy, minus it for a sell, rounded towards `price`.

    A hair inside the collar (by 0.01 % of it), so the collar passes it against that
    same reference however it is computed: exactly, as `check_price_collar` does, or
    in floats from the unquantised price, as a venue or a test oracle may. It crosses
    any touch within the collar (it trades at the touch, not at the limit).

    >>> marketable_limit(Side.BUY, 100.0, Decimal("0.05"))
    Decimal('104.999500000')
    >>> marketable_limit(Side.SELL, 0.3, Decimal("0.07"))
    Decimal('0.279002100')
    """
    reference = quantize(price)
    band = reference * collar * _INSIDE_COLLAR
    if side is Side.BUY:
        return (reference + band).quantize(QUANTUM, ROUND_FLOOR)
    return (reference - band).quantize(QUANTUM, ROUND_CEILING)


def check_price_collar(intent: OrderIntent, limits: RiskLimits) -> Denial | None:
    """Deny a limit order priced further from the reference than the collar allows.

    Compared exactly, in Decimals, against the reference as quantised. Market orders
    pass: they trade at the reference, which `check_reference_price` vouches for.
    """
    if intent.order_type is OrderType.MARKET or intent.limit_price is None:
        return None
    price = intent.reference_price
    if price is None or price <= 0:
        return Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
    reference = quantize(price)
    if within_collar(intent.limit_price, reference, collar_fraction(limits.price_collar_pct)):
        return None
    deviation = abs(intent.limit_price - reference) / reference
    return Denial(
        reason=DenialReason.PRICE_COLLAR,
        detail=(
            f"limit {_fmt(intent.limit_price)} is {deviation:.2%} from reference "
            f"{price!r} > collar {limits.price_collar_pct:.2%}"
        ),
    )


def check_market_collar(
    intent: OrderIntent, market: Decimal | None, limits: RiskLimits
) -> Denial | None:
    """Deny an order whose reference (the price its signal saw) is further from the
    last market price than the collar allows.

    `market` is the instrument's last market price from the trading flow's own ticks,
    quantised, or None when there is no fresh one (nothing to vet against: pass). The
    market price is independent of the signal, so a signal priced off the market (a
    bad print, a stale or wrong price) is denied before its order is priced off it.

    >>> limits = RiskLimits.default()
    >>> intent = OrderIntent("s", "a", "AAPL", Side.BUY, Decimal(1), OrderType.LIMIT,
    ...                      Decimal("115.5"), 110.0, 0, 0)
    >>> check_market_collar(intent, Decimal(100), limits).detail
    'reference 110.0 is 10.00% from the last market price 100 > collar 5.00%'
    >>> check_market_collar(intent, Decimal(106), limits) is None
    True
    """
    price = intent.reference_price
    if market is None or price is None:
        return None
    reference = quantize(price)
    if within_collar(reference, market, collar_fraction(limits.price_collar_pct)):
        return None
    deviation = abs(reference - market) / market
    return Denial(
        reason=DenialReason.PRICE_COLLAR,
        detail=(
            f"reference {price!r} is {deviation:.2%} from the last market price "
            f"{_fmt(market)} > collar {limits.price_collar_pct:.2%}"
        ),
    )


def check_order_quantity(intent: OrderIntent, limits: RiskLimits) -> Denial | None:
    """Deny an order larger than the per-order quantity limit."""
    if intent.quantity > limits.max_order_quantity:
        return Denial(
            reason=DenialReason.MAX_ORDER_QUANTITY,
            detail=f"quantity {_fmt(intent.quantity)} > limit {_fmt(limits.max_order_quantity)}",
        )
    return None


def check_order_notional(intent: OrderIntent, limits: RiskLimits) -> Denial | None:
    """Deny an order whose quantity * reference price exceeds the notional limit."""
    if intent.reference_price is None:
        return Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
    notional = intent.quantity * quantize(intent.reference_price)
    if notional > limits.max_order_notional:
        return Denial(
            reason=DenialReason.MAX_ORDER_NOTIONAL,
            detail=f"notional {notional:.2f} > limit {_fmt(limits.max_order_notional)}",
        )
    return None


def check_position(intent: OrderIntent, view: ExposureView, limits: RiskLimits) -> Denial | None:
    """Deny an order that could take the position past the limit if every working order filled.

    Only the side the order trades is counted: a buy is checked against position plus all
    working buys, a sell against position minus all working sells.
    """
    if intent.side is Side.BUY:
        worst = view.worst_case_long(intent.instrument) + intent.quantity
        exceeded = worst > limits.max_position
    else:
        worst = view.worst_case_short(intent.instrument) - intent.quantity
        exceeded = -worst > limits.max_position
    if exceeded:
        return Denial(
            reason=DenialReason.MAX_POSITION,
            detail=(
                f"worst-case position {_fmt(worst)} exceeds limit ±{_fmt(limits.max_position)}"
            ),
        )
    return None


def check_gross_exposure(
    intent: OrderIntent, view: ExposureView, limits: RiskLimits
) -> Denial | None:
    """Deny an order that raises worst-case gross exposure above the limit.

    An instrument's worst-case exposure is max(|long worst case|, |short worst case|) *
    reference price; this order's instrument is priced at the intent's reference.
    """
    if intent.reference_price is None:
        return Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
    instrument = intent.instrument
    long_worst = view.worst_case_long(instrument)
    short_worst = view.worst_case_short(instrument)
    before = max(abs(long_worst), abs(short_worst))
    if intent.side is Side.BUY:
        long_worst += intent.quantity
    else:
        short_worst -= intent.quantity
    after = max(abs(long_worst), abs(short_worst))
    if after <= before:
        return None
    gross = view.gross_exposure_excluding(instrument) + after * quantize(intent.reference_price)
    if gross > limits.max_gross_exposure:
        return Denial(
            reason=DenialReason.MAX_GROSS_EXPOSURE,
            detail=f"gross exposure {gross:.2f} > limit {_fmt(limits.max_gross_exposure)}",
        )
    return None


def gross_surely_within(
    held: dict[str, float], prices: dict[str, float], instrument: str, after: float, limit: Decimal
) -> bool:
    """True when the worst-case gross exposure `check_gross_exposure` computes is surely
    within `limit`, judged in floats.

    `held` is every instrument's worst-case position as a float, `prices` the reference
    prices, and `after` the order instrument's |worst case| once the order is counted
    (it replaces that instrument's entry in `held`). The check itself sums Decimals,
    about 0.1 us per instrument held; this float sum differs from it by less than
    `margin`: each reference is quantised to within 5e-10 of its float, so each unit
    held moves by at most that, and the float products and sum of n terms stay within
    (n + 3) * 2^-53 of the total, below 1e-12 for any book under a few thousand
    instruments. False when it cannot tell (close to the limit, or an instrument
    without a price): the check in Decimals decides then.
    """
    gross = after * prices[instrument]
    units = after
    for name, worst in held.items():
        if name != instrument:
            price = prices.get(name)
            if price is None:
                return False
            gross += abs(worst) * price
            units += abs(worst)
    margin = 1e-9 * units + 1e-12 * gross
    return at_most(gross + margin, limit)


def run_checks(
    intent: OrderIntent,
    view: ExposureView,
    limits: RiskLimits,
    state: TradingState = TradingState.ACTIVE,
    trigger: str = "",
    *,
    market: Decimal | None = None,
) -> Denial | None:
    """Run every pre-trade control in the documented order; return the first denial.

    `market` is the instrument's fresh last market price, if any (`check_market_collar`).
    """
    return (
        check_trading_state(intent, view, state, trigger)
        or check_zero_quantity(intent)
        or check_reference_price(intent, view.reference_ts_event(intent.instrument), limits)
        or check_price_collar(intent, limits)
        or check_market_collar(intent, market, limits)
        or check_order_quantity(intent, limits)
        or check_order_notional(intent, limits)
        or check_position(intent, view, limits)
        or check_gross_exposure(intent, view, limits)
    )


class ScreenView(ExposureView, Protocol):
    """The numbers `order_surely_passes` reads directly, per instrument: reference
    prices as floats, as the checks quantise them and their event times, and worst
    cases as floats."""

    price: dict[str, float]
    price_decimal: dict[str, Decimal]
    ts: dict[str, int]
    net_float: dict[str, float]


def order_surely_passes(
    quantity: Decimal,
    limit_price: Decimal,
    limits: RiskLimits,
    view: ScreenView,
    ts_event: int,
    *,
    instrument: str,
    before: Decimal,
    after: Decimal,
    after_float: float,
    market: Decimal | None = None,
) -> bool:
    """True when an order passes every check of `run_checks` after the trading state's.

    The same comparisons on the same numbers as controls 2 to 8, without building an
    intent and making nine calls: the gate runs this for every signal, at `ts_event`.
    The order is a limit at `limit_price` and takes `instrument`'s worst case from
    `before` to `after` (`after_float`); its reference is positive and finite, and
    `market` the fresh last market price, if any. False does not mean denied, only
    that `run_checks` must tell.
    """
    if not quantity or quantity > limits.max_order_quantity:
        return False
    if ts_event - view.ts[instrument] > limits.max_reference_age_ns:
        return False
    price = view.price_decimal[instrument]
    collar = collar_fraction(limits.price_collar_pct)
    if not within_collar(limit_price, price, collar):
        return False
    if market is not None and not within_collar(price, market, collar):
        return False
    if quantity * price > limits.max_order_notional:
        return False
    after_abs = abs(after)
    if after_abs > limits.max_position:
        return False
    if after_abs <= abs(before):
        return True
    limit = limits.max_gross_exposure
    if gross_surely_within(view.net_float, view.price, instrument, abs(after_float), limit):
        return True
    return view.gross_exposure_excluding(instrument) + after_abs * price <= limit
