"""The account step of the trading flow: a thin shim over `risk.gate.AccountGate`."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dataflows.settings import AccountLimitSettings, LimitSettings, RiskSettings, Settings
from risk.domain import Alert, Bar, ControlCommand, DriftDetected, Fill, OrderEvent, Signal
from risk.early import EarlyReports, OrderReport, RecentIds
from risk.gate import AccountGate
from risk.limit import AccountLimits, LimitBook, RiskLimits
from risk.monitor import DEFAULT_SCENARIOS, RiskModelConfig, StressScenario
from risk.state import StatePolicy
from sinks.log import log_event
from sinks.metric import observe_decision

LOG = logging.getLogger("hfl.trading.account")

_NS_PER_MS = 1_000_000

AccountInput = Signal | Bar | Fill | OrderEvent | ControlCommand | Alert | DriftDetected


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
    """The gate, the next P&L snapshot time (event time), early and recent order reports."""

    gate: AccountGate
    pnl_interval_ns: int
    next_pnl_ns: int = 0
    early: EarlyReports = field(default_factory=EarlyReports)
    reports: RecentIds = field(default_factory=RecentIds)


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
    return AccountState(gate=gate, pnl_interval_ns=trading.pnl_interval_s * 1_000_000_000)


def handle_account(state: AccountState, batch: list[AccountInput]) -> list[object]:
    """Hand each input to the gate in arrival order.

    Returns decisions, orders, cancels, positions, P&L, risk metrics and trading-state
    changes (including those automatic triggers made).
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
                    for report in state.early.release(order.client_order_id):
                        _apply_report(gate, report, out)
            case Bar():
                gate.mark(event.instrument, event.close, event.ts_event)
                out.extend(gate.risk_metrics(event.ts_event, event.ts_init))
                if event.ts_init >= state.next_pnl_ns:
                    out.append(gate.snapshot_pnl(event.ts_init))
                    out.extend(gate.take_events())
                    state.next_pnl_ns = (
                        event.ts_init
                        - event.ts_init % state.pnl_interval_ns
                        + state.pnl_interval_ns
                    )
            case Fill() | OrderEvent() if not state.reports.add(_report_id(event)):
                pass  # the gateway resent it while replaying its last epoch
            case OrderEvent() if _forgotten(gate, event):
                pass  # its order finished before the gate's memory of orders ends
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
    return out


def _forgotten(gate: AccountGate, event: OrderEvent) -> bool:
    """An event of an order decided at or before the gate's event time that it no longer knows.

    Orders are decided in event-time order per instrument, so an order the gate has not
    decided yet (a replay after a crash) is later than the instrument's last signal; one
    at or before it was decided and has since finished and left the bounded memory of
    recent orders (its last fill can overtake its terminal event from another topic).
    """
    if gate.knows_order(event.client_order_id):
        return False
    decided_until = gate.reference_ts_event(event.instrument)
    return decided_until is not None and event.ts_event <= decided_until


def _report_id(report: OrderReport) -> str:
    return report.fill_id if isinstance(report, Fill) else report.event_id


def _apply_report(gate: AccountGate, report: OrderReport, out: list[object]) -> None:
    if isinstance(report, Fill):
        out.append(gate.on_fill(report))
        out.extend(gate.take_events())
        log_event(LOG, "fill booked", report)
    else:
        gate.on_order_event(report)
