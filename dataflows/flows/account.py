"""The account step of the trading flow: a thin shim over `risk.gate.AccountGate`.

With `risk.fill_sync: event_time` (the default) fills and order events are booked in
event time through `risk.fill_sync.FillSync`, each `risk.fill_sync_delay_ms` after it
happened: signals, bars and drift events wait until the gateway's progress markers
show those reports are in, so decisions, positions, P&L and risk figures do not
depend on how fast the gateway ran. The step announces which orders it
has sent (`OrdersSent`) so the gateway can mark its progress. If the gateway is down,
a decision waits at most `risk.fill_sync_max_wait_ms` of wall time (the one place this
step reads the clock: it is a timer, and it only fires when the gateway fails); then
trading goes on without the missing fills, without further waiting until the markers
catch up, a `gateway_lag` alert is raised and the account moves to REDUCING
(`risk.alert_actions`) until an operator resumes it.

Start halted: `risk.start_halted` (set by `hfl up` when startup reconciliation fails)
halts the gate as it is built or resumed, before it sees any input, whatever order
Bytewax reads its inputs in; once per halt, so a restart does not undo a resume.
End of input (a bounded run): every held fill is booked, with a last P&L snapshot.

Operator commands in event time (`risk.command_log`): a command is applied the moment
it is read, before every decision not yet made (a kill is immediate), at the gate's
event-time clock; where (after how many decisions, at which event time) is journaled
as a `control_applied` audit event, written synchronously to `hfl.command_journal`
(`connectors.kafka.journal`) before the batch carrying its effects is returned, and
emitted on `hfl.audit` for the audit trail. A trading flow resuming from a snapshot
reads that journal from the offset the snapshot keeps and applies each command
replayed after the snapshot at the same point, so a replay decides as the run before
the crash did, wherever the crash fell.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Protocol

from connectors.kafka.journal import JournalRead, KafkaJournal, journal_entry
from connectors.telemetry.log import log_event
from connectors.telemetry.metric import observe_decision
from dataflows.flows.shim import Delegate, Snapshot, restore
from dataflows.ops.control import control_events
from dataflows.settings import (
    AccountLimitSettings,
    LimitSettings,
    RiskSettings,
    Settings,
    StartHaltSettings,
)
from risk.command_log import CommandLog
from risk.domain import (
    Alert,
    AlertSeverity,
    AuditEvent,
    Bar,
    ControlAction,
    ControlCommand,
    DriftDetected,
    Fill,
    FillsThrough,
    LimitCommand,
    OrderEvent,
    OrderEventsThrough,
    OrdersSent,
    Signal,
)
from risk.domain.ids import stable_id
from risk.early import EarlyReports, OrderReport
from risk.fill_sync import FillSync, FillSyncMode
from risk.gate import AccountGate, InvariantViolation
from risk.limit import AccountLimits, LimitBook, RiskLimits, with_max_position
from risk.monitor import DEFAULT_SCENARIOS, RiskModelConfig, StressScenario
from risk.state import StatePolicy

LOG = logging.getLogger("hfl.trading.account")

_NS_PER_MS = 1_000_000

AccountInput = (
    Signal
    | Bar
    | Fill
    | FillsThrough
    | OrderEvent
    | OrderEventsThrough
    | ControlCommand
    | LimitCommand
    | Alert
    | DriftDetected
)
# What waits for the gateway's markers in event-time mode: the trading flow's own events.
Held = Signal | Bar | DriftDetected
# Operator commands: applied at once, at a journaled point in event time.
Command = ControlCommand | LimitCommand


def risk_limits(limits: LimitSettings) -> RiskLimits:
    """Translate configured limits into the gate's limit type."""
    return RiskLimits(
        max_order_quantity=limits.max_order_quantity,
        max_order_notional=limits.max_order_notional,
        max_position=limits.max_position,
        max_gross_exposure=limits.max_gross_exposure,
        price_collar_pct=limits.price_collar_pct / 100,
        max_reference_age_ns=limits.max_reference_age_ms * _NS_PER_MS,
        max_concentration=limits.max_concentration_pct / 100,
        group=limits.group,
        max_volatility=limits.max_volatility_pct / 100,
        scale_on_volatility=limits.scale_on_volatility,
        max_correlation=limits.max_correlation,
    )


