"""Trading states of one account and its instruments: ACTIVE, REDUCING, HALTED.

The account has a state and each instrument may have its own; an order on an instrument
is held to the stricter of the two. Operators set states with control commands (kill,
reduce, resume); automatic triggers (drift, alerts, drawdown) only ever escalate, so a
stale-data alert can never lift a kill. Only RESUME lowers a state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from risk.domain.control import Alert, ControlCommand, TradingStateChanged
from risk.domain.enums import ControlAction, TradingState
from risk.domain.ids import stable_id
from risk.domain.model import DriftDetected
from risk.domain.order import Fill
from risk.drawdown import DrawdownGuard
from risk.limit import AccountLimits

ACCOUNT_WIDE = ""
_ACTIVE = TradingState.ACTIVE  # read per signal; a module global is cheaper (see risk.gate)
"""The scope key (and `TradingStateChanged.instrument`) meaning the whole account."""


def default_alert_states() -> dict[str, TradingState]:
    """Return the default alert name -> state map (the names issues' producers use)."""
    return {
        "persist_lag": TradingState.REDUCING,
        "dlq_rate": TradingState.REDUCING,
        "stale_data": TradingState.REDUCING,
        "delivery_failure": TradingState.HALTED,
        "gateway_lag": TradingState.REDUCING,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class StatePolicy:
    """Which automatic triggers move an account or instrument to which state.

    Attributes:
        drift_state: State an instrument enters when a drift detector fires for it;
            None ignores drift.
        alert_states: Alert name -> state it triggers. Alerts with other names are
            ignored.
    """

    drift_state: TradingState | None = TradingState.REDUCING
    # A plain dict (not MappingProxyType) so the policy pickles into Bytewax snapshots.
    alert_states: dict[str, TradingState] = field(default_factory=default_alert_states)


class TradingStates:
    """The trading states of one account: account-wide plus per-instrument overrides.

    Only non-ACTIVE scopes are stored, so the state is bounded by the instruments that
    were ever restricted. Each stored scope remembers the trigger that set it ("kill",
    "drift", an alert name...), which the gate reports in its denials.

    >>> states = TradingStates("acc")
    >>> states.state("AAPL")
    <TradingState.ACTIVE: 'active'>
    >>> event = states.set("AAPL", TradingState.REDUCING, trigger="drift", reason="adwin",
    ...                    ts_event=1, ts_init=1)
    >>> event.previous, event.state, states.state("AAPL"), states.state("MSFT")
    (<TradingState.ACTIVE: 'active'>, <TradingState.REDUCING: 'reducing'>, \
<TradingState.REDUCING: 'reducing'>, <TradingState.ACTIVE: 'active'>)
    """

    __slots__ = ("_states", "_triggers", "account")

    def __init__(self, account: str) -> None:
        self.account = account
        self._states: dict[str, TradingState] = {}
        self._triggers: dict[str, str] = {}

    def own_state(self, scope: str) -> TradingState:
        """Return the state set on `scope` itself (an instrument, or ACCOUNT_WIDE)."""
        return self._states.get(scope, TradingState.ACTIVE)

    def state(self, instrument: str) -> TradingState:
        """Return the state orders on `instrument` are held to: the stricter one."""
        states = self._states
        if not states:
            return _ACTIVE
        account = states.get(ACCOUNT_WIDE, _ACTIVE)
        own = states.get(instrument, _ACTIVE)
        return own if own.severity > account.severity else account

    def trigger(self, instrument: str) -> str:
        """Return what set the state `state(instrument)` reports ("" when ACTIVE)."""
        account = self.own_state(ACCOUNT_WIDE)
        own = self.own_state(instrument)
        scope = instrument if own.severity > account.severity else ACCOUNT_WIDE
        return self._triggers.get(scope, "")

    def restricted(self) -> dict[str, TradingState]:
        """Return every scope that is not ACTIVE and its state."""
        return dict(self._states)

    def set(
        self,
        scope: str,
        state: TradingState,
        *,
        trigger: str,
        reason: str,
        ts_event: int,
        ts_init: int,
    ) -> TradingStateChanged | None:
        """Put `scope` in `state`; return the event, or None when the state is unchanged.

        An unchanged state still takes the new trigger (a kill of an account halted by
        its drawdown is then reported as the kill switch).
        """
        previous = self.own_state(scope)
        if previous is state:
            if scope in self._triggers:
                self._triggers[scope] = trigger
            return None
        if state is TradingState.ACTIVE:
            del self._states[scope]
            del self._triggers[scope]
        else:
            self._states[scope] = state
            self._triggers[scope] = trigger
        return TradingStateChanged(
            event_id=stable_id("trading_state", self.account, scope, state, trigger, ts_event),
            account=self.account,
            instrument=scope,
            state=state,
            previous=previous,
            trigger=trigger,
            reason=reason,
            ts_event=ts_event,
            ts_init=ts_init,
        )

    def escalate(
        self,
        scope: str,
        state: TradingState,
        *,
        trigger: str,
        reason: str,
        ts_event: int,
        ts_init: int,
    ) -> TradingStateChanged | None:
        """Like `set`, but only towards a stricter state (automatic triggers)."""
        if state.severity <= self.own_state(scope).severity:
            return None
        return self.set(
            scope, state, trigger=trigger, reason=reason, ts_event=ts_event, ts_init=ts_init
        )

    def resume_all(
        self, *, trigger: str, reason: str, ts_event: int, ts_init: int
    ) -> list[TradingStateChanged]:
        """Return every scope to ACTIVE (account first, then instruments by name)."""
        scopes = sorted(self._states)
        events = [
            self.set(
                scope,
                TradingState.ACTIVE,
                trigger=trigger,
                reason=reason,
                ts_event=ts_event,
                ts_init=ts_init,
            )
            for scope in scopes
        ]
        return [event for event in events if event is not None]


_STATE_BY_ACTION = {
    ControlAction.KILL: TradingState.HALTED,
    ControlAction.REDUCE: TradingState.REDUCING,
    ControlAction.RESUME: TradingState.ACTIVE,
}


class TradingControl:
    """What moves an account's trading states: operator commands and automatic triggers.

    Operators kill, reduce and resume (`command`); drift (`on_drift`), alerts
    (`on_alert`), the drawdown and daily-loss guard (`on_equity`) and the
    repeated-execution throttle (`count_fill`) escalate as the `StatePolicy` and the
    account limits say. Changes made by `on_equity` and `count_fill` wait in
    `take_events` (they happen inside other work); the others are returned.
    """

    __slots__ = (
        "_outbox",
        "_policy",
        "drawdown",
        "fills_since_human",
        "last_control",
        "states",
    )

    def __init__(self, account: str, policy: StatePolicy, limits: AccountLimits) -> None:
        self.states = TradingStates(account)
        self._policy = policy
        self.last_control: ControlCommand | None = None
        self.fills_since_human = 0
        self.drawdown = DrawdownGuard(
            soft=limits.drawdown_soft, hard=limits.drawdown_hard, daily_loss=limits.daily_loss
        )
        self._outbox: list[TradingStateChanged] = []

    def command(self, command: ControlCommand) -> list[TradingStateChanged]:
        """Apply the state part of an operator's kill, reduce or resume; return the changes.

        Any command counts as the operator's attention: the repeated-execution count
        starts again. RESUME of the account returns every scope to ACTIVE.
        """
        self.last_control = command
        self.fills_since_human = 0
        scope = command.instrument
        reason = f"{command.actor}: {command.reason}"
        trigger, ts_event, ts_init = command.action.value, command.ts_event, command.ts_init
        if command.action is ControlAction.RESUME and scope == ACCOUNT_WIDE:
            return self.states.resume_all(
                trigger=trigger, reason=reason, ts_event=ts_event, ts_init=ts_init
            )
        changed = self.states.set(
            scope,
            _STATE_BY_ACTION[command.action],
            trigger=trigger,
            reason=reason,
            ts_event=ts_event,
            ts_init=ts_init,
        )
        return [] if changed is None else [changed]

    def on_drift(self, event: DriftDetected) -> TradingStateChanged | None:
        """Restrict the drifting instrument as the policy says; return the change, if any."""
        state = self._policy.drift_state
        if state is None:
            return None
        return self.states.escalate(
            event.instrument,
            state,
            trigger="drift",
            reason=f"{event.model} {event.detector} on {event.stream} = {event.value!r}",
            ts_event=event.ts_event,
            ts_init=event.ts_init,
        )

    def on_alert(self, alert: Alert, *, traded: bool) -> TradingStateChanged | None:
        """Escalate the state the policy maps `alert.name` to; return the change, if any.

        The subject picks the scope: one of our instruments (`traded`) restricts that
        instrument; our account, "" or a topic (a name with a dot, e.g. "hfl.fills")
        restricts the whole account. Any other subject (another account) and unmapped
        names are ignored.
        """
        state = self._policy.alert_states.get(alert.name)
        subject = alert.subject
        if state is None:
            return None
        if traded:
            scope = subject
        elif subject in (self.states.account, ACCOUNT_WIDE) or "." in subject:
            scope = ACCOUNT_WIDE
        else:
            return None
        return self.states.escalate(
            scope,
            state,
            trigger=alert.name,
            reason=f"{alert.severity} from {alert.source}: {alert.message}",
            ts_event=alert.ts_event,
            ts_init=alert.ts_init,
        )

    def count_fill(self, fill: Fill, limit: int) -> None:
        """Halt after `limit` fills without an operator command (repeated execution).

        A `limit` of 0 never halts.
        """
        self.fills_since_human += 1
        if limit and self.fills_since_human >= limit:
            self._emit(
                self.states.escalate(
                    ACCOUNT_WIDE,
                    TradingState.HALTED,
                    trigger="execution_throttle",
                    reason=f"{self.fills_since_human} fills without an operator command",
                    ts_event=fill.ts_event,
                    ts_init=fill.ts_init,
                )
            )

    def on_equity(self, equity: float, ts_event: int, ts_init: int) -> None:
        """Feed the drawdown and daily-loss guard; escalate as it says."""
        state, trigger = self.drawdown.update(equity, ts_event)
        if state is None:
            return
        reason = f"equity {equity:.2f}, high-water mark {self.drawdown.high_water_mark:.2f}"
        self._emit(
            self.states.escalate(
                ACCOUNT_WIDE,
                state,
                trigger=trigger,
                reason=reason,
                ts_event=ts_event,
                ts_init=ts_init,
            )
        )

    def take_events(self) -> list[TradingStateChanged]:
        """Return and forget the state changes automatic triggers made since last asked."""
        events, self._outbox = self._outbox, []
        return events

    def _emit(self, changed: TradingStateChanged | None) -> None:
        if changed is not None:
            self._outbox.append(changed)
