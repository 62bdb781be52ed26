"""Unit tests for the account risk gate: signal to order, controls, working orders."""

from __future__ import annotations

import math
import pickle
from decimal import Decimal

import numpy as np
import pytest
from support.alerts import make_alert as alert_at

from risk.domain import ids
from risk.domain.control import Alert, ControlCommand, TradingStateChanged
from risk.domain.decision import Approved, Denied
from risk.domain.enums import (
    ControlAction,
    DenialReason,
    OrderEventKind,
    OrderType,
    Side,
    TradingState,
)
from risk.domain.model import DriftDetected, Signal
from risk.domain.money import quantize
from risk.domain.order import CancelOrder, Fill, Order, OrderEvent
from risk.gate import AccountGate, InvariantViolation
from risk.limit import AccountLimits, LimitBook, RiskLimits
from risk.state import StatePolicy

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


def make_gate(limits: RiskLimits | LimitBook | None = None, **options: object) -> AccountGate:
    """A gate of ACCOUNT with 10,000 a signal, whole lots and 1,000,000 cash; `options`
    are the other keywords of `AccountGate` (they may override those three)."""
    keywords: dict[str, object] = {
        "target_notional": D(10_000),
        "lot_size": D(1),
        "initial_cash": D(1_000_000),
    }
    return AccountGate(ACCOUNT, limits or make_limits(), **(keywords | options))  # type: ignore[arg-type]


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


def control(
    action: ControlAction, *, instrument: str = "", flatten: bool = False, ts: int = TS
) -> ControlCommand:
    return ControlCommand(
        command_id=f"c-{action}-{instrument}-{ts}",
        account=ACCOUNT,
        action=action,
        reason="test",
        actor="ops",
        instrument=instrument,
        flatten=flatten,
        ts_event=ts,
        ts_init=ts,
    )


def approve(gate: AccountGate, signal: Signal) -> Order:
    decision, order = gate.on_signal(signal)
    assert isinstance(decision, Approved), decision
    assert order is not None
    return order


def test_on_signal_long_approves_marketable_limit_order_sized_to_target() -> None:
    gate = make_gate()
    signal = make_signal(1, 100.0)
    decision, order = gate.on_signal(signal)
    assert isinstance(decision, Approved)
    assert order is not None
    assert (order.side, order.quantity, order.order_type) == (Side.BUY, D(100), OrderType.LIMIT)
    # The reference plus the collar (make_limits: 5 %, less a hair), good for the
    # time in force.
    assert order.limit_price == D("104.9995")
    assert order.expire_ns == signal.ts_event + make_limits().time_in_force_ns
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
    assert gate.trading_state() is TradingState.HALTED
    decision, order = gate.on_signal(make_signal(1))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.KILL_SWITCH
    assert order is None
    gate.on_control(control(ControlAction.RESUME))
    assert gate.trading_state() is TradingState.ACTIVE
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
    # Its limit (~95) would cross our resting buy (~105): self-match holds it back.
    flip, _ = gate.on_signal(make_signal(-1, 100.0, ts=TS + 20))
    assert flip.quantity == D(200)
    assert isinstance(flip, Denied)
    assert flip.reason is DenialReason.SELF_MATCH


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


def test_on_signal_same_signal_twice_denies_duplicate_order_id() -> None:
    gate = make_gate()
    signal = make_signal(1)
    order = approve(gate, signal)
    gate.on_order_event(make_event(order, OrderEventKind.REJECTED, 0))
    decision, again = gate.on_signal(signal)
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.DUPLICATE_ORDER_ID
    assert again is None


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
    gate = make_gate(target_notional=D(100), recent_order_ids=3)
    for n in range(10):
        order = approve(gate, make_signal(1 if n % 2 == 0 else -1, ts=TS + n))
        gate.on_order_event(make_event(order, OrderEventKind.REJECTED, 0))
    # 10 orders, 3 remembered: the state stays a few kB (5,003 bytes with the market
    # prices' map; a leak of every order id would add about 150 bytes an order).
    assert len(pickle.dumps(gate)) < 5_100


