"""Performance statistics of an equity curve (checked against empyrical in tests)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def simple_returns(equity: Sequence[float]) -> np.ndarray:
    """Period-over-period simple returns of an equity curve.

    >>> simple_returns([100.0, 110.0, 99.0]).round(4).tolist()
    [0.1, -0.1]
    """
    values = np.asarray(equity, dtype=float)
    returns: np.ndarray = values[1:] / values[:-1] - 1.0
    return returns


def sharpe_ratio(returns: np.ndarray, periods_per_year: float) -> float:
    """Annualised Sharpe ratio with a zero risk-free rate (sample std, as empyrical).

    Returns NaN with fewer than two returns or zero volatility.

    >>> round(sharpe_ratio(np.array([0.01, 0.02, 0.0]), 252), 4)
    15.8745
    """
    if returns.size < 2:
        return math.nan
    std = float(np.std(returns, ddof=1))
    if std == 0.0:
        return math.nan
    return float(np.mean(returns)) / std * math.sqrt(periods_per_year)


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the compounded returns, as a negative fraction.

    >>> round(max_drawdown(np.array([0.1, -0.5, 0.2])), 4)
    -0.5
    """
    if returns.size == 0:
        return 0.0
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + returns)))
    peaks = np.maximum.accumulate(wealth)
    return float(np.min(wealth / peaks - 1.0))
