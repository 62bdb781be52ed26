"""The account step parks order reports that arrive before their (replayed) order."""

from __future__ import annotations

import pickle
import time
from dataclasses import replace

import orjson
import pytest

from connectors.codec import encode
from connectors.gateway import InstrumentBook, PaperBrokerConfig
from connectors.kafka.journal import JournalRead, entry_point
from dataflows.flows.account import (
    AccountState,
    Held,
    apply_start_halt,
    fill_sync_mode,
    finish_account,
    handle_account,
    make_account_state,
)
from dataflows.ops.backtest import InProcessEngine
from dataflows.ops.control import control_events, limit_events
from dataflows.settings import StartHaltSettings, load_settings
from risk.domain import (
    Alert,
    AuditEvent,
    CancelOrder,
    ControlAction,
    ControlCommand,
    DenialReason,
    Denied,
    Fill,
    FillsThrough,
    LimitCommand,
    Order,
    OrderEvent,
    OrderEventsThrough,
    OrdersSent,
    PnlSnapshot,
    Position,
    Tick,
    TickKind,
    TradingState,
    TradingStateChanged,
)
from risk.domain.enums import OrderEventKind
from risk.domain.error import HflError
from risk.domain.ids import tick_id
from risk.early import EarlyReports
from risk.fill_sync import FillSync, FillSyncMode
from risk.gate import AccountGate, InvariantViolation
from tests.unit.risk.test_gate import (
    TS,
    D,
    make_event,
    make_fill,
    make_gate,
    make_limits,
    make_signal,
)


def fresh_state() -> AccountState:
    return AccountState(gate=make_gate(), pnl_interval_ns=1_000_000_000)


def forgetful_state(recent_order_ids: int) -> AccountState:
    """A gate that remembers only the last `recent_order_ids` orders."""
    gate = AccountGate(
        "acc",
        make_limits(),
        target_notional=D(10_000),
        lot_size=D(1),
        initial_cash=D(1_000_000),
        recent_order_ids=recent_order_ids,
    )
    return AccountState(gate=gate, pnl_interval_ns=1_000_000_000)


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
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))  # type: ignore[arg-type]
    first = handle_account(state, [fill])
    assert handle_account(state, [fill]) == []
    assert len(first) == 1
    assert state.gate.position("AAPL") == 40


def test_order_event_delivered_twice_after_its_order_was_forgotten_is_dropped() -> None:
    state = forgetful_state(recent_order_ids=1)
    gate = state.gate
    first = handle_account(state, [make_signal(1, 100.0)])[1]
    done = make_event(first, OrderEventKind.CANCELED, 0)  # type: ignore[arg-type]
    handle_account(state, [done, make_signal(1, 100.0, instrument="MSFT")])
    assert not gate.knows_order(first.client_order_id)  # type: ignore[attr-defined]
    assert handle_account(state, [done]) == []
    # Parked (it might belong to an order at the same time not decided yet) until the
    # instrument's decisions pass it.
    assert len(state.early) == 1
    handle_account(state, [make_signal(1, 100.0, ts=TS + 10**9)])
    assert len(state.early) == 0


def test_terminal_event_of_a_finished_forgotten_order_changes_nothing() -> None:
    state = forgetful_state(recent_order_ids=1)
    first = handle_account(state, [make_signal(1, 100.0)])[1]
    last_fill = make_fill(first, 100)  # type: ignore[arg-type]
    later = [make_signal(1, 100.0, instrument="MSFT"), make_signal(-1, 100.0, ts=TS + 10**9)]
    handle_account(state, [last_fill, *later])
    filled = make_event(first, OrderEventKind.FILLED, 100)  # type: ignore[arg-type]
    assert handle_account(state, [filled]) == []
    assert len(state.early) == 0


def test_replayed_fills_of_a_working_order_are_dropped_and_the_next_one_applies() -> None:
    state = fresh_state()
    order = handle_account(state, [make_signal(1, 100.0)])[1]
    first, second, third = (
        replace(make_fill(order, 30, seq=n), leaves_quantity=D(leaves))  # type: ignore[arg-type]
        for n, leaves in ((1, 70), (2, 40), (3, 10))
    )
    handle_account(state, [first, second])
    assert handle_account(state, [first, second]) == []
    assert len(handle_account(state, [third])) == 1
    assert state.gate.position("AAPL") == 90