# -- trading states, kill switch, drift and alerts ---------------------------------------


def make_alert(name: str, subject: str, ts: int = TS) -> Alert:
    return alert_at(name, subject, ts)


def make_drift(instrument: str = "AAPL", ts: int = TS) -> DriftDetected:
    return DriftDetected(
        drift_id=f"d-{instrument}-{ts}",
        instrument=instrument,
        model="m",
        detector="adwin",
        stream="error",
        value=0.4,
        ts_event=ts,
        ts_init=ts,
    )


def test_on_control_kill_halts_emits_state_change_and_cancels_every_working_order() -> None:
    gate = make_gate()
    aapl = approve(gate, make_signal(1, instrument="AAPL"))
    msft = approve(gate, make_signal(1, instrument="MSFT"))
    gate.on_fill(make_fill(msft, 100))
    out = gate.on_control(control(ControlAction.KILL))
    changes = [o for o in out if isinstance(o, TradingStateChanged)]
    cancels = [o for o in out if isinstance(o, CancelOrder)]
    assert [(c.instrument, c.previous, c.state, c.trigger) for c in changes] == [
        ("", TradingState.ACTIVE, TradingState.HALTED, "kill")
    ]
    assert [c.client_order_id for c in cancels] == [aapl.client_order_id]
    assert gate.trading_state("MSFT") is TradingState.HALTED


def test_on_control_kill_twice_emits_one_state_change() -> None:
    gate = make_gate()
    gate.on_control(control(ControlAction.KILL))
    assert gate.on_control(control(ControlAction.KILL, ts=TS + 1)) == []


def test_on_control_kill_with_flatten_closes_filled_positions_without_crossing_zero() -> None:
    gate = make_gate()
    long = approve(gate, make_signal(1, instrument="AAPL"))
    gate.on_fill(make_fill(long, 100))
    short = approve(gate, make_signal(-1, instrument="MSFT"))
    gate.on_fill(make_fill(short, 60))  # 60 of 100 filled, 40 still working
    out = gate.on_control(control(ControlAction.KILL, flatten=True))
    orders = {o.instrument: o for o in out if isinstance(o, Order)}
    assert (orders["AAPL"].side, orders["AAPL"].quantity) == (Side.SELL, D(100))
    assert (orders["MSFT"].side, orders["MSFT"].quantity) == (Side.BUY, D(60))
    assert [o.client_order_id for o in out if isinstance(o, CancelOrder)] == [short.client_order_id]
    assert gate.working_quantity("AAPL") == D(-100)


def test_on_control_kill_one_instrument_halts_only_it() -> None:
    gate = make_gate()
    gate.on_control(control(ControlAction.KILL, instrument="AAPL"))
    denied, _ = gate.on_signal(make_signal(1, instrument="AAPL"))
    assert isinstance(denied, Denied)
    assert denied.reason is DenialReason.KILL_SWITCH
    approve(gate, make_signal(1, instrument="MSFT"))


def test_on_control_reduce_allows_reducing_and_denies_increasing_orders() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1))
    gate.on_fill(make_fill(order, 100))
    gate.on_control(control(ControlAction.REDUCE))
    increase, _ = gate.on_signal(make_signal(1, instrument="MSFT"))
    assert isinstance(increase, Denied)
    assert increase.reason is DenialReason.REDUCE_ONLY
    flip, _ = gate.on_signal(make_signal(-1))
    assert isinstance(flip, Denied)
    assert flip.reason is DenialReason.REDUCE_ONLY
    close = approve(gate, make_signal(0))
    assert (close.side, close.quantity) == (Side.SELL, D(100))


def test_on_control_resume_returns_every_scope_to_active_with_one_event_each() -> None:
    gate = make_gate()
    gate.on_control(control(ControlAction.KILL))
    gate.on_drift(make_drift("AAPL"))
    out = gate.on_control(control(ControlAction.RESUME, ts=TS + 5))
    assert [(c.instrument, c.state) for c in out if isinstance(c, TradingStateChanged)] == [
        ("", TradingState.ACTIVE),
        ("AAPL", TradingState.ACTIVE),
    ]
    approve(gate, make_signal(1))


