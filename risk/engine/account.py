"""One account's inputs through the risk gate: on arrival (journaled or not), or in event time.

Journaled (`state.order`, a `risk.fill_sync.InputOrder`; docs/reliability.md, chaos
R1-journal): every input is applied as it arrives, and per batch the keys of the
inputs applied are written in order to the `InputJournal` (sent before the batch is
applied, acknowledged before its effects leave); a resumed engine reads
the journal from the offset its snapshot keeps and applies the inputs Bytewax
delivers again in the journal's order, then goes on live. Nothing waits for the
gateway; a resume decides as the run before the crash did.

With event-time booking (`state.sync`, a `risk.fill_sync.FillSync`) fills and order
events are booked each `delay` after they happened: signals, bars and drift events
wait until the gateway's progress markers show those reports are in, so decisions,
positions, P&L and risk figures do not depend on how fast the gateway ran. The engine
announces which orders it has sent (`OrdersSent`) so the gateway can mark its
progress. If the gateway is down, a decision waits at most `max_wait` of wall time
(the `Clock`: a timer that only fires when the gateway fails); then trading goes on
without the missing fills, a `gateway_lag` alert is raised and applied (REDUCING by
default) until an operator resumes.

Operator commands in event time (`risk.command_log`): a command is applied the moment
it is read, before every decision not yet made (a kill is immediate), at the gate's
event-time clock; where (after how many decisions, at which event time) is written to
the `CommandJournal` before the batch carrying its effects is returned, and emitted as
an audit event. A resumed engine reads the journal from the offset its snapshot keeps
and applies each command replayed after the snapshot at the same point, so a replay
decides as the run before the crash did, wherever the crash fell.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from risk.command_log import CommandLog, CommandPoint
from risk.domain import (
    Alert,
    AlertSeverity,
    AuditEvent,
    Bar,
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
from risk.engine.port import Clock, Command, CommandJournal, InputJournal, Telemetry
from risk.fill_sync import FillSync, InputOrder
from risk.gate import AccountGate, InvariantViolation
from risk.limit import with_max_position

__all__ = ["AccountEngine", "AccountInput", "AccountState", "Command", "Held"]

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
Held = Signal | Bar | DriftDetected
"""What waits for the gateway's markers in event time: the trading flow's own events."""


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
    order: InputOrder[AccountInput] | None = None

    def settling(self) -> FillSync[Held] | InputOrder[AccountInput] | None:
        """What the end of a bounded run asks whether it settled (`dataflows.flows.run_end`):
        the fill sync in event time, the journal's replay when journaled, else None."""
        return self.sync if self.sync is not None else self.order