MS = 1_000_000
INSTRUMENTS = ("AAPL", "MSFT", "AMZN")


def quote(instrument: str, seq: int, ts: int) -> Tick:
    """A quote offering 30 shares a side, so a 100-share order fills over four ticks."""
    return Tick(
        tick_id=tick_id(instrument, seq, ts),
        instrument=instrument,
        seq=seq,
        kind=TickKind.QUOTE,
        price=100.0,
        size=0.0,
        bid=100.0,
        ask=100.0,
        bid_size=30.0,
        ask_size=30.0,
        ts_event=ts,
        ts_init=ts,
    )


def trade_through_the_paper_broker(state: AccountState) -> list[Fill | OrderEvent]:
    """Twelve signals on three instruments, their orders filled by real paper books.

    Returns every report the gateway emitted, in emission order, after feeding each
    to the gate as it came.
    """
    config = PaperBrokerConfig(latency_ns=0)
    books = {name: InstrumentBook(name, config) for name in INSTRUMENTS}
    reports: list[Fill | OrderEvent] = []
    for n in range(12):
        instrument, ts = INSTRUMENTS[n % 3], TS + n * 10 * MS
        direction = 1 if n // 3 % 2 == 0 else -1
        orders = [
            out
            for out in handle_account(state, [make_signal(direction, instrument=instrument, ts=ts)])
            if isinstance(out, Order)
        ]
        emitted = [report for order in orders for report in books[instrument].on_order(order)]
        for k in range(1, 9):
            emitted += books[instrument].on_tick(quote(instrument, n * 10 + k, ts + k * MS))
        handle_account(state, emitted)
        reports += emitted
    return reports


def test_gateway_replaying_its_whole_history_changes_nothing() -> None:
    """R2-gateway's failure, in small: a replay longer than any window of recent ids.

    A gateway killed again before its first snapshot after a restart resumes from the
    same old snapshot, and its replay reaches back past what a window of recent report
    ids holds; the gate then met a repeated fill as a "fill for an unknown or finished
    order" and stopped the trading flow. Here the gate remembers only two orders.
    """
    state = forgetful_state(recent_order_ids=2)
    gate = state.gate
    reports = trade_through_the_paper_broker(state)
    fills = [report for report in reports if isinstance(report, Fill)]
    assert len(fills) >= 40
    positions = {name: gate.position(name) for name in INSTRUMENTS}
    assert any(positions.values())

    assert handle_account(state, reports) == []
    assert {name: gate.position(name) for name in INSTRUMENTS} == positions
    assert gate.working_order_count() == 0
    # Reports of each instrument's last, forgotten order wait until its next decision.
    later = [make_signal(0, instrument=name, ts=TS + 10**9) for name in INSTRUMENTS]
    handle_account(state, later)
    assert len(state.early) == 0


def event_time_state(max_wait_ns: int = 10**9, delay_ns: int = 0) -> AccountState:
    sync = FillSync[Held](("AAPL",), delay_ns=delay_ns, max_wait_ns=max_wait_ns)
    return AccountState(gate=make_gate(), pnl_interval_ns=1_000_000_000, sync=sync)


def through(ts: int) -> list[FillsThrough]:
    """The gateway's markers on both its topics: every report before `ts` is in."""
    return [
        kind(
            progress_id=f"p{ts}",
            account="acc",
            instrument="AAPL",
            through_ns=ts,
            ts_event=ts,
            ts_init=ts,
        )
        for kind in (FillsThrough, OrderEventsThrough)
    ]


def test_event_time_holds_a_signal_until_the_gateway_marks_its_time_and_promises_orders() -> None:
    state = event_time_state()
    out = handle_account(state, [make_signal(1, 100.0)])
    assert [type(o) for o in out] == [OrdersSent]
    assert out[0].through_ns == TS  # type: ignore[attr-defined]
    decided = handle_account(state, through(TS))
    assert [type(o).__name__ for o in decided] == ["Approved", "Order"]