def account_limits(limits: AccountLimitSettings) -> AccountLimits:
    """Translate configured account-wide limits (percentages) into the gate's type."""
    return AccountLimits(
        max_open_orders=limits.max_open_orders,
        max_net_exposure=limits.max_net_exposure,
        max_group_concentration=limits.max_group_concentration_pct / 100,
        var_budget=limits.var_budget_pct / 100,
        cvar_budget=limits.cvar_budget_pct / 100,
        max_beta=limits.max_beta,
        drawdown_soft=limits.drawdown_soft_pct / 100,
        drawdown_hard=limits.drawdown_hard_pct / 100,
        daily_loss=limits.daily_loss_pct / 100,
        max_orders_per_window=limits.max_orders_per_window,
        order_window_ns=limits.order_window_ms * _NS_PER_MS,
        max_fills_without_human=limits.max_fills_without_human,
    )


def risk_model(risk: RiskSettings) -> RiskModelConfig:
    """The portfolio risk model: sampling, schedule and stress scenarios."""
    model = risk.model
    extra = tuple(
        StressScenario(
            name=name,
            market_move=shocks.get("market", 0.0) / 100,
            shocks={k: v / 100 for k, v in shocks.items() if k != "market"},
        )
        for name, shocks in risk.stress_scenarios.items()
    )
    return RiskModelConfig(
        window=model.window,
        min_samples=model.min_samples,
        sample_interval_ns=model.sample_interval_ms * _NS_PER_MS,
        periods_per_day=model.periods_per_day,
        confidence=model.confidence,
        ewma_decay=model.ewma_decay,
        recompute_interval_ns=model.recompute_interval_ms * _NS_PER_MS,
        market_proxy=model.market_proxy,
        scenarios=DEFAULT_SCENARIOS + extra,
    )


@dataclass(slots=True)
class AccountState:
    """The gate, the next P&L snapshot time (event time), order reports parked early and,
    booking in event time, what waits for the gateway and the last promise sent; the
    start halt applied last and what it caused, emitted with the next batch; the
    operator commands applied and where replayed ones go (`CommandLog`)."""

    gate: AccountGate
    pnl_interval_ns: int
    next_pnl_ns: int = 0
    early: EarlyReports = field(default_factory=EarlyReports)
    sync: FillSync[Held] | None = None
    promised_ns: int | None = None
    start_halt_id: str | None = None
    pending: list[object] = field(default_factory=list)
    commands: CommandLog[Command] = field(default_factory=CommandLog)


class CommandJournal(Protocol):
    """Where the gate journals the points at which it applied operator commands."""

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


def make_account_state(settings: Settings, journal_from: int = 0) -> AccountState:
    """A fresh gate for the configured account; booking in event time, a resume reads
    its command journal from offset `journal_from` on (see `account_logic`)."""
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
    if risk.fill_sync is FillSyncMode.EVENT_TIME:
        delay_ns, max_wait_ns = (
            risk.fill_sync_delay_ms * _NS_PER_MS,
            risk.fill_sync_max_wait_ms * _NS_PER_MS,
        )
        state.sync = FillSync[Held](trading.instruments, delay_ns=delay_ns, max_wait_ns=max_wait_ns)
        state.commands = CommandLog(journal_from=journal_from)
    return state


AccountLogic = Delegate[AccountInput, object, AccountState]
# 2: the risk model's caches changed shape; 3: CommandLog keeps the journal's offset.
ACCOUNT_STATE_VERSION = 3  # snapshot version of AccountState (dataflows.flows.shim): bump on change
Observer = Callable[[AccountState], None]
Handle = Callable[[AccountState, list[AccountInput]], list[object]]


def account_logic(
    settings: Settings, journal: CommandJournal | None = None, observe: Observer | None = None
) -> Callable[[Snapshot | None], AccountLogic]:
    """The risk gate's `stateful_batch` builder: a fresh or resumed gate, halted before
    any input when `risk.start_halted` says so, booking held fills at the end of input.

    Booking in event time, the gate journals operator commands in `journal` (default:
    `hfl.command_journal`), and a resumed gate places replayed commands where the
    journal says they were applied, reading it only from the offset its snapshot keeps.
    `observe` sees the state as built and after every batch (the end of a bounded run,
    `dataflows.flows.run_end`).

    Raises (on resume):
        TimeoutError, OSError: the journal could not be read; resuming without it could
            place a command elsewhere than before the crash, so the flow stops.
    """
    halt, event_time = (
        settings.risk.start_halted,
        settings.risk.fill_sync is FillSyncMode.EVENT_TIME,
    )
    kafka = settings.kafka
    journal = journal or KafkaJournal(kafka.bootstrap, kafka.topic_prefix, kafka.message_timeout_ms)
    handle: Handle = partial(handle_account, journal=journal)
    if observe is not None:
        handle = _observed(handle, observe)

    def build(resume_state: Snapshot | None) -> AccountLogic:
        if event_time:
            journal.connect()
        if resume_state is None:
            # Nothing in the journal before its present end is this new gate's.
            state = make_account_state(settings, journal.end() if event_time else 0)
        else:
            state = restore(resume_state, "trading.risk_gate", ACCOUNT_STATE_VERSION)  # type: ignore[assignment]
            if state.sync is not None:
                commands = state.commands
                read = journal.read(state.gate.account, commands.journal_from)
                commands.replay(read.points, read.end)
        apply_start_halt(state, halt)
        if observe is not None:
            observe(state)
        return Delegate(state, handle, ACCOUNT_STATE_VERSION, finish_account)

    return build


