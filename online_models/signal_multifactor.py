"""A multi-factor, cost-aware signal: factors -> expected edge in bps -> a target position.

Per instrument, on every tick the champion model predicts on, the engine reads:

- the model scores of the pipelines that predicted on the tick: the champion's
  (2p - 1) and the mean of the challengers' (0 without challengers);
- momentum: the log return over the last `momentum_ticks` ticks in units of the
  short-run volatility over that span (a t-statistic);
- mean reversion: the z-score of the log price against its exponentially weighted
  mean and deviation over `mean_ticks`;
- the volatility regime: log(short-run / long-run volatility), both EWMA of squared
  tick log returns.

Weights are configured (`weights`, one per factor after a bias) or learned online:
an exponentially weighted ridge regression (forgetting `forgetting` per sample) of
the forward log return over `horizon_ticks` ticks, in bps, on the factors, refitted
every `refit_ticks` labelled samples. Its fit on a tick is the expected edge over
the horizon. Everything is deterministic in the tick sequence.

The target is +1 when the edge exceeds `edge_multiple` x the round-trip cost
(2 x `cost_bps`, one-way fee + slippage), -1 below its negative; a held position
is kept while the edge keeps its sign and goes flat when it turns. A change of
target needs `min_hold_ticks` ticks since the last change and fits a turnover
budget: the position units traded (|new - old|) within the last
`turnover_window_ticks` ticks, plus one unit kept for the exit of any position
entered, stay within `max_turnover`, so an exit is never blocked (a flip over
the budget goes flat instead). Every time
scale counts the instrument's own ticks (event time), never seconds. A `Signal`
is emitted only on a change of target.

>>> cfg = MultiFactorConfig(cost_bps=1.0, min_labelled=0, min_learned=0,
...                         weights=(0.0, 100.0, 0.0, 0.0, 0.0, 0.0), min_hold_ticks=2)
>>> engine = MultiFactorEngine(cfg)
>>> [engine.step(100.0, p, 0.0, 1) for p in (0.5, 0.52, 0.3, 0.3, 0.3)]
[None, 1, None, -1, None]
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from online_models.signal_event import signal_from
from risk.domain.model import Prediction, Signal

FLAT = 0
LONG = 1
SHORT = -1

FACTORS = ("bias", "champion", "challengers", "momentum", "mean_reversion", "vol_regime")
_CLIP = 5.0  # factors are clipped to +-5 (z-score like units)
_BPS = 10_000.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MultiFactorConfig:
    """Factors, weights, costs and the event-time limits of the multi-factor signal.

    Raises:
        ValueError: listing every problem (negative costs or counts, a forgetting
            factor outside (0, 1], weights of the wrong length, ...).
    """

    cost_bps: float = 0.0  # one-way fee + slippage (the gateway's, from settings)
    edge_multiple: float = 1.0  # trade when |edge| > edge_multiple * 2 * cost_bps
    horizon_ticks: int = 20  # forward return the weights learn, in the instrument's ticks
    momentum_ticks: int = 20
    mean_ticks: int = 50
    vol_short_ticks: int = 20
    vol_long_ticks: int = 200
    weights: tuple[float, ...] | None = None  # None: learned online
    forgetting: float = 0.999  # per labelled sample
    ridge: float = 1.0
    refit_ticks: int = 10
    min_learned: int = 100  # labelled samples before learned weights trade
    min_labelled: int = 200  # the champion model's labels before anything trades
    min_hold_ticks: int = 20
    turnover_window_ticks: int = 1_000
    max_turnover: float = 8.0  # position units traded per window (a flip is 2)

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            msg = "invalid MultiFactorConfig: " + "; ".join(problems)
            raise ValueError(msg)

    def problems(self) -> list[str]:
        """List what is wrong with this configuration (empty when valid)."""
        found = []
        for name in ("cost_bps", "edge_multiple", "ridge", "max_turnover"):
            value = getattr(self, name)
            if not value >= 0.0:  # also rejects NaN
                found.append(f"{name}={value} is negative")
        for name in (
            "horizon_ticks",
            "momentum_ticks",
            "mean_ticks",
            "vol_short_ticks",
            "vol_long_ticks",
            "refit_ticks",
            "turnover_window_ticks",
        ):
            if getattr(self, name) < 1:
                found.append(f"{name}={getattr(self, name)} is below 1")
        for name in ("min_learned", "min_labelled", "min_hold_ticks"):
            if getattr(self, name) < 0:
                found.append(f"{name}={getattr(self, name)} is negative")
        if not 0.0 < self.forgetting <= 1.0:
            found.append(f"forgetting={self.forgetting} is outside (0, 1]")
        if self.weights is not None and len(self.weights) != len(FACTORS):
            found.append(f"weights has {len(self.weights)} values, expected {len(FACTORS)}")
        if self.max_turnover < 2.0:  # an entry needs room for itself and its exit
            found.append(f"max_turnover={self.max_turnover} is below 2 (one entry + exit)")
        return found


def _clip(x: float) -> float:
    return _CLIP if x > _CLIP else -_CLIP if x < -_CLIP else x


class MultiFactorEngine:
    """One instrument's factors, learned weights and target position (picklable).

    `step` is the pure per-tick core (numbers in, a new target or None out);
    `update` wraps it for the pipeline's `Prediction` and returns a `Signal`.
    """

    __slots__ = (
        "_a",
        "_b",
        "_changes",
        "_last_change",
        "_mean",
        "_pending",
        "_prices",
        "_ridge",
        "_var",
        "_var_long",
        "_var_short",
        "_weights",
        "config",
        "direction",
        "edge",
        "n_learned",
        "n_ticks",
    )

    def __init__(self, config: MultiFactorConfig | None = None) -> None:
        """Start flat, with no history, under `config` (the defaults when None)."""
        self.config = cfg = config if config is not None else MultiFactorConfig()
        d = len(FACTORS)
        self.direction = FLAT
        self.edge = 0.0
        self.n_ticks = 0
        self.n_learned = 0
        self._prices: deque[float] = deque(maxlen=cfg.momentum_ticks + 1)  # log prices
        self._pending: deque[tuple[float, tuple[float, ...]]] = deque()  # (log price, factors)
        self._mean = math.nan
        self._var = 0.0
        self._var_short = 0.0
        self._var_long = 0.0
        self._a = np.zeros((d, d))  # sum of forgetting^k x x' (the ridge is added at solve)
        self._b = np.zeros(d)
        self._ridge = np.eye(d) * cfg.ridge
        self._weights: tuple[float, ...] = (
            tuple(float(w) for w in cfg.weights) if cfg.weights is not None else (0.0,) * d
        )
        self._last_change = -(10**18)
        self._changes: deque[tuple[int, int]] = deque()  # (tick index, units traded)

    # ------------------------------------------------------------------ factors

    def _factors(self, log_price: float, p_champion: float, p_peers: float) -> tuple[float, ...]:
        cfg = self.config
        prices = self._prices
        if prices:
            r = log_price - prices[-1]
            r2 = r * r
            a_short = 2.0 / (cfg.vol_short_ticks + 1)
            a_long = 2.0 / (cfg.vol_long_ticks + 1)
            self._var_short += a_short * (r2 - self._var_short)
            self._var_long += a_long * (r2 - self._var_long)
        prices.append(log_price)
        if math.isnan(self._mean):
            self._mean = log_price
        a_mean = 2.0 / (cfg.mean_ticks + 1)
        dev = log_price - self._mean
        self._mean += a_mean * dev
        self._var = (1.0 - a_mean) * (self._var + a_mean * dev * dev)
        sd_short = math.sqrt(self._var_short)
        momentum = 0.0
        if sd_short > 0.0 and len(prices) > 1:
            span = len(prices) - 1
            momentum = (log_price - prices[0]) / (sd_short * math.sqrt(span))
        sd = math.sqrt(self._var)
        zscore = (log_price - self._mean) / sd if sd > 0.0 else 0.0
        regime = (
            0.5 * math.log(self._var_short / self._var_long)
            if self._var_short > 0.0 and self._var_long > 0.0
            else 0.0
        )
        return (
            1.0,
            2.0 * p_champion - 1.0,
            p_peers,
            _clip(momentum),
            _clip(zscore),
            _clip(regime),
        )

    def _learn(self, log_price: float, factors: tuple[float, ...]) -> None:
        cfg = self.config
        pending = self._pending
        pending.append((log_price, factors))
        if len(pending) <= cfg.horizon_ticks:
            return
        then, factors_then = pending.popleft()
        self.n_learned += 1
        if cfg.weights is not None:
            return  # configured weights: nothing to fit
        # The forward return in bps, winsorised at 5 long-run deviations over the horizon.
        bound = 5.0 * math.sqrt(self._var_long * cfg.horizon_ticks) * _BPS
        y = (log_price - then) * _BPS
        if bound > 0.0:
            y = min(max(y, -bound), bound)
        lam = cfg.forgetting
        x = np.array(factors_then)
        a, b = self._a, self._b
        a *= lam
        a += np.outer(x, x)
        b *= lam
        b += y * x
        if self.n_learned % cfg.refit_ticks == 0:
            # Ridge: the penalty does not decay with the samples.
            fitted = np.linalg.solve(a + self._ridge, b)
            self._weights = tuple(float(w) for w in fitted)

    # ------------------------------------------------------------------ decision

    def _wanted(self, edge: float) -> int:
        gate = self.config.edge_multiple * 2.0 * self.config.cost_bps
        if edge > gate:
            return LONG
        if edge < -gate:
            return SHORT
        held = self.direction
        if (held == LONG and edge >= 0.0) or (held == SHORT and edge <= 0.0):
            return held
        return FLAT

    def _allowed(self, target: int) -> bool:
        cfg = self.config
        now = self.n_ticks
        if now - self._last_change < cfg.min_hold_ticks:
            return False
        changes = self._changes
        while changes and changes[0][0] <= now - cfg.turnover_window_ticks:
            changes.popleft()
        used = sum(units for _, units in changes)
        # Room for the exit of the position entered: exits are never blocked.
        return used + abs(target - self.direction) + abs(target) <= cfg.max_turnover

    def step(self, price: float, p_champion: float, p_peers: float, n_labelled: int) -> int | None:
        """See one tick: the price, the champion's probability, the challengers' mean
        score (2p - 1; 0 without challengers) and the champion's labels so far.

        Returns:
            The new target (-1, 0, +1) when it changes on this tick, else None.
        """
        cfg = self.config
        self.n_ticks += 1
        if not price > 0.0:
            return None
        log_price = math.log(price)
        factors = self._factors(log_price, p_champion, p_peers)
        self._learn(log_price, factors)
        w = self._weights
        self.edge = edge = (
            w[0] * factors[0]
            + w[1] * factors[1]
            + w[2] * factors[2]
            + w[3] * factors[3]
            + w[4] * factors[4]
            + w[5] * factors[5]
        )
        if n_labelled < cfg.min_labelled or (
            cfg.weights is None and self.n_learned < cfg.min_learned
        ):
            return None
        target = self._wanted(edge)
        if target == self.direction:
            return None
        if not self._allowed(target):
            if FLAT in {target, self.direction} or not self._allowed(FLAT):
                return None
            target = FLAT  # a flip over the budget still leaves the wrong side
        self._changes.append((self.n_ticks, abs(target - self.direction)))
        self._last_change = self.n_ticks
        self.direction = target
        return target

    def step_many(
        self,
        prices: Sequence[float],
        p_champion: Sequence[float],
        p_peers: Sequence[float],
        n_labelled: Sequence[int],
    ) -> list[tuple[int, int]]:
        """`step` over columns of ticks; the (row, new target) of every change."""
        out = []
        for i, (price, p, peers, n) in enumerate(
            zip(prices, p_champion, p_peers, n_labelled, strict=True)
        ):
            target = self.step(price, p, peers, n)
            if target is not None:
                out.append((i, target))
        return out

    @property
    def weights(self) -> dict[str, float]:
        """The factor weights in use (bps of edge per unit of factor)."""
        return dict(zip(FACTORS, self._weights, strict=True))

    def update(
        self,
        prediction: Prediction,
        n_labelled: int,
        reference_price: float,
        peers: Sequence[float] = (),
    ) -> Signal | None:
        """Move the target on the champion's `prediction` (`peers`: the challengers'
        probabilities on the same tick); return the `Signal` if the target changed.

        Labelled predictions (version 1) describe the past and are ignored.
        """
        if prediction.version != 0:
            return None
        score = sum(2.0 * p - 1.0 for p in peers) / len(peers) if peers else 0.0
        target = self.step(reference_price, prediction.probability_up, score, n_labelled)
        if target is None:
            return None
        return signal_from(prediction, target, reference_price)