def test_event_time_books_earlier_fills_before_a_signal_whatever_their_arrival() -> None:
    signal, later = make_signal(1, 100.0), make_signal(1, 100.0, ts=TS + 10)
    first = event_time_state()
    (order,) = [o for o in handle_account(first, [signal, *through(TS)]) if isinstance(o, Order)]
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))
    fill_first = handle_account(first, [fill, later, *through(TS + 10)])
    second = event_time_state()
    handle_account(second, [signal, *through(TS)])
    signal_first = handle_account(second, [later, fill, *through(TS + 10)])
    assert fill_first == signal_first
    assert type(fill_first[0]).__name__ == "Position"  # the fill was booked before `later`


def test_event_time_without_gateway_decides_after_the_wait_and_reduces() -> None:
    state = event_time_state(max_wait_ns=50_000_000)
    assert handle_account(state, [make_signal(1, 100.0)])[0].__class__ is OrdersSent
    time.sleep(0.06)
    out = handle_account(state, [make_signal(1, 100.0, ts=TS + 2_000)])
    alerts = [o for o in out if isinstance(o, Alert)]
    assert [a.name for a in alerts] == ["gateway_lag"]
    assert state.gate.trading_state() is TradingState.REDUCING
    # Both decided: once lagging, the gate does not wait again for each decision.
    assert sum(type(o).__name__ in ("Approved", "Denied") for o in out) == 2


def test_event_time_books_a_fill_only_once_the_delay_has_passed() -> None:
    state = event_time_state(delay_ns=100)
    signal = make_signal(1, 100.0)
    (order,) = [o for o in handle_account(state, [signal, *through(TS)]) if isinstance(o, Order)]
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))  # at TS + 1
    near = handle_account(state, [fill, make_signal(1, 100.0, ts=TS + 50), *through(TS + 50)])
    assert not [o for o in near if type(o).__name__ == "Position"]
    after = handle_account(state, [make_signal(1, 100.0, ts=TS + 102)])
    assert type(after[0]).__name__ == "Position"


def start_halt(at_ns: int = TS - 5) -> StartHaltSettings:
    return StartHaltSettings(reason="startup reconciliation: mismatch", actor="hfl up", at_ns=at_ns)


def test_start_halt_denies_the_first_signal_with_audit_alert_and_state_change_first() -> None:
    state = fresh_state()
    apply_start_halt(state, start_halt())
    out = handle_account(state, [make_signal(1, 100.0)])
    audit, alert, changed, decision = out
    assert isinstance(audit, AuditEvent)
    assert (audit.action, audit.actor, audit.ts_event) == ("kill", "hfl up", TS - 5)
    assert audit.reason == "startup reconciliation: mismatch"
    assert isinstance(alert, Alert) and alert.name == "trading_start_halted"
    assert isinstance(changed, TradingStateChanged)
    assert (changed.state, changed.trigger) == (TradingState.HALTED, "kill")
    assert isinstance(decision, Denied) and decision.reason is DenialReason.KILL_SWITCH


def test_start_halt_cancels_orders_working_in_a_resumed_gate() -> None:
    state = fresh_state()
    (order,) = [o for o in handle_account(state, [make_signal(1, 100.0)]) if isinstance(o, Order)]
    apply_start_halt(state, start_halt())
    cancels = [o for o in handle_account(state, []) if isinstance(o, CancelOrder)]
    assert [c.client_order_id for c in cancels] == [order.client_order_id]


def test_start_halt_applies_once_so_a_restart_keeps_an_operator_resume() -> None:
    state = fresh_state()
    apply_start_halt(state, start_halt())
    handle_account(state, [command(ControlAction.RESUME, 1)])
    restarted = pickle.loads(pickle.dumps(state))
    apply_start_halt(restarted, start_halt())
    assert restarted.gate.trading_state() is TradingState.ACTIVE
    assert handle_account(restarted, []) == []
    # A later start-up that finds a mismatch again halts again.
    apply_start_halt(restarted, start_halt(at_ns=TS + 1))
    assert restarted.gate.trading_state() is TradingState.HALTED