class AccountEngine:
    """Walk batches of one account's inputs through its gate (the state is passed in).

    The engine holds only its adapters; everything that must survive a restart is in
    the `AccountState`, which the caller snapshots. `journal` may be None only when
    booking in arrival order (commands then need no journal); `inputs` only when the
    state journals its input order (`state.order`).
    """

    __slots__ = ("_clock", "_inputs", "_journal", "_telemetry")

    def __init__(
        self,
        *,
        clock: Clock,
        journal: CommandJournal | None,
        telemetry: Telemetry,
        inputs: InputJournal | None = None,
    ) -> None:
        self._clock = clock
        self._journal = journal
        self._telemetry = telemetry
        self._inputs = inputs

    def resume(self, state: AccountState) -> None:
        """Place the commands the journal recorded after `state`'s snapshot (event time).

        Raises:
            TimeoutError, OSError: the journal could not be read; resuming without it
                could place a command elsewhere than before the crash; or the input
                journal could not be read (journaled order).
        """
        if state.order is not None:
            read = self._inputs_or_fail().read(state.gate.account, state.order.journal_from)
            state.order.replay(read.keys, read.end)
            self._telemetry.note(
                "input journal replay", inputs=len(read.keys), records=read.records
            )
            return
        if state.sync is None:
            return
        commands = state.commands
        entries = self._journal_or_fail().read(state.gate.account, commands.journal_from)
        commands.replay(entries.points, entries.end)

    def start_halted(self, state: AccountState, kill: ControlCommand, audit: AuditEvent) -> None:
        """Halt the account with `kill` (its `audit` event) before any input, once per halt.

        The audit event, a critical `trading_start_halted` alert, the state change and
        the cancels of working orders go out with the next batch. A restart does not
        apply the same halt again: an operator may have resumed since.
        """
        if kill.command_id == state.start_halt_id:
            return
        state.start_halt_id = kill.command_id
        alert = Alert(
            alert_id=stable_id("trading_start_halted", kill.command_id),
            name="trading_start_halted",
            severity=AlertSeverity.CRITICAL,
            source="trading.risk_gate",
            subject=state.gate.account,
            message=(
                f"trading starts HALTED ({kill.actor}): {kill.reason}; resume: hfl resume --confirm"
            ),
            ts_event=kill.ts_event,
            ts_init=kill.ts_init,
        )
        state.pending += [audit, alert, *state.gate.on_control(kill)]
        self._telemetry.warn(alert.message)

    def handle(self, state: AccountState, batch: list[AccountInput]) -> list[object]:
        """Hand each input to the gate: in arrival order, or in event time (`state.sync`).

        Returns decisions, orders, cancels, positions, P&L, risk metrics and
        trading-state changes (including those automatic triggers made), and in event
        time the gate's `OrdersSent` promise, any `gateway_lag` alert and the journal
        entries of operator commands, each written to the journal before this returns.
        """
        out, state.pending = state.pending, []
        if state.order is not None:
            self._in_journal_order(state, state.order, batch, out)
            return out
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
                        self._apply_live_command(state, sync, event, out)
                case _:
                    self._apply(state, event, out)
        if sync is not None:
            self._decide(state, sync, out)
            self._report_lag(state, sync, out)
            _promise(state, sync, out)
        return out

    def finish(self, state: AccountState) -> list[object]:
        """At the end of a bounded input, book every fill still held (no later decision
        and no marker will come) and snapshot P&L with them."""
        out, state.pending = state.pending, []
        sync = state.sync
        if sync is None or not len(sync):
            return out
        last_ns = None
        for item in sync.drain():
            self._apply(state, item, out)
            # A fill, or a bar (the last ones close at the end of the input): the last
            # P&L is marked to the last prices.
            stamp = item.ts_event if isinstance(item, Fill) else None
            stamp = item.ts_init if isinstance(item, Bar) else stamp
            if stamp is not None and (last_ns is None or stamp > last_ns):
                last_ns = stamp
        if last_ns is not None:
            out.append(state.gate.snapshot_pnl(last_ns))
            out.extend(state.gate.take_events())
        return out

    def _in_journal_order(
        self,
        state: AccountState,
        order: InputOrder[AccountInput],
        batch: list[AccountInput],
        out: list[object],
    ) -> None:
        """Apply the batch on arrival (after a resume: in the journal's order, then
        live), journaling the keys of the live inputs applied before returning.

        The live inputs' order is known before any is applied, so their record is sent
        first and its acknowledgement awaited only after the batch is applied, before
        its effects are returned: the write overlaps the gate's work, and still no
        output leaves before the order of the inputs that caused it is durable.
        """
        arrived = [(key, event) for event in batch if (key := input_key(event)) is not None]
        replayed, live = order.order(arrived)
        if order.stalled(bool(replayed), now_ns := self._clock.now_ns()):
            self._journal_gap(state, order.skip(), now_ns, out)
            more, live = order.order([])
            replayed += more
        ack = (
            self._inputs_or_fail().send(state.gate.account, [key for key, _ in live])
            if live
            else None
        )
        for event in replayed:
            self._apply_journaled(state, event, out)
        for _, event in live:
            self._apply_journaled(state, event, out)
        if ack is not None:
            order.written(ack.wait())
        _promise_decided(state, [*replayed, *(event for _, event in live)], out)

    def _apply_journaled(self, state: AccountState, event: AccountInput, out: list[object]) -> None:
        self._apply(state, event, out)
        if isinstance(event, Signal):
            state.commands.count(1)
        elif isinstance(event, ControlCommand | LimitCommand):
            point = CommandPoint(event.command_id, state.commands.decided, event.ts_event)
            out.append(self._inputs_or_fail().applied(state.gate.account, event, point))

    def _journal_gap(
        self, state: AccountState, missing: list[str], now_ns: int, out: list[object]
    ) -> None:
        """The replay waited too long for an input the journal lists (its topic lost
        it): go on without it, loudly."""
        account = state.gate.account
        alert = Alert(
            alert_id=stable_id("gate_journal_gap", account, *missing[:1]),
            name="gate_journal_gap",
            severity=AlertSeverity.CRITICAL,
            source="trading.risk_gate",
            subject=account,
            message=(
                f"{len(missing)} journaled inputs never came again on resume (first"
                f" {missing[0] if missing else '-'}); deciding on in arrival order"
            ),
            ts_event=now_ns,
            ts_init=now_ns,
        )
        out.append(alert)
        self._telemetry.warn(alert.message)

    def _inputs_or_fail(self) -> InputJournal:
        if self._inputs is None:
            msg = "a journaled risk gate needs its input journal"
            raise InvariantViolation(msg)
        return self._inputs

    def _journal_or_fail(self) -> CommandJournal:
        if self._journal is None:
            msg = "an event-time risk gate applies commands only with a journal"
            raise InvariantViolation(msg)
        return self._journal

    def _decide(self, state: AccountState, sync: FillSync[Held], out: list[object]) -> None:
        """Decide what the gateway's markers allow, each replayed command at its point and
        the live commands that waited for them right after the last."""
        commands = state.commands
        while True:
            decided = 0
            now_ns = self._clock.now_ns()
            for item in sync.release(now_ns=now_ns, max_items=commands.limit()):
                self._apply(state, item, out)
                decided += not isinstance(item, Fill | OrderEvent)
            commands.count(decided)
            due = commands.due()
            for command, point in due:
                self._apply(state, replace(command, ts_event=point.effective_ns), out)
            waited = commands.waiting()
            for command in waited:
                self._apply_live_command(state, sync, command, out)
            if not due and not waited:
                return

    def _apply_live_command(
        self, state: AccountState, sync: FillSync[Held], command: Command, out: list[object]
    ) -> None:
        """Apply `command` now, at the gate's event-time clock (never before an order it
        promised the gateway), journaling where first: the entry is durable before any
        effect leaves (they leave when the batch returns)."""
        journal = self._journal_or_fail()
        clock = [t for t in (sync.clock_ns, state.promised_ns) if t is not None]
        effective_ns = max(clock) if clock else command.ts_event
        point = state.commands.applied(command.command_id, effective_ns)
        offset, entry = journal.record(state.gate.account, command, point)
        state.commands.written(offset)
        self._apply(state, replace(command, ts_event=effective_ns), out)
        out.append(entry)

    def _apply(self, state: AccountState, event: AccountInput, out: list[object]) -> None:
        """Apply one input to the gate, appending what it causes to `out`."""
        gate = state.gate
        telemetry = self._telemetry
        match event:
            case Signal():
                decision, order = gate.on_signal(event)
                out.append(decision)
                telemetry.decided(event, decision)
                if order is not None:
                    out.append(order)
                    for report in state.early.release(order.client_order_id):
                        if not gate.is_replayed_report(report):
                            self._apply_report(gate, report, out)
                state.early.expire(event.instrument, event.ts_event)
            case Bar():
                gate.mark(event.instrument, event.close, event.ts_event)
                out.extend(gate.risk_metrics(event.ts_event, event.ts_init))
                # A bar closed by the end of the input (before its end) marks the last
                # price: the P&L at that time is snapshot again, marked to it.
                if event.ts_init >= state.next_pnl_ns or _event_time(event) < _bar_end(event):
                    out.append(gate.snapshot_pnl(event.ts_init))
                    out.extend(gate.take_events())
                    interval = state.pnl_interval_ns
                    state.next_pnl_ns = event.ts_init - event.ts_init % interval + interval
            case Fill() | OrderEvent() if gate.is_replayed_report(event):
                pass  # a restarted gateway re-emits what it reported since its snapshot
            case Fill() | OrderEvent() if not gate.knows_order(event.client_order_id):
                # Replayed after a crash, the order may not be decided again yet.
                state.early.park(event)
            case Fill() | OrderEvent():
                self._apply_report(gate, event, out)
            case ControlCommand():
                out.extend(gate.on_control(event))
                telemetry.note(f"control {event.action}", event, actor=event.actor)
            case LimitCommand():
                gate.set_limits(
                    with_max_position(gate.limits, event.instrument, event.max_position)
                )
                telemetry.note(f"limit max_position={event.max_position}", event, actor=event.actor)
            case Alert():
                if (changed := gate.on_alert(event)) is not None:
                    out.append(changed)
            case DriftDetected():
                if (changed := gate.on_drift(event)) is not None:
                    out.append(changed)

    def _report_lag(self, state: AccountState, sync: FillSync[Held], out: list[object]) -> None:
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
        self._telemetry.warn(alert.message)
        if (changed := state.gate.on_alert(alert)) is not None:
            out.append(changed)

    def _apply_report(self, gate: AccountGate, report: OrderReport, out: list[object]) -> None:
        if isinstance(report, Fill):
            out.append(gate.on_fill(report))
            out.extend(gate.take_events())
            self._telemetry.note("fill booked", report)
        else:
            gate.on_order_event(report)


