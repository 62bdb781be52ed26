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
as a `control_applied` audit event on `hfl.audit`. A trading flow resuming from a
snapshot reads that journal and applies each command replayed after the snapshot at
the same point, so a replay decides as the run before the crash did.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from connectors.codec import encode, loads
from connectors.topic import AUDIT
from dataflows.control import control_events
from dataflows.settings import (
    AccountLimitSettings,
    LimitSettings,
    RiskSettings,
    Settings,
    StartHaltSettings,
)
from dataflows.shim import Delegate, Snapshot, restore
from risk.command_log import CommandLog, CommandPoint
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
    OrderEvent,
    OrderEventsThrough,
    OrdersSent,
    Signal,
)
from risk.domain.ids import stable_id
from risk.early import EarlyReports, OrderReport
from risk.fill_sync import FillSync, FillSyncMode
from risk.gate import AccountGate
from risk.limit import AccountLimits, LimitBook, RiskLimits
from risk.monitor import DEFAULT_SCENARIOS, RiskModelConfig, StressScenario
from risk.state import StatePolicy
from sinks.log import log_event
from sinks.metric import observe_decision

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
    | Alert
    | DriftDetected
)
# What waits for the gateway's markers in event-time mode: the trading flow's own events.
Held = Signal | Bar | DriftDetected


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
    commands: CommandLog[ControlCommand] = field(default_factory=CommandLog)


def make_account_state(settings: Settings) -> AccountState:
    """A fresh gate for the configured account."""
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
    sync = None
    if risk.fill_sync is FillSyncMode.EVENT_TIME:
        delay_ns, max_wait_ns = (
            risk.fill_sync_delay_ms * _NS_PER_MS,
            risk.fill_sync_max_wait_ms * _NS_PER_MS,
        )
        sync = FillSync[Held](trading.instruments, delay_ns=delay_ns, max_wait_ns=max_wait_ns)
    return AccountState(
        gate=gate, pnl_interval_ns=trading.pnl_interval_s * 1_000_000_000, sync=sync
    )


AccountLogic = Delegate[AccountInput, object, AccountState]
ACCOUNT_STATE_VERSION = 2  # snapshot version of AccountState (dataflows.shim): bump on change
Journal = Callable[[Settings], list[CommandPoint]]
Observer = Callable[[AccountState], None]

CONTROL_APPLIED = "control_applied"


def account_logic(
    settings: Settings, journal: Journal | None = None, observe: Observer | None = None
) -> Callable[[Snapshot | None], AccountLogic]:
    """The risk gate's `stateful_batch` builder: a fresh or resumed gate, halted before
    any input when `risk.start_halted` says so, booking held fills at the end of input.

    A resumed gate booking in event time places replayed operator commands where the
    `journal` (default: `hfl.audit`) says they were applied. `observe` sees the state
    as built and after every batch (the end of a bounded run, `dataflows.run_end`).
    """
    handle = handle_account if observe is None else _observed(observe)
    halt = settings.risk.start_halted

    def build(resume_state: Snapshot | None) -> AccountLogic:
        if resume_state is None:
            state = make_account_state(settings)
        else:
            state = restore(resume_state, "trading.risk_gate", ACCOUNT_STATE_VERSION)  # type: ignore[assignment]
            if state.sync is not None:
                state.commands.replay((journal or read_journal)(settings))
        apply_start_halt(state, halt)
        if observe is not None:
            observe(state)
        return Delegate(state, handle, ACCOUNT_STATE_VERSION, finish_account)

    return build


def _observed(observe: Observer) -> Callable[[AccountState, list[AccountInput]], list[object]]:
    def handle(state: AccountState, batch: list[AccountInput]) -> list[object]:
        out = handle_account(state, batch)
        observe(state)
        return out

    return handle


def read_journal(settings: Settings) -> list[CommandPoint]:
    """Where the gate applied each operator command, from its journal on `hfl.audit`.

    Raises:
        TimeoutError, OSError: the journal could not be read; resuming without it could
            place a command elsewhere than before the crash, so the flow stops.
    """
    from dataflows.reconcile import read_log  # only a resume pays for its imports

    kafka, account = settings.kafka, settings.trading.account
    records = read_log(kafka.bootstrap, kafka.topic_prefix + AUDIT, timeout_s=10)
    points = []
    for record in records:
        if record["action"] == CONTROL_APPLIED and record["subject"] == account:
            detail = loads(record["detail"].encode())
            point = CommandPoint(
                detail["command_id"], detail["after_decisions"], detail["effective_ns"]
            )
            points.append(point)
    return points


def journal_entry(account: str, command: ControlCommand, point: CommandPoint) -> AuditEvent:
    """The audit event saying where the gate applied `command` (see `read_journal`)."""
    detail = {
        "command_id": point.command_id,
        "after_decisions": point.after_decisions,
        "effective_ns": point.effective_ns,
    }
    return AuditEvent(
        audit_id=stable_id("audit", CONTROL_APPLIED, command.command_id),
        actor="trading.risk_gate",
        action=CONTROL_APPLIED,
        subject=account,
        reason=f"{command.action} by {command.actor}: {command.reason}",
        detail=encode(detail).decode(),
        ts_event=point.effective_ns,
        ts_init=point.effective_ns,
    )


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


def handle_account(state: AccountState, batch: list[AccountInput]) -> list[object]:
    """Hand each input to the gate: in arrival order, or in event time (`state.sync`).

    Returns decisions, orders, cancels, positions, P&L, risk metrics and trading-state
    changes (including those automatic triggers made), and in event time the gate's
    `OrdersSent` promise and any `gateway_lag` alert.
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
            case ControlCommand() if sync is not None:
                if state.commands.arrive(event.command_id, event):
                    _apply_live_command(state, sync, event, out)
            case _:
                _apply(state, event, out)
    if sync is not None:
        _decide(state, sync, out)
        _report_lag(state, sync, out)
        _promise(state, sync, out)
    return out


def _decide(state: AccountState, sync: FillSync[Held], out: list[object]) -> None:
    """Decide what the gateway's markers allow, each replayed command at its point."""
    commands = state.commands
    while True:
        decided = 0
        for item in sync.release(now_ns=time.time_ns(), max_items=commands.limit()):
            _apply(state, item, out)
            decided += not isinstance(item, Fill | OrderEvent)
        commands.count(decided)
        due = commands.due()
        if not due:
            return
        for command, point in due:
            _apply(state, replace(command, ts_event=point.effective_ns), out)


def _apply_live_command(
    state: AccountState, sync: FillSync[Held], command: ControlCommand, out: list[object]
) -> None:
    """Apply `command` now, at the gate's event-time clock (never before an order it
    promised the gateway), and journal where."""
    clock = [t for t in (sync.clock_ns, state.promised_ns) if t is not None]
    effective_ns = max(clock) if clock else command.ts_event
    point = state.commands.applied(command.command_id, effective_ns)
    _apply(state, replace(command, ts_event=effective_ns), out)
    out.append(journal_entry(state.gate.account, command, point))


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
