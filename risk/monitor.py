"""Real-time portfolio risk of one account: return history, scheduled figures, post-trade VaR.

`PortfolioRisk` samples one simple return per instrument per `sample_interval_ns` of
event time from the prices it is given, keeps the last `window` samples, and on a
schedule (`recompute`) computes the book's figures with `risk.var`: historical and
EWMA VaR/CVaR scaled to one day, volatility, beta to a market proxy, correlations,
stress losses. The same recompute caches what the pre-trade checks need so one
decision costs a few microseconds (`post_trade`): the book's P&L series, the EWMA
covariance times the book, and per-instrument betas, volatilities and correlations.

The book is position plus net working quantity per instrument (what the account holds
once every working order fills), so a fill arriving earlier or later never changes it;
approvals and released (canceled, rejected) quantity do, incrementally. It is valued
at the prices of the last recompute.

Historical VaR and CVaR need a partial sort of the whole P&L series, so `post_trade`
asks `risk.tail.HistoricalTail` for upper bounds first and sorts only when those cannot
prove the budgets hold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from operator import add
from typing import NamedTuple

import numpy as np

from risk import var
from risk.tail import HistoricalTail
from risk.var import Matrix, Vector

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class StressScenario:
    """A hypothetical shock to the current book.

    Attributes:
        name: Bounded identifier (a metric name suffix).
        market_move: Market return applied to each instrument through its beta.
        shocks: Instrument -> return applied directly ("*" for every instrument).
        vol_multiplier: Scales the EWMA volatility (the loss is that VaR).
        correlation_one: Every correlation set to 1 (the loss is that VaR).
    """

    name: str
    market_move: float = 0.0
    shocks: dict[str, float] = field(default_factory=dict)
    vol_multiplier: float = 1.0
    correlation_one: bool = False


DEFAULT_SCENARIOS = (
    StressScenario(name="market_down_10", market_move=-0.10),
    StressScenario(name="volatility_x3", vol_multiplier=3.0),
    StressScenario(name="correlations_to_one", correlation_one=True),
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RiskModelConfig:
    """How returns are sampled and risk figures computed.

    Attributes:
        window: Samples kept per instrument.
        min_samples: Samples needed before the statistical checks apply.
        sample_interval_ns: Event time between two return samples.
        periods_per_day: Samples per trading day: VaR is scaled by its square root.
        trading_days_per_year: Annualises volatility with `periods_per_day`.
        confidence: VaR/CVaR confidence.
        ewma_decay: RiskMetrics λ.
        recompute_interval_ns: Event time between two scheduled recomputes.
        market_proxy: Instrument whose returns are the market; "" uses the
            equal-weighted mean of every instrument.
        scenarios: Stress scenarios recomputed on the schedule.
    """

    window: int = 250
    min_samples: int = 30
    sample_interval_ns: int = _NS_PER_S
    periods_per_day: float = 23_400.0
    trading_days_per_year: float = 252.0
    confidence: float = 0.99
    ewma_decay: float = var.DEFAULT_LAMBDA
    recompute_interval_ns: int = 5 * _NS_PER_S
    market_proxy: str = ""
    scenarios: tuple[StressScenario, ...] = DEFAULT_SCENARIOS


class PostTrade(NamedTuple):
    """Figures of the book after a hypothetical trade, in money over one day.

    A named tuple rather than a frozen dataclass: one is built per decision, and a
    frozen dataclass costs several times more to construct.
    """

    var_hist: float
    cvar_hist: float
    var_ewma: float
    cvar_ewma: float
    beta_value: float


class PortfolioRisk:
    """Return history and scheduled risk figures of one account's book (see module docs)."""

    __slots__ = (
        "_beta",
        "_beta_value",
        "_columns",
        "_corr_to_book",
        "_ewma",
        "_ewma_book",
        "_ewma_columns",
        "_ewma_variance",
        "_factors",
        "_index",
        "_last_price",
        "_next_recompute_ns",
        "_next_sample_ns",
        "_quantity",
        "_ring",
        "_sample_price",
        "_samples",
        "_scalars",
        "_snapshot_price",
        "_tail",
        "_volatility",
        "config",
        "instruments",
    )

    def __init__(self, instruments: tuple[str, ...], config: RiskModelConfig | None = None):
        self.config = config = config or RiskModelConfig()
        self.instruments: list[str] = []
        self._index: dict[str, int] = {}
        count = len(instruments)
        self._ring: Matrix = np.zeros((config.window, count))
        self._last_price: Vector = np.zeros(count)
        self._sample_price: Vector = np.zeros(count)
        # Python floats, like the other state `add_quantity` touches per approval: for a
        # book of tens of instruments a list beats numpy's per-call overhead.
        self._quantity: list[float] = [0.0] * count
        self._samples = 0
        self._next_sample_ns = -1
        self._next_recompute_ns = -1
        self._columns: Matrix | None = None  # (instruments, samples), oldest first
        # One-day scale, normal quantile and shortfall factor of the configured confidence.
        self._factors = (
            math.sqrt(config.periods_per_day),
            var.z_score(config.confidence),
            var.parametric_cvar(1.0, config.confidence),
        )
        for name in instruments:
            self._column(name)
        self._clear_cache()

    def _clear_cache(self) -> None:
        self._snapshot_price: Vector = np.zeros(0)
        # Snapshot prices, EWMA variances and betas as Python floats: read per decision.
        self._scalars: tuple[list[float], list[float], list[float]] = ([], [], [])
        self._tail: HistoricalTail | None = None
        self._ewma: Matrix = np.zeros((0, 0))
        self._ewma_columns: list[list[float]] = []
        self._ewma_book: list[float] = []
        self._ewma_variance = 0.0
        self._beta: Vector = np.zeros(0)
        self._beta_value = 0.0
        self._volatility: list[float] = []  # annualised, per instrument
        # Per instrument, its correlation with the rest of the book (None: undefined).
        self._corr_to_book: list[float | None] = []

    def _column(self, instrument: str) -> int:
        index = self._index.get(instrument)
        if index is not None:
            return index
        index = self._index[instrument] = len(self.instruments)
        self.instruments.append(instrument)
        if index >= self._ring.shape[1]:
            # A new instrument: its earlier samples count as zero returns.
            self._ring = np.hstack((self._ring, np.zeros((self.config.window, 1))))
            self._last_price = np.append(self._last_price, 0.0)
            self._sample_price = np.append(self._sample_price, 0.0)
            self._quantity.append(0.0)
        return index

    # -- inputs ------------------------------------------------------------------------

    def on_price(self, instrument: str, price: float, ts_event: int) -> None:
        """Record `instrument`'s latest price; close a return sample when one is due."""
        if ts_event >= self._next_sample_ns:
            self._close_sample(ts_event)
        self._last_price[self._column(instrument)] = price

    def _close_sample(self, ts_event: int) -> None:
        interval = self.config.sample_interval_ns
        self._next_sample_ns = ts_event - ts_event % interval + interval
        last, previous = self._last_price, self._sample_price
        if previous.any():
            with np.errstate(divide="ignore", invalid="ignore"):
                returns = np.where((previous > 0) & (last > 0), last / previous - 1.0, 0.0)
            self._ring[self._samples % self.config.window] = returns
            self._samples += 1
        np.copyto(previous, last, where=last > 0)

    def add_quantity(self, instrument: str, quantity: float) -> None:
        """Add signed `quantity` to the book, updating the cached figures incrementally."""
        index = self._index.get(instrument)
        if index is None:
            index = self._column(instrument)
        self._quantity[index] += quantity
        prices, diagonal, betas = self._scalars
        if index >= len(prices):
            return  # not in the last recompute: the next one counts it
        value = quantity * prices[index]
        if self._tail is not None:
            self._tail.add(index, value)
        ewma_book = self._ewma_book
        self._ewma_variance += value * (2.0 * ewma_book[index] + value * diagonal[index])
        # held + value * covariance per instrument, element by element in C (a list
        # comprehension costs a frame and a bytecode loop per approval).
        self._ewma_book = list(map(add, ewma_book, map(value.__mul__, self._ewma_columns[index])))
        self._beta_value += value * betas[index]

    # -- scheduled figures ---------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True once enough samples exist for the statistical checks to apply."""
        return self._columns is not None

    def due(self, ts_event: int) -> bool:
        """True when the schedule asks for a recompute at event time `ts_event`."""
        return ts_event >= self._next_recompute_ns

    def recompute(self, ts_event: int, equity: float) -> dict[str, float]:
        """Refresh every cached figure and return the book's figures by metric name.

        Money figures are fractions of `equity`. Before `min_samples` samples exist,
        only the sample count is reported and the checks stay off.
        """
        config = self.config
        interval = config.recompute_interval_ns
        self._next_recompute_ns = ts_event - ts_event % interval + interval
        count = min(self._samples, config.window)
        if count < max(config.min_samples, 2):
            self._columns = None
            self._clear_cache()
            return {"samples": float(count)}
        ring = self._ring
        if self._samples > config.window:
            start = self._samples % config.window
            ring = np.concatenate((ring[start:], ring[:start]))
        returns = ring[:count]
        self._columns = np.ascontiguousarray(returns.T)
        self._snapshot_price = self._last_price.copy()
        weights = np.asarray(self._quantity) * self._snapshot_price
        book_pnl = weights @ self._columns
        self._tail = HistoricalTail(self._columns, book_pnl.copy(), config.confidence)
        self._ewma = var.ewma_covariance(returns, config.ewma_decay)
        ewma_book = self._ewma @ weights
        self._ewma_variance = float(weights @ ewma_book)
        self._ewma_book = ewma_book.tolist()
        self._ewma_columns = self._ewma.T.tolist()
        market = self._market(returns)
        centered = market - market.mean()
        market_variance = float(np.mean(centered * centered))
        if market_variance > 1e-30:
            self._beta = (centered @ returns) / count / market_variance
        else:
            self._beta = np.zeros(returns.shape[1])
        self._beta_value = float(weights @ self._beta)
        per_year = self.periods_per_year
        self._volatility = (np.std(returns, axis=0, ddof=1) * math.sqrt(per_year)).tolist()
        self._scalars = (
            self._snapshot_price.tolist(),
            np.diag(self._ewma).tolist(),
            self._beta.tolist(),
        )
        self._corr_to_book = [
            None if math.isnan(value) else value
            for value in _correlation_to_rest_of_book(returns, weights).tolist()
        ]
        return self._figures(weights, book_pnl, equity, count)

    def _market(self, returns: Matrix) -> Vector:
        proxy = self._index.get(self.config.market_proxy)
        if proxy is None:
            return returns.mean(axis=1)  # type: ignore[no-any-return]
        return returns[:, proxy]

    def _figures(
        self, weights: Vector, book_pnl: Vector, equity: float, count: int
    ) -> dict[str, float]:
        config = self.config
        scale = math.sqrt(config.periods_per_day)
        var_hist, cvar_hist = var.historical_var_cvar(book_pnl, config.confidence)
        sigma = math.sqrt(max(self._ewma_variance, 0.0))
        per_year = self.periods_per_year
        book_vol = float(np.std(book_pnl, ddof=1)) * math.sqrt(per_year)
        base = equity if equity > 0 else math.nan
        figures = {
            "samples": float(count),
            "var_hist": var_hist * scale / base,
            "cvar_hist": cvar_hist * scale / base,
            "var_ewma": var.parametric_var(sigma, config.confidence) * scale / base,
            "cvar_ewma": var.parametric_cvar(sigma, config.confidence) * scale / base,
            "volatility": book_vol / base,
            "beta": self._beta_value / base,
        }
        for scenario in config.scenarios:
            figures[f"stress_{scenario.name}"] = self._stress_loss(scenario, weights) / base
        for index, name in enumerate(self.instruments):
            figures[f"volatility:{name}"] = self._volatility[index]
            figures[f"beta:{name}"] = float(self._beta[index])
        correlations = var.correlation_matrix(np.ascontiguousarray(self._columns.T))  # type: ignore[union-attr]
        for i, first in enumerate(self.instruments):
            for j in range(i + 1, len(self.instruments)):
                figures[f"correlation:{first}:{self.instruments[j]}"] = float(correlations[i, j])
        return figures

    def _stress_loss(self, scenario: StressScenario, weights: Vector) -> float:
        """Return the loss (positive) of the book under `scenario`, one day horizon."""
        return stress_loss(
            scenario,
            weights,
            betas=self._beta,
            ewma=self._ewma,
            ewma_variance=self._ewma_variance,
            index=self._index,
            periods_per_day=self.config.periods_per_day,
            confidence=self.config.confidence,
        )

    # -- per decision ---------------------------------------------------------------------

    def post_trade(
        self, instrument: str, quantity: float, *, proves: tuple[float, float] | None = None
    ) -> PostTrade | None:
        """Return the book's one-day figures if `quantity` more of `instrument` were held.

        With `proves` (historical VaR and CVaR budgets, money over one day), historical
        figures may be upper bounds when those already stay within the budgets; exact
        otherwise. None when the figures are not ready or the instrument has no history.
        """
        index = self._index.get(instrument)
        tail = self._tail
        if tail is None or index is None or index >= len(self._snapshot_price):
            return None
        prices, diagonal, betas = self._scalars
        value = quantity * prices[index]
        scale, z_score, shortfall = self._factors
        var_hist, cvar_hist = tail.bound(index, value)
        var_hist *= scale
        cvar_hist *= scale
        if proves is None or var_hist > proves[0] or cvar_hist > proves[1]:
            var_hist, cvar_hist = tail.exact(index, value)
            var_hist *= scale
            cvar_hist *= scale
        variance = self._ewma_variance + value * (
            2.0 * self._ewma_book[index] + value * diagonal[index]
        )
        sigma = math.sqrt(max(variance, 0.0))
        # As var.parametric_var and parametric_cvar compute them, without two calls each.
        return PostTrade(
            var_hist,
            cvar_hist,
            z_score * sigma * scale,
            sigma * shortfall * scale,
            self._beta_value + value * betas[index],
        )

    def book_figures(self) -> PostTrade | None:
        """Return the current book's one-day figures (no trade), None before ready."""
        if not self.instruments:
            return None
        return self.post_trade(self.instruments[0], 0.0)

    def returns(self) -> Matrix | None:
        """Return the last recompute's return window (rows: samples, oldest first), if ready.

        Columns follow `instruments`; read only.
        """
        return None if self._columns is None else self._columns.T

    @property
    def periods_per_year(self) -> float:
        """Return samples per year: annualises figures from one sample's returns."""
        return self.config.periods_per_day * self.config.trading_days_per_year

    def volatility(self, instrument: str) -> float | None:
        """Return `instrument`'s annualised realised volatility, None before ready."""
        index = self._index.get(instrument)
        if self._columns is None or index is None or index >= len(self._volatility):
            return None
        return self._volatility[index]

    def correlation_to_book(self, instrument: str) -> float | None:
        """Return the correlation of `instrument` with the rest of the book, if known.

        NaN (no other holdings, or a flat series) is reported as None.
        """
        index = self._index.get(instrument)
        if self._columns is None or index is None or index >= len(self._corr_to_book):
            return None
        return self._corr_to_book[index]


