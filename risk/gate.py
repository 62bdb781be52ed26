"""The risk gate of one account: signals in, sized and checked orders out.

`AccountGate` holds everything the stateful risk operator needs for one account and
nothing Bytewax-specific, so a `StatefulLogic` shim only delegates to it and Bytewax
snapshots it by pickling. It composes the parts named in its docstring and walks
each signal through them.
"""

from __future__ import annotations

from decimal import Decimal

from risk import budget
from risk.book import ZERO, Book, InvariantViolation
from risk.domain import fast_build, ids
from risk.domain.control import Alert, ControlCommand, TradingStateChanged
from risk.domain.decision import Denied, RiskDecision
from risk.domain.enums import ControlAction, DenialReason, OrderType, Side, TradingState
from risk.domain.model import DriftDetected, Signal
from risk.domain.order import CancelOrder, Fill, Order, OrderEvent, OrderIntent
from risk.domain.portfolio import PnlSnapshot, Position, RiskMetric
from risk.exposure import Exposure
from risk.lifecycle import OrderLedger, is_ended
from risk.limit import AccountLimits, LimitProvider, RiskLimits
from risk.metric import metric_rows
from risk.monitor import PortfolioRisk, RiskModelConfig
from risk.pretrade import (
    Denial,
    collar_fraction,
    halted_denial,
    marketable_limit,
    order_surely_passes,
    run_checks,
)
from risk.sizing import SizingMethod
from risk.state import ACCOUNT_WIDE, StatePolicy, TradingControl, TradingStates
from risk.target import Sizer
from risk.throttle import SlidingWindowThrottle

__all__ = ["AccountGate", "ControlOutput", "InvariantViolation"]

ControlOutput = TradingStateChanged | CancelOrder | Order

# Enum members read per signal, as module globals: Python 3.11 does not specialise
# attribute loads on enum classes, so each `Side.BUY` costs about 0.16 us (of a 20 us
# decision); `hfl bench risk` measures the difference.
_BUY, _SELL = Side.BUY, Side.SELL
_ACTIVE = TradingState.ACTIVE
_MARKET, _LIMIT = OrderType.MARKET, OrderType.LIMIT
_INF = float("inf")


def _in_scope(instrument: str, scope: str) -> bool:
    """True when a command for `scope` covers `instrument`."""
    return scope in (ACCOUNT_WIDE, instrument)