def test_on_drift_moves_instrument_to_reducing_once() -> None:
    gate = make_gate()
    changed = gate.on_drift(make_drift("AAPL"))
    assert changed is not None
    assert (changed.instrument, changed.state, changed.trigger) == (
        "AAPL",
        TradingState.REDUCING,
        "drift",
    )
    assert gate.on_drift(make_drift("AAPL", TS + 1)) is None
    assert gate.trading_state("AAPL") is TradingState.REDUCING
    assert gate.trading_state("MSFT") is TradingState.ACTIVE


def test_on_drift_ignored_when_policy_says_none() -> None:
    gate = make_gate(policy=StatePolicy(drift_state=None))
    assert gate.on_drift(make_drift()) is None


@pytest.mark.parametrize(
    ("name", "subject", "scope", "state"),
    [
        ("persist_lag", "hfl.fills", "", TradingState.REDUCING),
        ("dlq_rate", "", "", TradingState.REDUCING),
        ("delivery_failure", ACCOUNT, "", TradingState.HALTED),
        ("stale_data", "AAPL", "AAPL", TradingState.REDUCING),
    ],
)
def test_on_alert_mapped_name_escalates_its_scope(
    name: str, subject: str, scope: str, state: TradingState
) -> None:
    gate = make_gate()
    gate.on_reference_price("AAPL", 100.0, TS)
    changed = gate.on_alert(make_alert(name, subject))
    assert changed is not None
    assert (changed.instrument, changed.state, changed.trigger) == (scope, state, name)


def test_on_alert_for_a_configured_instrument_not_traded_yet_restricts_it() -> None:
    gate = market_gate()  # AAPL configured, no signal or fill yet
    changed = gate.on_alert(make_alert("stale_data", "AAPL"))
    assert changed is not None
    assert (changed.instrument, changed.state) == ("AAPL", TradingState.REDUCING)
    assert gate.trading_state("MSFT") is TradingState.ACTIVE


@pytest.mark.parametrize(
    ("name", "subject"), [("cpu_hot", ACCOUNT), ("persist_lag", "other-account")]
)
def test_on_alert_unmapped_name_or_other_account_is_ignored(name: str, subject: str) -> None:
    gate = make_gate()
    assert gate.on_alert(make_alert(name, subject)) is None
    assert gate.trading_state() is TradingState.ACTIVE


def test_on_alert_never_lowers_a_halt() -> None:
    gate = make_gate()
    gate.on_control(control(ControlAction.KILL))
    assert gate.on_alert(make_alert("stale_data", ACCOUNT)) is None
    assert gate.trading_state() is TradingState.HALTED


def test_trading_states_survive_pickle_round_trip() -> None:
    gate = make_gate()
    gate.on_control(control(ControlAction.KILL))
    gate.on_drift(make_drift("MSFT"))
    restored = pickle.loads(pickle.dumps(gate))
    assert restored.trading_state() is TradingState.HALTED
    assert restored.states.restricted() == {"": TradingState.HALTED, "MSFT": TradingState.REDUCING}


# -- account-level controls ---------------------------------------------------------------


def test_throttle_101_signals_in_one_second_at_100_per_second_approves_exactly_100() -> None:
    gate = make_gate(
        make_limits(),
        account_limits=AccountLimits(max_orders_per_window=100, order_window_ns=1_000_000_000),
    )
    decisions = []
    for n in range(101):
        signal = make_signal(1 if n % 2 == 0 else -1, ts=TS + n * 9_000_000)  # all within 0.91 s
        decision, order = gate.on_signal(signal)
        decisions.append(decision)
        if order is not None:
            gate.on_fill(make_fill(order, int(order.quantity)))
    approved = [d for d in decisions if isinstance(d, Approved)]
    denied = [d for d in decisions if isinstance(d, Denied)]
    assert len(approved) == 100
    assert [d.reason for d in denied] == [DenialReason.ORDER_RATE]
    # One second after the first approval the window has room again.
    later = make_signal(1, ts=TS + 1_000_000_000)
    assert isinstance(gate.on_signal(later)[0], Approved)


