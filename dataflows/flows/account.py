"""The account step of the trading flow: a shim over `risk.engine.account.AccountEngine`.

It translates the configured limits and risk model into the gate's types, builds a
fresh or resumed `AccountState`, and builds the engine with the real adapters: the
wall clock (`time.time_ns`, read only by the timers that stop waiting for a failed
gateway or a lost journaled input), the Kafka command journal
(`connectors.kafka.journal`), the gate's input journal (`connectors.kafka.gate_journal`)
and logs and metrics (`connectors.telemetry`). Every decision, the journaled input
order or the event-time booking (`risk.fill_sync`) and the operator-command journal's
replay (`risk.command_log`) happen in the engine; see its module for how.

Which mode (`risk.fill_sync`, `fill_sync_mode`): `auto`, the default, journals in a
live run and books in event time in a bounded replay that runs the gateway (such a
replay has no journal of a run before it, and event time gives the same orders on
every run of the same input; the in-process backtest, which builds the gate with no
input journal, pins event time). `journal` decides on arrival and never waits for the
gateway: the order of each batch's inputs is sent to the journal before the batch is
applied and acknowledged before its outputs leave (a fresh journaled gate
replays the whole input journal: a flow killed before its first snapshot restarts
fresh, its sources from the beginning, and what it decided had left; chaos R1-journal,
docs/reliability.md).

Start halted: `risk.start_halted` (set by `hfl up` when startup reconciliation fails)
halts the gate as it is built or resumed, before it sees any input, whatever order
Bytewax reads its inputs in; once per halt, so a restart does not undo a resume.
End of input (a bounded run): every held fill is booked, with a last P&L snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol

from connectors.kafka.gate_journal import KafkaGateJournal
from connectors.kafka.journal import KafkaJournal, journal_entry
from connectors.telemetry import stage
from connectors.telemetry.log import log_event
from connectors.telemetry.metric import observe_decision
from dataflows.flows.shim import Delegate, Snapshot, restore
from dataflows.ops.control import control_events
from dataflows.settings import Settings, StartHaltSettings
from dataflows.settings_domain import account_limits, risk_limits, risk_model
from risk.command_log import CommandLog, CommandPoint
from risk.domain import AuditEvent, ControlAction, Signal
from risk.domain.decision import RiskDecision
from risk.engine.account import AccountEngine, AccountInput, AccountState, Command, Held
from risk.engine.port import Acknowledgement, InputJournal, InputsRead, JournalRead
from risk.fill_sync import FillSync, FillSyncMode, InputOrder
from risk.gate import AccountGate
from risk.limit import LimitBook
from risk.state import StatePolicy

__all__ = [
    "ACCOUNT_STATE_VERSION",
    "AccountInput",
    "AccountState",
    "CommandJournal",
    "Held",
    "account_engine",
    "account_logic",
    "apply_start_halt",
    "fill_sync_mode",
    "finish_account",
    "handle_account",
    "make_account_state",
]

LOG = logging.getLogger("hfl.trading.account")

_NS_PER_MS = 1_000_000


class CommandJournal(Protocol):
    """Where the gate journals the points at which it applied operator commands (the
    Kafka journal, or a test's list): what `account_logic` needs besides reading."""

    def connect(self) -> None:
        """Get ready to write, so the first command's entry does not wait for it."""
        ...

    def end(self) -> int:
        """The offset the next entry will get."""
        ...

    def read(self, account: str, start: int) -> JournalRead:
        """`account`'s points from offset `start` on."""
        ...

    def write(self, command_id: str, entry: AuditEvent) -> int:
        """Write `entry` durably; return its offset."""
        ...


class GateJournal(InputJournal, Protocol):
    """Where the gate journals the order of its inputs (the Kafka journal, or a test's
    list): the engine's `InputJournal`, plus getting ready and the end."""

    def connect(self) -> None:
        """Get ready to write, so the first batch's record does not wait for it."""
        ...

    def start(self) -> int:
        """The offset of the first record it holds."""
        ...

    def end(self) -> int:
        """The offset the next record will get."""
        ...


class _JournalPort:
    """The engine's `risk.engine.port.CommandJournal` over a `CommandJournal`: each
    point is written as its `control_applied` audit event."""

    __slots__ = ("_journal",)

    def __init__(self, journal: CommandJournal) -> None:
        self._journal = journal

    def read(self, account: str, start: int) -> JournalRead:
        return self._journal.read(account, start)

    def record(self, account: str, command: Command, point: CommandPoint) -> tuple[int, AuditEvent]:
        entry = journal_entry(account, command, point)
        return self._journal.write(command.command_id, entry), entry


class _TimedAck:
    """A timed write in flight: `trading.risk_gate.journal` is the time the worker is
    held by it (queueing the record plus waiting for its acknowledgement after the
    batch was applied), `trading.risk_gate.journal_ack` the write's whole round trip
    (sent to acknowledged), which the gate's work now overlaps."""

    __slots__ = ("_ack", "_held_ns", "_items", "_sent_ns")

    def __init__(self, ack: Acknowledgement, sent_ns: int, held_ns: int, items: int) -> None:
        self._ack, self._sent_ns, self._held_ns, self._items = ack, sent_ns, held_ns, items

    def wait(self) -> int:
        started = stage.now()
        offset = self._ack.wait()
        ended = stage.now()
        held_ns = self._held_ns + ended - started
        stage.record("trading.risk_gate.journal", ended - held_ns, ended, self._items)
        stage.record("trading.risk_gate.journal_ack", self._sent_ns, ended, self._items)
        return offset


class _TimedInputs:
    """The input journal with each write timed (per input; the pipeline bench prints
    them, `_TimedAck`): what journaling adds to each batch of decisions."""

    __slots__ = ("_inputs",)

    def __init__(self, inputs: GateJournal) -> None:
        self._inputs = inputs

    def connect(self) -> None:
        self._inputs.connect()

    def start(self) -> int:
        return self._inputs.start()

    def end(self) -> int:
        return self._inputs.end()

    def read(self, account: str, start: int) -> InputsRead:
        return self._inputs.read(account, start)

    def send(self, account: str, keys: list[str]) -> Acknowledgement:
        started = stage.now()
        ack = self._inputs.send(account, keys)
        return _TimedAck(ack, started, stage.now() - started, len(keys))

    def applied(self, account: str, command: Command, point: CommandPoint) -> AuditEvent:
        return self._inputs.applied(account, command, point)


class _SystemClock:
    """The wall clock (the engine's `Clock`)."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.time_ns()


class _LogTelemetry:
    """The engine's `Telemetry` as structured logs and the tick-to-decision metric."""

    __slots__ = ()

    def decided(self, signal: Signal, decision: RiskDecision) -> None:
        observe_decision(signal.signal_id)
        log_event(LOG, f"signal {decision.outcome}", signal, decision)

    def note(self, message: str, *events: object, **fields: object) -> None:
        log_event(LOG, message, *events, **fields)

    def warn(self, message: str) -> None:
        LOG.warning(message)


def fill_sync_mode(settings: Settings) -> FillSyncMode:
    """`risk.fill_sync` with `auto` resolved (see the module docs): event time in a
    bounded run whose writers include the gateway, the input journal otherwise."""
    mode = settings.risk.fill_sync
    if mode is not FillSyncMode.AUTO:
        return mode
    kafka = settings.kafka
    replay = (kafka.bounded or kafka.exit_when_idle_s > 0) and "gateway" in kafka.end_writers
    return FillSyncMode.EVENT_TIME if replay else FillSyncMode.JOURNAL


def account_engine(
    journal: CommandJournal | None, inputs: InputJournal | None = None
) -> AccountEngine:
    """The engine with the real clock and telemetry, journaling commands in `journal`
    and, journaled, the input order in `inputs`."""
    return AccountEngine(
        clock=_SystemClock(),
        journal=None if journal is None else _JournalPort(journal),
        telemetry=_LogTelemetry(),
        inputs=inputs,
    )


def make_account_state(settings: Settings, journal_from: int = 0) -> AccountState:
    """A fresh gate for the configured account; a resume reads its journal (commands
    in event time, inputs when journaled) from offset `journal_from` on (see
    `account_logic`)."""
    trading, risk = settings.trading, settings.risk
    limits = LimitBook(
        default=risk_limits(risk.limits),
        per_instrument={name: risk_limits(lim) for name, lim in risk.per_instrument.items()},
    )
    gate = AccountGate(
        trading.account,
        limits,
        target_notional=trading.target_notional,
        lot_size=trading.lot_size,
        initial_cash=trading.initial_cash,
        policy=StatePolicy(drift_state=risk.drift_action, alert_states=dict(risk.alert_actions)),
        account_limits=account_limits(risk.account),
        instruments=trading.instruments,
        risk_model=risk_model(risk),
        volatility_target=(
            None if risk.volatility_target_pct is None else risk.volatility_target_pct / 100
        ),
        sizing=risk.sizing.method,
        gross_notional=risk.sizing.gross_notional,
    )
    state = AccountState(gate=gate, pnl_interval_ns=trading.pnl_interval_s * 1_000_000_000)
    mode = fill_sync_mode(settings)
    if mode is FillSyncMode.JOURNAL:
        state.order = InputOrder(journal_from, max_wait_ns=risk.fill_sync_max_wait_ms * _NS_PER_MS)
    elif mode is FillSyncMode.EVENT_TIME:
        delay_ns, max_wait_ns = (
            risk.fill_sync_delay_ms * _NS_PER_MS,
            risk.fill_sync_max_wait_ms * _NS_PER_MS,
        )
        state.sync = FillSync[Held](trading.instruments, delay_ns=delay_ns, max_wait_ns=max_wait_ns)
        state.commands = CommandLog(journal_from=journal_from)
    return state


AccountLogic = Delegate[AccountInput, object, AccountState]
# 2: the risk model's caches changed shape; 3: CommandLog keeps the journal's offset;
# 4: AccountState moved to risk.engine.account and the gate was split into parts;
# 5: the gate keeps each instrument's last market price (risk.exposure.Exposure.market);
# 6: AccountState.order (the journaled input order).
ACCOUNT_STATE_VERSION = 6  # snapshot version of AccountState (dataflows.flows.shim): bump on change
Observer = Callable[[AccountState], None]
Handle = Callable[[AccountState, list[AccountInput]], list[object]]


def account_logic(
    settings: Settings,
    journal: CommandJournal | None = None,
    observe: Observer | None = None,
    inputs: GateJournal | None = None,
) -> Callable[[Snapshot | None], AccountLogic]:
    """The risk gate's `stateful_batch` builder: a fresh or resumed gate, halted before
    any input when `risk.start_halted` says so, booking held fills at the end of input.

    Journaled (`fill_sync_mode`), the gate writes the order of its inputs per batch in
    `inputs` (default: `hfl.gate_journal`) and a resumed gate replays that order,
    reading it only from the offset its snapshot keeps. Booking in event time, the gate
    journals operator commands in `journal` (default: `hfl.command_journal`), and a
    resumed gate places replayed commands where the journal says they were applied.
    `observe` sees the state as built and after every batch (the end of a bounded run,
    `dataflows.flows.run_end`).

    Raises (on resume):
        TimeoutError, OSError: a journal could not be read; resuming without it could
            decide otherwise than before the crash, so the flow stops.
    """
    mode = fill_sync_mode(settings)
    halt, event_time = settings.risk.start_halted, mode is FillSyncMode.EVENT_TIME
    kafka = settings.kafka
    journal = journal or KafkaJournal(kafka.bootstrap, kafka.topic_prefix, kafka.message_timeout_ms)
    if mode is FillSyncMode.JOURNAL:
        inputs = inputs or KafkaGateJournal(
            kafka.bootstrap, kafka.topic_prefix, kafka.message_timeout_ms
        )
        if stage.enabled():
            inputs = _TimedInputs(inputs)
    else:
        inputs = None
    engine = account_engine(journal, inputs)
    handle: Handle = engine.handle
    if observe is not None:
        handle = _observed(handle, observe)

    def build(resume_state: Snapshot | None) -> AccountLogic:
        if event_time:
            journal.connect()
        if inputs is not None:
            inputs.connect()
        if resume_state is None and inputs is not None:
            # A fresh journaled gate reads its inputs from the start of their logs (the
            # sources of a flow without a snapshot start at the beginning), so it
            # replays the whole input journal: an execution killed before its first
            # snapshot started fresh too, and its decisions have left.
            state = make_account_state(settings, inputs.start())
            engine.resume(state)
        elif resume_state is None:
            # Nothing in the command journal before its present end is this new gate's.
            state = make_account_state(settings, journal.end() if event_time else 0)
        else:
            state = restore(resume_state, "trading.risk_gate", ACCOUNT_STATE_VERSION)  # type: ignore[assignment]
            engine.resume(state)
        _start_halt(engine, state, halt)
        if observe is not None:
            observe(state)
        return Delegate(
            state, handle, ACCOUNT_STATE_VERSION, engine.finish, step="trading.risk_gate"
        )

    return build


def _observed(handle: Handle, observe: Observer) -> Handle:
    def observed(state: AccountState, batch: list[AccountInput]) -> list[object]:
        out = handle(state, batch)
        observe(state)
        return out

    return observed


def _start_halt(engine: AccountEngine, state: AccountState, halt: StartHaltSettings) -> None:
    if not halt.reason:
        return
    kill, audit = control_events(
        state.gate.account,
        ControlAction.KILL,
        halt.reason,
        halt.actor or "hfl",
        ts_event=halt.at_ns,
    )
    engine.start_halted(state, kill, audit)


def apply_start_halt(state: AccountState, halt: StartHaltSettings) -> None:
    """Halt the whole account as a kill by `halt.actor` would, once per halt
    (`risk.engine.account.AccountEngine.start_halted`)."""
    _start_halt(account_engine(None), state, halt)


def finish_account(state: AccountState) -> list[object]:
    """At the end of a bounded input, book every fill still held
    (`AccountEngine.finish`)."""
    return account_engine(None).finish(state)


def handle_account(
    state: AccountState,
    batch: list[AccountInput],
    journal: CommandJournal | None = None,
    inputs: InputJournal | None = None,
) -> list[object]:
    """One batch through the engine with the real clock and telemetry, journaling
    commands in `journal` and the input order in `inputs` (`AccountEngine.handle`)."""
    return account_engine(journal, inputs).handle(state, batch)
