"""Marginal and component VaR/CVaR of a long/short book on River's real SP500Stocks returns.

Components must sum to the book's figure, and the book's figure must equal empyrical's
(historical) or the closed form (parametric), within 1e-9 relative.
"""

from __future__ import annotations

import empyrical
import numpy as np
import pandas as pd
import pytest
from river.datasets import SP500Stocks

from risk import decomposition, var

REL = 1e-9


@pytest.fixture(scope="module")
def returns() -> np.ndarray:
    rows = [x for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return (pd.DataFrame(rows) / 100.0).to_numpy()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def holdings(returns: np.ndarray) -> np.ndarray:
    return np.linspace(-50_000.0, 120_000.0, returns.shape[1])


@pytest.mark.parametrize("confidence", [0.95, 0.975, 0.99])
@pytest.mark.parametrize("window", [250, 1257])
def test_historical_components_sum_to_empyrical_var_and_cvar(
    returns: np.ndarray, holdings: np.ndarray, confidence: float, window: int
) -> None:
    scenarios = returns[-window:]
    result = decomposition.historical(holdings, scenarios, confidence)
    book = scenarios @ holdings
    expected_var = -empyrical.value_at_risk(book, cutoff=1 - confidence)
    expected_cvar = -empyrical.conditional_value_at_risk(book, cutoff=1 - confidence)
    assert result.value_at_risk == pytest.approx(expected_var, rel=REL)
    assert result.component_var.sum() == pytest.approx(expected_var, rel=REL)
    assert result.cvar == pytest.approx(expected_cvar, rel=REL)
    assert result.component_cvar.sum() == pytest.approx(expected_cvar, rel=REL)
    np.testing.assert_allclose(result.marginal_var * holdings, result.component_var, rtol=REL)


def test_parametric_components_sum_to_the_book_var_and_match_a_finite_difference(
    returns: np.ndarray, holdings: np.ndarray
) -> None:
    covariance = var.ewma_covariance(returns[-250:])
    result = decomposition.parametric(holdings, covariance, 0.99)
    sigma = float(np.sqrt(holdings @ covariance @ holdings))
    assert result.value_at_risk == pytest.approx(var.parametric_var(sigma, 0.99), rel=REL)
    assert result.component_var.sum() == pytest.approx(result.value_at_risk, rel=REL)
    assert result.component_cvar.sum() == pytest.approx(result.cvar, rel=REL)
    step = 1e-3
    for i in range(holdings.size):
        bumped = holdings.copy()
        bumped[i] += step
        moved = var.parametric_var(float(np.sqrt(bumped @ covariance @ bumped)), 0.99)
        assert (moved - result.value_at_risk) / step == pytest.approx(
            result.marginal_var[i], rel=1e-5
        )


def test_parametric_of_an_empty_book_is_zero(returns: np.ndarray) -> None:
    result = decomposition.parametric(np.zeros(returns.shape[1]), np.cov(returns.T), 0.99)
    assert result.value_at_risk == 0.0
    assert not result.component_var.any()
