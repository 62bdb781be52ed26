"""Portfolio construction: weights from risk estimates, then whole-lot orders to get there.

Three weighting schemes over the instruments a signal set wants to hold:

- inverse volatility: w_i proportional to 1 / volatility_i;
- risk parity (equal risk contribution): w_i (Σw)_i equal for every i, solved by
  cyclical coordinate descent (Griveau-Billion, Richard, Roncalli 2013), which converges
  for any positive definite covariance;
- mean-variance: w = Σ⁻¹ μ / λ with Σ the Ledoit-Wolf shrinkage covariance, which stays
  well conditioned when there are few observations per instrument.

`portfolio_weights` applies one of them to the instruments with a view (a signal's
direction), `portfolio_capital` scales the book to a volatility target,
`target_positions` turns signed weights into quantities worth `capital`, and
`rebalance_orders` the difference from current positions into orders rounded toward
zero to whole lots (so no order overshoots its target).
"""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from risk.domain.money import quantize, quantize_lot
from risk.sizing import SizingMethod
from risk.var import Matrix, Vector


def inverse_volatility_weights(volatilities: Vector) -> Vector:
    """Return long-only weights proportional to 1 / volatility, summing to one.

    >>> [round(float(w), 4) for w in inverse_volatility_weights(np.array([0.1, 0.2, 0.4]))]
    [0.5714, 0.2857, 0.1429]
    """
    inverse = 1.0 / volatilities
    return inverse / inverse.sum()  # type: ignore[no-any-return]


def risk_parity_weights(
    covariance: Matrix, *, tolerance: float = 1e-12, max_sweeps: int = 10_000
) -> Vector:
    """Return long-only weights whose risk contributions w_i (Σw)_i are all equal.

    Raises:
        ValueError: If the sweeps do not converge (the covariance is not positive
            definite).

    >>> w = risk_parity_weights(np.diag([0.01, 0.04]))
    >>> [round(float(x), 6) for x in w]
    [0.666667, 0.333333]
    """
    count = len(covariance)
    budget = 1.0 / count
    x = 1.0 / np.sqrt(np.diag(covariance))
    for _ in range(max_sweeps):
        previous = x.copy()
        for i in range(count):
            a = covariance[i, i]
            b = float(covariance[i] @ x) - a * x[i]
            x[i] = (-b + math.sqrt(b * b + 4.0 * a * budget)) / (2.0 * a)
        if np.max(np.abs(x - previous)) <= tolerance * np.max(np.abs(x)):
            return x / x.sum()  # type: ignore[no-any-return]
    msg = f"risk parity did not converge in {max_sweeps} sweeps"
    raise ValueError(msg)


def ledoit_wolf_covariance(returns: Matrix) -> tuple[Matrix, float]:
    """Return the Ledoit-Wolf shrunk covariance of `returns` (rows: time) and its shrinkage.

    The target is the scaled identity μI with μ the mean variance; the shrinkage
    intensity is the optimal one of Ledoit and Wolf (2004), as scikit-learn computes it.
    """
    samples, features = returns.shape
    centered = returns - returns.mean(axis=0)
    squared = centered * centered
    variances = squared.sum(axis=0) / samples
    mu = float(variances.sum()) / features
    covariance = centered.T @ centered / samples
    delta_sum = float(np.sum((centered.T @ centered) ** 2)) / samples**2
    beta_sum = float(np.sum(squared.T @ squared))
    beta = (beta_sum / samples - delta_sum) / (features * samples)
    delta = (delta_sum - 2.0 * mu * float(variances.sum()) + features * mu * mu) / features
    shrinkage = 0.0 if beta == 0 else min(beta, delta) / delta
    shrunk = (1.0 - shrinkage) * covariance
    shrunk.flat[:: features + 1] += shrinkage * mu
    return shrunk, shrinkage


def mean_variance_weights(
    expected_returns: Vector, covariance: Matrix, risk_aversion: float
) -> Vector:
    """Return the unconstrained mean-variance weights Σ⁻¹ μ / λ (signed).

    >>> mean_variance_weights(np.array([0.02, 0.01]), np.diag([0.04, 0.01]), 2.0).tolist()
    [0.25, 0.5]
    """
    solved = np.linalg.solve(covariance, expected_returns)
    return np.asarray(solved / risk_aversion, dtype=np.float64)


