"""Value at risk and expected shortfall agree with empyrical on real and random returns."""

from __future__ import annotations

import empyrical
import numpy as np
import pytest
from river.datasets import SP500Stocks

from risk.performance import conditional_value_at_risk, value_at_risk


def sp500_returns() -> np.ndarray:
    return np.array([float(x["AAPL"]) for x, _ in SP500Stocks()][:500])


@pytest.mark.parametrize("cutoff", [0.01, 0.05, 0.25])
@pytest.mark.parametrize("seed", [1, 2])
def test_var_and_cvar_of_random_returns_equal_empyrical(cutoff: float, seed: int) -> None:
    returns = np.random.default_rng(seed).standard_t(3, 1000) * 0.01
    assert value_at_risk(returns, cutoff) == pytest.approx(empyrical.value_at_risk(returns, cutoff))
    expected = empyrical.conditional_value_at_risk(returns, cutoff)
    assert conditional_value_at_risk(returns, cutoff) == pytest.approx(expected)


def test_var_and_cvar_of_real_stock_returns_equal_empyrical() -> None:
    returns = sp500_returns()
    assert value_at_risk(returns) == pytest.approx(empyrical.value_at_risk(returns))
    assert conditional_value_at_risk(returns) == pytest.approx(
        empyrical.conditional_value_at_risk(returns)
    )


def test_var_without_returns_is_nan() -> None:
    assert np.isnan(value_at_risk(np.array([])))
    assert np.isnan(conditional_value_at_risk(np.array([])))