def _observed(handle: Handle, observe: Observer) -> Handle:
    def observed(state: AccountState, batch: list[AccountInput]) -> list[object]:
        out = handle(state, batch)
        observe(state)
        return out

    return observed


def apply_start_halt(state: AccountState, halt: StartHaltSettings) -> None:
    """Halt the whole account as a kill by `halt.actor` would, once per halt.

    The kill's audit event, a critical `trading_start_halted` alert, the state change
    and the cancels of working orders go out with the next batch.
    """
    if not halt.reason:
        return
    gate = state.gate
    actor = halt.actor or "hfl"
    kill, audit = control_events(
        gate.account, ControlAction.KILL, halt.reason, actor, ts_event=halt.at_ns
    )
    if kill.command_id == state.start_halt_id:
        return  # applied before this restart; an operator may have resumed since
    state.start_halt_id = kill.command_id
    alert = Alert(
        alert_id=stable_id("trading_start_halted", kill.command_id),
        name="trading_start_halted",
        severity=AlertSeverity.CRITICAL,
        source="trading.risk_gate",
        subject=gate.account,
        message=f"trading starts HALTED ({actor}): {halt.reason}; resume: hfl resume --confirm",
        ts_event=halt.at_ns,
        ts_init=halt.at_ns,
    )
    state.pending += [audit, alert, *gate.on_control(kill)]
    LOG.warning(alert.message)


def finish_account(state: AccountState) -> list[object]:
    """At the end of a bounded input, book every fill still held (no later decision and
    no marker will come) and snapshot P&L with them."""
    out, state.pending = state.pending, []
    sync = state.sync
    if sync is None or not len(sync):
        return out
    last_ns = None
    for item in sync.drain():
        _apply(state, item, out)
        last_ns = item.ts_event if isinstance(item, Fill) else last_ns
    if last_ns is not None:
        out.append(state.gate.snapshot_pnl(last_ns))
        out.extend(state.gate.take_events())
    return out


def handle_account(
    state: AccountState, batch: list[AccountInput], journal: CommandJournal | None = None
) -> list[object]:
    """Hand each input to the gate: in arrival order, or in event time (`state.sync`).

    Returns decisions, orders, cancels, positions, P&L, risk metrics and trading-state
    changes (including those automatic triggers made), and in event time the gate's
    `OrdersSent` promise, any `gateway_lag` alert and the journal entries of operator
    commands, each written to `journal` before this returns.
    """
    out, state.pending = state.pending, []
    sync = state.sync
    for event in batch:
        match event:
            case FillsThrough():  # and OrderEventsThrough
                if sync is not None:
                    sync.mark(event)
            case Fill() | OrderEvent() if sync is not None:
                sync.add_report(event)
            case Signal() | Bar() | DriftDetected() if sync is not None:
                sync.hold(event, _event_time(event))
            case ControlCommand() | LimitCommand() if sync is not None:
                if state.commands.arrive(event.command_id, event):
                    _apply_live_command(state, sync, event, out, journal)
            case _:
                _apply(state, event, out)
    if sync is not None:
        _decide(state, sync, out, journal)
        _report_lag(state, sync, out)
        _promise(state, sync, out)
    return out


def _decide(
    state: AccountState, sync: FillSync[Held], out: list[object], journal: CommandJournal | None
) -> None:
    """Decide what the gateway's markers allow, each replayed command at its point and
    the live commands that waited for them right after the last."""
    commands = state.commands
    while True:
        decided = 0
        for item in sync.release(now_ns=time.time_ns(), max_items=commands.limit()):
            _apply(state, item, out)
            decided += not isinstance(item, Fill | OrderEvent)
        commands.count(decided)
        due = commands.due()
        for command, point in due:
            _apply(state, replace(command, ts_event=point.effective_ns), out)
        waited = commands.waiting()
        for command in waited:
            _apply_live_command(state, sync, command, out, journal)
        if not due and not waited:
            return


