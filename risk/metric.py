"""The gate's risk figures as rows, each beside the limit it is held to."""

from __future__ import annotations

import math

from risk.domain import ids
from risk.domain.portfolio import RiskMetric
from risk.limit import AccountLimits


def limit_values(limits: AccountLimits) -> dict[str, float]:
    """Return each risk figure's name -> the account limit it is compared with."""
    return {
        "var_hist": limits.var_budget,
        "var_ewma": limits.var_budget,
        "cvar_hist": limits.cvar_budget,
        "cvar_ewma": limits.cvar_budget,
        "beta": limits.max_beta,
        "drawdown": limits.drawdown_hard,
        "daily_loss": limits.daily_loss,
        "open_orders": float(limits.max_open_orders),
        "order_rate": float(limits.max_orders_per_window),
        "fills_since_human": float(limits.max_fills_without_human),
    }


def metric_rows(
    account: str,
    figures: dict[str, float],
    limits: AccountLimits,
    *,
    ts_event: int,
    ts_init: int,
) -> list[RiskMetric]:
    """One `RiskMetric` per finite figure, with its limit (0 when it has none).

    Figures that are not finite (too little history, a flat series) are left out.
    """
    bounds = limit_values(limits)
    return [
        RiskMetric(
            metrics_id=ids.stable_id("risk_metric", account, name, ts_event),
            account=account,
            metric=name,
            value=value,
            limit_value=bounds.get(name, 0.0),
            ts_event=ts_event,
            ts_init=ts_init,
        )
        for name, value in figures.items()
        if math.isfinite(value)
    ]