def test_end_of_input_books_held_fills_and_snapshots_pnl_with_them() -> None:
    state = event_time_state(delay_ns=100)
    (order,) = [
        o
        for o in handle_account(state, [make_signal(1, 100.0), *through(TS)])
        if isinstance(o, Order)
    ]
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))  # at TS + 1
    held = handle_account(state, [fill, make_signal(1, 100.0, ts=TS + 50), *through(TS + 50)])
    assert not [o for o in held if isinstance(o, Position)]
    last = finish_account(state)
    assert [type(o) for o in last] == [Position, PnlSnapshot]
    assert last[0].quantity == D(40)  # type: ignore[attr-defined]
    assert last[1].ts_event == fill.ts_event  # type: ignore[attr-defined]
    assert len(state.sync or ()) == 0


def canceled(order: Order, ts: int) -> OrderEvent:
    return OrderEvent(
        event_id=f"cancel-{order.client_order_id}",
        client_order_id=order.client_order_id,
        account="acc",
        instrument=order.instrument,
        kind=OrderEventKind.CANCELED,
        filled_quantity=D(0),
        leaves_quantity=D(0),
        ts_event=ts,
        ts_init=ts,
    )


def test_event_time_books_an_order_event_before_a_later_signal_whatever_their_arrival() -> None:
    first, later = make_signal(1, 100.0), make_signal(1, 100.0, ts=TS + 10)
    fills_marker, events_marker = through(TS + 10)
    runs = []
    for arrival in ("event first", "signal first", "event after the fills marker"):
        state = event_time_state()
        (order,) = [o for o in handle_account(state, [first, *through(TS)]) if isinstance(o, Order)]
        event = canceled(order, TS + 1)
        match arrival:
            case "event first":
                batch = [event, later, fills_marker, events_marker]
            case "signal first":
                batch = [later, event, fills_marker, events_marker]
            case _:
                batch = [later, fills_marker, event, events_marker]
        runs.append(handle_account(state, batch))
    assert runs[0] == runs[1] == runs[2]
    # The cancel released the first order before `later` was sized: it orders again.
    assert [type(o).__name__ for o in runs[0]] == ["Approved", "Order", "OrdersSent"]


def command(action: ControlAction, n: int) -> ControlCommand:
    ts = TS + 10**6 * n  # the operator's wall clock: not where it takes effect
    return ControlCommand(
        command_id=f"{action}-{n}",
        account="acc",
        action=action,
        reason="test",
        actor="ops",
        ts_event=ts,
        ts_init=ts,
    )


class ListJournal:
    """The gate's command journal as a list, for the step's logic alone (on the real
    broker: tests/integration/test_command_journal.py, tests/flow)."""

    def __init__(self) -> None:
        self.entries: list[AuditEvent] = []

    def connect(self) -> None:
        pass

    def end(self) -> int:
        return len(self.entries)

    def read(self, account: str, start: int) -> JournalRead:
        points = [entry_point(orjson.loads(encode(e))) for e in self.entries[start:]]
        return JournalRead(points, len(self.entries), len(self.entries) - start)

    def write(self, command_id: str, entry: AuditEvent) -> int:
        self.entries.append(entry)
        return len(self.entries) - 1


def replayed(state: AccountState, journal: ListJournal) -> AccountState:
    """`state` as a resumed snapshot that read the gate's journal (as `account_logic`)."""
    resumed: AccountState = pickle.loads(pickle.dumps(state))
    read = journal.read("acc", resumed.commands.journal_from)
    resumed.commands.replay(read.points, read.end)
    return resumed


def test_replay_applies_operator_commands_where_the_journal_says_whatever_their_arrival() -> None:
    state, journal = event_time_state(), ListJournal()
    handle_account(state, [make_signal(1, 100.0), *through(TS)])
    snapshot = pickle.loads(pickle.dumps(state))
    # Falling prices raise the long target: more buys, none crossing our resting ones.
    signals = [make_signal(1, 100.0 - n, ts=TS + 10 * n) for n in range(1, 9)]
    kill, reduce, resume = (command(a, n) for n, a in enumerate(ControlAction))
    # Live: each command arrives between markers and is applied at once.
    live = handle_account(state, [*signals[:2], *through(TS + 20), kill], journal)
    live += handle_account(state, [*signals[2:5], *through(TS + 50), resume, reduce], journal)
    live += handle_account(state, [*signals[5:], *through(TS + 80)], journal)
    assert [o for o in live if isinstance(o, AuditEvent)] == journal.entries
    assert len(journal.entries) == 3
    decided = [o for o in live if not isinstance(o, AuditEvent | OrdersSent)]
    assert {type(d).__name__ for d in decided} >= {"Approved", "Denied", "TradingStateChanged"}

    everything = [*signals, *through(TS + 80)]
    for arrival in (
        [kill, resume, reduce, *everything],  # commands read before every item
        [*everything, reduce, resume, kill],  # ...after every item and marker
        [*signals[:4], reduce, *through(TS + 80), kill, *signals[4:], resume],
    ):
        resumed = replayed(snapshot, journal)
        out = handle_account(resumed, arrival, journal)
        assert [o for o in out if not isinstance(o, AuditEvent | OrdersSent)] == decided
        assert len(journal.entries) == 3  # replayed commands are not journaled again
        assert resumed.commands.journal_from == 3  # every entry applied


