"""PortfolioRisk: sampled returns, scheduled figures and post-trade VaR on real prices.

Prices are rebuilt from River's SP500Stocks daily returns and fed one per stock per day;
with daily samples (one period per day) the book's figures must equal empyrical on the
same book P&L series within 1e-9 relative.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from river.datasets import SP500Stocks

from risk.monitor import PortfolioRisk, RiskModelConfig, StressScenario

REL = 1e-9
DAY_NS = 86_400 * 1_000_000_000
EQUITY = 1_000_000.0
DAILY = RiskModelConfig(
    window=250,
    min_samples=30,
    sample_interval_ns=DAY_NS,
    periods_per_day=1.0,
    recompute_interval_ns=DAY_NS,
    scenarios=(
        StressScenario(name="market_down_10", market_move=-0.10),
        StressScenario(name="aapl_crash", shocks={"AAPL": -0.3, "*": -0.01}),
    ),
)


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    rows = [x for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return pd.DataFrame(rows) / 100.0


@pytest.fixture(scope="module")
def quantities(returns: pd.DataFrame) -> dict[str, float]:
    return {name: (i - 3) * 100.0 for i, name in enumerate(returns.columns)}


def feed(returns: pd.DataFrame, quantities: dict[str, float]) -> tuple[PortfolioRisk, np.ndarray]:
    """Feed daily prices; return the risk object and the final prices."""
    prices = 100.0 * np.cumprod(1.0 + returns.to_numpy(), axis=0)
    names = tuple(returns.columns)
    risk = PortfolioRisk(names, DAILY)
    for day, row in enumerate(prices):
        for name, price in zip(names, row, strict=True):
            risk.on_price(name, float(price), day * DAY_NS)
    risk.on_price(names[0], float(prices[-1, 0]), len(prices) * DAY_NS)  # closes the last day
    for name, quantity in quantities.items():
        risk.add_quantity(name, quantity)
    return risk, prices[-1]


@pytest.fixture(scope="module")
def scheduled(
    returns: pd.DataFrame, quantities: dict[str, float]
) -> tuple[PortfolioRisk, dict[str, float], np.ndarray]:
    risk, last = feed(returns, quantities)
    figures = risk.recompute(len(returns) * DAY_NS, EQUITY)
    weights = np.array([quantities[n] for n in returns.columns]) * last
    pnl = returns.to_numpy()[-250:] @ weights
    return risk, figures, pnl


def test_recompute_var_and_cvar_equal_empyrical_on_the_book_pnl(
    scheduled: tuple[PortfolioRisk, dict[str, float], np.ndarray],
) -> None:
    _, figures, pnl = scheduled
    assert figures["samples"] == 250
    assert figures["var_hist"] * EQUITY == pytest.approx(
        -empyrical.value_at_risk(pnl, 0.01), rel=REL
    )
    expected_cvar = -empyrical.conditional_value_at_risk(pnl, 0.01)
    assert figures["cvar_hist"] * EQUITY == pytest.approx(expected_cvar, rel=REL)


def test_recompute_beta_and_volatility_equal_empyrical(
    scheduled: tuple[PortfolioRisk, dict[str, float], np.ndarray], returns: pd.DataFrame
) -> None:
    risk, figures, pnl = scheduled
    window = returns.iloc[-250:]
    market = window.mean(axis=1).to_numpy()
    assert figures["beta"] * EQUITY == pytest.approx(empyrical.beta(pnl, market), rel=REL)
    book_vol = empyrical.annual_volatility(pnl, annualization=252)
    assert figures["volatility"] * EQUITY == pytest.approx(book_vol, rel=REL)
    for name in returns.columns:
        expected = empyrical.annual_volatility(window[name].to_numpy(), annualization=252)
        assert risk.volatility(name) == pytest.approx(expected, rel=REL)
        assert figures[f"beta:{name}"] == pytest.approx(
            empyrical.beta(window[name].to_numpy(), market), rel=REL
        )
    corr = window.corr()
    assert figures["correlation:AAPL:MSFT"] == pytest.approx(corr.loc["AAPL", "MSFT"], rel=REL)


def test_recompute_ewma_var_equals_riskmetrics_reference(
    scheduled: tuple[PortfolioRisk, dict[str, float], np.ndarray],
) -> None:
    _, figures, pnl = scheduled
    weights = 0.94 ** np.arange(len(pnl) - 1, -1, -1)
    sigma = math.sqrt(float(np.sum(weights * pnl * pnl) / weights.sum()))
    assert figures["var_ewma"] * EQUITY == pytest.approx(2.3263478740408408 * sigma, rel=REL)


def test_recompute_stress_losses_follow_their_scenarios(
    scheduled: tuple[PortfolioRisk, dict[str, float], np.ndarray],
    returns: pd.DataFrame,
    quantities: dict[str, float],
) -> None:
    _, figures, _ = scheduled
    last = 100.0 * np.prod(1.0 + returns.to_numpy(), axis=0)
    weights = dict(zip(returns.columns, np.array(list(quantities.values())) * last, strict=True))
    betas = {name: figures[f"beta:{name}"] for name in returns.columns}
    market_loss = sum(0.10 * betas[n] * w for n, w in weights.items())
    assert figures["stress_market_down_10"] * EQUITY == pytest.approx(market_loss, rel=1e-9)
    crash = 0.3 * weights["AAPL"] + 0.01 * sum(weights.values())
    assert figures["stress_aapl_crash"] * EQUITY == pytest.approx(crash, rel=1e-9)


def test_post_trade_equals_a_recompute_with_the_trade_in_the_book(
    returns: pd.DataFrame, quantities: dict[str, float]
) -> None:
    risk, _ = feed(returns, quantities)
    risk.recompute(len(returns) * DAY_NS, EQUITY)
    predicted = risk.post_trade("JPM", 250.0)
    risk.add_quantity("JPM", 250.0)
    after = risk.book_figures()
    fresh, _ = feed(returns, {**quantities, "JPM": quantities["JPM"] + 250.0})
    figures = fresh.recompute(len(returns) * DAY_NS, EQUITY)
    assert predicted is not None
    assert after is not None
    for post in (predicted, after):
        assert post.var_hist == pytest.approx(figures["var_hist"] * EQUITY, rel=REL)
        assert post.cvar_hist == pytest.approx(figures["cvar_hist"] * EQUITY, rel=REL)
        assert post.var_ewma == pytest.approx(figures["var_ewma"] * EQUITY, rel=REL)
        assert post.beta_value == pytest.approx(figures["beta"] * EQUITY, rel=REL)


def test_recompute_before_min_samples_reports_only_the_count(returns: pd.DataFrame) -> None:
    risk, _ = feed(returns.iloc[:10], {"AAPL": 1.0})
    # Ten prices give nine returns: the first price has nothing before it.
    assert risk.recompute(10 * DAY_NS, EQUITY) == {"samples": 9.0}
    assert not risk.ready
    assert risk.post_trade("AAPL", 1.0) is None


def test_post_trade_bound_never_changes_a_budget_decision(
    returns: pd.DataFrame, quantities: dict[str, float]
) -> None:
    risk, _ = feed(returns, quantities)
    risk.recompute(len(returns) * DAY_NS, EQUITY)
    rng = np.random.default_rng(5)
    names = list(returns.columns)
    exact_sorts = 0
    for _ in range(300):
        name = names[int(rng.integers(len(names)))]
        quantity = float(rng.normal(0.0, 300.0))
        exact = risk.post_trade(name, quantity)
        assert exact is not None
        factor = float(rng.uniform(0.5, 5.0))
        budgets = (factor * exact.var_hist, factor * exact.cvar_hist)
        bounded = risk.post_trade(name, quantity, proves=budgets)
        assert bounded is not None
        assert bounded.var_hist >= exact.var_hist * (1 - REL)
        assert bounded.cvar_hist >= exact.cvar_hist * (1 - REL)
        assert (bounded.var_hist <= budgets[0]) == (exact.var_hist <= budgets[0])
        assert (bounded.cvar_hist <= budgets[1]) == (exact.cvar_hist <= budgets[1])
        exact_sorts += bounded.var_hist == exact.var_hist
        risk.add_quantity(name, quantity)
    assert 0 < exact_sorts < 300  # both paths were taken


def test_recompute_with_one_instrument_reports_figures(returns: pd.DataFrame) -> None:
    # A one-instrument book once crashed: np.cov of one column is a 0-d array.
    single = returns[[returns.columns[0]]]
    risk, _ = feed(single, {single.columns[0]: 100.0})

    figures = risk.recompute(len(single) * DAY_NS, EQUITY)

    assert figures
