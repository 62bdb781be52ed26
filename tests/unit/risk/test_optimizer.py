"""Portfolio construction against references on River's real SP500 returns."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from river.datasets import SP500Stocks
from sklearn.covariance import LedoitWolf

from risk import optimizer
from risk.sizing import SizingMethod, volatility_target_notional

REL = 1e-9


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    rows = [x for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return (pd.DataFrame(rows) / 100.0).to_numpy()


def test_ledoit_wolf_covariance_equals_scikit_learn(returns: np.ndarray) -> None:
    for window in (returns[-60:], returns):  # few samples per instrument, and all of them
        ours, shrinkage = optimizer.ledoit_wolf_covariance(window)
        reference = LedoitWolf().fit(window)
        assert shrinkage == pytest.approx(reference.shrinkage_, rel=REL)
        np.testing.assert_allclose(ours, reference.covariance_, rtol=REL)


def test_risk_parity_weights_equalise_risk_contributions(returns: np.ndarray) -> None:
    covariance, _ = optimizer.ledoit_wolf_covariance(returns)
    weights = optimizer.risk_parity_weights(covariance)
    contributions = weights * (covariance @ weights)
    assert weights.sum() == pytest.approx(1.0, rel=REL)
    assert (weights > 0).all()
    np.testing.assert_allclose(contributions, contributions.mean(), rtol=1e-8)


def test_risk_parity_with_uncorrelated_assets_is_inverse_volatility() -> None:
    volatilities = np.array([0.1, 0.2, 0.3, 0.5])
    parity = optimizer.risk_parity_weights(np.diag(volatilities**2))
    np.testing.assert_allclose(
        parity, optimizer.inverse_volatility_weights(volatilities), rtol=1e-9
    )


def test_mean_variance_weights_solve_the_first_order_condition(returns: np.ndarray) -> None:
    covariance, _ = optimizer.ledoit_wolf_covariance(returns)
    expected = returns.mean(axis=0)
    weights = optimizer.mean_variance_weights(expected, covariance, risk_aversion=3.0)
    np.testing.assert_allclose(3.0 * covariance @ weights, expected, rtol=1e-9)


def test_rebalance_orders_reach_targets_in_whole_lots_without_overshooting() -> None:
    targets = optimizer.target_positions(
        {"A": 0.4, "B": -0.3, "C": 0.3},
        Decimal(100_000),
        {"A": 123.45, "B": 57.1, "C": 999.0},
        Decimal(10),
    )
    positions = {"A": Decimal(100), "B": Decimal(0), "D": Decimal(5)}
    orders = optimizer.rebalance_orders(targets, positions, Decimal(10))
    assert targets == {"A": Decimal(320), "B": Decimal(-520), "C": Decimal(30)}
    assert orders == {"A": Decimal(220), "B": Decimal(-520), "C": Decimal(30)}  # D: 5 < a lot
    for name, order in orders.items():
        assert order % 10 == 0
        assert abs(positions.get(name, Decimal(0)) + order) <= abs(targets[name])


@pytest.mark.parametrize(
    ("volatility", "expected"),
    [(0.30, Decimal(50_000)), (0.05, Decimal(100_000)), (0.0, Decimal(100_000))],
)
def test_volatility_target_notional_scales_to_target_and_caps(
    volatility: float, expected: Decimal
) -> None:
    notional = volatility_target_notional(100_000.0, 0.15, volatility, cap=Decimal(100_000))
    assert notional == expected


DIRECTIONS = np.array([1.0, -1.0, 0.0, 1.0, 1.0, -1.0, 0.0, 1.0, -1.0, 1.0])
HELD = DIRECTIONS != 0


def weights_and_reference_covariance(
    method: SizingMethod, returns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The method's weights of the held instruments and scikit-learn's Ledoit-Wolf of them."""
    weights = optimizer.portfolio_weights(method, DIRECTIONS, returns)
    return weights[HELD], LedoitWolf().fit(returns[:, HELD]).covariance_


def test_portfolio_inverse_volatility_takes_each_view_side_in_proportion_to_one_over_vol(
    returns: np.ndarray,
) -> None:
    weights = optimizer.portfolio_weights(SizingMethod.INVERSE_VOL, DIRECTIONS, returns)

    inverse = DIRECTIONS / returns.std(axis=0, ddof=1)
    np.testing.assert_allclose(weights, inverse / np.abs(inverse).sum(), rtol=REL)


def test_portfolio_risk_parity_equalises_contributions_of_the_signed_book(
    returns: np.ndarray,
) -> None:
    weights, covariance = weights_and_reference_covariance(SizingMethod.RISK_PARITY, returns)

    contributions = weights * (covariance @ weights)
    np.testing.assert_allclose(contributions, contributions.mean(), rtol=1e-7)
    assert (np.sign(weights) == DIRECTIONS[HELD]).all()
    assert np.abs(weights).sum() == pytest.approx(1.0, rel=REL)


def test_portfolio_mean_variance_gives_every_view_the_same_sharpe_ratio(
    returns: np.ndarray,
) -> None:
    weights, covariance = weights_and_reference_covariance(SizingMethod.MEAN_VARIANCE, returns)

    views = DIRECTIONS[HELD] * np.sqrt(np.diag(covariance))
    solved = np.linalg.solve(covariance, views)
    np.testing.assert_allclose(weights, solved / np.abs(solved).sum(), rtol=1e-8)


def test_portfolio_weights_skip_instruments_without_a_view_or_a_move(
    returns: np.ndarray,
) -> None:
    flat = returns.copy()
    flat[:, 0] = 0.0
    weights = optimizer.portfolio_weights(SizingMethod.INVERSE_VOL, DIRECTIONS, flat)
    assert weights[0] == 0.0 and weights[2] == 0.0
    assert np.abs(weights).sum() == pytest.approx(1.0, rel=REL)
    none = optimizer.portfolio_weights(SizingMethod.RISK_PARITY, np.zeros(10), returns)
    assert (none == 0).all()
    with pytest.raises(ValueError, match="one by one"):
        optimizer.portfolio_weights(SizingMethod.VOL_TARGET, DIRECTIONS, returns)


def test_portfolio_capital_runs_the_book_at_the_volatility_target_or_the_cap(
    returns: np.ndarray,
) -> None:
    weights = optimizer.portfolio_weights(SizingMethod.INVERSE_VOL, DIRECTIONS, returns)
    capital = optimizer.portfolio_capital(
        weights, returns, 252.0, equity=1_000_000.0, volatility_target=0.05, cap=Decimal(10**9)
    )
    book = returns @ (weights * float(capital))
    assert np.std(book, ddof=1) * np.sqrt(252.0) == pytest.approx(50_000.0, rel=1e-6)
    capped = optimizer.portfolio_capital(
        weights, returns, 252.0, equity=1_000_000.0, volatility_target=0.05, cap=Decimal(1_000)
    )
    assert capped == Decimal(1_000)
    assert optimizer.portfolio_capital(
        weights, returns, 252.0, equity=1.0, volatility_target=None, cap=Decimal(7)
    ) == Decimal(7)
