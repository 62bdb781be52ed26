"""Portfolio risk maths against references (empyrical, numpy, pandas) on real returns.

River's `SP500Stocks` holds 1,257 real daily returns of ten S&P 500 stocks (in
percent); every figure must equal its reference within 1e-9 relative.
"""

from __future__ import annotations

import math

import empyrical
import numpy as np
import pandas as pd
import pytest
from river.datasets import SP500Stocks

from risk import var

REL = 1e-9


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    """The ten stocks' daily simple returns as fractions, one column per stock."""
    rows = [x for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return pd.DataFrame(rows) / 100.0


@pytest.fixture(scope="module")
def book(returns: pd.DataFrame) -> np.ndarray:
    """Daily P&L of a long/short book (money per stock) over the real returns."""
    weights = np.linspace(-50_000.0, 120_000.0, returns.shape[1])
    return returns.to_numpy() @ weights  # type: ignore[no-any-return]


@pytest.mark.parametrize("confidence", [0.95, 0.975, 0.99])
def test_historical_var_cvar_equal_empyrical_var_and_cvar(
    book: np.ndarray, confidence: float
) -> None:
    value_at_risk, cvar = var.historical_var_cvar(book, confidence)
    assert value_at_risk == pytest.approx(
        -empyrical.value_at_risk(book, cutoff=1 - confidence), rel=REL
    )
    assert cvar == pytest.approx(
        -empyrical.conditional_value_at_risk(book, cutoff=1 - confidence), rel=REL
    )
    assert value_at_risk == pytest.approx(-np.percentile(book, 100 * (1 - confidence)), rel=REL)


def test_historical_var_cvar_of_a_250_day_window_equal_empyrical(book: np.ndarray) -> None:
    window = book[-250:]
    value_at_risk, cvar = var.historical_var_cvar(window, 0.99)
    assert value_at_risk == pytest.approx(-empyrical.value_at_risk(window, 0.01), rel=REL)
    assert cvar == pytest.approx(-empyrical.conditional_value_at_risk(window, 0.01), rel=REL)


def test_annual_volatility_equals_empyrical_per_stock(returns: pd.DataFrame) -> None:
    for name in returns:
        column = returns[name].to_numpy()
        expected = empyrical.annual_volatility(column, period="daily")
        assert var.annual_volatility(column, 252) == pytest.approx(expected, rel=REL), name


def test_beta_to_equal_weighted_market_equals_empyrical(returns: pd.DataFrame) -> None:
    market = returns.mean(axis=1).to_numpy()
    for name in returns:
        column = returns[name].to_numpy()
        expected = empyrical.beta(column, market)
        assert var.beta(column, market) == pytest.approx(expected, rel=REL), name


def test_correlation_matrix_equals_pandas_pearson(returns: pd.DataFrame) -> None:
    ours = var.correlation_matrix(returns.to_numpy())
    np.testing.assert_allclose(ours, returns.corr().to_numpy(), rtol=REL)


def test_max_drawdown_equals_empyrical(returns: pd.DataFrame) -> None:
    for name in returns:
        column = returns[name].to_numpy()
        expected = -empyrical.max_drawdown(column)
        assert var.max_drawdown(column) == pytest.approx(expected, rel=REL), name


def test_ewma_covariance_equals_pandas_adjusted_ewm(returns: pd.DataFrame) -> None:
    """RiskMetrics λ = 0.94: pandas' adjusted EWM mean of r_i r_j has the same weights."""
    data = returns.to_numpy()
    ours = var.ewma_covariance(data, 0.94)
    for i in range(data.shape[1]):
        for j in range(data.shape[1]):
            products = pd.Series(data[:, i] * data[:, j])
            expected = products.ewm(alpha=1 - 0.94, adjust=True).mean().iloc[-1]
            assert ours[i, j] == pytest.approx(expected, rel=REL)


def test_parametric_var_and_cvar_equal_scipy_free_gaussian_reference(book: np.ndarray) -> None:
    weights = var.ewma_weights(len(book))
    sigma = math.sqrt(float(np.sum(weights * book * book)))
    z = 2.3263478740408408  # Φ⁻¹(0.99)
    pdf = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert var.parametric_var(sigma, 0.99) == pytest.approx(z * sigma, rel=REL)
    assert var.parametric_cvar(sigma, 0.99) == pytest.approx(sigma * pdf / 0.01, rel=REL)