def _apply_live_command(
    state: AccountState,
    sync: FillSync[Held],
    command: Command,
    out: list[object],
    journal: CommandJournal | None,
) -> None:
    """Apply `command` now, at the gate's event-time clock (never before an order it
    promised the gateway), journaling where first: the entry is durable before any
    effect leaves (they leave when the batch returns).

    Raises:
        DeliveryFailedError: the entry was not acknowledged (the flow stops and replays).
    """
    if journal is None:
        raise InvariantViolation("an event-time risk gate applies commands only with a journal")
    clock = [t for t in (sync.clock_ns, state.promised_ns) if t is not None]
    effective_ns = max(clock) if clock else command.ts_event
    point = state.commands.applied(command.command_id, effective_ns)
    entry = journal_entry(state.gate.account, command, point)
    state.commands.written(journal.write(command.command_id, entry))
    _apply(state, replace(command, ts_event=effective_ns), out)
    out.append(entry)


def _apply(state: AccountState, event: AccountInput, out: list[object]) -> None:
    """Apply one input to the gate, appending what it causes to `out`."""
    gate = state.gate
    match event:
        case Signal():
            decision, order = gate.on_signal(event)
            out.append(decision)
            observe_decision(event.signal_id)
            log_event(LOG, f"signal {decision.outcome}", event, decision)
            if order is not None:
                out.append(order)
                for report in state.early.release(order.client_order_id):
                    if not gate.is_replayed_report(report):
                        _apply_report(gate, report, out)
            state.early.expire(event.instrument, event.ts_event)
        case Bar():
            gate.mark(event.instrument, event.close, event.ts_event)
            out.extend(gate.risk_metrics(event.ts_event, event.ts_init))
            if event.ts_init >= state.next_pnl_ns:
                out.append(gate.snapshot_pnl(event.ts_init))
                out.extend(gate.take_events())
                state.next_pnl_ns = (
                    event.ts_init - event.ts_init % state.pnl_interval_ns + state.pnl_interval_ns
                )
        case Fill() | OrderEvent() if gate.is_replayed_report(event):
            pass  # a restarted gateway re-emits what it reported since its snapshot
        case Fill() | OrderEvent() if not gate.knows_order(event.client_order_id):
            # Replayed after a crash, the order may not be decided again yet.
            state.early.park(event)
        case Fill() | OrderEvent():
            _apply_report(gate, event, out)
        case ControlCommand():
            out.extend(gate.on_control(event))
            log_event(LOG, f"control {event.action}", event, actor=event.actor)
        case LimitCommand():
            gate.set_limits(with_max_position(gate.limits, event.instrument, event.max_position))
            log_event(LOG, f"limit max_position={event.max_position}", event, actor=event.actor)
        case Alert():
            if (changed := gate.on_alert(event)) is not None:
                out.append(changed)
        case DriftDetected():
            if (changed := gate.on_drift(event)) is not None:
                out.append(changed)


def _event_time(event: Held) -> int:
    """When an item happens in event time: a bar when it closes."""
    if isinstance(event, Bar):
        return event.ts_event + event.interval_s * 1_000_000_000
    return event.ts_event


def _report_lag(state: AccountState, sync: FillSync[Held], out: list[object]) -> None:
    """Raise `gateway_lag` (and apply it: REDUCING by default) when decisions went on
    without the gateway's fills."""
    started = sync.lag_started()
    if started is None:
        return
    account = state.gate.account
    alert = Alert(
        alert_id=stable_id("gateway_lag", account, started),
        name="gateway_lag",
        severity=AlertSeverity.CRITICAL,
        source="trading.risk_gate",
        subject=account,
        message=(
            "no gateway progress marker covered the decision at event time "
            f"{started} within the fill_sync wait; deciding without the missing fills"
        ),
        ts_event=started,
        ts_init=started,
    )
    out.append(alert)
    LOG.warning(alert.message)
    if (changed := state.gate.on_alert(alert)) is not None:
        out.append(changed)


def _promise(state: AccountState, sync: FillSync[Held], out: list[object]) -> None:
    """Tell the gateway which orders it has all of, when that moved on."""
    through = sync.promise()
    if through is None or (state.promised_ns is not None and through <= state.promised_ns):
        return
    state.promised_ns = through
    account = state.gate.account
    out.append(
        OrdersSent(
            progress_id=stable_id("orders_sent", account, through),
            account=account,
            through_ns=through,
            ts_event=through,
            ts_init=through,
        )
    )


def _apply_report(gate: AccountGate, report: OrderReport, out: list[object]) -> None:
    if isinstance(report, Fill):
        out.append(gate.on_fill(report))
        out.extend(gate.take_events())
        log_event(LOG, "fill booked", report)
    else:
        gate.on_order_event(report)
