"""The account step of the trading flow: a thin shim over `risk.gate.AccountGate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from dataflows.settings import LimitSettings, Settings
from risk.domain import Alert, Bar, ControlCommand, DriftDetected, Fill, OrderEvent, Signal
from risk.gate import AccountGate
from risk.limit import LimitBook, RiskLimits
from risk.state import StatePolicy
from sinks.log import log_event
from sinks.metric import observe_decision

LOG = logging.getLogger("hfl.trading.account")

AccountInput = Signal | Bar | Fill | OrderEvent | ControlCommand | Alert | DriftDetected


def risk_limits(limits: LimitSettings) -> RiskLimits:
    """Translate configured limits into the gate's limit type."""
    return RiskLimits(
        max_order_quantity=limits.max_order_quantity,
        max_order_notional=limits.max_order_notional,
        max_position=limits.max_position,
        max_gross_exposure=limits.max_gross_exposure,
        price_collar_pct=limits.price_collar_pct,
        max_reference_age_ns=limits.max_reference_age_ms * 1_000_000,
    )


@dataclass(slots=True)
class AccountState:
    """The gate plus when the last P&L snapshot was taken (event time)."""

    gate: AccountGate
    pnl_interval_ns: int
    next_pnl_ns: int = 0


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
    )
    return AccountState(gate=gate, pnl_interval_ns=trading.pnl_interval_s * 1_000_000_000)


def handle_account(state: AccountState, batch: list[AccountInput]) -> list[object]:
    """Hand each input to the gate in arrival order.

    Returns decisions, orders, cancels, positions, P&L and trading-state changes.
    """
    gate = state.gate
    out: list[object] = []
    for event in batch:
        match event:
            case Signal():
                decision, order = gate.on_signal(event)
                out.append(decision)
                observe_decision(event.signal_id)
                log_event(LOG, f"signal {decision.outcome}", event, decision)
                if order is not None:
                    out.append(order)
            case Bar():
                gate.mark(event.instrument, event.close)
                if event.ts_init >= state.next_pnl_ns:
                    out.append(gate.snapshot_pnl(event.ts_init))
                    state.next_pnl_ns = (
                        event.ts_init
                        - event.ts_init % state.pnl_interval_ns
                        + state.pnl_interval_ns
                    )
            case Fill():
                out.append(gate.on_fill(event))
                log_event(LOG, "fill booked", event)
            case OrderEvent():
                gate.on_order_event(event)
            case ControlCommand():
                out.extend(gate.on_control(event))
                log_event(LOG, f"control {event.action}", event, actor=event.actor)
            case Alert():
                if (changed := gate.on_alert(event)) is not None:
                    out.append(changed)
            case DriftDetected():
                if (changed := gate.on_drift(event)) is not None:
                    out.append(changed)
    return out