def test_resume_reads_the_journal_from_the_first_entry_after_its_snapshot() -> None:
    state, journal = event_time_state(), ListJournal()
    kill, reduce, resume = (command(a, n) for n, a in enumerate(ControlAction))
    handle_account(state, [make_signal(1, 100.0), *through(TS), kill, resume], journal)
    snapshot = pickle.loads(pickle.dumps(state))
    assert snapshot.commands.journal_from == 2
    handle_account(state, [make_signal(1, 100.0, ts=TS + 10), *through(TS + 10)])
    handle_account(state, [reduce], journal)
    resumed = replayed(snapshot, journal)
    assert resumed.commands.limit() == 1  # the reduce, one decision after the snapshot
    assert resumed.commands.journal_from == 2  # until the reduce is applied again
    handle_account(resumed, [reduce, make_signal(1, 100.0, ts=TS + 10), *through(TS + 10)])
    assert (resumed.commands.journal_from, resumed.commands.limit()) == (3, None)


def test_a_live_command_read_while_a_replayed_one_waits_is_applied_right_after_it() -> None:
    state, journal = event_time_state(), ListJournal()
    kill, reduce = command(ControlAction.KILL, 0), command(ControlAction.REDUCE, 1)
    handle_account(state, [make_signal(1, 100.0), *through(TS)])
    snapshot = pickle.loads(pickle.dumps(state))
    handle_account(state, [make_signal(-1, 101.0, ts=TS + 10), *through(TS + 10)])
    handle_account(state, [kill], journal)  # after 2 decisions; then the crash
    resumed = replayed(snapshot, journal)
    later = [make_signal(-1, 101.0, ts=TS + 10), make_signal(1, 102.0, ts=TS + 20)]
    # The reduce is read before the decision the kill follows: it waits for the kill.
    out = handle_account(resumed, [reduce, *later, *through(TS + 20)], journal)
    assert not [o for o in out if isinstance(o, TradingStateChanged | AuditEvent)]
    out += handle_account(resumed, [kill], journal)
    assert [e.reason.split()[0] for e in journal.entries] == ["kill", "reduce"]
    changes = [o.trigger for o in out if isinstance(o, TradingStateChanged)]
    assert changes == ["kill", "reduce"]
    assert [o.reason.split()[0] for o in out if isinstance(o, AuditEvent)] == ["reduce"]


def test_event_time_gate_refuses_a_live_command_without_a_journal() -> None:
    with pytest.raises(InvariantViolation, match="journal"):
        handle_account(event_time_state(), [command(ControlAction.KILL, 1)])


def test_gateway_back_after_lag_books_late_fills_and_holds_for_markers_again() -> None:
    state = event_time_state(max_wait_ns=50_000_000)
    signal = make_signal(1, 100.0)
    handle_account(state, [signal])
    time.sleep(0.06)
    lagged = handle_account(state, [make_signal(1, 100.0, ts=TS + 2_000)])
    (order,) = [o for o in lagged if isinstance(o, Order)]
    assert state.gate.trading_state() is TradingState.REDUCING
    # The gateway comes back: its late fill is booked before the next decision...
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))
    back = handle_account(
        state, [fill, *through(TS + 3_000), make_signal(-1, 100.0, ts=TS + 3_000)]
    )
    assert isinstance(back[0], Position)
    # ...and, caught up, the gate waits for the markers again instead of deciding blind.
    held = handle_account(state, [make_signal(-1, 100.0, ts=TS + 4_000)])
    assert not [o for o in held if type(o).__name__ in ("Approved", "Denied")]
    released = handle_account(state, through(TS + 4_000))
    assert [type(o).__name__ for o in released][:2] in (
        ["Denied"],
        ["Approved", "Order"],
    ) or released
    # Still REDUCING: only an operator's resume lifts what the gateway_lag alert set.
    assert state.gate.trading_state() is TradingState.REDUCING


