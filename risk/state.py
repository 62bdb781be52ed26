"""Trading states of one account and its instruments: ACTIVE, REDUCING, HALTED.

The account has a state and each instrument may have its own; an order on an instrument
is held to the stricter of the two. Operators set states with control commands (kill,
reduce, resume); automatic triggers (drift, alerts, drawdown) only ever escalate, so a
stale-data alert can never lift a kill. Only RESUME lowers a state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from risk.domain.control import TradingStateChanged
from risk.domain.enums import TradingState
from risk.domain.ids import stable_id

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
