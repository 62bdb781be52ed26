"""Portfolio risk maths on return series: VaR, CVaR, volatility, beta, correlation, drawdown.

Plain numpy functions, checked against empyrical and numpy on real returns
(tests/unit/test_var.py). Losses are reported as positive numbers: a VaR of 0.02 means
"a loss of 2 % is exceeded with probability 1 %".

Conventions (chosen to equal the references exactly):
- historical VaR is minus the linearly interpolated percentile (`numpy.percentile`,
  as `empyrical.value_at_risk`);
- historical CVaR is minus the mean of the `tail_size` = `int((n - 1) * (1 - confidence))
  + 1` worst outcomes (as `empyrical.conditional_value_at_risk`);
- EWMA (RiskMetrics) variance is zero-mean with weights (1 - λ) λ^k, normalised to sum
  to one over the window; parametric VaR/CVaR are Gaussian on that volatility;
- volatility is the sample standard deviation (ddof 1) times sqrt(periods per year);
- beta is cov(r, m) / var(m) with population moments (as `empyrical.beta`).
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]

DEFAULT_LAMBDA = 0.94


@lru_cache(maxsize=64)
def z_score(confidence: float) -> float:
    """Return the standard normal quantile of `confidence` (cached: the gate asks per order).

    >>> round(z_score(0.99), 6)
    2.326348
    """
    return NormalDist().inv_cdf(confidence)


def historical_var_cvar(outcomes: Vector, confidence: float = 0.99) -> tuple[float, float]:
    """Return the historical VaR and CVaR of `outcomes` from one partial sort.

    VaR is minus the linearly interpolated `1 - confidence` percentile, as
    `numpy.percentile`; CVaR minus the mean of the `tail_size` worst outcomes. One
    `numpy.partition` brings the few worst outcomes to the front; sorting just those in
    Python is about five times cheaper than `numpy.percentile` plus `numpy.mean`.

    >>> historical_var_cvar(np.array([-3.0, -1.0, 0.0, 1.0, 2.0]), 0.75)
    (1.0, 2.0)
    """
    count = len(outcomes)
    position = (count - 1) * (1.0 - confidence)
    low = int(position)
    high = min(low + 1, count - 1)
    ordered = outcomes.copy()  # `np.partition` without its Python wrapper
    ordered.partition(high)
    worst = sorted(ordered[: high + 1].tolist())
    below, above = worst[low], worst[high]
    value_at_risk = -(below + (position - low) * (above - below))
    return value_at_risk, -sum(worst[: low + 1]) / (low + 1)


def tail_size(count: int, confidence: float) -> int:
    """Return how many of `count` worst outcomes the CVaR averages.

    >>> tail_size(250, 0.99), tail_size(1257, 0.99)
    (3, 13)
    """
    return int((count - 1) * (1.0 - confidence)) + 1


def ewma_weights(count: int, decay: float = DEFAULT_LAMBDA) -> Vector:
    """Return RiskMetrics weights for `count` observations, oldest first, summing to one.

    >>> [round(float(w), 4) for w in ewma_weights(3, 0.5)]
    [0.1429, 0.2857, 0.5714]
    """
    weights = (1.0 - decay) * decay ** np.arange(count - 1, -1, -1, dtype=np.float64)
    return weights / weights.sum()  # type: ignore[no-any-return]


def ewma_covariance(returns: Matrix, decay: float = DEFAULT_LAMBDA) -> Matrix:
    """Return the zero-mean EWMA covariance of the columns of `returns` (rows: time)."""
    weights = ewma_weights(len(returns), decay)
    return (returns * weights[:, None]).T @ returns


def parametric_var(sigma: float, confidence: float = 0.99) -> float:
    """Return the Gaussian VaR of a zero-mean outcome with standard deviation `sigma`.

    >>> round(parametric_var(1.0), 6)
    2.326348
    """
    return z_score(confidence) * sigma


def parametric_cvar(sigma: float, confidence: float = 0.99) -> float:
    """Return the Gaussian expected shortfall of a zero-mean outcome.

    >>> round(parametric_cvar(1.0), 6)
    2.665214
    """
    return sigma * _shortfall_factor(confidence)


@lru_cache(maxsize=64)
def _shortfall_factor(confidence: float) -> float:
    return NormalDist().pdf(z_score(confidence)) / (1.0 - confidence)


def annual_volatility(returns: Vector, periods_per_year: float) -> float:
    """Return the sample standard deviation of `returns` scaled to a year.

    >>> round(annual_volatility(np.array([0.01, -0.01, 0.02, 0.0]), 252), 6)
    0.204939
    """
    return float(np.std(returns, ddof=1)) * math.sqrt(periods_per_year)


def beta(returns: Vector, market: Vector) -> float:
    """Return the regression slope of `returns` on `market` (population moments).

    >>> beta(np.array([0.02, -0.02, 0.04]), np.array([0.01, -0.01, 0.02]))
    2.0
    """
    centered = market - market.mean()
    variance = float(np.mean(centered * centered))
    if variance < 1e-30:
        return math.nan
    return float(np.mean(centered * returns)) / variance


def correlation_matrix(returns: Matrix) -> Matrix:
    """Return the Pearson correlations of the columns of `returns`; NaN for flat columns.

    One column gives a 1x1 matrix (np.cov would return a scalar for it).

    >>> correlation_matrix(np.array([[0.01], [0.02], [-0.01]]))
    array([[1.]])
    """
    covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    scale = np.sqrt(np.diag(covariance))
    with np.errstate(divide="ignore", invalid="ignore"):
        return covariance / np.outer(scale, scale)  # type: ignore[no-any-return]


def max_drawdown(returns: Vector) -> float:
    """Return the largest peak-to-trough loss of compounded `returns` (positive).

    >>> round(max_drawdown(np.array([0.1, -0.5, 0.2])), 6)
    0.5
    """
    wealth = np.cumprod(1.0 + np.concatenate(([0.0], returns)))
    peaks = np.maximum.accumulate(wealth)
    return float(np.max(1.0 - wealth / peaks))


def drawdown(equity: float, high_water_mark: float) -> float:
    """Return the fractional loss of `equity` from `high_water_mark` (0 at a new high).

    >>> drawdown(75.0, 100.0), drawdown(110.0, 100.0)
    (0.25, 0.0)
    """
    if high_water_mark <= 0.0:
        return 0.0
    return max(0.0, 1.0 - equity / high_water_mark)