def test_max_open_orders_denies_the_order_beyond_the_limit() -> None:
    gate = make_gate(account_limits=AccountLimits(max_open_orders=2))
    approve(gate, make_signal(1, instrument="A"))
    approve(gate, make_signal(1, instrument="B"))
    decision, _ = gate.on_signal(make_signal(1, instrument="C"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.MAX_OPEN_ORDERS


def test_concentration_denies_a_position_above_its_share_of_equity() -> None:
    gate = make_gate(make_limits(max_concentration=0.005))  # 10,000 of 1,000,000 is 1 %
    decision, _ = gate.on_signal(make_signal(1))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.CONCENTRATION


def test_group_concentration_counts_every_instrument_of_the_group() -> None:
    tech = make_limits(group="tech")
    gate = make_gate(
        LimitBook(default=make_limits(), per_instrument={"AAPL": tech, "MSFT": tech}),
        account_limits=AccountLimits(max_group_concentration=0.015),
    )
    approve(gate, make_signal(1, instrument="AAPL"))
    approve(gate, make_signal(1, instrument="XOM"))  # no group
    decision, _ = gate.on_signal(make_signal(1, instrument="MSFT"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.GROUP_CONCENTRATION


def test_net_exposure_denies_beyond_the_limit_but_allows_the_hedge() -> None:
    gate = make_gate(account_limits=AccountLimits(max_net_exposure=D(15_000)))
    approve(gate, make_signal(1, instrument="AAPL"))
    decision, _ = gate.on_signal(make_signal(1, instrument="MSFT"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.MAX_NET_EXPOSURE
    approve(gate, make_signal(-1, instrument="MSFT"))


def test_set_limits_applies_from_the_next_decision() -> None:
    gate = make_gate()
    gate.set_limits(make_limits(max_order_quantity=D(10)))
    decision, _ = gate.on_signal(make_signal(1))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.MAX_ORDER_QUANTITY


def test_repeated_execution_throttle_halts_after_n_fills_until_an_operator_acts() -> None:
    gate = make_gate(account_limits=AccountLimits(max_fills_without_human=3))
    for n in range(3):
        order = approve(gate, make_signal(1 if n % 2 == 0 else -1, ts=TS + n))
        gate.on_fill(make_fill(order, int(order.quantity)))
    [changed] = gate.take_events()
    assert (changed.state, changed.trigger) == (TradingState.HALTED, "execution_throttle")
    decision, _ = gate.on_signal(make_signal(1, ts=TS + 10))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.HALTED
    gate.on_control(control(ControlAction.RESUME, ts=TS + 11))
    approve(gate, make_signal(-1, ts=TS + 12))


def test_drawdown_soft_limit_reduces_and_hard_limit_halts_from_persisted_high_water_mark() -> None:
    gate = make_gate(
        make_limits(
            max_position=D(100_000), max_order_quantity=D(100_000), max_order_notional=D(10**7)
        ),
        target_notional=D(500_000),
        account_limits=AccountLimits(drawdown_soft=0.05, drawdown_hard=0.10, daily_loss=0.5),
    )
    order = approve(gate, make_signal(1, 100.0, ts=TS))
    gate.on_fill(make_fill(order, int(order.quantity)))
    gate.snapshot_pnl(TS + 1)
    gate.mark("AAPL", 89.0, TS + 2)  # 5,000 shares lose 55,000: 5.5 % drawdown
    gate.snapshot_pnl(TS + 2)
    assert [(e.state, e.trigger) for e in gate.take_events()] == [
        (TradingState.REDUCING, "drawdown")
    ]
    restored = pickle.loads(pickle.dumps(gate))
    restored.mark("AAPL", 79.0, TS + 3)  # 10.5 % below the persisted high-water mark
    restored.snapshot_pnl(TS + 3)
    assert [(e.state, e.trigger) for e in restored.take_events()] == [
        (TradingState.HALTED, "drawdown")
    ]


# -- controls that use the real-time risk model --------------------------------------------


def warm_gate(
    limits: RiskLimits, account: AccountLimits | None = None, **gate: object
) -> AccountGate:
    """A gate whose risk model has 100 one-second samples: AAPL and MSFT move together
    (MSFT = AAPL's return plus a little noise), XOM against them."""
    built = make_gate(
        limits,
        account_limits=account or AccountLimits(),
        instruments=("AAPL", "MSFT", "XOM"),
        **gate,  # type: ignore[arg-type]
    )
    rng = np.random.default_rng(3)
    prices = {"AAPL": 100.0, "MSFT": 100.0, "XOM": 100.0}
    for second in range(100):
        move = rng.normal(0.0, 0.002)
        prices["AAPL"] *= 1 + move
        prices["MSFT"] *= 1 + move + rng.normal(0.0, 0.0002)
        prices["XOM"] *= 1 - move
        for name, price in prices.items():
            built.mark(name, price, TS - (100 - second) * 1_000_000_000)
        built.risk_metrics(TS - (100 - second) * 1_000_000_000, 0)
    for name, price in prices.items():
        built.on_reference_price(name, price, TS)
    assert built.risk_metrics(TS, TS), "the schedule recomputes at TS"
    return built


def signal_at(gate: AccountGate, direction: int, instrument: str, ts: int = TS) -> Signal:
    price = gate.reference_price(instrument)
    assert price is not None
    return make_signal(direction, price, instrument=instrument, ts=ts)


def test_correlation_denies_adding_what_moves_with_the_book_but_allows_the_hedge() -> None:
    gate = warm_gate(make_limits(max_correlation=0.3))
    order = approve(gate, signal_at(gate, 1, "AAPL"))
    gate.on_fill(make_fill(order, int(order.quantity)))
    gate.risk_metrics(TS + 5_000_000_000, TS)  # next scheduled recompute sees the position
    same_way, _ = gate.on_signal(signal_at(gate, 1, "MSFT", TS + 5_000_000_000))
    assert isinstance(same_way, Denied)
    assert same_way.reason is DenialReason.CORRELATION
    approve(gate, signal_at(gate, -1, "MSFT", TS + 5_000_000_000))  # a hedge


def test_var_budget_denies_an_order_whose_post_trade_var_is_over_budget() -> None:
    gate = warm_gate(make_limits(), AccountLimits(var_budget=0.001, cvar_budget=1.0))
    decision, _ = gate.on_signal(signal_at(gate, 1, "AAPL"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.VAR_BUDGET
    assert "post-trade" in decision.detail


def test_beta_limit_denies_a_book_too_exposed_to_the_market() -> None:
    gate = warm_gate(make_limits(), AccountLimits(max_beta=0.001))
    decision, _ = gate.on_signal(signal_at(gate, 1, "AAPL"))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.BETA


@pytest.mark.parametrize("scale", [False, True])
def test_volatility_above_limit_denies_or_scales_the_target_down(scale: bool) -> None:
    limits = make_limits(max_volatility=0.5, scale_on_volatility=scale)
    gate = warm_gate(limits)
    decision, order = gate.on_signal(signal_at(gate, 1, "AAPL"))
    if not scale:
        assert isinstance(decision, Denied)
        assert decision.reason is DenialReason.VOLATILITY
        return
    assert order is not None
    full = D(10_000) / quantize(gate.reference_price("AAPL") or 0.0)
    assert 0 < order.quantity < full / 2  # realised volatility is several times the limit


def test_volatility_target_sizes_the_position_below_the_fixed_notional() -> None:
    gate = warm_gate(make_limits(), volatility_target=0.05)
    order = approve(gate, signal_at(gate, 1, "AAPL"))
    fixed = D(10_000) / quantize(gate.reference_price("AAPL") or 0.0)
    assert order.quantity < fixed


def test_risk_metrics_carry_their_limits_and_skip_non_finite_figures() -> None:
    gate = warm_gate(make_limits())
    metrics = {m.metric: m for m in gate.risk_metrics(TS + 5_000_000_000, TS)}
    assert metrics["var_hist"].limit_value == 0.02
    assert metrics["beta"].limit_value == 0.5
    assert "stress_market_down_10" in metrics
    assert "correlation:AAPL:MSFT" in metrics
    assert metrics["correlation:AAPL:MSFT"].value > 0.9
    assert all(math.isfinite(m.value) for m in metrics.values())


# -- marketable limit orders: the price collar, self-match and the time in force ------


def test_signal_priced_beyond_the_collar_from_the_latest_reference_denies_price_collar() -> None:
    gate = make_gate()
    gate.on_reference_price("AAPL", 100.0, TS + 10)
    # A late signal that saw 90: its buy limit 94.5 is 5.5 % from the reference 100.
    decision, order = gate.on_signal(make_signal(1, 90.0, ts=TS + 5))
    assert order is None
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.PRICE_COLLAR


def test_signal_within_the_collar_of_the_latest_reference_is_approved() -> None:
    gate = make_gate()
    gate.on_reference_price("AAPL", 100.0, TS + 10)
    # Its buy limit 96.59954 is 3.4 % from the reference: inside the 5 % collar.
    order = approve(gate, make_signal(1, 92.0, ts=TS + 5))
    assert order.limit_price == D("96.59954")


def market_gate() -> AccountGate:
    """A gate that knows AAPL, so its bars (`mark`) reach the risk model too."""
    return make_gate(instruments=("AAPL",))


def test_signal_priced_beyond_the_collar_from_the_last_market_price_denies_price_collar() -> None:
    gate = market_gate()
    gate.mark("AAPL", 100.0, TS - 500_000_000)  # the last 1 s bar closed at 100
    decision, order = gate.on_signal(make_signal(1, 106.0))
    assert order is None
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.PRICE_COLLAR
    assert decision.detail == (
        "reference 106.0 is 6.00% from the last market price 100 > collar 5.00%"
    )
    # Within the collar of the market, the same signal trades (priced off its own price).
    assert approve(gate, make_signal(1, 104.0)).limit_price == D("109.19948")


@pytest.mark.parametrize(
    ("closed_at", "why"),
    [(TS - 1_000_000_001, "older than max_reference_age_ns"), (TS + 1, "after the signal")],
)
def test_a_market_price_that_is_not_fresh_vets_nothing(closed_at: int, why: str) -> None:
    gate = market_gate()
    gate.mark("AAPL", 100.0, closed_at)
    assert approve(gate, make_signal(1, 120.0)).quantity > 0, why


def test_an_older_market_price_does_not_replace_a_newer_one() -> None:
    gate = market_gate()
    gate.mark("AAPL", 100.0, TS - 10)
    gate.mark("AAPL", 120.0, TS - 20)  # out of order: ignored
    decision, _ = gate.on_signal(make_signal(1, 120.0))
    assert isinstance(decision, Denied)
    assert "last market price 100 " in decision.detail


def test_flip_that_crosses_our_resting_order_denies_self_match_until_it_expires() -> None:
    gate = make_gate()
    buy = approve(gate, make_signal(1, 100.0))
    decision, _ = gate.on_signal(make_signal(-1, 100.0, ts=TS + 10))
    assert isinstance(decision, Denied)
    assert decision.reason is DenialReason.SELF_MATCH
    gate.on_order_event(make_event(buy, OrderEventKind.EXPIRED, 0))
    assert gate.working_order_count() == 0
    assert approve(gate, make_signal(-1, 100.0, ts=TS + 20)).quantity == D(100)


def test_flip_priced_above_our_resting_buy_does_not_self_match() -> None:
    gate = make_gate()
    approve(gate, make_signal(1, 100.0))  # resting buy at 104.9995
    approve(gate, make_signal(-1, 112.0, ts=TS + 10))  # sell limit 106.40056 above it


def test_second_terminal_event_of_another_kind_is_impossible() -> None:
    gate = make_gate()
    order = approve(gate, make_signal(1, 100.0))
    gate.on_fill(make_fill(order, 40))
    gate.on_order_event(make_event(order, OrderEventKind.CANCELED, 60))
    with pytest.raises(InvariantViolation, match="canceled cannot take expired"):
        gate.on_order_event(make_event(order, OrderEventKind.EXPIRED, 60))
