"""Risk decomposition of a book: marginal and component VaR/CVaR per instrument.

Euler allocation: VaR is homogeneous of degree one in the holdings w, so
VaR = sum_i w_i dVaR/dw_i; the marginal VaR is that derivative and the component VaR
w_i times it. The components therefore sum to the book's VaR exactly:

- parametric (Gaussian, zero mean, covariance S): VaR = z sqrt(w'Sw), marginal
  z (Sw)_i / sqrt(w'Sw);
- historical: the book's VaR is minus the linearly interpolated `1 - confidence`
  percentile of its P&L scenarios (as `risk.var.historical_var_cvar` and empyrical),
  i.e. a weighted pair of scenarios; each instrument's component is minus its own P&L
  in those scenarios with the same weights. CVaR likewise averages the tail scenarios.
  Scenarios are ordered by a stable sort, so ties resolve the same way every time.

Losses are positive money figures, like `risk.var`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from risk import var
from risk.var import Matrix, Vector


@dataclass(frozen=True, slots=True, kw_only=True)
class Decomposition:
    """Book VaR/CVaR and their per-instrument marginal and component parts (money)."""

    value_at_risk: float
    marginal_var: Vector  # dVaR/dw_i: loss per unit of value held
    component_var: Vector  # w_i * marginal_var_i; sums to value_at_risk
    cvar: float
    component_cvar: Vector  # sums to cvar


def historical(holdings: Vector, returns: Matrix, confidence: float = 0.99) -> Decomposition:
    """Decompose the historical VaR and CVaR of holding `holdings` over `returns` scenarios.

    Args:
        holdings: Value held per instrument (money).
        returns: One row per scenario (period), one column per instrument.
        confidence: VaR/CVaR confidence.

    >>> r = np.array([[-0.02, 0.01], [0.01, -0.03], [0.0, 0.0], [0.02, 0.01]])
    >>> d = historical(np.array([100.0, 50.0]), r, 0.75)
    >>> round(d.value_at_risk, 6), d.component_var.round(6).tolist()
    (0.75, [-0.25, 1.0])
    """
    contributions = returns * holdings  # scenario x instrument P&L
    book = contributions.sum(axis=1)
    count = book.size
    order = np.argsort(book, kind="stable")
    position = (count - 1) * (1.0 - confidence)
    low = int(position)
    high = min(low + 1, count - 1)
    fraction = position - low
    component_var = -(
        (1.0 - fraction) * contributions[order[low]] + fraction * contributions[order[high]]
    )
    tail = var.tail_size(count, confidence)
    component_cvar = -contributions[order[:tail]].mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        marginal = np.where(holdings != 0.0, component_var / holdings, np.nan)
    # The book's figures as `risk.var` computes them (a partial sort), which the
    # components reproduce up to rounding.
    value_at_risk, cvar = var.historical_var_cvar(book, confidence)
    return Decomposition(
        value_at_risk=value_at_risk,
        marginal_var=marginal,
        component_var=component_var,
        cvar=cvar,
        component_cvar=component_cvar,
    )


def parametric(holdings: Vector, covariance: Matrix, confidence: float = 0.99) -> Decomposition:
    """Decompose the Gaussian (zero-mean) VaR and CVaR of `holdings` under `covariance`.

    >>> d = parametric(np.array([100.0, 100.0]), np.array([[1e-4, 0.0], [0.0, 1e-4]]), 0.99)
    >>> round(d.value_at_risk, 6), d.component_var.round(6).tolist()
    (3.289953, [1.644976, 1.644976])
    """
    exposure = covariance @ holdings
    sigma = math.sqrt(max(float(holdings @ exposure), 0.0))
    if sigma == 0.0:
        zeros = np.zeros_like(holdings)
        return Decomposition(
            value_at_risk=0.0,
            marginal_var=zeros,
            component_var=zeros,
            cvar=0.0,
            component_cvar=zeros,
        )
    z_score = var.z_score(confidence)
    shortfall = var.parametric_cvar(1.0, confidence)
    marginal = z_score * exposure / sigma
    share = holdings * exposure / sigma  # sums to sigma
    return Decomposition(
        value_at_risk=var.parametric_var(sigma, confidence),
        marginal_var=marginal,
        component_var=z_score * share,
        cvar=var.parametric_cvar(sigma, confidence),
        component_cvar=shortfall * share,
    )