def input_key(event: AccountInput) -> str | None:
    """The key the input journal records `event` by (None: progress markers, which
    nothing waits for when journaled)."""
    match event:
        case Signal():
            return "s" + event.signal_id
        case Fill():
            return "f" + event.fill_id
        case OrderEvent():
            return "e" + event.event_id
        case Bar():
            return f"b{event.instrument}@{event.interval_s}@{event.ts_event}"
        case ControlCommand() | LimitCommand():
            return "c" + event.command_id
        case Alert():
            return "a" + event.alert_id
        case DriftDetected():
            return "d" + event.drift_id
    return None


def _bar_end(bar: Bar) -> int:
    return bar.ts_event + bar.interval_s * 1_000_000_000


def _event_time(event: Held) -> int:
    """When an item happens in event time: a bar when it closes (its end; a bar closed
    at the end of the input, `BarBuilder.flush`, at its last tick, before its end)."""
    if isinstance(event, Bar):
        return min(_bar_end(event), event.ts_init)
    return event.ts_event


def _promise_decided(state: AccountState, applied: list[AccountInput], out: list[object]) -> None:
    """Journaled: promise the orders up to the latest signal decided (signals come in
    event-time order, as `FillSync.promise` assumes too), so the gateway still trims its
    tick buffers and marks its progress; nothing here waits for its markers."""
    times = [e.ts_event for e in applied if isinstance(e, Signal)]
    if times:
        _send_promise(state, max(times), out)


def _promise(state: AccountState, sync: FillSync[Held], out: list[object]) -> None:
    """Tell the gateway which orders it has all of, when that moved on."""
    through = sync.promise()
    if through is not None:
        _send_promise(state, through, out)


def _send_promise(state: AccountState, through: int, out: list[object]) -> None:
    if state.promised_ns is not None and through <= state.promised_ns:
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