class AccountGate:
    """Turn one account's signals into orders that pass every pre-trade check.

    The desired position is `target_quantity(direction)` (`sizing` vol_target) or the
    instrument's target in the portfolio `_rebalance` builds on the risk model's
    schedule from every instrument's latest view (the other `SizingMethod`s); the order
    is the difference between it and position plus net working quantity, checked by
    `risk.pretrade.run_checks`.

    Determinism: time is read only from the data (`ts_event`), never from a clock, and the
    same inputs in the same order give the same outputs. When fills arrive does not change
    any decision either: sizing uses position + net working, and the limit checks use the
    position if every working order fills (`worst_case_long` and `worst_case_short` are
    both that net figure), which a fill leaves unchanged since it only moves quantity from
    working to position. This is what lets a trading flow that crashed and replays its
    last epoch (with the gateway's fills now arriving earlier than they did the first
    time) decide exactly as before. The price: a working order the gateway cancels, rejects or
    expires can leave the position past a limit by the released quantity; a check that
    assumed the opposing order might be canceled would depend on fill timing instead.

    After the order-level checks come the account-level ones (`risk.budget`): duplicate
    client order id, order-rate throttle, open orders, self-match, then, for orders that
    increase risk only, net exposure, concentration per instrument and group, volatility,
    correlation with the book, beta and the VaR/CVaR budgets on the post-trade book
    (`risk.monitor.PortfolioRisk`, recomputed on an event-time schedule by
    `risk_metrics`). Equity for the budgets is the last `snapshot_pnl`'s, which also
    feeds the drawdown and daily-loss triggers; every fill counts towards the
    repeated-execution throttle until the next operator command.

    Orders are marketable limits priced at the signal's price plus or minus the
    collar, good for `time_in_force_ns` (the price collar denies a signal whose price
    is further than the collar from the latest reference, or from the last market
    price of the flow's own ticks, the last 1 s bar's close, while that is fresh);
    flatten orders on a kill are market orders.

    Which of these depend on when fills arrive (a replay that interleaves the fill
    stream differently with the ticks may decide differently): equity (a fill moves a
    position from "not yet in the book" to "marked at the fill price", so the
    concentration, VaR/CVaR and beta budgets' denominator and the drawdown and
    daily-loss triggers see it), the open-orders limit (a fully filled order stops
    counting when its last fill arrives), self-match (an opposite order stops resting
    when its last fill arrives) and the repeated-execution throttle (which
    signal comes after the N-th fill). The risk model's book is position plus net working
    quantity, so VaR, CVaR, beta, correlation and volatility never do; they depend
    only on when, in event time, the schedule recomputed them.

    Trading states (`risk.state`) are checked first: HALTED denies every order, REDUCING
    every order that could increase |position|. A kill halts and cancels every working
    order in its scope (and with `flatten` closes the filled positions); drift events
    and alerts escalate states as `StatePolicy` says. States live in this object, so
    they survive restarts with the snapshot.

    State stays bounded: working orders leave when fully filled or released, and only the
    last `recent_order_ids` client order ids are remembered to catch reuse.

    Parts: `risk.target.Sizer` (target positions), `risk.exposure.Exposure` (reference
    prices and worst cases), `risk.lifecycle.OrderLedger` (each order's life as a
    transition table), `risk.state.TradingControl` (kill, drift, alert, drawdown and
    repeated-execution states), `risk.metric` (the figures as rows). The checks are
    `risk.pretrade` and `risk.budget`; nearly every signal passes nearly every
    control, so each group first tests its pass conditions at once
    (`pretrade.order_surely_passes`, `budget.check_order_flow`,
    `budget.check_exposure`, each beside the checks it restates) and only then runs
    the checks one by one, in the documented order, to name the denial. A screen never
    passes what its checks would deny, so decisions are exactly those of the checks.
    """

    __slots__ = (
        "_account_limits",
        "_book",
        "_control",
        "_equity",
        "_exposure",
        "_limits",
        "_orders",
        "_risk",
        "_sizer",
        "_throttle",
        "account",
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
        account_limits: AccountLimits | None = None,
        instruments: tuple[str, ...] = (),
        risk_model: RiskModelConfig | None = None,
        volatility_target: float | None = None,
        sizing: SizingMethod = SizingMethod.VOL_TARGET,
        gross_notional: Decimal | None = None,
        recent_order_ids: int = 10_000,
    ) -> None:
        self.account = account
        self._sizer = Sizer(
            sizing,
            target_notional=target_notional,
            lot_size=lot_size,
            volatility_target=volatility_target,
            # Default: every instrument at `target_notional`.
            gross_notional=(
                target_notional * max(len(instruments), 1)
                if gross_notional is None
                else gross_notional
            ),
        )
        self._limits = limits
        self._book = Book(account, initial_cash)
        self._exposure = Exposure(self._book)
        self._orders = OrderLedger(account, recent_order_ids)
        self._account_limits = whole = account_limits or AccountLimits()
        self._control = TradingControl(account, policy or StatePolicy(), whole)
        self._throttle = SlidingWindowThrottle(whole.max_orders_per_window, whole.order_window_ns)
        self._risk = PortfolioRisk(instruments, risk_model)
        self._equity = float(initial_cash)

    # -- read side, also used by the pre-trade checks (ExposureView) -------------------

    @property
    def states(self) -> TradingStates:
        """The account's trading states (read them; change them through the gate)."""
        return self._control.states

    def trading_state(self, instrument: str = ACCOUNT_WIDE) -> TradingState:
        """Return the state orders on `instrument` are held to (account-wide if empty)."""
        return self._control.states.state(instrument)

    @property
    def last_control(self) -> ControlCommand | None:
        """The last kill/resume command applied, kept for audit."""
        return self._control.last_control

    @property
    def book(self) -> Book:
        """The account's book (read it; feed it only through the gate)."""
        return self._book

    def position(self, instrument: str) -> Decimal:
        """Return the filled, signed position in `instrument`."""
        return self._book.quantity(instrument)

    def working_quantity(self, instrument: str) -> Decimal:
        """Return working buys minus working sells on `instrument`."""
        return self._orders.working_quantity(instrument)

    def knows_order(self, client_order_id: str) -> bool:
        """Return True if this gate submitted `client_order_id` (as far as it remembers)."""
        return self._orders.used(client_order_id)

    def is_replayed_report(self, report: Fill | OrderEvent) -> bool:
        """Return True when `report` repeats one the gate has already applied.

        A restarted gateway re-emits everything since its last snapshot; killed again
        before its next snapshot, it replays from the same old point, so a replay has no
        length bound and a window of recent report ids cannot recognise it. What the gate
        knows about each order decides exactly instead (as FIX cumulative quantities do):

        - a fill of a working order whose cumulative quantity (order quantity minus the
          fill's leaves) the order has already reached;
        - any report of an order that finished and is still remembered;
        - a report of an order beyond the gate's memory from before the instrument's
          last decision. An order not decided yet (the trading flow replaying after its
          own crash) is not earlier than that decision, and neither are its reports:
          events carry the order's time, fills at least that plus the latency. (A
          report at exactly that time may belong to a second decision at the same time.)

        Events of working orders are never replays to drop: `on_order_event` ignores
        non-terminal and repeated terminal events by itself.
        """
        order = self._orders.get(report.client_order_id)
        if order is not None:
            if isinstance(report, Fill):
                return order.quantity - report.leaves_quantity <= order.filled
            return False
        if self._orders.finished(report.client_order_id):
            return True
        decided_until = self._exposure.reference_ts_event(report.instrument)
        return decided_until is not None and report.ts_event < decided_until

    def working_order_count(self) -> int:
        """Return how many orders may still fill."""
        return len(self._orders)

    def reference_price(self, instrument: str) -> float | None:
        """Return the latest reference price of `instrument`, if any."""
        return self._exposure.price.get(instrument)

    def reference_ts_event(self, instrument: str) -> int | None:
        """Return the event time of `instrument`'s reference price, if any."""
        return self._exposure.reference_ts_event(instrument)

    def worst_case_long(self, instrument: str) -> Decimal:
        """Return the position if every working order on `instrument` fills."""
        return self._exposure.worst_case(instrument)

    def worst_case_short(self, instrument: str) -> Decimal:
        """Return the position if every working order on `instrument` fills.

        The same figure as `worst_case_long`: any bound that tells buys from sells
        changes when a fill arrives (see the class docstring).
        """
        return self._exposure.worst_case(instrument)

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        """Return Σ |position if all working orders fill| * reference over other instruments."""
        return self._exposure.gross_exposure_excluding(instrument)

    # -- inputs ----------------------------------------------------------------------

    def on_reference_price(self, instrument: str, price: float, ts_event: int) -> None:
        """Record a trade price as `instrument`'s reference and mark the book with it.

        Cheap enough for every tick. Older-than-current prices (out-of-order data) and
        prices that are not positive and finite are ignored: they would only make the
        reference worse.
        """
        if self._exposure.on_reference_price(instrument, price, ts_event):
            self._book.mark(instrument, price)

    def mark(self, instrument: str, price: float, ts_event: int) -> None:
        """Mark `instrument` at `price` (a bar close) and feed the return history.

        The close is also the instrument's last market price, the independent price
        the collar vets each signal's price against while it is at most
        `max_reference_age_ns` old (`risk.pretrade.check_market_collar`).
        """
        self._book.mark(instrument, price)
        self._risk.on_price(instrument, price, ts_event)
        self._exposure.on_market_price(instrument, price, ts_event)

    @property
    def limits(self) -> LimitProvider:
        """The per-instrument limits in force."""
        return self._limits

    def set_limits(self, limits: LimitProvider) -> None:
        """Apply new per-instrument limits from the next decision on.

        Orders already working stay; an account over a lowered limit can still trade
        back towards it (the exposure checks deny only increases).
        """
        self._limits = limits

    def on_signal(self, signal: Signal) -> tuple[RiskDecision, Order | None]:
        """Size, check and (if approved) emit the order that moves to the signal's target."""
        instrument = signal.instrument
        exposure = self._exposure
        self.on_reference_price(instrument, signal.reference_price, signal.ts_event)
        sizer = self._sizer
        if not sizer.per_signal:
            sizer.note_view(instrument, signal.direction)
        reference = exposure.price.get(instrument)
        state = self._control.states.state(instrument)
        if reference is None:
            if state is TradingState.HALTED:
                denial = halted_denial(self._control.states.trigger(instrument))
            else:
                denial = Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
            side = _SELL if signal.direction < 0 else _BUY
            return self._denied(signal, side, ZERO, None, denial), None
        limits = self._limits.for_instrument(instrument)
        volatility = self._risk.volatility(instrument)
        target = sizer.target(
            signal.direction,
            reference,
            instrument,
            limits,
            volatility=volatility,
            equity=self._equity,
        )
        net = exposure.net.get(instrument, ZERO)
        delta = target - net
        if delta > 0:
            side = _BUY
        elif delta < 0:
            side = _SELL
        else:  # nothing to trade: the side only names the denial
            side = _SELL if signal.direction < 0 else _BUY
        quantity = abs(delta)
        # A marketable limit priced off the price the signal saw (the reference when
        # that one was unusable): the collar denies it when the latest reference has
        # moved away from that price by more than the collar.
        seen = signal.reference_price
        limit_price = marketable_limit(
            side,
            seen if 0.0 < seen < _INF else reference,
            collar_fraction(limits.price_collar_pct),
        )
        # The order moves the worst case (position plus net working) from `net` to
        # `target`; the checks and the risk model use both floats below (each
        # Decimal-to-float conversion costs about 0.2 us, so they are made once here).
        target_float, delta_float = float(target), float(delta)
        client_order_id = ids.client_order_id(self.account, instrument, signal.signal_id)
        market = exposure.market_price(instrument, signal.ts_event, limits.max_reference_age_ns)
        if state is _ACTIVE and order_surely_passes(
            quantity,
            limit_price,
            limits,
            exposure,
            signal.ts_event,
            instrument=instrument,
            before=net,
            after=target,
            after_float=target_float,
            market=market,
        ):
            failed = None
        else:
            failed = self._order_denial(
                signal,
                side,
                quantity,
                reference,
                limit_price,
                state=state,
                limits=limits,
                market=market,
            )
        if failed is None:
            failed = self._account_checks(
                signal,
                side,
                client_order_id,
                limits,
                volatility,
                limit_price=limit_price,
                worst=target,
                worst_float=target_float,
                delta_float=delta_float,
            )
        if failed is not None:
            return self._denied(signal, side, quantity, reference, failed), None
        order = self._send(
            client_order_id,
            instrument,
            side,
            quantity,
            signal_id=signal.signal_id,
            ts_event=signal.ts_event,
            ts_init=signal.ts_init,
            limit_price=limit_price,
            expire_ns=signal.ts_event + limits.time_in_force_ns,
        )
        exposure.set(instrument, target, target_float)
        self._risk.add_quantity(instrument, delta_float)
        decision = fast_build.approved(
            signal_id=signal.signal_id,
            account=self.account,
            instrument=instrument,
            side=side,
            quantity=quantity,
            reference_price=reference,
            client_order_id=client_order_id,
            ts_event=signal.ts_event,
            ts_init=signal.ts_init,
        )
        return decision, order

    def _order_denial(
        self,
        signal: Signal,
        side: Side,
        quantity: Decimal,
        reference: float,
        limit_price: Decimal,
        *,
        state: TradingState,
        limits: RiskLimits,
        market: Decimal | None,
    ) -> Denial | None:
        """`risk.pretrade.run_checks` on the order, for orders `order_surely_passes`
        cannot vouch for; the `OrderIntent` is built only here. `market` is the fresh
        last market price, if any."""
        instrument = signal.instrument
        intent = OrderIntent(
            signal.signal_id,
            self.account,
            instrument,
            side,
            quantity,
            OrderType.LIMIT,
            limit_price,
            reference,
            signal.ts_event,
            signal.ts_init,
        )
        trigger = "" if state is _ACTIVE else self._control.states.trigger(instrument)
        return run_checks(intent, self, limits, state, trigger, market=market)

    def _account_checks(
        self,
        signal: Signal,
        side: Side,
        client_order_id: str,
        limits: RiskLimits,
        volatility: float | None,
        *,
        limit_price: Decimal,
        worst: Decimal,
        worst_float: float,
        delta_float: float,
    ) -> Denial | None:
        """Run the account-level controls in the documented order; first denial wins.

        The order, a limit at `limit_price`, takes the instrument's worst case to
        `worst` (`worst_float`), by `delta_float`.
        """
        instrument = signal.instrument
        orders = self._orders
        used = orders.used(client_order_id)
        failed = budget.check_order_flow(
            client_order_id,
            orders.used,
            # Asking the throttle slides its window: only for an id the duplicate
            # check lets through, as the checks run one by one would.
            allowed=used or self._throttle.allows(signal.ts_event),
            open_orders=len(orders),
            crosses_own_order=orders.crosses_own_order(instrument, side, limit_price),
            limits=self._account_limits,
        )
        if failed is not None:
            return failed
        # As `risk.pretrade.reduces_position`: towards zero, never through it.
        reduces = worst <= 0 if side is _BUY else worst >= 0
        if reduces:
            return None
        return self._risk_checks(instrument, worst_float, delta_float, limits, volatility)

    def _risk_checks(
        self,
        instrument: str,
        worst: float,
        delta: float,
        limits: RiskLimits,
        volatility: float | None,
    ) -> Denial | None:
        """Exposure and portfolio-risk controls for an order that increases risk: it takes
        the instrument's worst case to `worst` by `delta` (floats)."""
        whole = self._account_limits
        after = self._exposure.after_order(instrument, worst, delta, limits.group, self._limits)
        equity = self._equity
        risk = self._risk
        correlation = risk.correlation_to_book(instrument)
        if correlation is not None and delta < 0:
            correlation = -correlation  # selling what moves with the book reduces risk
        return budget.check_exposure(
            after,
            equity,
            volatility=volatility,
            signed_correlation=correlation,
            limits=limits,
            account=whole,
        ) or budget.check_risk_budgets(
            risk.post_trade(
                instrument, delta, proves=(whole.var_budget * equity, whole.cvar_budget * equity)
            ),
            risk.book_figures,
            equity,
            whole,
        )

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

    def _send(
        self,
        client_order_id: str,
        instrument: str,
        side: Side,
        quantity: Decimal,
        *,
        signal_id: str,
        ts_event: int,
        ts_init: int,
        limit_price: Decimal | None = None,
        expire_ns: int | None = None,
    ) -> Order:
        """Send a limit order good till `expire_ns` (a market order without a limit
        price): it joins the working orders and the throttle.

        The caller moves the instrument's worst case.
        """
        self._orders.open(
            client_order_id, instrument, side, quantity, limit_price, signal_id=signal_id
        )
        self._throttle.record(ts_event)
        return fast_build.order(
            client_order_id=client_order_id,
            signal_id=signal_id,
            account=self.account,
            instrument=instrument,
            side=side,
            quantity=quantity,
            order_type=_MARKET if limit_price is None else _LIMIT,
            limit_price=limit_price,
            ts_event=ts_event,
            ts_init=ts_init,
            expire_ns=expire_ns,
        )

    def _add_net(self, instrument: str, signed: Decimal) -> None:
        """Add `signed` to the worst case of `instrument`, also in the risk model."""
        self._exposure.add(instrument, signed)
        self._risk.add_quantity(instrument, float(signed))

    def on_fill(self, fill: Fill) -> Position:
        """Move the filled quantity from working to position and return the new position.

        Every fill counts towards the repeated-execution throttle.

        Raises:
            InvariantViolation: If the order is unknown or finished, the fill does not
                match its instrument or side, or it fills more than is working.
        """
        order = self._orders.order_for_fill(fill)
        position = self._book.apply_fill(fill)
        self._orders.apply_fill(order, fill)
        self._control.count_fill(fill, self._account_limits.max_fills_without_human)
        return position

    def take_events(self) -> list[TradingStateChanged]:
        """Return and forget the state changes automatic triggers made since last asked."""
        return self._control.take_events()

    def on_order_event(self, event: OrderEvent) -> None:
        """Release what a terminal event says will never fill.

        A terminal event reports the cumulative quantity the gateway filled; whatever of it
        has not reached us as fills yet stays working until those fills arrive, so fills and
        events may arrive in either order. Non-terminal and repeated terminal events, and
        events for orders already finished, change nothing (`risk.lifecycle`).

        Raises:
            InvariantViolation: If the order was never sent by this gate (as far as it
                remembers), the event contradicts the fills already applied or is an
                impossible transition (a second, different terminal event).
        """
        order = self._orders.apply_event(event)
        if order is not None:
            released = order.released
            self._add_net(order.instrument, -released if order.side is _BUY else released)

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
        out: list[ControlOutput] = list(self._control.command(command))
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
            for client_order_id, order in self._orders.items()
            if not is_ended(order.status) and _in_scope(order.instrument, command.instrument)
        ]

    def _flatten(self, command: ControlCommand) -> list[Order]:
        orders = []
        working = self._orders
        for instrument in self._book.instruments():
            if not _in_scope(instrument, command.instrument):
                continue
            # Sized against same-side working orders only: those may fill first, the
            # opposite ones are being canceled.
            position = self.position(instrument)
            if position > 0:
                side, quantity = _SELL, position - working.sell.get(instrument, ZERO)
            else:
                side, quantity = _BUY, -position - working.buy.get(instrument, ZERO)
            if quantity <= 0:
                continue
            signal_id = ids.stable_id("flatten", command.command_id, instrument)
            client_order_id = ids.client_order_id(self.account, instrument, signal_id)
            orders.append(
                self._send(
                    client_order_id,
                    instrument,
                    side,
                    quantity,
                    signal_id=signal_id,
                    ts_event=command.ts_event,
                    ts_init=command.ts_init,
                )
            )
            self._add_net(instrument, quantity if side is _BUY else -quantity)
        return orders

    def on_drift(self, event: DriftDetected) -> TradingStateChanged | None:
        """Restrict the drifting instrument as the policy says; return the change, if any."""
        return self._control.on_drift(event)

    def on_alert(self, alert: Alert) -> TradingStateChanged | None:
        """Escalate the state the policy maps `alert.name` to; return the change, if any.

        The subject picks the scope: one of our instruments (configured, or traded)
        restricts that instrument, even before its first signal; our account, "" or a
        topic (a name with a dot, e.g. "hfl.fills") restricts the whole account. Any
        other subject (another account) and unmapped names are ignored.
        """
        subject = alert.subject
        traded = (
            self._exposure.reference_ts_event(subject) is not None
            or subject in self._book.instruments()
            or subject in self._risk.instruments
        )
        return self._control.on_alert(alert, traded=traded)

    def snapshot_pnl(self, ts_event: int, ts_init: int | None = None) -> PnlSnapshot:
        """Return the account's P&L at event time `ts_event` (ts_init defaults to it).

        Its equity becomes the budgets' equity and feeds the drawdown and daily-loss
        triggers, whose state changes wait in `take_events`.
        """
        ts_init = ts_event if ts_init is None else ts_init
        snapshot = self._book.snapshot(ts_event, ts_init)
        self._equity = float(snapshot.equity)
        self._control.on_equity(self._equity, ts_event, ts_init)
        return snapshot

    def risk_metrics(self, ts_event: int, ts_init: int) -> list[RiskMetric]:
        """Recompute the portfolio risk figures when the schedule says so; else nothing.

        Portfolio sizing rebalances on the same schedule. Figures that are not finite
        (too little history, a flat series) are left out.
        """
        risk = self._risk
        if not risk.due(ts_event):
            return []
        equity = self._equity
        figures = risk.recompute(ts_event, equity)
        self._sizer.rebalance(risk, equity, self._exposure.price)
        control = self._control
        figures["drawdown"] = control.drawdown.drawdown(equity)
        figures["daily_loss"] = control.drawdown.day_loss(equity)
        figures["open_orders"] = float(len(self._orders))
        figures["order_rate"] = float(self._throttle.count(ts_event))
        figures["fills_since_human"] = float(control.fills_since_human)
        return metric_rows(
            self.account, figures, self._account_limits, ts_event=ts_event, ts_init=ts_init
        )
