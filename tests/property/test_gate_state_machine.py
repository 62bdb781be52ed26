"""Stateful property test of the account risk gate against a model gateway and model states.

Signals (some with unusable prices, some after gaps longer than the reference may age),
ticks, fills and partial fills, cancels and rejects delivered in any interleaving,
operator commands (kill with or without flatten, reduce, resume; account-wide or per
instrument), drift events, alerts, P&L snapshots (drawdown triggers) and limit changes
drive one AccountGate. After every step:

- |position| stays within the limit counting working orders (worst case);
- every approved order is within the order quantity and notional limits in force;
- nothing but cancels (and an operator's flatten, which only reduces) leaves a HALTED
  account or instrument;
- in REDUCING only orders that reduce the position without crossing zero are approved;
- no client order id is ever used twice;
- no order is approved without a usable reference price no older than the limit;
- every approved order's price is inside the collar around the reference;
- the gate agrees with the model about working quantity and trading states.

CI runs 1,000 examples; `make chaos` runs more (HFL_HYPOTHESIS_MAX_EXAMPLES).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support.alerts import make_alert

from risk.domain import ids
from risk.domain.control import ControlCommand, TradingStateChanged
from risk.domain.decision import Approved, Denied
from risk.domain.enums import (
    ControlAction,
    DenialReason,
    OrderEventKind,
    Side,
    TradingState,
)
from risk.domain.model import DriftDetected, Signal
from risk.domain.money import quantize
from risk.domain.order import CancelOrder, Fill, Order, OrderEvent
from risk.gate import AccountGate
from risk.limit import AccountLimits, RiskLimits

D = Decimal
ZERO = Decimal(0)
ACCOUNT = "acc"
INSTRUMENTS = ("AAPL", "MSFT", "TSLA")
SCOPES = ("", *INSTRUMENTS)
TS = 1_700_000_000_000_000_000
MAX_EXAMPLES = int(os.environ.get("HFL_HYPOTHESIS_MAX_EXAMPLES", "1000"))
# Tight enough, against a 1,000 target notional at prices 5-200, that every check fires.
LOOSE = RiskLimits(
    max_order_quantity=D(150),
    max_order_notional=D(2_000),
    max_position=D(100),
    max_gross_exposure=D(4_000),
    price_collar_pct=0.05,
    max_reference_age_ns=1_000_000_000,
)
TIGHT = RiskLimits(
    max_order_quantity=D(60),
    max_order_notional=D(1_500),
    max_position=D(50),
    max_gross_exposure=D(2_500),
    price_collar_pct=0.01,
    max_reference_age_ns=500_000_000,
)
ACCOUNT_LIMITS = AccountLimits(
    max_orders_per_window=20, max_open_orders=8, drawdown_soft=0.01, drawdown_hard=0.02
)
prices = st.floats(min_value=5.0, max_value=200.0, allow_nan=False, allow_infinity=False)
signal_prices = st.one_of(prices, st.sampled_from((math.nan, 0.0, -1.0, math.inf)))
gaps_ns = st.sampled_from((1_000_000, 50_000_000, 700_000_000, 3_000_000_000))


@dataclass
class GatewayOrder:
    """The model gateway's view of one order."""

    order: Order
    filled: Decimal = ZERO
    done: bool = False
    fill_seq: int = 0
    event_seq: int = 0
    terminal_delivered: bool = False


