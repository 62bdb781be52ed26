"""The account step parks order reports that arrive before their (replayed) order."""

from __future__ import annotations

import pytest

from dataflows.account import AccountState, handle_account
from risk.domain.enums import OrderEventKind
from risk.early import EarlyReports
from risk.gate import AccountGate, InvariantViolation
from tests.unit.test_gate import TS, D, make_event, make_fill, make_gate, make_limits, make_signal


def fresh_state() -> AccountState:
    return AccountState(gate=make_gate(), pnl_interval_ns=1_000_000_000)


def test_fill_before_its_replayed_order_gives_the_same_outputs_as_after() -> None:
    signal = make_signal(1, 100.0)
    in_order = handle_account(fresh_state(), [signal])
    order = in_order[1]
    fill = make_fill(order, 100)  # type: ignore[arg-type]
    in_order += handle_account(fresh_state(), [signal, fill])[2:]

    replayed = fresh_state()
    assert handle_account(replayed, [fill]) == []
    assert len(replayed.early) == 1
    assert handle_account(replayed, [signal]) == in_order
    assert len(replayed.early) == 0


def test_terminal_event_before_its_order_releases_after_submission() -> None:
    signal = make_signal(1, 100.0)
    order = handle_account(fresh_state(), [signal])[1]
    canceled = make_event(order, OrderEventKind.CANCELED, 0)  # type: ignore[arg-type]
    state = fresh_state()
    handle_account(state, [canceled, signal])
    assert state.gate.working_order_count() == 0


def test_reports_for_orders_never_sent_beyond_the_bound_raise() -> None:
    early = EarlyReports(limit=1)
    order = handle_account(fresh_state(), [make_signal(1, 100.0)])[1]
    early.park(make_fill(order, 1))  # type: ignore[arg-type]
    with pytest.raises(InvariantViolation, match="never submitted"):
        early.park(make_fill(order, 1, seq=2))  # type: ignore[arg-type]


def test_fill_delivered_twice_is_applied_once() -> None:
    signal = make_signal(1, 100.0)
    state = fresh_state()
    order = handle_account(state, [signal])[1]
    fill = make_fill(order, 40)  # type: ignore[arg-type]
    first = handle_account(state, [fill])
    assert handle_account(state, [fill]) == []
    assert len(first) == 1
    assert state.gate.position("AAPL") == 40


def test_order_event_delivered_twice_after_its_order_was_forgotten_is_dropped() -> None:
    gate = AccountGate(
        "acc",
        make_limits(),
        target_notional=D(10_000),
        lot_size=D(1),
        initial_cash=D(1_000_000),
        recent_order_ids=1,
    )
    state = AccountState(gate=gate, pnl_interval_ns=1_000_000_000)
    first = handle_account(state, [make_signal(1, 100.0)])[1]
    done = make_event(first, OrderEventKind.CANCELED, 0)  # type: ignore[arg-type]
    handle_account(state, [done, make_signal(1, 100.0, instrument="MSFT")])
    assert not gate.knows_order(first.client_order_id)  # type: ignore[attr-defined]
    assert handle_account(state, [done]) == []
    assert len(state.early) == 0


def test_terminal_event_of_a_finished_forgotten_order_changes_nothing() -> None:
    gate = AccountGate(
        "acc",
        make_limits(),
        target_notional=D(10_000),
        lot_size=D(1),
        initial_cash=D(1_000_000),
        recent_order_ids=1,
    )
    state = AccountState(gate=gate, pnl_interval_ns=1_000_000_000)
    first = handle_account(state, [make_signal(1, 100.0)])[1]
    last_fill = make_fill(first, 100)  # type: ignore[arg-type]
    later = [make_signal(1, 100.0, instrument="MSFT"), make_signal(-1, 100.0, ts=TS + 10**9)]
    handle_account(state, [last_fill, *later])
    filled = make_event(first, OrderEventKind.FILLED, 100)  # type: ignore[arg-type]
    assert handle_account(state, [filled]) == []
    assert len(state.early) == 0
