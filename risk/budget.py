"""Account-level pre-trade controls: throttles, book exposure and portfolio-risk budgets.

Like `risk.pretrade`, each `check_*` returns a `Denial` or None and reads only the
numbers it is given. The exposure and risk checks deny only orders that increase risk
(the caller decides that with `risk.pretrade.reduces_position`), and the budget checks
deny only when the post-trade figure is both over budget and worse than before, so a
book that is over a budget can always trade back within it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from risk.domain.enums import DenialReason
from risk.domain.money import at_most
from risk.limit import AccountLimits, RiskLimits
from risk.monitor import PostTrade
from risk.pretrade import Denial


class BookExposure(NamedTuple):
    """The book's worst-case exposure once an order is counted (floats, money)."""

    net: float
    """Net exposure: every working order on the order's side filled, the others canceled."""
    instrument_value: float
    """The order's instrument's worst-case position times its reference."""
    group_value: float
    """Gross worst-case value of the instrument's group (0 without a group)."""


def check_order_rate(allowed: bool, limits: AccountLimits) -> Denial | None:
    """Deny when the sliding-window order-rate throttle is full."""
    if allowed:
        return None
    return Denial(
        reason=DenialReason.ORDER_RATE,
        detail=(
            f"{limits.max_orders_per_window} orders already approved in the last "
            f"{limits.order_window_ns} ns"
        ),
    )


def check_open_orders(open_orders: int, limits: AccountLimits) -> Denial | None:
    """Deny a new order while the account already has the most working orders allowed."""
    if open_orders < limits.max_open_orders:
        return None
    return Denial(
        reason=DenialReason.MAX_OPEN_ORDERS,
        detail=f"{open_orders} working orders >= limit {limits.max_open_orders}",
    )


def check_duplicate(client_order_id: str, seen: Callable[[str], bool]) -> Denial | None:
    """Deny an order whose client order id was already used (a signal seen twice)."""
    if not seen(client_order_id):
        return None
    return Denial(
        reason=DenialReason.DUPLICATE_ORDER_ID,
        detail=f"client order id {client_order_id} already used",
    )


def check_self_match(crosses_own_order: bool) -> Denial | None:
    """Deny an order that could trade against one of our own working orders."""
    if not crosses_own_order:
        return None
    return Denial(
        reason=DenialReason.SELF_MATCH,
        detail="would cross our own working order on the other side",
    )


def check_order_flow(
    client_order_id: str,
    seen: Callable[[str], bool],
    *,
    allowed: bool,
    open_orders: int,
    crosses_own_order: bool,
    limits: AccountLimits,
) -> Denial | None:
    """Duplicate id, order rate, open orders and self-match, in that order; first denial wins.

    Their four pass conditions are tested at once first: nearly every order passes, and
    the gate runs this per signal.
    """
    if (
        allowed
        and open_orders < limits.max_open_orders
        and not crosses_own_order
        and not seen(client_order_id)
    ):
        return None
    return (
        check_duplicate(client_order_id, seen)
        or check_order_rate(allowed, limits)
        or check_open_orders(open_orders, limits)
        or check_self_match(crosses_own_order)
    )


def check_net_exposure(net_after: float, limits: AccountLimits) -> Denial | None:
    """Deny when the worst-case net exposure after the order exceeds the limit."""
    if at_most(abs(net_after), limits.max_net_exposure):
        return None
    return Denial(
        reason=DenialReason.MAX_NET_EXPOSURE,
        detail=f"net exposure {net_after:.2f} beyond ±{limits.max_net_exposure}",
    )


def check_concentration(value_after: float, equity: float, limits: RiskLimits) -> Denial | None:
    """Deny when the instrument's worst-case value after the order is too large a share."""
    share = _share(value_after, equity)
    if share <= limits.max_concentration:
        return None
    return Denial(
        reason=DenialReason.CONCENTRATION,
        detail=f"position is {share:.2%} of equity > {limits.max_concentration:.2%}",
    )


def check_group_concentration(
    group: str, value_after: float, equity: float, limits: AccountLimits
) -> Denial | None:
    """Deny when the instrument's group's worst-case gross value is too large a share."""
    share = _share(value_after, equity)
    if share <= limits.max_group_concentration:
        return None
    return Denial(
        reason=DenialReason.GROUP_CONCENTRATION,
        detail=f"group {group} is {share:.2%} of equity > {limits.max_group_concentration:.2%}",
    )


