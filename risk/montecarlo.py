"""Monte Carlo of a run's results and stress scenarios applied to its book.

Two resamplings answer "how much of this result was the order things happened in?":

- `block_bootstrap`: circular moving-block bootstrap of the period returns (blocks of
  `block` consecutive returns drawn with replacement, wrapping at the end), which keeps
  the short-range dependence (volatility clusters) a plain bootstrap would destroy;
- `trade_paths`: the closed trades' P&L in random order (a permutation: the final
  equity is unchanged, the path and its drawdown are not) or drawn with replacement.

`summarize` turns the simulated paths into distributions of final equity, Sharpe and
max drawdown with percentiles, the probability of ruin (a path whose equity ever falls
to or below `ruin_fraction` of the initial equity), and per-step percentile bands (the
fan chart). Random numbers come from numpy's PCG64 seeded by the caller: same seed,
same figures.

`stress_book` applies `risk.monitor`'s stress scenarios (market -10 % through betas,
volatility x3, correlations -> 1, direct shocks) to a book given its holdings and
return history, with the very function the live risk model uses; `historical_scenario`
replays a window of real returns (e.g. a crash read from a file) on the book.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from risk import var
from risk.monitor import DEFAULT_SCENARIOS, StressScenario, stress_loss

Vector = npt.NDArray[np.float64]
Matrix = npt.NDArray[np.float64]

PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)


def block_bootstrap(
    returns: Vector, *, paths: int, block: int, seed: int, horizon: int | None = None
) -> Matrix:
    """Return `paths` resampled return series (rows) of `horizon` periods (default: same).

    >>> sample = block_bootstrap(np.arange(10.0), paths=2, block=3, seed=1)
    >>> sample.shape, set(sample.ravel().tolist()) <= set(range(10))
    ((2, 10), True)
    """
    count = returns.size
    if count == 0 or paths <= 0:
        msg = "a bootstrap needs returns and at least one path"
        raise ValueError(msg)
    length = count if horizon is None else horizon
    block = max(1, min(block, count))
    blocks = -(-length // block)
    rng = np.random.Generator(np.random.PCG64(seed))
    starts = rng.integers(0, count, size=(paths, blocks))
    positions = (starts[:, :, None] + np.arange(block)) % count
    sampled: Matrix = returns[positions.reshape(paths, blocks * block)[:, :length]]
    return sampled


def trade_paths(
    pnl: Vector, *, paths: int, seed: int, replace: bool = False, initial_equity: float
) -> Matrix:
    """Return equity paths (rows, starting with `initial_equity`) of the trades reordered.

    Without `replace` each path is a permutation of `pnl`; with it, trades are drawn
    with replacement.

    >>> equity = trade_paths(np.array([1.0, -2.0, 3.0]), paths=4, seed=0, initial_equity=10)
    >>> equity[:, -1].tolist(), equity.shape
    ([12.0, 12.0, 12.0, 12.0], (4, 4))
    """
    if pnl.size == 0 or paths <= 0:
        msg = "reshuffling needs trades and at least one path"
        raise ValueError(msg)
    rng = np.random.Generator(np.random.PCG64(seed))
    if replace:
        drawn = pnl[rng.integers(0, pnl.size, size=(paths, pnl.size))]
    else:
        drawn = rng.permuted(np.broadcast_to(pnl, (paths, pnl.size)), axis=1)
    equity: Matrix = np.cumsum(
        np.concatenate((np.full((paths, 1), initial_equity), drawn), axis=1), axis=1
    )
    return equity


def equity_from_returns(returns: Matrix, initial_equity: float) -> Matrix:
    """Return equity paths (rows, starting with `initial_equity`) compounding `returns`."""
    growth = np.cumprod(1.0 + returns, axis=1)
    equity: Matrix = initial_equity * np.concatenate(
        (np.ones((returns.shape[0], 1)), growth), axis=1
    )
    return equity


@dataclass(frozen=True, slots=True, kw_only=True)
class Distribution:
    """Percentiles (`PERCENTILES`) and mean of one figure across simulated paths."""

    percentiles: tuple[float, ...]
    mean: float

    @classmethod
    def of(cls, values: Vector) -> Distribution:
        """Summarise finite `values` (NaN paths, e.g. a flat Sharpe, are left out)."""
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            return cls(percentiles=tuple(math.nan for _ in PERCENTILES), mean=math.nan)
        bands = np.percentile(finite, PERCENTILES)
        return cls(percentiles=tuple(float(x) for x in bands), mean=float(finite.mean()))


@dataclass(frozen=True, slots=True, kw_only=True)
class MonteCarlo:
    """Distributions over simulated equity paths and the fan chart's bands.

    Attributes:
        method: How the paths were made ("block bootstrap (block 20)", "trade reshuffle").
        paths: Number of paths.
        final_equity: Distribution of the last equity.
        sharpe: Distribution of each path's annualised Sharpe (per-step returns).
        max_drawdown: Distribution of each path's max drawdown (negative fraction).
        probability_of_ruin: Share of paths whose equity ever reached the ruin level.
        ruin_level: That level, money.
        fan: Per-step equity percentiles, one row per `PERCENTILES` entry.
    """

    method: str
    paths: int
    final_equity: Distribution
    sharpe: Distribution
    max_drawdown: Distribution
    probability_of_ruin: float
    ruin_level: float
    fan: Matrix


def summarize(
    equity: Matrix, *, method: str, periods_per_year: float, ruin_fraction: float = 0.5
) -> MonteCarlo:
    """Summarise equity paths (rows, first column the common start); see module docs.

    >>> paths = np.array([[100.0, 110.0, 40.0], [100.0, 105.0, 120.0]])
    >>> mc = summarize(paths, method="demo", periods_per_year=252)
    >>> mc.probability_of_ruin, mc.final_equity.percentiles[2], mc.ruin_level
    (0.5, 80.0, 50.0)
    """
    initial = float(equity[0, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = equity[:, 1:] / equity[:, :-1] - 1.0
        std = np.std(returns, axis=1, ddof=1)
        sharpe = np.where(std > 0, returns.mean(axis=1) / std, np.nan) * math.sqrt(periods_per_year)
    peaks = np.maximum.accumulate(equity, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.min(equity / peaks - 1.0, axis=1)
    ruin_level = initial * ruin_fraction
    ruined = np.any(equity <= ruin_level, axis=1)
    return MonteCarlo(
        method=method,
        paths=int(equity.shape[0]),
        final_equity=Distribution.of(equity[:, -1]),
        sharpe=Distribution.of(sharpe),
        max_drawdown=Distribution.of(drawdown),
        probability_of_ruin=float(ruined.mean()),
        ruin_level=ruin_level,
        fan=np.percentile(equity, PERCENTILES, axis=0),
    )


def bootstrap_returns(
    returns: Vector,
    *,
    periods_per_year: float,
    initial_equity: float,
    paths: int = 1_000,
    block: int = 20,
    seed: int = 0,
    ruin_fraction: float = 0.5,
) -> MonteCarlo:
    """Block-bootstrap `returns` into `paths` equity paths and summarise them."""
    sampled = block_bootstrap(returns, paths=paths, block=block, seed=seed)
    return summarize(
        equity_from_returns(sampled, initial_equity),
        method=f"block bootstrap of returns (block {min(block, returns.size)})",
        periods_per_year=periods_per_year,
        ruin_fraction=ruin_fraction,
    )


def reshuffle_trades(
    pnl: Vector,
    *,
    initial_equity: float,
    trades_per_year: float,
    paths: int = 1_000,
    seed: int = 0,
    replace: bool = False,
    ruin_fraction: float = 0.5,
) -> MonteCarlo:
    """Reorder (or resample) the trades' P&L into `paths` equity paths and summarise them.

    Sharpe is per trade, annualised by `trades_per_year` (the run's trade rate).
    """
    equity = trade_paths(
        pnl, paths=paths, seed=seed, replace=replace, initial_equity=initial_equity
    )
    method = "trade resample with replacement" if replace else "trade reshuffle"
    return summarize(
        equity, method=method, periods_per_year=trades_per_year, ruin_fraction=ruin_fraction
    )


# -- stress ----------------------------------------------------------------------------------


def stress_book(
    holdings: dict[str, float],
    returns: Matrix,
    instruments: Sequence[str],
    *,
    scenarios: Sequence[StressScenario] = DEFAULT_SCENARIOS,
    periods_per_day: float = 1.0,
    confidence: float = 0.99,
    ewma_decay: float = var.DEFAULT_LAMBDA,
    market_proxy: str = "",
) -> dict[str, float]:
    """Return each scenario's one-day loss (positive, money) of a book.

    Args:
        holdings: Value held per instrument (money; negative for shorts).
        returns: One column per instrument of `instruments`, one row per sample.
        instruments: Column names.
        scenarios: Shocks to apply (default: market -10 %, volatility x3,
            correlations -> 1).
        periods_per_day: Samples per day of `returns` (1 for daily returns).
        confidence: VaR confidence of the volatility and correlation scenarios.
        ewma_decay: RiskMetrics λ of the covariance.
        market_proxy: Column that is the market; "" uses the equal-weighted mean.

    Betas, EWMA covariance and the shocks are computed as `risk.monitor.PortfolioRisk`
    computes them at a recompute.

    >>> r = np.array([[0.01, 0.02], [-0.02, -0.01], [0.015, 0.0]])
    >>> round(stress_book({"A": 100.0}, r, ["A", "B"])["market_down_10"], 6)
    11.282051
    """
    index = {name: i for i, name in enumerate(instruments)}
    weights = np.array([holdings.get(name, 0.0) for name in instruments], dtype=np.float64)
    ewma = var.ewma_covariance(returns, ewma_decay)
    position = index.get(market_proxy)
    market = returns.mean(axis=1) if position is None else returns[:, position]
    centered = market - market.mean()
    market_variance = float(np.mean(centered * centered))
    if market_variance > 1e-30:
        betas = (centered @ returns) / len(returns) / market_variance
    else:
        betas = np.zeros(returns.shape[1])
    book_variance = float(weights @ (ewma @ weights))
    return {
        scenario.name: stress_loss(
            scenario,
            weights,
            betas=betas,
            ewma=ewma,
            ewma_variance=book_variance,
            index=index,
            periods_per_day=periods_per_day,
            confidence=confidence,
        )
        for scenario in scenarios
    }


def historical_scenario(holdings: dict[str, float], window: dict[str, Vector]) -> float:
    """Return the loss (positive, money) of holding `holdings` through a window of returns.

    `window` maps instrument to its returns over the window (a crash replayed from a
    file); each holding compounds its instrument's returns, unrebalanced.

    >>> window = {"A": np.array([-0.1, -0.1]), "B": np.array([0.1])}
    >>> round(historical_scenario({"A": 100.0, "B": -50.0}, window), 9)
    24.0
    """
    pnl = 0.0
    for name, value in holdings.items():
        path = window.get(name)
        if path is not None and path.size:
            pnl += value * (float(np.prod(1.0 + path)) - 1.0)
    return -pnl