class GateMachine(RuleBasedStateMachine):
    """Drive one AccountGate with signals, controls, triggers and a model gateway."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = AccountGate(
            ACCOUNT,
            LOOSE,
            target_notional=D(1_000),
            lot_size=D(1),
            initial_cash=D(100_000),
            account_limits=ACCOUNT_LIMITS,
            instruments=INSTRUMENTS,
        )
        self.limits = LOOSE
        self.ts = TS
        self.tick_seq = 0
        self.orders: dict[str, GatewayOrder] = {}
        self.pending: list[Fill | OrderEvent] = []
        self.used_ids: set[str] = set()
        self.states: dict[str, TradingState] = {}
        self.expected_working = dict.fromkeys(INSTRUMENTS, D(0))
        # Instruments where the gateway released working quantity (cancel or reject):
        # the net position a limit was checked against no longer bounds the position.
        self.released = set[str]()

    def _next_ts(self, gap_ns: int = 1_000_000) -> int:
        self.ts += gap_ns
        return self.ts

    def _open_ids(self) -> list[str]:
        return sorted(cid for cid, gw in self.orders.items() if not gw.done)

    def _state(self, instrument: str) -> TradingState:
        own = self.states.get(instrument, TradingState.ACTIVE)
        account = self.states.get("", TradingState.ACTIVE)
        return own if own.severity > account.severity else account

    def _apply(self, change: TradingStateChanged) -> None:
        assert change.previous is self.states.get(change.instrument, TradingState.ACTIVE)
        if change.state is TradingState.ACTIVE:
            del self.states[change.instrument]
        else:
            self.states[change.instrument] = change.state

    def _record(self, order: Order) -> None:
        assert order.client_order_id not in self.used_ids, "client order id reused"
        self.used_ids.add(order.client_order_id)
        self.orders[order.client_order_id] = GatewayOrder(order=order)
        self.expected_working[order.instrument] += order.quantity * order.side.sign

    # -- inputs to the gate -----------------------------------------------------------

    @rule(
        instrument=st.sampled_from(INSTRUMENTS),
        direction=st.sampled_from((-1, 0, 1)),
        price=signal_prices,
        gap=gaps_ns,
    )
    def signal(self, instrument: str, direction: int, price: float, gap: int) -> None:
        self.tick_seq += 1
        ts = self._next_ts(gap)
        tick = ids.tick_id(instrument, self.tick_seq, ts)
        signal = Signal(
            signal_id=ids.signal_id(instrument, tick, "m"),
            tick_id=tick,
            instrument=instrument,
            model="m",
            direction=direction,
            probability_up=0.5,
            reference_price=price,
            ts_event=ts,
            ts_init=ts,
        )
        state = self._state(instrument)
        long_before = self.gate.worst_case_long(instrument)
        short_before = self.gate.worst_case_short(instrument)
        decision, order = self.gate.on_signal(signal)
        assert decision.ts_event == ts
        if order is None:
            assert isinstance(decision, Denied)
            if state is TradingState.HALTED:
                assert decision.reason in (DenialReason.HALTED, DenialReason.KILL_SWITCH)
            return
        assert isinstance(decision, Approved)
        assert state is not TradingState.HALTED, "approved an order while HALTED"
        if state is TradingState.REDUCING:
            if order.side is Side.BUY:
                assert long_before + order.quantity <= 0, "REDUCING approved a non-reducing buy"
            else:
                assert short_before - order.quantity >= 0, "REDUCING approved a non-reducing sell"
        self._check_order_limits(order, decision, ts)
        self._record(order)

    def _check_order_limits(self, order: Order, decision: Approved, ts: int) -> None:
        limits = self.limits
        reference = decision.reference_price
        assert reference is not None
        assert math.isfinite(reference)
        assert reference > 0
        reference_ts = self.gate.reference_ts_event(order.instrument)
        assert reference_ts is not None
        assert ts - reference_ts <= limits.max_reference_age_ns, "stale reference"
        if order.limit_price is not None:
            deviation = abs(float(order.limit_price) - reference) / reference
            assert deviation <= limits.price_collar_pct, "price outside the collar"
        assert 0 < order.quantity <= limits.max_order_quantity
        assert order.quantity * quantize(reference) <= limits.max_order_notional
        if order.side is Side.BUY:
            assert self.gate.worst_case_long(order.instrument) <= limits.max_position
        else:
            assert self.gate.worst_case_short(order.instrument) >= -limits.max_position

    @rule(instrument=st.sampled_from(INSTRUMENTS), price=prices)
    def tick(self, instrument: str, price: float) -> None:
        ts = self._next_ts()
        self.gate.on_reference_price(instrument, price, ts)
        self.gate.mark(instrument, price, ts)

    @rule(
        action=st.sampled_from(tuple(ControlAction)),
        scope=st.sampled_from(SCOPES),
        flatten=st.booleans(),
        cancel_now=st.booleans(),
    )
    def control(self, action: ControlAction, scope: str, flatten: bool, cancel_now: bool) -> None:
        ts = self._next_ts()
        before = {name: self.gate.position(name) for name in INSTRUMENTS}
        outputs = self.gate.on_control(
            ControlCommand(
                command_id=f"c{ts}",
                account=ACCOUNT,
                action=action,
                reason="property test",
                actor="hypothesis",
                instrument=scope,
                flatten=flatten,
                ts_event=ts,
                ts_init=ts,
            )
        )
        for output in outputs:
            if isinstance(output, TradingStateChanged):
                self._apply(output)
            elif isinstance(output, CancelOrder):
                assert action is ControlAction.KILL
                gw = self.orders[output.client_order_id]
                assert scope in ("", gw.order.instrument)
                assert not gw.terminal_delivered, "cancel for an order the gate saw finish"
                if cancel_now and not gw.done:
                    self._finish(gw, OrderEventKind.CANCELED)
            else:
                assert action is ControlAction.KILL and flatten
                position = before[output.instrument]
                assert position * output.side.sign < 0, "flatten must trade against the position"
                assert output.quantity <= abs(position), "flatten must not cross zero"
                self._record(output)
        if action is ControlAction.KILL:
            assert self._state(scope or INSTRUMENTS[0]) is TradingState.HALTED

    @rule(instrument=st.sampled_from(INSTRUMENTS))
    def drift(self, instrument: str) -> None:
        ts = self._next_ts()
        changed = self.gate.on_drift(
            DriftDetected(
                drift_id=f"d{ts}",
                instrument=instrument,
                model="m",
                detector="adwin",
                stream="error",
                value=0.3,
                ts_event=ts,
                ts_init=ts,
            )
        )
        if changed is not None:
            self._apply(changed)
        assert self.states[instrument].severity >= TradingState.REDUCING.severity

    @rule(
        name=st.sampled_from(("stale_data", "delivery_failure", "unrelated")),
        subject=st.sampled_from((ACCOUNT, "other-account", *INSTRUMENTS)),
    )
    def alert(self, name: str, subject: str) -> None:
        ts = self._next_ts()
        changed = self.gate.on_alert(make_alert(name, subject, ts))
        if changed is not None:
            assert name != "unrelated" and subject != "other-account"
            self._apply(changed)

    @rule()
    def pnl_snapshot(self) -> None:
        self.gate.snapshot_pnl(self._next_ts())
        for change in self.gate.take_events():
            assert change.trigger in ("drawdown", "daily_loss")
            self._apply(change)

    @rule(tight=st.booleans())
    def change_limits(self, tight: bool) -> None:
        self.limits = TIGHT if tight else LOOSE
        self.gate.set_limits(self.limits)

    # -- the model gateway ------------------------------------------------------------

    @precondition(lambda self: bool(self._open_ids()))
    @rule(data=st.data(), full=st.booleans(), price=prices)
    def gateway_fill(self, data: st.DataObject, full: bool, price: float) -> None:
        gw = self.orders[data.draw(st.sampled_from(self._open_ids()))]
        leaves = gw.order.quantity - gw.filled
        quantity = leaves if full else D(data.draw(st.integers(1, int(leaves))))
        gw.filled += quantity
        gw.fill_seq += 1
        ts = self._next_ts()
        self.pending.append(
            Fill(
                fill_id=ids.fill_id(gw.order.client_order_id, gw.fill_seq),
                client_order_id=gw.order.client_order_id,
                account=ACCOUNT,
                instrument=gw.order.instrument,
                side=gw.order.side,
                quantity=quantity,
                price=quantize(round(price, 2)),
                fee=quantize("0.01") * quantity,
                leaves_quantity=gw.order.quantity - gw.filled,
                tick_id="t",
                ts_event=ts,
                ts_init=ts,
            )
        )
        if gw.filled == gw.order.quantity:
            self._finish(gw, OrderEventKind.FILLED)

    @precondition(lambda self: bool(self._open_ids()))
    @rule(data=st.data(), kind=st.sampled_from((OrderEventKind.CANCELED, OrderEventKind.REJECTED)))
    def gateway_cancel(self, data: st.DataObject, kind: OrderEventKind) -> None:
        gw = self.orders[data.draw(st.sampled_from(self._open_ids()))]
        self._finish(gw, kind)

    def _finish(self, gw: GatewayOrder, kind: OrderEventKind) -> None:
        gw.done = True
        gw.event_seq += 1
        ts = self._next_ts()
        self.pending.append(
            OrderEvent(
                event_id=ids.order_event_id(gw.order.client_order_id, gw.event_seq),
                client_order_id=gw.order.client_order_id,
                account=ACCOUNT,
                instrument=gw.order.instrument,
                kind=kind,
                filled_quantity=gw.filled,
                leaves_quantity=D(0),
                ts_event=ts,
                ts_init=ts,
            )
        )

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        message = self.pending.pop(data.draw(st.integers(0, len(self.pending) - 1)))
        gw = self.orders[message.client_order_id]
        sign = gw.order.side.sign
        if isinstance(message, Fill):
            position = self.gate.on_fill(message)
            assert position.quantity == self.gate.position(message.instrument)
            self.expected_working[message.instrument] -= message.quantity * sign
            assert self.gate.take_events() == []  # the execution throttle is off
        else:
            self.gate.on_order_event(message)
            if not gw.terminal_delivered:
                gw.terminal_delivered = True
                released = gw.order.quantity - message.filled_quantity
                self.expected_working[message.instrument] -= released * sign
                if released:
                    self.released.add(message.instrument)

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def position_within_limit_counting_working_orders(self) -> None:
        limit = max(LOOSE.max_position, TIGHT.max_position)
        for instrument in INSTRUMENTS:
            net = self.gate.position(instrument) + self.gate.working_quantity(instrument)
            assert self.gate.worst_case_long(instrument) == net
            assert self.gate.worst_case_short(instrument) == net
            if instrument not in self.released:
                assert abs(net) <= limit

    @invariant()
    def working_matches_model(self) -> None:
        for instrument in INSTRUMENTS:
            assert self.gate.working_quantity(instrument) == self.expected_working[instrument]

    @invariant()
    def states_match_model(self) -> None:
        assert self.gate.states.restricted() == self.states

    @invariant()
    def equity_is_cash_plus_pnl(self) -> None:
        book = self.gate.book
        snap = book.snapshot(self.ts, self.ts)
        expected = book.initial_cash + snap.realized_pnl + snap.unrealized_pnl - snap.fees
        assert abs(snap.equity - expected) < D("0.0001")


GateMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES, stateful_step_count=50, deadline=None
)
TestGateStateMachine = GateMachine.TestCase
