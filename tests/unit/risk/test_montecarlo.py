"""Monte Carlo resampling and stress scenarios on River's real SP500Stocks returns.

Per-path figures must equal empyrical on that path within 1e-9 relative; stress losses
must equal what the live risk model (`PortfolioRisk.recompute`) reports for the same book.
"""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest
from river.datasets import SP500Stocks

from risk import montecarlo as mc
from risk.monitor import DEFAULT_SCENARIOS, PortfolioRisk, RiskModelConfig, StressScenario

REL = 1e-9
DAY_NS = 86_400 * 1_000_000_000
EQUITY = 1_000_000.0


@pytest.fixture(scope="module")
def stocks() -> pd.DataFrame:
    rows = [x for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return pd.DataFrame(rows) / 100.0


@pytest.fixture(scope="module")
def book(stocks: pd.DataFrame) -> np.ndarray:
    """Daily returns of a fixed-weight long/short book of the ten stocks."""
    return stocks.to_numpy() @ np.linspace(-0.4, 0.9, stocks.shape[1])  # type: ignore[no-any-return]


def test_block_bootstrap_paths_are_circular_blocks_of_the_series(book: np.ndarray) -> None:
    block = 20
    paths = mc.block_bootstrap(book, paths=50, block=block, seed=3)
    assert paths.shape == (50, book.size)
    position = {value: i for i, value in enumerate(book.tolist())}
    assert len(position) == book.size  # real returns: no ties, positions are unique
    for row in paths:
        starts = [position[v] for v in row[::block].tolist()]
        for k, start in enumerate(starts):
            chunk = row[k * block : (k + 1) * block]
            expected = book[(start + np.arange(chunk.size)) % book.size]
            np.testing.assert_array_equal(chunk, expected)


def test_block_bootstrap_same_seed_same_paths_other_seed_other_paths(book: np.ndarray) -> None:
    first = mc.block_bootstrap(book, paths=10, block=5, seed=1)
    np.testing.assert_array_equal(first, mc.block_bootstrap(book, paths=10, block=5, seed=1))
    assert not np.array_equal(first, mc.block_bootstrap(book, paths=10, block=5, seed=2))


def test_block_bootstrap_mean_is_unbiased_within_sampling_error(book: np.ndarray) -> None:
    paths = mc.block_bootstrap(book, paths=4_000, block=10, seed=0)
    means = paths.mean(axis=1)
    standard_error = means.std(ddof=1) / np.sqrt(means.size)
    assert abs(means.mean() - book.mean()) < 4 * standard_error


def test_summarize_per_path_sharpe_and_drawdown_equal_empyrical(book: np.ndarray) -> None:
    sampled = mc.block_bootstrap(book, paths=200, block=20, seed=7)
    equity = mc.equity_from_returns(sampled, EQUITY)
    result = mc.summarize(equity, method="t", periods_per_year=252)
    sharpe = np.array([empyrical.sharpe_ratio(row) for row in sampled])
    drawdown = np.array([empyrical.max_drawdown(row) for row in sampled])
    final = EQUITY * np.array(
        [empyrical.cum_returns_final(row, starting_value=1) for row in sampled]
    )
    for ours, reference in (
        (result.sharpe, sharpe),
        (result.max_drawdown, drawdown),
        (result.final_equity, final),
    ):
        np.testing.assert_allclose(
            ours.percentiles, np.percentile(reference, mc.PERCENTILES), rtol=REL
        )
        assert ours.mean == pytest.approx(reference.mean(), rel=REL)
    ruin = EQUITY * 0.9
    expected_ruin = np.mean([np.any(row <= ruin) for row in equity])
    assert (
        mc.summarize(
            equity, method="t", periods_per_year=252, ruin_fraction=0.9
        ).probability_of_ruin
        == expected_ruin
    )
    assert result.fan.shape == (len(mc.PERCENTILES), book.size + 1)
    assert np.all(np.diff(result.fan, axis=0) >= 0)  # bands are ordered


def test_bootstrap_returns_of_the_real_book_reports_its_distributions(book: np.ndarray) -> None:
    result = mc.bootstrap_returns(book, periods_per_year=252, initial_equity=EQUITY, paths=500)
    assert result.paths == 500
    low, _, median, _, high = result.sharpe.percentiles
    assert low < empyrical.sharpe_ratio(book) < high
    assert low < median < high
    assert 0.0 <= result.probability_of_ruin <= 1.0


def test_trade_reshuffle_keeps_final_equity_and_changes_drawdown() -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    pnl = rng.normal(10.0, 200.0, size=300)
    result = mc.reshuffle_trades(pnl, initial_equity=EQUITY, trades_per_year=300, paths=400)
    final = EQUITY + pnl.sum()
    assert result.final_equity.percentiles == pytest.approx((final,) * 5, rel=REL)
    assert result.max_drawdown.percentiles[0] < result.max_drawdown.percentiles[-1]
    paths = mc.trade_paths(pnl, paths=20, seed=1, initial_equity=0.0)
    for row in paths:
        np.testing.assert_allclose(np.sort(np.diff(row)), np.sort(pnl), rtol=REL)


def test_trade_resample_with_replacement_varies_final_equity() -> None:
    pnl = np.array([100.0, -50.0, 30.0, -20.0, 80.0])
    result = mc.reshuffle_trades(
        pnl, initial_equity=1_000.0, trades_per_year=50, paths=500, replace=True
    )
    assert result.final_equity.percentiles[0] < result.final_equity.percentiles[-1]
    assert result.method == "trade resample with replacement"


def risk_model(
    stocks: pd.DataFrame, quantities: dict[str, float], scenarios: tuple[StressScenario, ...]
) -> tuple[dict[str, float], np.ndarray]:
    """The live risk model's figures for a book on the real prices; and the last prices."""
    config = RiskModelConfig(
        window=250,
        min_samples=30,
        sample_interval_ns=DAY_NS,
        periods_per_day=1.0,
        recompute_interval_ns=DAY_NS,
        scenarios=scenarios,
    )
    prices = 100.0 * np.cumprod(1.0 + stocks.to_numpy(), axis=0)
    names = tuple(stocks.columns)
    risk = PortfolioRisk(names, config)
    for day, row in enumerate(prices):
        for name, price in zip(names, row, strict=True):
            risk.on_price(name, float(price), day * DAY_NS)
    risk.on_price(names[0], float(prices[-1, 0]), len(prices) * DAY_NS)
    for name, quantity in quantities.items():
        risk.add_quantity(name, quantity)
    return risk.recompute(len(prices) * DAY_NS, EQUITY), prices[-1]


def test_stress_book_equals_the_live_risk_model_scenarios(stocks: pd.DataFrame) -> None:
    scenarios = (
        *DEFAULT_SCENARIOS,
        StressScenario(name="aapl_crash", shocks={"AAPL": -0.3, "*": -0.01}),
    )
    quantities = {name: (i - 3) * 100.0 for i, name in enumerate(stocks.columns)}
    figures, last = risk_model(stocks, quantities, scenarios)
    holdings = {name: q * float(p) for (name, q), p in zip(quantities.items(), last, strict=True)}
    losses = mc.stress_book(
        holdings, stocks.to_numpy()[-250:], list(stocks.columns), scenarios=scenarios
    )
    assert set(losses) == {s.name for s in scenarios}
    for name, loss in losses.items():
        assert loss == pytest.approx(figures[f"stress_{name}"] * EQUITY, rel=REL), name
    assert losses["correlations_to_one"] >= losses["volatility_x3"] / 3


def test_historical_scenario_replays_the_worst_real_month_on_the_book(stocks: pd.DataFrame) -> None:
    holdings = {name: 10_000.0 for name in stocks.columns}
    monthly = stocks.rolling(21).apply(lambda r: np.prod(1 + r) - 1, raw=True).mean(axis=1)
    end = int(np.nanargmin(monthly.to_numpy())) + 1
    window = {name: stocks[name].to_numpy()[end - 21 : end] for name in stocks.columns}
    loss = mc.historical_scenario(holdings, window)
    assert loss == pytest.approx(-10_000.0 * 10 * monthly.min(), rel=REL)
    assert loss > 0