def stress_loss(
    scenario: StressScenario,
    weights: Vector,
    *,
    betas: Vector,
    ewma: Matrix,
    ewma_variance: float,
    index: dict[str, int],
    periods_per_day: float,
    confidence: float,
) -> float:
    """Return the one-day loss (positive, money) of a book under `scenario`.

    Args:
        scenario: The shock.
        weights: Value held per instrument (columns of `ewma`, positions of `index`).
        betas: Per instrument, beta to the market proxy.
        ewma: EWMA covariance of one sample's returns.
        ewma_variance: weights' ewma weights (the book's one-sample EWMA variance).
        index: Instrument name -> position in `weights`.
        periods_per_day: Samples per day: one-sample figures scale by its square root.
        confidence: Confidence of the VaR the volatility and correlation shocks report.
    """
    scale = math.sqrt(periods_per_day)
    if scenario.correlation_one:
        sigmas = np.sqrt(np.clip(np.diag(ewma), 0.0, None))
        return var.parametric_var(float(np.abs(weights) @ sigmas), confidence) * scale
    if scenario.vol_multiplier != 1.0:
        sigma = math.sqrt(max(ewma_variance, 0.0)) * scenario.vol_multiplier
        return var.parametric_var(sigma, confidence) * scale
    moves = np.nan_to_num(betas) * scenario.market_move
    everyone = scenario.shocks.get("*")
    if everyone is not None:
        moves = moves + everyone
    for name, shock in scenario.shocks.items():
        position = index.get(name)
        if position is not None:
            moves[position] += shock
    return -float(weights @ moves)


def _correlation_to_rest_of_book(returns: Matrix, weights: Vector) -> Vector:
    """Return, per instrument, its correlation with the book's P&L without it.

    With sample covariance C: cov(r_i, book - w_i r_i) = (C w)_i - w_i C_ii and
    var(book - w_i r_i) = w'Cw - 2 w_i (C w)_i + w_i² C_ii, for every i at once.
    """
    covariance = np.atleast_2d(np.cov(returns, rowvar=False, ddof=1))
    own = np.diag(covariance)
    cov_book = covariance @ weights
    book_variance = float(weights @ cov_book)
    cov_rest = cov_book - weights * own
    var_rest = book_variance - 2.0 * weights * cov_book + weights * weights * own
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = cov_rest / np.sqrt(own * var_rest)
    return np.where(var_rest > 1e-18 * max(book_variance, 1e-300), correlation, np.nan)
