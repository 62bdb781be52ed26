"""The account engine with fakes of its Protocols: a clock the test moves, a journal in
a list, telemetry that records. (The Bytewax step over it with the real adapters:
tests/unit/dataflows/test_account.py, tests/flow, tests/integration.)"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import pytest

from dataflows.ops.control import control_events
from risk.command_log import CommandPoint
from risk.domain import (
    Alert,
    AuditEvent,
    CancelOrder,
    ControlAction,
    ControlCommand,
    Denied,
    Order,
    OrdersSent,
    Signal,
    TradingState,
)
from risk.domain.decision import RiskDecision
from risk.engine.account import AccountEngine, AccountState
from risk.engine.port import Clock, Command, CommandJournal, JournalRead, Telemetry
from risk.gate import InvariantViolation
from tests.unit.dataflows.test_account import event_time_state as waiting_state
from tests.unit.dataflows.test_account import through
from tests.unit.risk.test_gate import TS, make_gate, make_signal

MAX_WAIT_NS = 50_000_000


@dataclass
class StepClock:
    """Wall time that moves only when the test says so."""

    now: int = 0

    def now_ns(self) -> int:
        return self.now


@dataclass
class ListJournal:
    """The journal as a list of (account, command, point); offsets are list indices."""

    entries: list[tuple[str, Command, CommandPoint]] = field(default_factory=list)

    def read(self, account: str, start: int) -> JournalRead:
        points = [point for who, _, point in self.entries[start:] if who == account]
        return JournalRead(points, len(self.entries), len(self.entries) - start)

    def record(self, account: str, command: Command, point: CommandPoint) -> tuple[int, AuditEvent]:
        self.entries.append((account, command, point))
        entry = AuditEvent(
            audit_id=f"a{len(self.entries)}",
            actor="test",
            action="control_applied",
            subject=account,
            reason=command.reason,
            detail="",
            ts_event=point.effective_ns,
            ts_init=point.effective_ns,
        )
        return len(self.entries) - 1, entry


@dataclass
class RecordingTelemetry:
    decisions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def decided(self, signal: Signal, decision: RiskDecision) -> None:
        self.decisions.append(f"{signal.signal_id} {decision.outcome}")

    def note(self, message: str, *events: object, **fields: object) -> None:
        self.notes.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def test_fakes_implement_the_engine_protocols() -> None:
    clock: Clock = StepClock()
    journal: CommandJournal = ListJournal()
    telemetry: Telemetry = RecordingTelemetry()
    assert (clock.now_ns(), journal.read("acc", 0).end) == (0, 0)
    telemetry.warn("ok")


def engine(
    clock: StepClock | None = None, journal: ListJournal | None = None
) -> tuple[AccountEngine, RecordingTelemetry]:
    telemetry = RecordingTelemetry()
    built = AccountEngine(
        clock=clock or StepClock(), journal=journal or ListJournal(), telemetry=telemetry
    )
    return built, telemetry


def event_time_state() -> AccountState:
    return waiting_state(max_wait_ns=MAX_WAIT_NS)


def kill(n: int) -> ControlCommand:
    return ControlCommand(
        command_id=f"kill-{n}",
        account="acc",
        action=ControlAction.KILL,
        reason="test",
        actor="ops",
        ts_event=TS + n,
        ts_init=TS + n,
    )


def test_arrival_order_decides_at_once_and_tells_telemetry() -> None:
    state = AccountState(gate=make_gate(), pnl_interval_ns=1_000_000_000)
    run, telemetry = engine()
    signal = make_signal(1, 100.0)
    out = run.handle(state, [signal])
    assert [type(o).__name__ for o in out] == ["Approved", "Order"]
    assert telemetry.decisions == [f"{signal.signal_id} approved"]


def test_signal_waits_for_the_gateway_while_the_clock_stays_within_the_wait() -> None:
    clock = StepClock(now=10**12)
    state = event_time_state()
    run, telemetry = engine(clock)
    out = run.handle(state, [make_signal(1, 100.0)])
    clock.now += MAX_WAIT_NS - 1
    out += run.handle(state, [])
    assert [type(o).__name__ for o in out] == ["OrdersSent"]  # promised, not decided
    assert telemetry.warnings == []


def test_gateway_silent_past_the_wait_decides_alerts_lag_and_reduces() -> None:
    clock = StepClock(now=10**12)
    state = event_time_state()
    run, telemetry = engine(clock)
    run.handle(state, [make_signal(1, 100.0)])
    clock.now += MAX_WAIT_NS + 1
    out = run.handle(state, [])
    assert [a.name for a in out if isinstance(a, Alert)] == ["gateway_lag"]
    assert any(isinstance(o, Order) for o in out)
    assert state.gate.trading_state() is TradingState.REDUCING
    assert len(telemetry.warnings) == 1


def test_markers_release_the_signal_and_the_engine_promises_its_orders() -> None:
    state = event_time_state()
    run, _ = engine()
    out = run.handle(state, [make_signal(1, 100.0), *through(TS + 1)])
    assert any(isinstance(o, Order) for o in out)
    (promise,) = [o for o in out if isinstance(o, OrdersSent)]
    assert promise.through_ns == TS  # as risk.fill_sync promises: orders before TS


def test_live_command_is_journaled_before_its_effects_and_replayed_at_its_point() -> None:
    journal = ListJournal()
    state = event_time_state()
    run, _ = engine(journal=journal)
    signals = [make_signal(1, 100.0, ts=TS + n) for n in range(3)]
    run.handle(state, [*signals[:1], *through(TS + 1)])
    snapshot = pickle.dumps(state)
    live = run.handle(state, [kill(5), *signals[1:], *through(TS + 5)])
    ((_, _, point),) = journal.entries
    assert point.after_decisions == 1
    assert isinstance(live[-1], AuditEvent) or any(isinstance(o, AuditEvent) for o in live)
    # Resumed from the snapshot before the kill, the engine places it where the
    # journal says, whatever order the replayed inputs arrive in.
    resumed: AccountState = pickle.loads(snapshot)
    run.resume(resumed)
    replay = run.handle(resumed, [*signals[1:], *through(TS + 5), kill(5)])
    assert len(journal.entries) == 1  # not journaled again
    decided = [o for o in live if isinstance(o, RiskDecision | CancelOrder)]
    assert [o for o in replay if isinstance(o, RiskDecision | CancelOrder)] == decided
    assert all(isinstance(o, Denied) for o in decided if isinstance(o, RiskDecision))


def test_event_time_command_without_a_journal_raises() -> None:
    state = event_time_state()
    run = AccountEngine(clock=StepClock(), journal=None, telemetry=RecordingTelemetry())
    with pytest.raises(InvariantViolation, match="journal"):
        run.handle(state, [kill(1)])


def test_start_halt_applies_once_per_halt() -> None:
    state = AccountState(gate=make_gate(), pnl_interval_ns=1_000_000_000)
    run, telemetry = engine()
    halt, audit = control_events("acc", ControlAction.KILL, "start", "hfl", ts_event=TS)
    run.start_halted(state, halt, audit)
    run.start_halted(state, halt, audit)
    assert state.gate.trading_state() is TradingState.HALTED
    out = run.handle(state, [])
    assert [type(o).__name__ for o in out] == ["AuditEvent", "Alert", "TradingStateChanged"]
    assert len(telemetry.warnings) == 1
