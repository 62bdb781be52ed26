"""One account's cash, positions and P&L, built from fills."""

from __future__ import annotations

from decimal import Decimal

from risk.domain.error import HflError
from risk.domain.money import quantize
from risk.domain.order import Fill
from risk.domain.portfolio import PnlSnapshot, Position

# Nine decimal places, like every accounted amount, so outputs serialise uniformly.
ZERO = quantize(0)


class InvariantViolation(HflError):  # noqa: N818 - the name the team agreed on
    """State the logic can never legitimately reach; the flow restarts from its snapshot."""


class _Holding:
    """Mutable per-instrument accounting (private: callers get `Position` values)."""

    __slots__ = ("average_price", "last_fill_price", "quantity", "realized_pnl")

    def __init__(self) -> None:
        self.quantity = ZERO
        self.average_price = ZERO
        self.realized_pnl = ZERO
        self.last_fill_price = ZERO


class Book:
    """Cash, positions and P&L of one account under average-cost accounting.

    Adding to a position averages its price; reducing it realises
    (fill price - average price) * closed quantity * sign of the position; a fill through
    zero realises the closed part and opens the rest at the fill price. Fees reduce cash
    and are reported apart from realised P&L, so at all times
    equity = initial cash + realised + unrealised - fees (to rounding).

    Marks are floats (market data) and are only turned into Decimal when a snapshot is
    taken, which keeps `mark` cheap enough to call on every tick.
    """

    __slots__ = ("_cash", "_fees", "_holdings", "_marks", "_realized", "account", "initial_cash")

    def __init__(self, account: str, initial_cash: Decimal) -> None:
        self.account = account
        self.initial_cash = quantize(initial_cash)
        self._cash = self.initial_cash
        self._fees = ZERO
        self._realized = ZERO
        self._holdings: dict[str, _Holding] = {}
        self._marks: dict[str, float] = {}

    @property
    def cash(self) -> Decimal:
        """Cash after every fill's consideration and fee."""
        return self._cash

    @property
    def fees(self) -> Decimal:
        """Fees paid so far."""
        return self._fees

    @property
    def realized_pnl(self) -> Decimal:
        """Realised P&L over every instrument, before fees."""
        return self._realized

    def quantity(self, instrument: str) -> Decimal:
        """Return the signed position in `instrument` (0 if never traded)."""
        holding = self._holdings.get(instrument)
        return ZERO if holding is None else holding.quantity

    def instruments(self) -> list[str]:
        """Return every instrument ever traded, in first-fill order."""
        return list(self._holdings)

    def apply_fill(self, fill: Fill) -> Position:
        """Account for `fill` and return the instrument's position after it.

        Raises:
            InvariantViolation: If the fill belongs to another account or has a non-positive
                quantity or price, or a negative fee.
        """
        self._validate(fill)
        holding = self._holdings.get(fill.instrument)
        if holding is None:
            holding = self._holdings[fill.instrument] = _Holding()
        signed = fill.quantity if fill.side.sign > 0 else -fill.quantity
        self._trade(holding, signed, fill.price)
        holding.last_fill_price = fill.price
        self._cash = quantize(self._cash - signed * fill.price - fill.fee)
        self._fees = quantize(self._fees + fill.fee)
        return Position(
            account=self.account,
            instrument=fill.instrument,
            quantity=holding.quantity,
            average_price=holding.average_price,
            realized_pnl=holding.realized_pnl,
            ts_event=fill.ts_event,
            ts_init=fill.ts_init,
        )

    def _validate(self, fill: Fill) -> None:
        problem = ""
        if fill.account != self.account:
            problem = f"fill for account {fill.account!r} applied to book {self.account!r}"
        elif fill.quantity <= 0:
            problem = f"non-positive fill quantity {fill.quantity}"
        elif fill.price <= 0:
            problem = f"non-positive fill price {fill.price}"
        elif fill.fee < 0:
            problem = f"negative fee {fill.fee}"
        if problem:
            raise InvariantViolation(f"book: {problem} (fill {fill.fill_id})")

    def _trade(self, holding: _Holding, signed: Decimal, price: Decimal) -> None:
        old = holding.quantity
        new = old + signed
        if old == 0 or (old > 0) == (signed > 0):
            # Opening or adding: the average is weighted by absolute quantities.
            holding.average_price = quantize(
                (holding.average_price * abs(old) + price * abs(signed)) / abs(new)
            )
        else:
            closed = min(abs(old), abs(signed))
            pnl = (price - holding.average_price) * closed
            realized = quantize(pnl if old > 0 else -pnl)
            holding.realized_pnl += realized
            self._realized += realized
            if new == 0:
                holding.average_price = ZERO
            elif (new > 0) != (old > 0):
                holding.average_price = price
        holding.quantity = new

    def mark(self, instrument: str, price: float) -> None:
        """Record `price` as the latest market price of `instrument`."""
        self._marks[instrument] = price

    def mark_price(self, instrument: str) -> Decimal:
        """Return the latest mark of `instrument`, or its last fill price if never marked."""
        mark = self._marks.get(instrument)
        if mark is not None:
            return quantize(mark)
        holding = self._holdings.get(instrument)
        return ZERO if holding is None else holding.last_fill_price

    def snapshot(self, ts_event: int, ts_init: int) -> PnlSnapshot:
        """Return cash, P&L, equity and exposures marked to the latest prices."""
        unrealized = ZERO
        gross = ZERO
        net = ZERO
        for instrument, holding in self._holdings.items():
            if holding.quantity == 0:
                continue
            price = self.mark_price(instrument)
            value = holding.quantity * price
            unrealized += (price - holding.average_price) * holding.quantity
            gross += abs(value)
            net += value
        return PnlSnapshot(
            account=self.account,
            cash=self._cash,
            realized_pnl=self._realized,
            unrealized_pnl=quantize(unrealized),
            fees=self._fees,
            equity=quantize(self._cash + net),
            gross_exposure=quantize(gross),
            net_exposure=quantize(net),
            ts_event=ts_event,
            ts_init=ts_init,
        )
