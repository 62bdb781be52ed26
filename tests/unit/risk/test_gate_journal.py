"""The journaled risk gate (`risk.fill_sync: journal`) with fakes: it decides on
arrival without the gateway, journals the order of its inputs per batch, and a resume
replays that order whatever order the inputs come in again."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field

import pytest

from risk.command_log import CommandPoint
from risk.domain import (
    Alert,
    AuditEvent,
    ControlAction,
    ControlCommand,
    Order,
    OrderEventKind,
    Signal,
)
from risk.domain.decision import RiskDecision
from risk.engine.account import AccountEngine, AccountInput, AccountState, input_key
from risk.engine.port import Command, InputJournal, InputsRead
from risk.fill_sync import InputOrder
from tests.unit.dataflows.test_account import through
from tests.unit.risk.test_account_engine import ListJournal, RecordingTelemetry, StepClock
from tests.unit.risk.test_gate import TS, make_event, make_gate, make_signal

MAX_WAIT_NS = 50_000_000


@dataclass
class Written:
    """A write the fake journal made at once: acknowledged when awaited."""

    offset: int
    waited: bool = False

    def wait(self) -> int:
        self.waited = True
        return self.offset


@dataclass
class ListInputs:
    """The input journal as a list of (account, keys); offsets are list indices."""

    records: list[tuple[str, list[str]]] = field(default_factory=list)

    def read(self, account: str, start: int) -> InputsRead:
        keys = [k for who, keys in self.records[start:] if who == account for k in keys]
        return InputsRead(keys, len(self.records), len(self.records) - start)

    def send(self, account: str, keys: list[str]) -> Written:
        self.records.append((account, list(keys)))
        return Written(len(self.records) - 1)

    def applied(self, account: str, command: Command, point: CommandPoint) -> AuditEvent:
        return AuditEvent(
            audit_id=f"applied-{command.command_id}",
            actor="test",
            action="control_applied",
            subject=account,
            reason=command.reason,
            detail=str(point.after_decisions),
            ts_event=point.effective_ns,
            ts_init=point.effective_ns,
        )


def journaled(inputs: ListInputs, clock: StepClock | None = None) -> AccountEngine:
    return AccountEngine(
        clock=clock or StepClock(),
        journal=ListJournal(),
        telemetry=RecordingTelemetry(),
        inputs=inputs,
    )


def journaled_state(journal_from: int = 0) -> AccountState:
    state = AccountState(gate=make_gate(), pnl_interval_ns=1_000_000_000)
    state.order = InputOrder(journal_from, max_wait_ns=MAX_WAIT_NS)
    return state


def decided(out: list[object]) -> list[object]:
    return [o for o in out if isinstance(o, RiskDecision | Order)]


def test_fake_implements_the_input_journal_protocol() -> None:
    inputs: InputJournal = ListInputs()
    assert inputs.read("acc", 0).end == 0


def test_signal_is_decided_on_arrival_without_any_gateway_marker_and_journaled() -> None:
    inputs = ListInputs()
    state, run = journaled_state(), journaled(inputs)
    signal = make_signal(1, 100.0)
    out = run.handle(state, [signal])
    # Decided at once; the promise only lets the gateway trim its ticks.
    assert [type(o).__name__ for o in out] == ["Approved", "Order", "OrdersSent"]
    assert inputs.records == [("acc", [input_key(signal)])]
    assert state.settling() is state.order and state.order.settled()
    assert (state.order.journal_from, state.order.consumed) == (1, 0)


@dataclass
class Unacknowledged:
    """A write the broker never acknowledges."""

    def wait(self) -> int:
        msg = "not acknowledged"
        raise OSError(msg)


@dataclass
class WatchedInputs(ListInputs):
    """Notes how many decisions the gate had made when each record was sent; `lose`
    makes every write fail at its acknowledgement."""

    telemetry: RecordingTelemetry = field(default_factory=RecordingTelemetry)
    decided_at_send: list[int] = field(default_factory=list)
    sent: list[Written] = field(default_factory=list)
    lose: bool = False

    def send(self, account: str, keys: list[str]) -> Written | Unacknowledged:  # type: ignore[override]
        self.decided_at_send.append(len(self.telemetry.decisions))
        written = super().send(account, keys)
        self.sent.append(written)
        return Unacknowledged() if self.lose else written


def test_the_order_is_sent_before_the_batch_is_applied_and_awaited_before_it_returns() -> None:
    inputs = WatchedInputs()
    state = journaled_state()
    run = AccountEngine(
        clock=StepClock(), journal=ListJournal(), telemetry=inputs.telemetry, inputs=inputs
    )
    signals = [make_signal(1, 100.0), make_signal(1, 101.0, ts=TS + 1)]
    out = run.handle(state, list(signals))
    # Sent before the first decision of the batch, acknowledged before the outputs left.
    assert inputs.decided_at_send == [0]
    assert len(inputs.telemetry.decisions) == 2 and inputs.sent[0].waited
    assert len(decided(out)) >= 2 and state.order is not None
    assert state.order.journal_from == 1


def test_outputs_never_leave_when_the_journal_write_is_not_acknowledged() -> None:
    inputs = WatchedInputs(lose=True)
    state = journaled_state()
    run = AccountEngine(
        clock=StepClock(), journal=ListJournal(), telemetry=inputs.telemetry, inputs=inputs
    )
    with pytest.raises(OSError, match="not acknowledged"):
        run.handle(state, [make_signal(1, 100.0)])
    assert state.order is not None and state.order.journal_from == 0


def test_markers_are_neither_awaited_nor_journaled_and_an_empty_batch_writes_nothing() -> None:
    inputs = ListInputs()
    state, run = journaled_state(), journaled(inputs)
    assert run.handle(state, [*through(TS + 1)]) == []
    assert run.handle(state, []) == []
    assert inputs.records == []


def test_command_is_applied_in_order_with_its_control_applied_audit() -> None:
    inputs = ListInputs()
    state, run = journaled_state(), journaled(inputs)
    halt = ControlCommand(
        command_id="k1",
        account="acc",
        action=ControlAction.KILL,
        reason="test",
        actor="ops",
        ts_event=TS,
        ts_init=TS,
    )
    out = run.handle(state, [make_signal(1, 100.0), halt, make_signal(1, 100.0, ts=TS + 1)])
    assert [type(o).__name__ for o in decided(out)] == ["Approved", "Order", "Denied"]
    assert [a.audit_id for a in out if isinstance(a, AuditEvent)] == ["applied-k1"]
    assert inputs.records[0][1][1] == "ck1"


def scenario() -> tuple[list[Signal], list[AccountInput]]:
    """Two buys and the cancel of the first one's order: whether the cancel is booked
    before the second buy decides whether its working quantity still counts."""
    first, second = make_signal(1, 100.0), make_signal(1, 100.0, ts=TS + 1)
    gate = make_gate()
    _, order = gate.on_signal(first)
    assert order is not None
    cancel = make_event(order, OrderEventKind.CANCELED, 0)
    return [first, second], [cancel]


def test_resume_replays_the_journaled_order_whatever_order_inputs_come_again() -> None:
    (first, second), (cancel,) = scenario()
    inputs = ListInputs()
    state, run = journaled_state(), journaled(inputs)
    snapshot = pickle.dumps(state)
    # Live: the cancel came between the two buys.
    live = run.handle(state, [first]) + run.handle(state, [cancel, second])
    assert [k for _, keys in inputs.records for k in keys] == [
        input_key(first),
        input_key(cancel),
        input_key(second),
    ]
    # The same inputs in another interleaving decide otherwise without the journal ...
    other = journaled_state()
    unjournaled = journaled(ListInputs()).handle(other, [first, second, cancel])
    assert decided(unjournaled) != decided(live)
    # ... but a gate resumed from the snapshot replays the journal's order: the cancel
    # that comes last is booked before the second buy, as before the crash.
    resumed: AccountState = pickle.loads(snapshot)
    run.resume(resumed)
    assert resumed.order is not None and not resumed.order.settled()
    replay = run.handle(resumed, [first, second])  # the cancel is not here yet
    assert decided(replay) == decided(live)[:2]
    replay += run.handle(resumed, [cancel])
    assert decided(replay) == decided(live)
    assert resumed.order.settled()
    assert len(inputs.records) == 2  # nothing replayed was journaled again
    # Live again: the next input is journaled after the replayed ones.
    third = make_signal(-1, 100.0, ts=TS + 2)
    run.handle(resumed, [third])
    assert inputs.records[-1] == ("acc", [input_key(third)])
    assert resumed.order.journal_from == 3


def test_snapshot_mid_replay_keeps_only_the_position_and_the_early_inputs() -> None:
    (first, second), (cancel,) = scenario()
    inputs = ListInputs()
    state, run = journaled_state(), journaled(inputs)
    snapshot = pickle.dumps(state)
    live = run.handle(state, [first, cancel, second])
    resumed: AccountState = pickle.loads(snapshot)
    run.resume(resumed)
    replay = run.handle(resumed, [first, second])  # second waits for the cancel
    assert resumed.order is not None and len(resumed.order) == 3  # 2 awaited, 1 waits
    # Killed again here: the snapshot holds the waiting input, not the journal's keys.
    again: AccountState = pickle.loads(pickle.dumps(resumed))
    assert again.order is not None and again.order.consumed == 1
    run.resume(again)
    replay += run.handle(again, [cancel])
    assert decided(replay) == decided(live)


def test_a_journaled_input_that_never_comes_again_is_given_up_after_the_wait() -> None:
    (first, second), (cancel,) = scenario()
    inputs, clock = ListInputs(), StepClock(now=10**12)
    state, run = journaled_state(), journaled(inputs, clock)
    snapshot = pickle.dumps(state)
    run.handle(state, [first, cancel, second])
    resumed: AccountState = pickle.loads(snapshot)
    run.resume(resumed)
    run.handle(resumed, [first, second])
    clock.now += MAX_WAIT_NS - 1
    assert decided(run.handle(resumed, [])) == []
    clock.now += 1
    out = run.handle(resumed, [])
    assert [a.name for a in out if isinstance(a, Alert)] == ["gate_journal_gap"]
    assert any(isinstance(o, RiskDecision) and o.signal_id == second.signal_id for o in out)
    assert resumed.order is not None and resumed.order.settled()
    assert inputs.records[-1] == ("acc", [input_key(second)])