def target_positions(
    weights: dict[str, float], capital: Decimal, prices: dict[str, float], lot_size: Decimal
) -> dict[str, Decimal]:
    """Return the whole-lot quantity worth weight * capital of each instrument.

    >>> target_positions({"A": 0.5, "B": -0.25}, Decimal(1000), {"A": 3.0, "B": 10.0},
    ...                  Decimal(1))
    {'A': Decimal('166.000000000'), 'B': Decimal('-25.000000000')}
    """
    return {
        name: quantize_lot(quantize(weight) * capital / quantize(prices[name]), lot_size)
        for name, weight in weights.items()
    }


def rebalance_orders(
    targets: dict[str, Decimal], positions: dict[str, Decimal], lot_size: Decimal
) -> dict[str, Decimal]:
    """Return the signed whole-lot order per instrument that moves positions to targets.

    Instruments held but not targeted are closed; zero orders are left out.

    >>> rebalance_orders({"A": Decimal(10)}, {"A": Decimal("3.5"), "B": Decimal(2)},
    ...                  Decimal(1))
    {'A': Decimal('6.000000000'), 'B': Decimal('-2.000000000')}
    """
    orders = {}
    for name in dict.fromkeys([*targets, *positions]):
        delta = targets.get(name, Decimal(0)) - positions.get(name, Decimal(0))
        lots = quantize_lot(delta, lot_size)
        if lots:
            orders[name] = lots
    return orders


def portfolio_weights(method: SizingMethod, directions: Vector, returns: Matrix) -> Vector:
    """Return signed weights (Σ|w| = 1) for instruments with a view; 0 for the others.

    `directions` holds each instrument's latest view (-1, 0, +1), `returns` one column
    per instrument. Instruments that did not move over the window are left out (no
    volatility to size by). Inverse volatility and risk parity size each instrument
    as if long, then take the view's side; risk parity on the Ledoit-Wolf covariance
    of the signed returns, so a short hedges a correlated long. Mean-variance gives
    every view the same Sharpe ratio (expected return = direction * volatility) and
    solves against the Ledoit-Wolf covariance.

    >>> returns = np.array([[0.01, 0.02, 0.0], [-0.01, -0.02, 0.01], [0.01, 0.02, 0.0]])
    >>> w = portfolio_weights(SizingMethod.INVERSE_VOL, np.array([1.0, -1.0, 0.0]), returns)
    >>> [round(float(x), 6) for x in w]
    [0.666667, -0.333333, 0.0]
    """
    weights = np.zeros(len(directions))
    moving = returns.std(axis=0) > 0.0
    active = np.flatnonzero((directions != 0) & moving)
    if len(active) == 0:
        return weights
    signs = np.sign(directions[active])
    sample = returns[:, active]
    if method is SizingMethod.INVERSE_VOL:
        chosen = inverse_volatility_weights(sample.std(axis=0, ddof=1)) * signs
    elif method is SizingMethod.RISK_PARITY:
        covariance, _ = ledoit_wolf_covariance(sample * signs)
        chosen = risk_parity_weights(covariance) * signs
    elif method is SizingMethod.MEAN_VARIANCE:
        covariance, _ = ledoit_wolf_covariance(sample)
        chosen = mean_variance_weights(signs * np.sqrt(np.diag(covariance)), covariance, 1.0)
    else:
        msg = f"{method} sizes signals one by one, not as a portfolio"
        raise ValueError(msg)
    weights[active] = chosen / np.abs(chosen).sum()
    return weights


def portfolio_capital(
    weights: Vector,
    returns: Matrix,
    periods_per_year: float,
    *,
    equity: float,
    volatility_target: float | None,
    cap: Decimal,
) -> Decimal:
    """Return the gross capital at which the book runs at `volatility_target` (annualised).

    equity * target / annualised volatility of `weights` (sample covariance of
    `returns`), never above `cap`; `cap` itself without a target or a volatility.

    >>> returns = np.array([[0.01, -0.01], [-0.01, 0.01], [0.02, 0.0], [0.0, 0.02]])
    >>> portfolio_capital(np.array([0.5, 0.5]), returns, 1.0, equity=1_000.0,
    ...                   volatility_target=0.01, cap=Decimal(10_000))
    Decimal('1732.050807569')
    """
    if volatility_target is None:
        return cap
    covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    volatility = math.sqrt(max(float(weights @ covariance @ weights), 0.0) * periods_per_year)
    if not volatility > 0.0:
        return cap
    return min(cap, quantize(equity * volatility_target / volatility))
