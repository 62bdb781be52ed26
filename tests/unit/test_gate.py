"""Unit tests for the account risk gate: signal to order, controls, working orders."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from risk.domain import ids
from risk.domain.control import ControlCommand
from risk.domain.decision import Approved, Denied
from risk.domain.enums import ControlAction, DenialReason, OrderEventKind, OrderType, Side
from risk.domain.model import Signal
from risk.domain.order import Fill, Order, OrderEvent
from risk.gate import AccountGate, InvariantViolation
from risk.limit import LimitBook, RiskLimits

D = Decimal
TS = 1_700_000_000_000_000_000
ACCOUNT = "acc"


def make_limits(**overrides: object) -> RiskLimits:
    values: dict[str, object] = {
        "max_order_quantity": D(1_000),
        "max_order_notional": D(100_000),
        "max_position": D(150),
        "max_gross_exposure": D(1_000_000),
        "price_collar_pct": 0.05,
        "max_reference_age_ns": 1_000_000_000,
    }
    values.update(overrides)
    return RiskLimits(**values)  # type: ignore[arg-type]


def make_gate(limits: RiskLimits | LimitBook | None = None) -> AccountGate:
    return AccountGate(
        ACCOUNT,
        limits or make_limits(),
        target_notional=D(10_000),
        lot_size=D(1),
        initial_cash=D(1_000_000),
    )


_seq = iter(range(10**9))


def make_signal(
    direction: int, price: float = 100.0, *, instrument: str = "AAPL", ts: int = TS
) -> Signal:
    n = next(_seq)
    tick = ids.tick_id(instrument, n, ts)
    return Signal(
        signal_id=ids.signal_id(instrument, tick, "m"),
        tick_id=tick,
        instrument=instrument,
        model="m",
        direction=direction,
        probability_up=0.5 + 0.4 * direction,
        reference_price=price,
        ts_event=ts,
        ts_init=ts + 7,
    )


def make_fill(order: Order, quantity: int | str, price: str = "100", seq: int = 1) -> Fill:
    return Fill(
        fill_id=ids.fill_id(order.client_order_id, seq),
        client_order_id=order.client_order_id,
        account=order.account,
        instrument=order.instrument,
        side=order.side,
        quantity=D(quantity),
        price=D(price),
        fee=D(0),
        leaves_quantity=D(0),
        tick_id="t",
        ts_event=order.ts_event + 1,
        ts_init=order.ts_event + 2,
    )


def make_event(order: Order, kind: OrderEventKind, filled: int | str) -> OrderEvent:
    return OrderEvent(
        event_id=ids.order_event_id(order.client_order_id, 1),
        client_order_id=order.client_order_id,
        account=order.account,
        instrument=order.instrument,
        kind=kind,
        filled_quantity=D(filled),
        leaves_quantity=order.quantity - D(filled) if not kind.is_terminal else D(0),
        ts_event=order.ts_event + 3,
        ts_init=order.ts_event + 4,
    )


def control(action: ControlAction) -> ControlCommand:
    return ControlCommand(
        command_id=f"c-{action}",
        account=ACCOUNT,
        action=action,
        reason="test",
        actor="ops",
        ts_event=TS,
        ts_init=TS,
    )


def approve(gate: AccountGate, signal: Signal) -> Order:
    decision, order = gate.on_signal(signal)
    assert isinstance(decision, Approved), decision
    assert order is not None
    return order


def test_on_signal_long_approves_market_order_sized_to_target() -> None:
    gate = make_gate()
    signal = make_signal(1, 100.0)
    decision, order = gate.on_signal(signal)
    assert isinstance(decision, Approved)
    assert order is not None
    assert (order.side, order.quantity, order.order_type) == (Side.BUY, D(100), OrderType.MARKET)
    assert order.client_order_id == ids.client_order_id(ACCOUNT, "AAPL", signal.signal_id)
    assert decision.client_order_id == order.client_order_id
    assert (decision.ts_event, decision.ts_init) == (signal.ts_event, signal.ts_init)
    assert (order.ts_event, order.ts_init) == (signal.ts_event, signal.ts_init)
    assert gate.working_quantity("AAPL") == D(100)


def test_on_signal_already_at_target_denies_zero_quantity() -> None:
    gate = make_gate()
    approve(gate, make_signal(1))
    decision, order = gate.on_signal(make_signal(1))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.ZERO_QUANTITY
    assert order is None


def test_on_signal_flat_after_fill_sells_position() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    gate.on_fill(make_fill(order, 100))
    sell = approve(gate, make_signal(0))
    assert (sell.side, sell.quantity) == (Side.SELL, D(100))


def test_on_signal_kill_switch_denies_and_resume_re_allows() -> None:
    gate = make_gate()
    gate.on_control(control(ControlAction.KILL))
    assert gate.kill_switch_on
    decision, order = gate.on_signal(make_signal(1))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.KILL_SWITCH
    assert order is None
    gate.on_control(control(ControlAction.RESUME))
    assert not gate.kill_switch_on
    assert gate.last_control is not None
    assert gate.last_control.action is ControlAction.RESUME
    approve(gate, make_signal(1))


def test_on_signal_max_position_counts_working_orders() -> None:
    gate = make_gate(make_limits(max_position=D(150)))
    approve(gate, make_signal(1, 100.0))
    # The unfilled buy of 100 counts: at half the price the target is 200, net would be 200.
    decision, _ = gate.on_signal(make_signal(1, 50.0, ts=TS + 10))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.MAX_POSITION
    # A flip nets the working buy against the sell: position if all fills is -100.
    sell = approve(gate, make_signal(-1, 100.0, ts=TS + 20))
    assert sell.quantity == D(200)


def test_on_signal_same_side_decision_independent_of_fill_timing() -> None:
    early, late = make_gate(), make_gate()
    first = make_signal(1, 100.0)
    order_early = approve(early, first)
    approve(late, first)
    early.on_fill(make_fill(order_early, 100))
    # The price halves, so the target doubles: buy 100 more either way.
    second = make_signal(1, 50.0, ts=TS + 10)
    decision_early, order_from_early = early.on_signal(second)
    decision_late, order_from_late = late.on_signal(second)
    assert decision_early == decision_late
    assert order_from_early == order_from_late
    assert isinstance(decision_early, Denied)
    assert decision_early.reason is DenialReason.MAX_POSITION


def test_on_signal_opposite_fill_timing_does_not_change_decision() -> None:
    early, late = make_gate(), make_gate()
    first = make_signal(1, 80.0)
    order_early = approve(early, first)
    approve(late, first)
    early.on_fill(make_fill(order_early, 125, "80"))
    flip = make_signal(-1, 100.0, ts=TS + 10)
    decision_early, _ = early.on_signal(flip)
    decision_late, _ = late.on_signal(flip)
    # Checks use the position if every working order fills, which a fill leaves unchanged.
    assert decision_early.quantity == decision_late.quantity == D(225)
    assert isinstance(decision_early, Approved)
    assert decision_late == decision_early


def test_on_signal_without_usable_reference_denies_no_reference() -> None:
    gate = make_gate()
    decision, order = gate.on_signal(make_signal(1, float("nan")))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.NO_REFERENCE_PRICE
    assert order is None


def test_on_signal_per_instrument_override_applies() -> None:
    limits = LimitBook(
        default=make_limits(), per_instrument={"TSLA": make_limits(max_order_quantity=D(5))}
    )
    gate = make_gate(limits)
    decision, _ = gate.on_signal(make_signal(1, instrument="TSLA"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.MAX_ORDER_QUANTITY
    approve(gate, make_signal(1, instrument="AAPL"))


def test_on_signal_gross_exposure_counts_other_instruments() -> None:
    gate = make_gate(make_limits(max_gross_exposure=D(15_000)))
    approve(gate, make_signal(1, 100.0, instrument="AAPL"))
    decision, _ = gate.on_signal(make_signal(1, 100.0, instrument="MSFT"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.MAX_GROSS_EXPOSURE
    assert decision.detail == "gross exposure 20000.00 > limit 15000"


def test_on_signal_same_signal_twice_raises() -> None:
    gate = make_gate()
    signal = make_signal(1)
    order = approve(gate, signal)
    gate.on_order_event(make_event(order, OrderEventKind.REJECTED, 0))
    with pytest.raises(InvariantViolation, match="reused"):
        gate.on_signal(signal)


def test_on_fill_moves_quantity_from_working_to_position() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    position = gate.on_fill(make_fill(order, 40, "101", seq=1))
    assert position.quantity == D(40)
    assert gate.working_quantity("AAPL") == D(60)
    gate.on_fill(make_fill(order, 60, "99", seq=2))
    assert gate.position("AAPL") == D(100)
    assert gate.working_quantity("AAPL") == 0
    assert gate.working_order_count() == 0


def test_on_fill_unknown_order_raises() -> None:
    gate = make_gate()
    order = approve(make_gate(), make_signal(1))
    with pytest.raises(InvariantViolation, match="unknown"):
        gate.on_fill(make_fill(order, 1))


def test_on_fill_overfill_raises() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    with pytest.raises(InvariantViolation, match="overfill"):
        gate.on_fill(make_fill(order, 101))
    assert gate.working_quantity("AAPL") == D(100)


@pytest.mark.parametrize("kind", [OrderEventKind.CANCELED, OrderEventKind.REJECTED])
def test_on_order_event_terminal_releases_remaining_working(kind: OrderEventKind) -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    gate.on_fill(make_fill(order, 30))
    gate.on_order_event(make_event(order, kind, 30))
    assert gate.working_quantity("AAPL") == 0
    assert gate.working_order_count() == 0
    assert gate.position("AAPL") == D(30)


def test_on_order_event_cancel_before_in_flight_fill_keeps_it_working() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    gate.on_order_event(make_event(order, OrderEventKind.CANCELED, 30))
    assert gate.working_quantity("AAPL") == D(30)
    gate.on_fill(make_fill(order, 30))
    assert gate.working_quantity("AAPL") == 0
    assert gate.working_order_count() == 0


def test_on_order_event_filled_before_fill_then_fill_completes() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    gate.on_order_event(make_event(order, OrderEventKind.FILLED, 100))
    assert gate.working_quantity("AAPL") == D(100)
    gate.on_fill(make_fill(order, 100))
    assert gate.working_order_count() == 0
    # The gateway's own FILLED report arriving late is a no-op.
    gate.on_order_event(make_event(order, OrderEventKind.FILLED, 100))


def test_on_order_event_non_terminal_changes_nothing() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    gate.on_order_event(make_event(order, OrderEventKind.ACCEPTED, 0))
    assert gate.working_quantity("AAPL") == D(100)


def test_on_order_event_unknown_order_raises() -> None:
    order = approve(make_gate(), make_signal(1))
    with pytest.raises(InvariantViolation, match="unknown"):
        make_gate().on_order_event(make_event(order, OrderEventKind.CANCELED, 0))


def test_on_control_other_account_raises() -> None:
    command = ControlCommand(
        command_id="c",
        account="other",
        action=ControlAction.KILL,
        reason="",
        actor="",
        ts_event=TS,
        ts_init=TS,
    )
    with pytest.raises(InvariantViolation):
        make_gate().on_control(command)


def test_on_reference_price_older_price_ignored() -> None:
    gate = make_gate()
    gate.on_reference_price("AAPL", 100.0, TS)
    gate.on_reference_price("AAPL", 90.0, TS - 1)
    gate.on_reference_price("AAPL", -1.0, TS + 1)
    assert gate.reference_price("AAPL") == 100.0
    assert gate.reference_ts_event("AAPL") == TS


def test_snapshot_pnl_marks_position() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1, 100.0))
    gate.on_fill(make_fill(order, 100, "100"))
    gate.on_reference_price("AAPL", 102.0, TS + 5)
    snap = gate.snapshot_pnl(TS + 5)
    assert snap.unrealized_pnl == D(200)
    assert snap.equity == D(1_000_200)
    assert snap.ts_init == TS + 5


def test_gate_pickle_round_trip_behaves_identically() -> None:
    gate = make_gate(LimitBook(default=make_limits()))
    order = approve(gate, make_signal(1))
    gate.on_fill(make_fill(order, 10))
    restored = pickle.loads(pickle.dumps(gate))
    signal = make_signal(-1, ts=TS + 1)
    assert restored.on_signal(signal) == gate.on_signal(signal)
    assert restored.snapshot_pnl(TS) == gate.snapshot_pnl(TS)


def test_recent_order_ids_stay_bounded() -> None:
    gate = AccountGate(
        ACCOUNT,
        make_limits(),
        target_notional=D(100),
        lot_size=D(1),
        initial_cash=D(0),
        recent_order_ids=3,
    )
    for n in range(10):
        order = approve(gate, make_signal(1 if n % 2 == 0 else -1, ts=TS + n))
        gate.on_order_event(make_event(order, OrderEventKind.REJECTED, 0))
    assert len(pickle.dumps(gate)) < 5_000