def check_volatility(volatility: float | None, limits: RiskLimits) -> Denial | None:
    """Deny when the instrument's realised volatility exceeds the limit (deny mode)."""
    if volatility is None or volatility <= limits.max_volatility or limits.scale_on_volatility:
        return None
    return Denial(
        reason=DenialReason.VOLATILITY,
        detail=f"realised volatility {volatility:.2%} > limit {limits.max_volatility:.2%}",
    )


def check_correlation(signed_correlation: float | None, limits: RiskLimits) -> Denial | None:
    """Deny when the order moves with the rest of the book more than the limit allows.

    `signed_correlation` is the instrument's correlation with the rest of the book
    times the order's side: buying something that moves with the book, or selling
    something that moves against it, adds to the book's risk.
    """
    if signed_correlation is None or signed_correlation <= limits.max_correlation:
        return None
    return Denial(
        reason=DenialReason.CORRELATION,
        detail=f"correlation with the book {signed_correlation:.3f} > {limits.max_correlation}",
    )


def check_exposure(
    exposure: BookExposure,
    equity: float,
    *,
    volatility: float | None,
    signed_correlation: float | None,
    limits: RiskLimits,
    account: AccountLimits,
) -> Denial | None:
    """Net exposure, concentration, group concentration, volatility and correlation, in
    that order, for an order that increases risk; first denial wins.

    Their pass conditions are tested in one expression first, exactly as the checks
    state them (nearly every order passes; the gate runs this per signal); only when
    one fails do the checks run one by one to name it.
    """
    net_after, value_after, group_after = exposure
    group = limits.group
    if (
        at_most(abs(net_after), account.max_net_exposure)
        and equity > 0
        and abs(value_after) / equity <= limits.max_concentration
        and (not group or abs(group_after) / equity <= account.max_group_concentration)
        and (
            volatility is None or volatility <= limits.max_volatility or limits.scale_on_volatility
        )
        and (signed_correlation is None or signed_correlation <= limits.max_correlation)
    ):
        return None
    return (
        check_net_exposure(net_after, account)
        or check_concentration(value_after, equity, limits)
        or (check_group_concentration(group, group_after, equity, account) if group else None)
        or check_volatility(volatility, limits)
        or check_correlation(signed_correlation, limits)
    )


def check_risk_budgets(
    post: PostTrade | None,
    before: Callable[[], PostTrade | None],
    equity: float,
    limits: AccountLimits,
) -> Denial | None:
    """Deny when post-trade beta, VaR or CVaR (historical or EWMA) breaks its budget.

    `before` is only called when a figure is over budget, to let orders through that
    make an over-budget book better.
    """
    if post is None:
        return None
    base = equity if equity > 0 else math.nan
    if (
        abs(post.beta_value) <= limits.max_beta * base
        and max(post.var_hist, post.var_ewma) <= limits.var_budget * base
        and max(post.cvar_hist, post.cvar_ewma) <= limits.cvar_budget * base
    ):
        return None  # the common case, without building the report below
    candidates = (
        (DenialReason.BETA, "beta", abs(post.beta_value) / base, limits.max_beta),
        (DenialReason.VAR_BUDGET, "historical VaR", post.var_hist / base, limits.var_budget),
        (DenialReason.VAR_BUDGET, "EWMA VaR", post.var_ewma / base, limits.var_budget),
        (DenialReason.CVAR_BUDGET, "historical CVaR", post.cvar_hist / base, limits.cvar_budget),
        (DenialReason.CVAR_BUDGET, "EWMA CVaR", post.cvar_ewma / base, limits.cvar_budget),
    )
    current: PostTrade | None = None
    for reason, name, value, budget in candidates:
        if not value > budget:
            continue
        current = current or before()
        if current is not None and value <= _figure(current, name) / base:
            continue
        return Denial(reason=reason, detail=f"post-trade {name} {value:.4f} > budget {budget}")
    return None


def _figure(figures: PostTrade, name: str) -> float:
    return {
        "beta": abs(figures.beta_value),
        "historical VaR": figures.var_hist,
        "EWMA VaR": figures.var_ewma,
        "historical CVaR": figures.cvar_hist,
        "EWMA CVaR": figures.cvar_ewma,
    }[name]


def _share(value: float, equity: float) -> float:
    return abs(value) / equity if equity > 0 else math.inf
