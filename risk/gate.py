"""The risk gate of one account: signals in, sized and checked orders out.

`AccountGate` holds everything the stateful risk operator needs for one account and
nothing Bytewax-specific, so a `StatefulLogic` shim only delegates to it and Bytewax
snapshots it by pickling.
"""

from __future__ import annotations

import math
from collections import deque
from decimal import Decimal

import numpy as np

from risk import budget, optimizer
from risk.book import ZERO, Book, InvariantViolation
from risk.domain import ids
from risk.domain.control import Alert, ControlCommand, TradingStateChanged
from risk.domain.decision import Denied, RiskDecision
from risk.domain.enums import ControlAction, DenialReason, OrderType, Side, TradingState
from risk.domain.fast_build import approved, market_order
from risk.domain.model import DriftDetected, Signal
from risk.domain.money import at_most, quantize, quantize_lot
from risk.domain.order import CancelOrder, Fill, Order, OrderEvent, OrderIntent
from risk.domain.portfolio import PnlSnapshot, Position, RiskMetric
from risk.drawdown import DrawdownGuard
from risk.limit import AccountLimits, LimitProvider, RiskLimits
from risk.monitor import PortfolioRisk, RiskModelConfig
from risk.pretrade import Denial, gross_surely_within, halted_denial, run_checks
from risk.sizing import SizingMethod, target_quantity, volatility_target_notional
from risk.state import ACCOUNT_WIDE, StatePolicy, TradingStates
from risk.throttle import SlidingWindowThrottle

__all__ = ["AccountGate", "ControlOutput", "InvariantViolation"]

ControlOutput = TradingStateChanged | CancelOrder | Order

_STATE_BY_ACTION = {
    ControlAction.KILL: TradingState.HALTED,
    ControlAction.REDUCE: TradingState.REDUCING,
    ControlAction.RESUME: TradingState.ACTIVE,
}

_INF = float("inf")
# Enum members the gate reads per signal, as module globals: Python 3.11 does not
# specialise attribute loads on classes, so each `Side.BUY` costs about 0.1 us.
_BUY, _SELL = Side.BUY, Side.SELL
_ACTIVE = TradingState.ACTIVE
_VOL_TARGET = SizingMethod.VOL_TARGET


def _in_scope(instrument: str, scope: str) -> bool:
    """True when a command for `scope` covers `instrument`."""
    return scope in (ACCOUNT_WIDE, instrument)


