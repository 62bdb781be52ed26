"""Stateful property test of the account risk gate against a model gateway.

The model gateway fills orders (fully or partly, at random prices), cancels and rejects
them, and delivers fills and order events to the gate in any interleaving, while signals,
reference prices and kill/resume commands arrive. After every step the gate must respect
its limits counting working orders, and agree with the model about what is still working.

Set HFL_HYPOTHESIS_MAX_EXAMPLES to run more examples than the default 200.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from risk.domain import ids
from risk.domain.control import ControlCommand
from risk.domain.decision import Approved, Denied
from risk.domain.enums import ControlAction, DenialReason, OrderEventKind
from risk.domain.model import Signal
from risk.domain.money import quantize
from risk.domain.order import Fill, Order, OrderEvent
from risk.gate import AccountGate
from risk.limit import RiskLimits

D = Decimal
ZERO = Decimal(0)
ACCOUNT = "acc"
INSTRUMENTS = ("AAPL", "MSFT", "TSLA")
TS = 1_700_000_000_000_000_000
MAX_EXAMPLES = int(os.environ.get("HFL_HYPOTHESIS_MAX_EXAMPLES", "200"))
# Tight enough, against a 1,000 target notional at prices 5-200, that every check fires.
LIMITS = RiskLimits(
    max_order_quantity=D(150),
    max_order_notional=D(2_000),
    max_position=D(100),
    max_gross_exposure=D(4_000),
    price_collar_pct=0.05,
    max_reference_age_ns=1_000_000_000,
)
prices = st.floats(min_value=5.0, max_value=200.0, allow_nan=False, allow_infinity=False)


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
    """Drive one AccountGate with signals, controls and a model gateway."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = AccountGate(
            ACCOUNT,
            LIMITS,
            target_notional=D(1_000),
            lot_size=D(1),
            initial_cash=D(100_000),
        )
        self.ts = TS
        self.tick_seq = 0
        self.orders: dict[str, GatewayOrder] = {}
        self.pending: list[Fill | OrderEvent] = []
        self.used_ids: set[str] = set()
        self.killed = False
        self.expected_working = dict.fromkeys(INSTRUMENTS, D(0))
        # Instruments where the gateway released working quantity (cancel or reject):
        # the net position a limit was checked against no longer bounds the position.
        self.released = set[str]()

    def _next_ts(self) -> int:
        self.ts += 1_000_000
        return self.ts

    def _open_ids(self) -> list[str]:
        return sorted(cid for cid, gw in self.orders.items() if not gw.done)

    # -- inputs to the gate -----------------------------------------------------------

    @rule(
        instrument=st.sampled_from(INSTRUMENTS), direction=st.sampled_from((-1, 0, 1)), price=prices
    )
    def signal(self, instrument: str, direction: int, price: float) -> None:
        self.tick_seq += 1
        ts = self._next_ts()
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
        decision, order = self.gate.on_signal(signal)
        assert decision.ts_event == ts
        if order is None:
            assert isinstance(decision, Denied)
            if self.killed:
                assert decision.reason is DenialReason.KILL_SWITCH
            return
        assert isinstance(decision, Approved)
        assert not self.killed, "approved an order while the kill switch was on"
        assert order.client_order_id not in self.used_ids, "client order id reused"
        assert order.quantity > 0
        assert order.quantity <= LIMITS.max_order_quantity
        assert decision.reference_price is not None
        notional = order.quantity * quantize(decision.reference_price)
        assert notional <= LIMITS.max_order_notional
        self.used_ids.add(order.client_order_id)
        self.orders[order.client_order_id] = GatewayOrder(order=order)
        self.expected_working[instrument] += order.quantity * order.side.sign

    @rule(instrument=st.sampled_from(INSTRUMENTS), price=prices)
    def reference_price(self, instrument: str, price: float) -> None:
        self.gate.on_reference_price(instrument, price, self._next_ts())

    @rule(kill=st.booleans())
    def control(self, kill: bool) -> None:
        action = ControlAction.KILL if kill else ControlAction.RESUME
        ts = self._next_ts()
        self.gate.on_control(
            ControlCommand(
                command_id=f"c{ts}",
                account=ACCOUNT,
                action=action,
                reason="property test",
                actor="hypothesis",
                ts_event=ts,
                ts_init=ts,
            )
        )
        self.killed = kill
        assert self.gate.kill_switch_on is kill

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
        limit = LIMITS.max_position
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
    def equity_is_cash_plus_pnl(self) -> None:
        snap = self.gate.snapshot_pnl(self.ts)
        book = self.gate.book
        expected = book.initial_cash + snap.realized_pnl + snap.unrealized_pnl - snap.fees
        assert abs(snap.equity - expected) < D("0.0001")


GateMachine.TestCase.settings = settings(
    max_examples=MAX_EXAMPLES, stateful_step_count=50, deadline=None
)
TestGateStateMachine = GateMachine.TestCase
