"""The risk gate of one account: signals in, sized and checked orders out.

`AccountGate` holds everything the stateful risk operator needs for one account and
nothing Bytewax-specific, so a `StatefulLogic` shim only delegates to it and Bytewax
snapshots it by pickling.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal

from risk.book import ZERO, Book, InvariantViolation
from risk.domain import ids
from risk.domain.control import Alert, ControlCommand, TradingStateChanged
from risk.domain.decision import Approved, Denied, RiskDecision
from risk.domain.enums import ControlAction, DenialReason, OrderType, Side, TradingState
from risk.domain.model import DriftDetected, Signal
from risk.domain.money import quantize
from risk.domain.order import CancelOrder, Fill, Order, OrderEvent, OrderIntent
from risk.domain.portfolio import PnlSnapshot, Position
from risk.limit import LimitProvider
from risk.pretrade import Denial, halted_denial, run_checks
from risk.sizing import target_quantity
from risk.state import ACCOUNT_WIDE, StatePolicy, TradingStates

__all__ = ["AccountGate", "ControlOutput", "InvariantViolation"]

ControlOutput = TradingStateChanged | CancelOrder | Order

_STATE_BY_ACTION = {
    ControlAction.KILL: TradingState.HALTED,
    ControlAction.REDUCE: TradingState.REDUCING,
    ControlAction.RESUME: TradingState.ACTIVE,
}

_INF = float("inf")


def _in_scope(instrument: str, scope: str) -> bool:
    """True when a command for `scope` covers `instrument`."""
    return scope in (ACCOUNT_WIDE, instrument)


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
    same inputs in the same order give the same outputs. Fills arriving earlier or later
    do not change sizing: the order is target - (position + net working), and a fill only
    moves quantity from working to position. Nor do they change the worst case a check
    uses for the order's own side (position + working buys for a buy, position - working
    sells for a sell) when the fill is on that side. A fill on the *other* side can only
    loosen the check: until it arrives, the opposing order might still be canceled, and
    the worst case must assume so. Making the checks fully fill-timing independent would
    mean checking position + net working only, which a cancel can push past the limit.

    Trading states (`risk.state`) are checked first: HALTED denies every order, REDUCING
    every order that could increase |position|. A kill halts and cancels every working
    order in its scope (and with `flatten` closes the filled positions); drift events
    and alerts escalate states as `StatePolicy` says. States live in this object, so
    they survive restarts with the snapshot.

    State stays bounded: working orders leave when fully filled or released, and only the
    last `recent_order_ids` client order ids are remembered to catch reuse.
    """

    __slots__ = (
        "_book",
        "_last_control",
        "_limits",
        "_policy",
        "_recent_ids",
        "_recent_set",
        "_ref_price",
        "_ref_price_decimal",
        "_ref_ts",
        "_states",
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
        policy: StatePolicy | None = None,
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
        self._policy = policy or StatePolicy()
        self._states = TradingStates(account)
        self._last_control: ControlCommand | None = None

    # -- read side, also used by the pre-trade checks (ExposureView) -------------------

    @property
    def states(self) -> TradingStates:
        """The account's trading states (read them; change them through the gate)."""
        return self._states

    def trading_state(self, instrument: str = ACCOUNT_WIDE) -> TradingState:
        """Return the state orders on `instrument` are held to (account-wide if empty)."""
        return self._states.state(instrument)

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
        """Return position plus every working buy on `instrument`."""
        return self._book.quantity(instrument) + self._working_buy.get(instrument, ZERO)

    def worst_case_short(self, instrument: str) -> Decimal:
        """Return position minus every working sell on `instrument`."""
        return self._book.quantity(instrument) - self._working_sell.get(instrument, ZERO)

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        """Return Σ worst-case |position| * reference over every other instrument."""
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
        state = self._states.state(instrument)
        if reference is None:
            if state is TradingState.HALTED:
                denial = halted_denial(self._states.trigger(instrument))
            else:
                denial = Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
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
        trigger = "" if state is TradingState.ACTIVE else self._states.trigger(instrument)
        failed = run_checks(intent, self, limits, state, trigger)
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

    def on_control(self, command: ControlCommand) -> list[ControlOutput]:
        """Apply an operator's kill, reduce or resume command; return what it causes.

        KILL halts the command's scope (the account, or one instrument), cancels every
        working order in it and, with `flatten`, sends market orders closing the filled
        positions in it. A flatten order is sized so it can never cross zero even if the
        working orders it races fill first; a second kill flattens what remains.
        REDUCE allows only reducing orders; RESUME returns the scope (the account: every
        scope) to ACTIVE.

        Raises:
            InvariantViolation: If the command is for another account.
        """
        if command.account != self.account:
            msg = f"risk gate {self.account}: control command for {command.account!r}"
            raise InvariantViolation(msg)
        self._last_control = command
        scope = command.instrument
        reason = f"{command.actor}: {command.reason}"
        trigger, ts_event, ts_init = command.action.value, command.ts_event, command.ts_init
        if command.action is ControlAction.RESUME and scope == ACCOUNT_WIDE:
            return list(
                self._states.resume_all(
                    trigger=trigger, reason=reason, ts_event=ts_event, ts_init=ts_init
                )
            )
        state = _STATE_BY_ACTION[command.action]
        changed = self._states.set(
            scope, state, trigger=trigger, reason=reason, ts_event=ts_event, ts_init=ts_init
        )
        out: list[ControlOutput] = [] if changed is None else [changed]
        if command.action is ControlAction.KILL:
            out.extend(self._cancel_working(command))
            if command.flatten:
                out.extend(self._flatten(command))
        return out

    def _cancel_working(self, command: ControlCommand) -> list[CancelOrder]:
        return [
            CancelOrder(
                cancel_id=ids.stable_id("cancel", client_order_id, command.command_id),
                client_order_id=client_order_id,
                account=self.account,
                instrument=order.instrument,
                reason=f"kill: {command.reason}",
                ts_event=command.ts_event,
                ts_init=command.ts_init,
            )
            for client_order_id, order in self._working.items()
            if not order.closed and _in_scope(order.instrument, command.instrument)
        ]

    def _flatten(self, command: ControlCommand) -> list[Order]:
        orders = []
        for instrument in self._book.instruments():
            if not _in_scope(instrument, command.instrument):
                continue
            position = self.position(instrument)
            if position > 0:
                side, quantity = Side.SELL, self.worst_case_short(instrument)
            else:
                side, quantity = Side.BUY, -self.worst_case_long(instrument)
            if quantity <= 0:
                continue
            intent = OrderIntent(
                signal_id=ids.stable_id("flatten", command.command_id, instrument),
                account=self.account,
                instrument=instrument,
                side=side,
                quantity=quantity,
                order_type=OrderType.MARKET,
                limit_price=None,
                reference_price=self._ref_price.get(instrument),
                ts_event=command.ts_event,
                ts_init=command.ts_init,
            )
            orders.append(self._submit(intent))
        return orders

    def on_drift(self, event: DriftDetected) -> TradingStateChanged | None:
        """Restrict the drifting instrument as the policy says; return the change, if any."""
        state = self._policy.drift_state
        if state is None:
            return None
        return self._states.escalate(
            event.instrument,
            state,
            trigger="drift",
            reason=f"{event.model} {event.detector} on {event.stream} = {event.value!r}",
            ts_event=event.ts_event,
            ts_init=event.ts_init,
        )

    def on_alert(self, alert: Alert) -> TradingStateChanged | None:
        """Escalate the state the policy maps `alert.name` to; return the change, if any.

        The subject picks the scope: one of our instruments restricts that instrument;
        our account, "" or a topic (a name with a dot, e.g. "hfl.fills") restricts the
        whole account. Any other subject (another account) and unmapped names are ignored.
        """
        state = self._policy.alert_states.get(alert.name)
        subject = alert.subject
        if state is None:
            return None
        if subject in self._ref_ts or subject in self._book.instruments():
            scope = subject
        elif subject in (self.account, ACCOUNT_WIDE) or "." in subject:
            scope = ACCOUNT_WIDE
        else:
            return None
        return self._states.escalate(
            scope,
            state,
            trigger=alert.name,
            reason=f"{alert.severity} from {alert.source}: {alert.message}",
            ts_event=alert.ts_event,
            ts_init=alert.ts_init,
        )

    def snapshot_pnl(self, ts_event: int, ts_init: int | None = None) -> PnlSnapshot:
        """Return the account's P&L at event time `ts_event` (ts_init defaults to it)."""
        return self._book.snapshot(ts_event, ts_event if ts_init is None else ts_init)