class _WorkingOrder:
    """An approved order that may still fill; `leaves` is what may still fill."""

    __slots__ = ("closed", "filled", "instrument", "limit_price", "quantity", "released", "side")

    def __init__(
        self, instrument: str, side: Side, quantity: Decimal, limit_price: Decimal | None
    ) -> None:
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.limit_price = limit_price
        self.filled = ZERO
        # Quantity the gateway will never fill (canceled or rejected remainder).
        self.released = ZERO
        self.closed = False

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.released


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
    time) decide exactly as before. The price: a working order the gateway cancels or
    rejects can leave the position past a limit by the released quantity; a check that
    assumed the opposing order might be canceled would depend on fill timing instead.

    After the order-level checks come the account-level ones (`risk.budget`): duplicate
    client order id, order-rate throttle, open orders, self-match, then, for orders that
    increase risk only, net exposure, concentration per instrument and group, volatility,
    correlation with the book, beta and the VaR/CVaR budgets on the post-trade book
    (`risk.monitor.PortfolioRisk`, recomputed on an event-time schedule by
    `risk_metrics`). Equity for the budgets is the last `snapshot_pnl`'s, which also
    feeds the drawdown and daily-loss triggers; every fill counts towards the
    repeated-execution throttle until the next operator command.

    Which of these depend on when fills arrive (a replay that interleaves the fill
    stream differently with the ticks may decide differently): equity (a fill moves a
    position from "not yet in the book" to "marked at the fill price", so the
    concentration, VaR/CVaR and beta budgets' denominator and the drawdown and
    daily-loss triggers see it), the open-orders limit (a fully filled order stops
    counting when its last fill arrives) and the repeated-execution throttle (which
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

    Cost (`hfl bench risk`): nearly every signal passes nearly every control, so each
    group of controls first runs as one screen of their pass conditions on the values
    the gate keeps (`_within_order_limits`, the order-flow condition in
    `_account_checks`, the exposure condition in `_risk_checks`); only when a screen
    cannot vouch for the order do the `risk.pretrade` / `risk.budget` checks run one by
    one, in the documented order, to name the denial. A screen never passes what its
    checks would deny, so decisions are exactly those of the checks alone.
    """

    __slots__ = (
        "_account_limits",
        "_book",
        "_drawdown",
        "_equity",
        "_fills_since_human",
        "_last_control",
        "_limits",
        "_net",
        "_net_float",
        "_notionals",
        "_outbox",
        "_policy",
        "_recent_ids",
        "_recent_set",
        "_ref_price",
        "_ref_price_decimal",
        "_ref_ts",
        "_risk",
        "_states",
        "_targets",
        "_throttle",
        "_views",
        "_working",
        "_working_buy",
        "_working_sell",
        "account",
        "gross_notional",
        "lot_size",
        "sizing",
        "target_notional",
        "volatility_target",
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
        self.sizing = sizing
        # Portfolio sizing: the most gross capital the book deploys (default: every
        # instrument at `target_notional`).
        self.gross_notional = (
            target_notional * max(len(instruments), 1) if gross_notional is None else gross_notional
        )
        # Portfolio sizing: each instrument's latest view (signal direction) and the
        # target positions built from them on the risk model's schedule.
        self._views: dict[str, int] = {}
        self._targets: dict[str, Decimal] = {}
        self.target_notional = target_notional
        self.volatility_target = volatility_target
        # Per instrument: (equity, volatility, notional) of the last `_notional`.
        self._notionals: dict[str, tuple[float, float | None, Decimal]] = {}
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
        # Position plus net working quantity (the worst case every check uses) of each
        # instrument where it is not zero, exact and as a float. Fills move quantity
        # from working to position, so only approvals and releases change it.
        self._net: dict[str, Decimal] = {}
        self._net_float: dict[str, float] = {}
        self._recent_ids: deque[str] = deque(maxlen=recent_order_ids)
        self._recent_set: set[str] = set()
        self._policy = policy or StatePolicy()
        self._states = TradingStates(account)
        self._last_control: ControlCommand | None = None
        self._account_limits = whole = account_limits or AccountLimits()
        self._throttle = SlidingWindowThrottle(whole.max_orders_per_window, whole.order_window_ns)
        self._risk = PortfolioRisk(instruments, risk_model)
        self._equity = float(initial_cash)
        self._drawdown = DrawdownGuard(
            soft=whole.drawdown_soft, hard=whole.drawdown_hard, daily_loss=whole.daily_loss
        )
        self._fills_since_human = 0
        self._outbox: list[TradingStateChanged] = []

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

    def knows_order(self, client_order_id: str) -> bool:
        """Return True if this gate submitted `client_order_id` (as far as it remembers)."""
        return client_order_id in self._working or client_order_id in self._recent_set

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
        order = self._working.get(report.client_order_id)
        if order is not None:
            if isinstance(report, Fill):
                return order.quantity - report.leaves_quantity <= order.filled
            return False
        if report.client_order_id in self._recent_set:
            return True
        decided_until = self._ref_ts.get(report.instrument)
        return decided_until is not None and report.ts_event < decided_until

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
        return self._net.get(instrument, ZERO)

    def worst_case_short(self, instrument: str) -> Decimal:
        """Return the position if every working order on `instrument` fills.

        The same figure as `worst_case_long`: any bound that tells buys from sells
        changes when a fill arrives (see the class docstring).
        """
        return self._net.get(instrument, ZERO)

    def gross_exposure_excluding(self, instrument: str) -> Decimal:
        """Return Σ |position if all working orders fill| * reference over other instruments."""
        gross = ZERO
        prices = self._ref_price_decimal
        for name, net in self._net.items():
            if name != instrument:
                price = prices.get(name)
                gross += abs(net) * (self._book.mark_price(name) if price is None else price)
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

    def mark(self, instrument: str, price: float, ts_event: int) -> None:
        """Mark `instrument` at `price` (a bar close) and feed the return history."""
        self._book.mark(instrument, price)
        self._risk.on_price(instrument, price, ts_event)

    def set_limits(self, limits: LimitProvider) -> None:
        """Apply new per-instrument limits from the next decision on.

        Orders already working stay; an account over a lowered limit can still trade
        back towards it (the exposure checks deny only increases).
        """
        self._limits = limits

    def on_signal(self, signal: Signal) -> tuple[RiskDecision, Order | None]:
        """Size, check and (if approved) emit the order that moves to the signal's target."""
        instrument = signal.instrument
        self.on_reference_price(instrument, signal.reference_price, signal.ts_event)
        if self.sizing is not _VOL_TARGET:
            self._views[instrument] = signal.direction
        reference = self._ref_price.get(instrument)
        state = self._states.state(instrument)
        if reference is None:
            if state is TradingState.HALTED:
                denial = halted_denial(self._states.trigger(instrument))
            else:
                denial = Denial(reason=DenialReason.NO_REFERENCE_PRICE, detail="missing")
            side = _SELL if signal.direction < 0 else _BUY
            return self._denied(signal, side, ZERO, None, denial), None
        limits = self._limits.for_instrument(instrument)
        volatility = self._risk.volatility(instrument)
        target = self._target(signal.direction, reference, instrument, limits, volatility)
        net = self._net.get(instrument, ZERO)
        delta = target - net
        if delta > 0:
            side = _BUY
        elif delta < 0:
            side = _SELL
        else:  # nothing to trade: the side only names the denial
            side = _SELL if signal.direction < 0 else _BUY
        quantity = abs(delta)
        # The order moves the worst case (position plus net working) from `net` to
        # `target`; the checks and the risk model use both floats below (each
        # Decimal-to-float conversion costs about 0.2 us, so they are made once here).
        target_float, delta_float = float(target), float(delta)
        client_order_id = ids.client_order_id(self.account, instrument, signal.signal_id)
        if state is _ACTIVE and self._within_order_limits(
            instrument,
            quantity,
            signal.ts_event,
            limits,
            net=net,
            worst=target,
            worst_float=target_float,
        ):
            failed = None
        else:
            failed = self._order_denial(
                signal, side, quantity, reference, state=state, limits=limits
            )
        if failed is None:
            failed = self._account_checks(
                signal,
                side,
                client_order_id,
                limits,
                volatility,
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
        )
        self._set_net(instrument, target, target_float, delta_float)
        decision = approved(
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

    def _target(
        self,
        direction: int,
        reference: float,
        instrument: str,
        limits: RiskLimits,
        volatility: float | None,
    ) -> Decimal:
        """The signal's target position, scaled down above the instrument's volatility
        limit when so configured.

        `vol_target` sizes the signal alone: volatility-targeted (capped at
        `target_notional`) when `volatility_target` is set. Portfolio methods hold the
        instrument's target from the last `_rebalance` (the signal's direction counts
        from the next one on). `volatility` is the instrument's realised volatility.
        """
        if self.sizing is _VOL_TARGET:
            target = target_quantity(
                direction,
                reference,
                target_notional=self._notional(instrument, volatility),
                lot_size=self.lot_size,
            )
        else:
            target = self._targets.get(instrument, ZERO)
        if (
            limits.scale_on_volatility
            and target
            and volatility is not None
            and volatility > limits.max_volatility
        ):
            factor = quantize(limits.max_volatility / volatility)
            target = quantize_lot(target * factor, self.lot_size)
        return target

    def _notional(self, instrument: str, volatility: float | None) -> Decimal:
        """What one signal on `instrument` may hold: `target_notional`, or with a
        volatility target `volatility_target_notional`, kept per instrument until the
        equity or the volatility it was computed from changes (once a second at most).
        """
        if self.volatility_target is None:
            return self.target_notional
        equity = self._equity
        kept = self._notionals.get(instrument)
        if kept is not None and kept[0] == equity and kept[1] == volatility:
            return kept[2]
        notional = volatility_target_notional(
            equity, self.volatility_target, volatility, cap=self.target_notional
        )
        self._notionals[instrument] = (equity, volatility, notional)
        return notional

    def _rebalance(self) -> None:
        """Rebuild the portfolio's target positions from the views and the new returns.

        Portfolio sizing only: `risk.optimizer.portfolio_weights` on the risk model's
        return window, scaled to the volatility target (at most `gross_notional`), in
        whole lots at the latest reference prices. Instruments without a view, or
        without a price, get no position.
        """
        returns = self._risk.returns()
        if self.sizing is _VOL_TARGET or returns is None:
            return
        names = self._risk.instruments[: returns.shape[1]]
        directions = np.array([self._views.get(name, 0) for name in names], dtype=np.float64)
        weights = optimizer.portfolio_weights(self.sizing, directions, returns)
        capital = optimizer.portfolio_capital(
            weights,
            returns,
            self._risk.periods_per_year,
            equity=self._equity,
            volatility_target=self.volatility_target,
            cap=self.gross_notional,
        )
        prices = {name: self._ref_price[name] for name in names if name in self._ref_price}
        chosen = {
            name: float(weight)
            for name, weight in zip(names, weights, strict=True)
            if weight and name in prices
        }
        self._targets = optimizer.target_positions(chosen, capital, prices, self.lot_size)

    def _order_denial(
        self,
        signal: Signal,
        side: Side,
        quantity: Decimal,
        reference: float,
        *,
        state: TradingState,
        limits: RiskLimits,
    ) -> Denial | None:
        """`risk.pretrade.run_checks` on the order, for orders `_within_order_limits`
        cannot vouch for; the `OrderIntent` is built only here."""
        instrument = signal.instrument
        intent = OrderIntent(
            signal.signal_id,
            self.account,
            instrument,
            side,
            quantity,
            OrderType.MARKET,
            None,
            reference,
            signal.ts_event,
            signal.ts_init,
        )
        trigger = "" if state is _ACTIVE else self._states.trigger(instrument)
        return run_checks(intent, self, limits, state, trigger)

    def _within_order_limits(
        self,
        instrument: str,
        quantity: Decimal,
        ts_event: int,
        limits: RiskLimits,
        *,
        net: Decimal,
        worst: Decimal,
        worst_float: float,
    ) -> bool:
        """True when a market order passes every check of `run_checks` but the state's.

        The same comparisons on the same numbers, without the intent and eight calls:
        the gate runs this for every signal. The order takes the instrument's worst case
        from `net` to `worst`. The reference is positive and finite (`on_reference_price`
        keeps no other) and its Decimal is the one the checks quantise. False does not
        mean denied, only that `run_checks` must tell.
        """
        if not quantity or quantity > limits.max_order_quantity:
            return False
        if ts_event - self._ref_ts[instrument] > limits.max_reference_age_ns:
            return False
        price = self._ref_price_decimal[instrument]
        if quantity * price > limits.max_order_notional:
            return False
        held = abs(worst)
        if held > limits.max_position:
            return False
        if held <= abs(net):
            return True
        limit = limits.max_gross_exposure
        if gross_surely_within(
            self._net_float, self._ref_price, instrument, abs(worst_float), limit
        ):
            return True
        return self.gross_exposure_excluding(instrument) + held * price <= limit

    def _account_checks(
        self,
        signal: Signal,
        side: Side,
        client_order_id: str,
        limits: RiskLimits,
        volatility: float | None,
        *,
        worst: Decimal,
        worst_float: float,
        delta_float: float,
    ) -> Denial | None:
        """Run the account-level controls in the documented order; first denial wins.

        The order takes the instrument's worst case to `worst` (`worst_float`), by
        `delta_float`.
        """
        instrument = signal.instrument
        working = self._working
        if (
            client_order_id in self._recent_set
            or client_order_id in working
            or not self._throttle.allows(signal.ts_event)
            or len(working) >= self._account_limits.max_open_orders
            or self._crosses_own_order(instrument, side)
        ):
            return self._order_flow_denial(signal.ts_event, instrument, side, client_order_id)
        # As `risk.pretrade.reduces_position`: towards zero, never through it.
        reduces = worst <= 0 if side is _BUY else worst >= 0
        if reduces:
            return None
        return self._risk_checks(instrument, worst_float, delta_float, limits, volatility)

    def _order_flow_denial(
        self, ts_event: int, instrument: str, side: Side, client_order_id: str
    ) -> Denial | None:
        """Which of duplicate id, order rate, open orders and self-match denies, in order."""
        whole = self._account_limits
        return (
            budget.check_duplicate(client_order_id, self._used)
            or budget.check_order_rate(self._throttle.allows(ts_event), whole)
            or budget.check_open_orders(len(self._working), whole)
            or budget.check_self_match(self._crosses_own_order(instrument, side))
        )

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
        net_after, group_after = self._book_exposure(instrument, delta, limits.group)
        value_after = worst * self._ref_price[instrument]
        equity = self._equity
        risk = self._risk
        correlation = risk.correlation_to_book(instrument)
        if correlation is not None and delta < 0:
            correlation = -correlation  # selling what moves with the book reduces risk
        # The exposure checks' pass conditions in one expression, as `risk.budget`
        # states them (nearly every order passes; this runs per signal); only when one
        # fails do the checks run one by one to name it.
        if not (
            at_most(abs(net_after), whole.max_net_exposure)
            and equity > 0
            and abs(value_after) / equity <= limits.max_concentration
            and (not limits.group or abs(group_after) / equity <= whole.max_group_concentration)
            and (
                volatility is None
                or volatility <= limits.max_volatility
                or limits.scale_on_volatility
            )
            and (correlation is None or correlation <= limits.max_correlation)
        ):
            failed = (
                budget.check_net_exposure(net_after, whole)
                or budget.check_concentration(value_after, equity, limits)
                or (
                    budget.check_group_concentration(limits.group, group_after, equity, whole)
                    if limits.group
                    else None
                )
                or budget.check_volatility(volatility, limits)
                or budget.check_correlation(correlation, limits)
            )
            if failed is not None:
                return failed
        return budget.check_risk_budgets(
            risk.post_trade(
                instrument, delta, proves=(whole.var_budget * equity, whole.cvar_budget * equity)
            ),
            risk.book_figures,
            equity,
            whole,
        )

    def _book_exposure(self, instrument: str, delta: float, group: str) -> tuple[float, float]:
        """Worst-case net exposure (money) and the group's gross value after the order.

        For a buy every working buy is assumed filled and every working sell canceled
        (and the other way round for a sell): the net exposure that order could reach.
        Floats from `_net_float`: these feed share-of-equity limits, not accounting.
        """
        prices = self._ref_price
        net = delta * prices[instrument]
        group_value = 0.0
        for_instrument = self._limits.for_instrument
        seen = False
        for name, worst in self._net_float.items():
            price = prices.get(name, 0.0)
            net += worst * price
            if group and for_instrument(name).group == group:
                mine = name == instrument
                seen = seen or mine
                group_value += abs(worst + (delta if mine else 0.0)) * price
        if group and not seen:
            group_value += abs(delta) * prices[instrument]
        return net, group_value

    def _used(self, client_order_id: str) -> bool:
        return client_order_id in self._recent_set or client_order_id in self._working

    def _crosses_own_order(self, instrument: str, side: Side) -> bool:
        """True when a market order could trade against our resting limit on the other side.

        Market orders never rest, so only our working limit orders can be matched, and
        a market order crosses any of them.
        """
        opposite = self._working_sell if side is _BUY else self._working_buy
        if instrument not in opposite:
            return False
        return any(
            order.instrument == instrument
            and order.side is not side
            and order.limit_price is not None
            for order in self._working.values()
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
    ) -> Order:
        """Send a market order: it joins the working orders and the throttle.

        The caller moves the instrument's worst case (`_add_net`, `_set_net`).
        """
        if client_order_id in self._recent_set or client_order_id in self._working:
            msg = (
                f"risk gate {self.account}: client order id {client_order_id} reused "
                f"(signal {signal_id} seen twice)"
            )
            raise InvariantViolation(msg)
        self._remember(client_order_id)
        self._working[client_order_id] = _WorkingOrder(instrument, side, quantity, None)
        self._add_working(instrument, side, quantity)
        self._throttle.record(ts_event)
        return market_order(
            client_order_id=client_order_id,
            signal_id=signal_id,
            account=self.account,
            instrument=instrument,
            side=side,
            quantity=quantity,
            ts_event=ts_event,
            ts_init=ts_init,
        )

    def _remember(self, client_order_id: str) -> None:
        recent = self._recent_ids
        if recent.maxlen is not None and len(recent) == recent.maxlen:
            self._recent_set.discard(recent[0])
        recent.append(client_order_id)
        self._recent_set.add(client_order_id)

    def _add_working(self, instrument: str, side: Side, quantity: Decimal) -> None:
        totals = self._working_buy if side is _BUY else self._working_sell
        remaining = totals.get(instrument, ZERO) + quantity
        if remaining:
            totals[instrument] = remaining
        else:
            # Drop zero entries so the dicts only hold instruments with live orders.
            del totals[instrument]

    def _add_net(self, instrument: str, signed: Decimal) -> None:
        """Add `signed` to the worst-case position of `instrument` and to the risk model's."""
        net = self._net.get(instrument, ZERO) + signed
        self._set_net(instrument, net, float(net), float(signed))

    def _set_net(self, instrument: str, net: Decimal, net_float: float, signed: float) -> None:
        """Make `net` (`net_float`) the worst case of `instrument`, `signed` more than it
        was, also in the risk model."""
        if net:
            self._net[instrument] = net
            self._net_float[instrument] = net_float
        else:
            self._net.pop(instrument, None)
            self._net_float.pop(instrument, None)
        self._risk.add_quantity(instrument, signed)

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
        self._count_fill(fill)
        return position

    def _count_fill(self, fill: Fill) -> None:
        """Halt after too many fills without an operator command (repeated execution)."""
        self._fills_since_human += 1
        limit = self._account_limits.max_fills_without_human
        if limit and self._fills_since_human >= limit:
            self._emit(
                self._states.escalate(
                    ACCOUNT_WIDE,
                    TradingState.HALTED,
                    trigger="execution_throttle",
                    reason=f"{self._fills_since_human} fills without an operator command",
                    ts_event=fill.ts_event,
                    ts_init=fill.ts_init,
                )
            )

    def _emit(self, changed: TradingStateChanged | None) -> None:
        if changed is not None:
            self._outbox.append(changed)

    def take_events(self) -> list[TradingStateChanged]:
        """Return and forget the state changes automatic triggers made since last asked."""
        events, self._outbox = self._outbox, []
        return events

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
            released = order.released
            self._add_net(order.instrument, -released if order.side is _BUY else released)
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
        self._fills_since_human = 0
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
            # Sized against same-side working orders only: those may fill first, the
            # opposite ones are being canceled.
            position = self.position(instrument)
            if position > 0:
                side, quantity = _SELL, position - self._working_sell.get(instrument, ZERO)
            else:
                side, quantity = _BUY, -position - self._working_buy.get(instrument, ZERO)
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
        """Return the account's P&L at event time `ts_event` (ts_init defaults to it).

        Its equity becomes the budgets' equity and feeds the drawdown and daily-loss
        triggers, whose state changes wait in `take_events`.
        """
        ts_init = ts_event if ts_init is None else ts_init
        snapshot = self._book.snapshot(ts_event, ts_init)
        self._equity = float(snapshot.equity)
        state, trigger = self._drawdown.update(self._equity, ts_event)
        if state is not None:
            reason = (
                f"equity {self._equity:.2f}, high-water mark {self._drawdown.high_water_mark:.2f}"
            )
            self._emit(
                self._states.escalate(
                    ACCOUNT_WIDE,
                    state,
                    trigger=trigger,
                    reason=reason,
                    ts_event=ts_event,
                    ts_init=ts_init,
                )
            )
        return snapshot

    def risk_metrics(self, ts_event: int, ts_init: int) -> list[RiskMetric]:
        """Recompute the portfolio risk figures when the schedule says so; else nothing.

        Figures that are not finite (too little history, a flat series) are left out.
        """
        risk = self._risk
        if not risk.due(ts_event):
            return []
        whole = self._account_limits
        figures = risk.recompute(ts_event, self._equity)
        self._rebalance()
        figures["drawdown"] = self._drawdown.drawdown(self._equity)
        figures["daily_loss"] = self._drawdown.day_loss(self._equity)
        figures["open_orders"] = float(len(self._working))
        figures["order_rate"] = float(self._throttle.count(ts_event))
        figures["fills_since_human"] = float(self._fills_since_human)
        limits = {
            "var_hist": whole.var_budget,
            "var_ewma": whole.var_budget,
            "cvar_hist": whole.cvar_budget,
            "cvar_ewma": whole.cvar_budget,
            "beta": whole.max_beta,
            "drawdown": whole.drawdown_hard,
            "daily_loss": whole.daily_loss,
            "open_orders": float(whole.max_open_orders),
            "order_rate": float(whole.max_orders_per_window),
            "fills_since_human": float(whole.max_fills_without_human),
        }
        return [
            RiskMetric(
                metrics_id=ids.stable_id("risk_metric", self.account, name, ts_event),
                account=self.account,
                metric=name,
                value=value,
                limit_value=limits.get(name, 0.0),
                ts_event=ts_event,
                ts_init=ts_init,
            )
            for name, value in figures.items()
            if math.isfinite(value)
        ]
