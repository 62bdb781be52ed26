"""The risk gate of one account: signals in, sized and checked orders out.

`AccountGate` holds everything the stateful risk operator needs for one account and
nothing Bytewax-specific, so a `StatefulLogic` shim only delegates to it and Bytewax
snapshots it by pickling.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import assert_never

from risk.book import ZERO, Book, InvariantViolation
from risk.domain import ids
from risk.domain.control import ControlCommand
from risk.domain.decision import Approved, Denied, RiskDecision
from risk.domain.enums import ControlAction, DenialReason, OrderType, Side
from risk.domain.model import Signal
from risk.domain.money import quantize
from risk.domain.order import Fill, Order, OrderEvent, OrderIntent
from risk.domain.portfolio import PnlSnapshot, Position
from risk.limit import LimitProvider
from risk.pretrade import Denial, check_kill_switch, run_checks
from risk.sizing import target_quantity

__all__ = ["AccountGate", "InvariantViolation"]

_INF = float("inf")


class _WorkingOrder:
    """An approved order that may still fill; `leaves` is what may still fill."""

    __slots__ = ("closed", "filled", "instrument", "quantity", "released", "side")

    def __init__(self, instrument: str, side: Side, quantity: Decimal) -> None:
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.filled = ZERO
        # Quantity the gateway will never fill (canceled or rejected remainder).
        self.released = ZERO
        self.closed = False

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.released


class AccountGate:
    """Turn one account's signals into orders that pass every pre-trade check.

    The desired position is `target_quantity(direction)`; the order is the difference
    between it and position plus net working quantity, checked by `risk.pretrade.run_checks`.

    Determinism: time is read only from the data (`ts_event`), never from a clock, and the
    same inputs in the same order give the same outputs. When fills arrive does not change
    any decision either: sizing uses position + net working, and the limit checks use the
    position if every working order fills (`worst_case_long` and `worst_case_short` are
    both that net figure), which a fill leaves unchanged since it only moves quantity from
    working to position. This is what lets a trading flow that crashed and replays its
    last epoch (with the gateway's fills now arriving earlier than they did the first
    time) decide exactly as before. The price: a working order the gateway cancels or
    rejects can leave the position past a limit by the released quantity; a check that
    assumed the opposing order might be canceled would depend on fill timing instead.

    State stays bounded: working orders leave when fully filled or released, and only the
    last `recent_order_ids` client order ids are remembered to catch reuse.
    """

    __slots__ = (
        "_book",
        "_kill_switch_on",
        "_last_control",
        "_limits",
        "_recent_ids",
        "_recent_set",
        "_ref_price",
        "_ref_price_decimal",
        "_ref_ts",
        "_working",
        "_working_buy",
        "_working_sell",
        "account",
        "lot_size",
        "target_notional",
    )

    def __init__(
        self,
        account: str,
        limits: LimitProvider,
        *,
        target_notional: Decimal,
        lot_size: Decimal,
        initial_cash: Decimal,
        recent_order_ids: int = 10_000,
    ) -> None:
        self.account = account
        self.target_notional = target_notional
        self.lot_size = lot_size
        self._limits = limits
        self._book = Book(account, initial_cash)
        self._ref_price: dict[str, float] = {}
        # Quantised once per new reference: exposure checks price every instrument.
        self._ref_price_decimal: dict[str, Decimal] = {}
        self._ref_ts: dict[str, int] = {}
        self._working: dict[str, _WorkingOrder] = {}
        self._working_buy: dict[str, Decimal] = {}
        self._working_sell: dict[str, Decimal] = {}
        self._recent_ids: deque[str] = deque(maxlen=recent_order_ids)
        self._recent_set: set[str] = set()
        self._kill_switch_on = False
        self._last_control: ControlCommand | None = None

    # -- read side, also used by the pre-trade checks (ExposureView) -------------------

    @property
    def kill_switch_on(self) -> bool:
        """True while new orders are refused."""
        return self._kill_switch_on

    @property
    def last_control(self) -> ControlCommand | None:
        """The last kill/resume command applied, kept for audit."""
        return self._last_control

    @property
    def book(self) -> Book:
        """The account's book (read it; feed it only through the gate)."""
        return self._book

    def position(self, instrument: str) -> Decimal:
        """Return the filled, signed position in `instrument`."""
        return self._book.quantity(instrument)

    def working_quantity(self, instrument: str) -> Decimal:
        """Return working buys minus working sells on `instrument`."""
        return self._working_buy.get(instrument, ZERO) - self._working_sell.get(instrument, ZERO)

    def knows_order(self, client_order_id: str) -> bool:
        """Return True if this gate submitted `client_order_id` (as far as it remembers)."""
        return client_order_id in self._working or client_order_id in self._recent_set

    def working_order_count(self) -> int:
        """Return how many orders may still fill."""
        return len(self._working)

    def reference_price(self, instrument: str) -> float | None:
        """Return the latest reference price of `instrument`, if any."""
        return self._ref_price.get(instrument)

    def reference_ts_event(self, instrument: str) -> int | None:
        """Return the event time of `instrument`'s reference price, if any."""
        return self._ref_ts.get(instrument)

    def worst_case_long(self, instrument: str) -> Decimal:
        """Return the position if every working order on `instrument` fills."""
        return self._book.quantity(instrument) + self.working_quantity(instrument)

    def worst_case_short(self, instrument: str) -> Decimal:
        """Return the position if every working order on `instrument` fills.

        The same figure as `worst_case_long`: any bound that tells buys from sells
        changes when a fill arrives (see the class docstring).
        """
        return self.worst_case_long(instrument)

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        """Return Σ |position if all working orders fill| * reference over other instruments."""
        names = dict.fromkeys(self._book.instruments())
        names.update(dict.fromkeys(self._working_buy))
        names.update(dict.fromkeys(self._working_sell))
        gross = ZERO
        for name in names:
            if name == instrument:
                continue
            worst = max(abs(self.worst_case_long(name)), abs(self.worst_case_short(name)))
            if worst:
                reference = self._ref_price_decimal.get(name)
                price = self._book.mark_price(name) if reference is None else reference
                gross += worst * price
        return gross

    # -- inputs ----------------------------------------------------------------------

    def on_reference_price(self, instrument: str, price: float, ts_event: int) -> None:
        """Record a trade price as `instrument`'s reference and mark the book with it.

        Cheap enough for every tick. Older-than-current prices (out-of-order data) and
        prices that are not positive and finite are ignored: they would only make the
        reference worse.
        """
        if not 0.0 < price < _INF:
            return
        last_ts = self._ref_ts.get(instrument)
        if last_ts is not None and ts_event < last_ts:
            return
        self._ref_price[instrument] = price
        self._ref_price_decimal[instrument] = quantize(price)
        self._ref_ts[instrument] = ts_event
        self._book.mark(instrument, price)

    def mark(self, instrument: str, price: float) -> None:
        """Mark the book's `instrument` at `price` without touching the reference."""
        self._book.mark(instrument, price)

    def on_signal(self, signal: Signal) -> tuple[RiskDecision, Order | None]:
        """Size, check and (if approved) emit the order that moves to the signal's target.

        Raises:
            InvariantViolation: If the approved order's client order id was already used
                (the same signal delivered twice).
        """
        instrument = signal.instrument
        self.on_reference_price(instrument, signal.reference_price, signal.ts_event)
        reference = self._ref_price.get(instrument)
        if reference is None:
            denial = check_kill_switch(self._kill_switch_on) or Denial(
                reason=DenialReason.NO_REFERENCE_PRICE, detail="missing"
            )
            side = Side.SELL if signal.direction < 0 else Side.BUY
            return self._denied(signal, side, ZERO, None, denial), None
        target = target_quantity(
            signal.direction,
            reference,
            target_notional=self.target_notional,
            lot_size=self.lot_size,
        )
        delta = target - self.position(instrument) - self.working_quantity(instrument)
        if delta:
            side = Side.BUY if delta > 0 else Side.SELL
        else:
            side = Side.SELL if signal.direction < 0 else Side.BUY
        intent = OrderIntent(
            signal_id=signal.signal_id,
            account=self.account,
            instrument=instrument,
            side=side,
            quantity=abs(delta),
            order_type=OrderType.MARKET,
            limit_price=None,
            reference_price=reference,
            ts_event=signal.ts_event,
            ts_init=signal.ts_init,
        )
        limits = self._limits.for_instrument(instrument)
        failed = run_checks(intent, self, limits, self._kill_switch_on)
        if failed is not None:
            return self._denied(signal, side, intent.quantity, reference, failed), None
        order = self._submit(intent)
        approved = Approved(
            signal_id=signal.signal_id,
            account=self.account,
            instrument=instrument,
            side=side,
            quantity=intent.quantity,
            reference_price=reference,
            client_order_id=order.client_order_id,
            ts_event=signal.ts_event,
            ts_init=signal.ts_init,
        )
        return approved, order

    def _denied(
        self,
        signal: Signal,
        side: Side,
        quantity: Decimal,
        reference: float | None,
        denial: Denial,
    ) -> Denied:
        return Denied(
            signal_id=signal.signal_id,
            account=self.account,
            instrument=signal.instrument,
            side=side,
            quantity=quantity,
            reference_price=reference,
            reason=denial.reason,
            detail=denial.detail,
            ts_event=signal.ts_event,
            ts_init=signal.ts_init,
        )

    def _submit(self, intent: OrderIntent) -> Order:
        client_order_id = ids.client_order_id(self.account, intent.instrument, intent.signal_id)
        if client_order_id in self._recent_set or client_order_id in self._working:
            msg = (
                f"risk gate {self.account}: client order id {client_order_id} reused "
                f"(signal {intent.signal_id} seen twice)"
            )
            raise InvariantViolation(msg)
        self._remember(client_order_id)
        self._working[client_order_id] = _WorkingOrder(
            intent.instrument, intent.side, intent.quantity
        )
        self._add_working(intent.instrument, intent.side, intent.quantity)
        return Order(
            client_order_id=client_order_id,
            signal_id=intent.signal_id,
            account=self.account,
            instrument=intent.instrument,
            side=intent.side,
            quantity=intent.quantity,
            order_type=intent.order_type,
            limit_price=intent.limit_price,
            ts_event=intent.ts_event,
            ts_init=intent.ts_init,
        )

    def _remember(self, client_order_id: str) -> None:
        recent = self._recent_ids
        if recent.maxlen is not None and len(recent) == recent.maxlen:
            self._recent_set.discard(recent[0])
        recent.append(client_order_id)
        self._recent_set.add(client_order_id)

    def _add_working(self, instrument: str, side: Side, quantity: Decimal) -> None:
        totals = self._working_buy if side is Side.BUY else self._working_sell
        remaining = totals.get(instrument, ZERO) + quantity
        if remaining:
            totals[instrument] = remaining
        else:
            # Drop zero entries so the dicts only hold instruments with live orders.
            del totals[instrument]

    def on_fill(self, fill: Fill) -> Position:
        """Move the filled quantity from working to position and return the new position.

        Raises:
            InvariantViolation: If the order is unknown or finished, the fill does not
                match its instrument or side, or it fills more than is working.
        """
        order = self._working.get(fill.client_order_id)
        problem = ""
        if order is None:
            problem = "fill for an unknown or finished order"
        elif fill.instrument != order.instrument or fill.side is not order.side:
            problem = f"fill {fill.instrument}/{fill.side} does not match the order"
        elif fill.quantity > order.leaves:
            problem = f"overfill: {fill.quantity} > leaves {order.leaves}"
        if problem or order is None:
            msg = f"risk gate {self.account}: {problem} ({fill.client_order_id})"
            raise InvariantViolation(msg)
        position = self._book.apply_fill(fill)
        order.filled += fill.quantity
        self._add_working(order.instrument, order.side, -fill.quantity)
        if not order.leaves:
            del self._working[fill.client_order_id]
        return position

    def on_order_event(self, event: OrderEvent) -> None:
        """Release what a terminal event says will never fill.

        A terminal event reports the cumulative quantity the gateway filled; whatever of it
        has not reached us as fills yet stays working until those fills arrive, so fills and
        events may arrive in either order. Non-terminal and repeated terminal events, and
        events for orders already finished, change nothing.

        Raises:
            InvariantViolation: If the order was never sent by this gate (as far as it
                remembers) or the event contradicts the fills already applied.
        """
        order = self._working.get(event.client_order_id)
        if order is None:
            if event.client_order_id in self._recent_set:
                return
            msg = f"risk gate {self.account}: event for unknown order {event.client_order_id}"
            raise InvariantViolation(msg)
        if not event.kind.is_terminal or order.closed:
            return
        if not order.filled <= event.filled_quantity <= order.quantity:
            msg = (
                f"risk gate {self.account}: {event.kind} event says filled "
                f"{event.filled_quantity} but {order.filled} of {order.quantity} already "
                f"filled ({event.client_order_id})"
            )
            raise InvariantViolation(msg)
        order.closed = True
        order.released = order.quantity - event.filled_quantity
        if order.released:
            self._add_working(order.instrument, order.side, -order.released)
        if not order.leaves:
            del self._working[event.client_order_id]

    def on_control(self, command: ControlCommand) -> None:
        """Apply a kill (refuse every new order) or resume command and keep it for audit.

        Raises:
            InvariantViolation: If the command is for another account.
        """
        if command.account != self.account:
            msg = f"risk gate {self.account}: control command for {command.account!r}"
            raise InvariantViolation(msg)
        match command.action:
            case ControlAction.KILL:
                self._kill_switch_on = True
            case ControlAction.RESUME:
                self._kill_switch_on = False
            case _:
                assert_never(command.action)
        self._last_control = command

    def snapshot_pnl(self, ts_event: int, ts_init: int | None = None) -> PnlSnapshot:
        """Return the account's P&L at event time `ts_event` (ts_init defaults to it)."""
        return self._book.snapshot(ts_event, ts_event if ts_init is None else ts_init)