def limit(max_position: int, n: int = 0, instrument: str = "AAPL") -> LimitCommand:
    return LimitCommand(
        command_id=f"limit-{n}",
        account="acc",
        instrument=instrument,
        max_position=D(max_position),
        reason="test",
        actor="ops",
        ts_event=TS + n,
        ts_init=TS + n,
    )


def test_a_limit_command_applies_from_the_next_decision_to_its_instrument_only() -> None:
    state = fresh_state()
    first = handle_account(state, [limit(50), make_signal(1, 100.0)])
    assert isinstance(first[0], Denied) and first[0].reason is DenialReason.MAX_POSITION
    other = handle_account(state, [make_signal(1, 100.0, instrument="MSFT")])
    assert type(other[0]).__name__ == "Approved"
    assert type(handle_account(fresh_state(), [make_signal(1, 100.0)])[0]).__name__ == "Approved"


def test_a_limit_command_in_event_time_is_journaled_and_replayed_at_its_point() -> None:
    state, journal = event_time_state(), ListJournal()
    handle_account(state, [make_signal(1, 100.0), *through(TS)])
    snapshot = pickle.loads(pickle.dumps(state))
    later = make_signal(-1, 100.0, ts=TS + 10)
    live = handle_account(state, [limit(50, 1)], journal)
    live += handle_account(state, [later, *through(TS + 10)])
    (entry,) = journal.entries
    assert entry.reason == "max_position 50 on AAPL by ops: test"
    resumed = replayed(snapshot, journal)
    again = handle_account(resumed, [later, *through(TS + 10)])
    again += handle_account(resumed, [limit(50, 1)], journal)
    decided = [o for o in again if not isinstance(o, OrdersSent)]
    assert decided == [o for o in live if not isinstance(o, OrdersSent | AuditEvent)]
    assert isinstance(decided[0], Denied) and decided[0].reason is DenialReason.MAX_POSITION


def test_control_and_limit_audit_events_say_who_when_why_and_which_command() -> None:
    kill, kill_audit = control_events("acc", ControlAction.KILL, "fat finger", "bob", ts_event=TS)
    change, limit_audit = limit_events("acc", "AAPL", D(50), "desk cut", "alice", ts_event=TS)
    for command, audit, action in ((kill, kill_audit, "kill"), (change, limit_audit, "set_limits")):
        assert (audit.actor, audit.reason, audit.action) == (command.actor, command.reason, action)
        assert audit.ts_event == command.ts_event == TS
        assert orjson.loads(audit.detail)["command_id"] == command.command_id
    assert orjson.loads(limit_audit.detail)["max_position"] == "50"


def test_auto_is_the_default_journaling_a_live_run_and_booking_a_replay_in_event_time() -> None:
    live = load_settings()
    assert live.risk.fill_sync is FillSyncMode.AUTO
    assert fill_sync_mode(live) is FillSyncMode.JOURNAL
    state = make_account_state(live)
    assert state.order is not None and state.sync is None
    replay = replace(live, kafka=replace(live.kafka, bounded=True))
    assert fill_sync_mode(replay) is FillSyncMode.EVENT_TIME
    assert make_account_state(replay).sync is not None
    # A bounded run without the gateway has no markers to wait for: journaled.
    alone = replace(replay, kafka=replace(replay.kafka, end_writers=("feed", "trading")))
    assert fill_sync_mode(alone) is FillSyncMode.JOURNAL


def test_the_in_process_backtest_books_in_event_time_whatever_auto_says() -> None:
    settings = load_settings()
    engine = InProcessEngine(settings)
    assert engine.event_time and engine._account.sync is not None
    journaled = replace(settings, risk=replace(settings.risk, fill_sync=FillSyncMode.JOURNAL))
    with pytest.raises(HflError, match="no input journal"):
        InProcessEngine(journaled)
