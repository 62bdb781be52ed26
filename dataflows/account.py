"""The account step of the trading flow: a thin shim over `risk.gate.AccountGate`."""

from __future__ import annotations

from dataclasses import dataclass, field

from dataflows.settings import LimitSettings, Settings
from risk.domain import Bar, ControlCommand, Fill, OrderEvent, Signal
from risk.early import EarlyReports, OrderReport, RecentIds
from risk.gate import AccountGate
from risk.limit import LimitBook, RiskLimits

AccountInput = Signal | Bar | Fill | OrderEvent | ControlCommand


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
    """The gate, the next P&L snapshot time (event time), early reports, recent fill ids."""

    gate: AccountGate
    pnl_interval_ns: int
    next_pnl_ns: int = 0
    early: EarlyReports = field(default_factory=EarlyReports)
    fills: RecentIds = field(default_factory=RecentIds)


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
    )
    return AccountState(gate=gate, pnl_interval_ns=trading.pnl_interval_s * 1_000_000_000)


def handle_account(state: AccountState, batch: list[AccountInput]) -> list[object]:
    """Hand each input to the gate in arrival order; return decisions, orders, positions, P&L."""
    gate = state.gate
    out: list[object] = []
    for event in batch:
        match event:
            case Signal():
                decision, order = gate.on_signal(event)
                out.append(decision)
                if order is not None:
                    out.append(order)
                    for report in state.early.release(order.client_order_id):
                        _apply_report(gate, report, out)
            case Bar():
                gate.mark(event.instrument, event.close)
                if event.ts_init >= state.next_pnl_ns:
                    out.append(gate.snapshot_pnl(event.ts_init))
                    state.next_pnl_ns = (
                        event.ts_init
                        - event.ts_init % state.pnl_interval_ns
                        + state.pnl_interval_ns
                    )
            case Fill() if not state.fills.add(event.fill_id):
                pass  # the gateway resent it while replaying its last epoch
            case Fill() | OrderEvent() if not gate.knows_order(event.client_order_id):
                # Replayed after a crash, the order may not be decided again yet.
                state.early.park(event)
            case Fill() | OrderEvent():
                _apply_report(gate, event, out)
            case ControlCommand():
                gate.on_control(event)
    return out


def _apply_report(gate: AccountGate, report: OrderReport, out: list[object]) -> None:
    if isinstance(report, Fill):
        out.append(gate.on_fill(report))
    else:
        gate.on_order_event(report)
