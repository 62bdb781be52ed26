"""Synthetic market feed: correlated jump-diffusion prices with calm/stressed regimes.

The latent log mid-prices of all symbols follow one correlated geometric Brownian
motion on a common event clock (constant pairwise correlation, Cholesky factor),
with idiosyncratic Poisson jumps of lognormal size and a market-wide two-state Markov
volatility regime. Ticks arrive as a Poisson process of `ticks_per_second` across all
symbols; each tick observes one symbol's mid, rounded out to the tick grid to form a
bid/ask, and prints a trade at the bid or the ask (bid-ask bounce).

Everything is drawn from one `numpy.random.Generator(PCG64(seed))` in vectorised
chunks of `chunk_size` steps, so the same config yields byte-identical records, and
any prefix of a longer run equals a shorter run.

Records carry `ts_init == ts_event`; a live publisher restamps `ts_init` with the
wall clock through `stamp` when it sends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum
from itertools import islice
from typing import Any

import numpy as np

from risk.domain.error import ConfigError

NS_PER_S = 1_000_000_000
TRADING_YEAR_S = 252 * 6.5 * 3600.0
DEFAULT_SYMBOLS = ("AAPL", "AMZN", "IBM", "INTC", "JNJ", "JPM", "KO", "MSFT", "WMT", "XOM")
DEFAULT_START_NS = 1_704_205_800_000_000_000  # 2024-01-02 14:30 UTC, a NYSE open
_NEVER = 1 << 62  # regime duration standing for "never switches"


class Regime(IntEnum):
    """Market-wide volatility regime (an int so a chunk stores it as int8)."""

    CALM = 0
    STRESSED = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class SimulationConfig:
    """Parameters of the simulated market; validated all at once on construction.

    Rates are annualised over `seconds_per_year` of event time. The default is a
    trading year (252 days x 6.5 h), which makes per-tick moves realistically tiny;
    shrink it (e.g. 3600) to compress a year of movement into an hour of event time.
    Regime switch probabilities are per step (per tick across all symbols).
    """

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    initial_prices: tuple[float, ...] = ()  # empty: 100.0 for every symbol
    calm_drift_annual: float = 0.05
    calm_vol_annual: float = 0.20
    stressed_drift_annual: float = -0.30
    stressed_vol_annual: float = 0.60
    correlation: float = 0.3
    p_calm_to_stressed: float = 1e-5
    p_stressed_to_calm: float = 1e-4
    jump_intensity_annual: float = 10.0  # expected jumps per symbol per year
    jump_mean_log: float = -0.01
    jump_std_log: float = 0.03
    spread_bps: float = 2.0  # calm spread; widens in proportion to volatility
    tick_size: float = 0.01
    trade_size_log_mean: float = math.log(100.0)
    trade_size_log_std: float = 1.0
    quote_fraction: float = 0.0  # share of ticks that are quotes rather than trades
    ticks_per_second: float = 1000.0
    seconds_per_year: float = TRADING_YEAR_S
    round_robin: bool = False  # cycle symbols instead of picking them at random
    seed: int = 7
    # > 0: the first calm spell lasts exactly this many steps (a scripted regime change,
    # e.g. for drift tests); 0 draws it like every other spell.
    calm_steps: int = 0
    start_ns: int = DEFAULT_START_NS
    chunk_size: int = 4096  # part of the random stream: changing it changes the output

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise ConfigError("invalid SimulationConfig: " + "; ".join(problems))

    def prices(self) -> tuple[float, ...]:
        """Return the initial mid price of each symbol."""
        return self.initial_prices or (100.0,) * len(self.symbols)


def _problems(cfg: SimulationConfig) -> list[str]:
    n = len(cfg.symbols)
    checks = [
        (n > 0, "symbols must not be empty"),
        (len(set(cfg.symbols)) == n, "symbols must be unique"),
        (len(cfg.initial_prices) in (0, n), "initial_prices must match symbols"),
        (all(p > 0 and math.isfinite(p) for p in cfg.initial_prices), "prices must be > 0"),
        (cfg.calm_vol_annual > 0 and cfg.stressed_vol_annual > 0, "vols must be > 0"),
        (n < 2 or -1.0 / (n - 1) < cfg.correlation < 1.0, "correlation must keep PD"),
        (0 <= cfg.p_calm_to_stressed <= 1, "p_calm_to_stressed must be in [0, 1]"),
        (0 <= cfg.p_stressed_to_calm <= 1, "p_stressed_to_calm must be in [0, 1]"),
        (cfg.jump_intensity_annual >= 0, "jump_intensity_annual must be >= 0"),
        (cfg.jump_std_log >= 0, "jump_std_log must be >= 0"),
        (cfg.spread_bps > 0, "spread_bps must be > 0"),
        (cfg.tick_size > 0, "tick_size must be > 0"),
        (cfg.trade_size_log_std >= 0, "trade_size_log_std must be >= 0"),
        (0 <= cfg.quote_fraction <= 1, "quote_fraction must be in [0, 1]"),
        (cfg.ticks_per_second > 0, "ticks_per_second must be > 0"),
        (cfg.seconds_per_year > 0, "seconds_per_year must be > 0"),
        (cfg.chunk_size >= 1, "chunk_size must be >= 1"),
        (cfg.calm_steps >= 0, "calm_steps must be >= 0"),
    ]
    return [message for ok, message in checks if not ok]


@dataclass(frozen=True, slots=True, kw_only=True)
class TickColumns:
    """One chunk of simulated ticks as columns (index into `symbols` per row)."""

    symbol_index: np.ndarray
    seq: np.ndarray
    is_quote: np.ndarray
    price: np.ndarray
    size: np.ndarray
    bid: np.ndarray
    ask: np.ndarray
    bid_size: np.ndarray
    ask_size: np.ndarray
    ts_event: np.ndarray
    regime: np.ndarray
    jumps: int  # jumps in the latent prices of all symbols during the chunk


class Simulator:
    """Stateful generator of simulated ticks; iterate it for records, forever.

    Its state (generator, prices, regime, sequence numbers, clock) pickles.
    """

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self._rng = np.random.Generator(np.random.PCG64(config.seed))
        n = len(config.symbols)
        corr = np.full((n, n), config.correlation) + np.eye(n) * (1.0 - config.correlation)
        self._chol_t = np.linalg.cholesky(corr).T
        self._log_prices = np.log(np.asarray(config.prices(), dtype=np.float64))
        self._seq = np.zeros(n, dtype=np.int64)
        self._ts_ns = config.start_ns
        self._steps = 0
        self._regime = Regime.CALM
        self._remaining = config.calm_steps or self._duration(Regime.CALM)
        self.regime_switches = 0
        self.jumps = 0
        self._decimals = max(0, -int(Decimal(str(config.tick_size)).as_tuple().exponent))
        vol = np.array([config.calm_vol_annual, config.stressed_vol_annual])
        self._vol = vol
        self._drift = np.array([config.calm_drift_annual, config.stressed_drift_annual])
        self._half_spread = config.spread_bps / 2e4 * vol / vol[0]

    @property
    def regime(self) -> Regime:
        """The volatility regime in force after the last generated step."""
        return self._regime

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield from records(self.next_columns(), self.config.symbols)

    def next_columns(self) -> TickColumns:
        """Generate the next `chunk_size` steps as columns."""
        cfg, rng, m = self.config, self._rng, self.config.chunk_size
        gaps_ns = np.maximum(1, np.rint(rng.exponential(NS_PER_S / cfg.ticks_per_second, m)))
        ts_event = self._ts_ns + np.cumsum(gaps_ns.astype(np.int64))
        self._ts_ns = int(ts_event[-1])
        dt_years = gaps_ns / (cfg.seconds_per_year * NS_PER_S)
        regime = self._regime_path(m)
        mids, pick, jumps = self._mids(rng, m, dt_years, regime)
        return self._quote_and_trade(
            rng, mids=mids, pick=pick, regime=regime, ts_event=ts_event, jumps=jumps
        )

    def _mids(
        self, rng: np.random.Generator, m: int, dt_years: np.ndarray, regime: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, int]:
        """Advance the latent prices `m` steps; return the observed mids, symbols, jumps."""
        cfg, n = self.config, len(self.config.symbols)
        vol, drift = self._vol[regime], self._drift[regime]
        shocks = rng.standard_normal((m, n)) @ self._chol_t
        steps = shocks * (vol * np.sqrt(dt_years))[:, None]
        steps += ((drift - 0.5 * vol * vol) * dt_years)[:, None]
        count = 0
        if cfg.jump_intensity_annual > 0:
            hit = rng.random((m, n)) < -np.expm1(-cfg.jump_intensity_annual * dt_years)[:, None]
            count = int(hit.sum())
            steps[hit] += rng.normal(cfg.jump_mean_log, cfg.jump_std_log, count)
            self.jumps += count
        path = self._log_prices + np.cumsum(steps, axis=0)
        self._log_prices = path[-1].copy()
        pick = (self._steps + np.arange(m)) % n if cfg.round_robin else rng.integers(0, n, m)
        self._steps += m
        mids = np.exp(path[np.arange(m), pick])
        if not np.isfinite(mids).all():
            raise FloatingPointError("simulated prices overflowed: check drift/vol/jump config")
        return mids, pick, count

    def _quote_and_trade(
        self,
        rng: np.random.Generator,
        *,
        mids: np.ndarray,
        pick: np.ndarray,
        regime: np.ndarray,
        ts_event: np.ndarray,
        jumps: int,
    ) -> TickColumns:
        cfg, tick, m = self.config, self.config.tick_size, len(mids)
        half = mids * self._half_spread[regime]
        # Round outwards to the tick grid so bid < ask always holds, at least one tick wide.
        bid_ticks = np.maximum(np.floor((mids - half) / tick), 1.0)
        ask_ticks = np.maximum(np.ceil((mids + half) / tick), bid_ticks + 1.0)
        bid = np.round(bid_ticks * tick, self._decimals)
        ask = np.round(ask_ticks * tick, self._decimals)
        buy = rng.random(m) < 0.5
        mu, sd = cfg.trade_size_log_mean, cfg.trade_size_log_std
        sizes = np.maximum(1.0, np.rint(np.exp(rng.normal(mu, sd, (3, m)))))
        price = np.where(buy, ask, bid)
        size = sizes[0]
        if cfg.quote_fraction > 0:
            is_quote = rng.random(m) < cfg.quote_fraction
            price = np.where(is_quote, np.round((bid + ask) / 2, self._decimals + 1), price)
            size = np.where(is_quote, 0.0, size)
        else:
            is_quote = np.zeros(m, dtype=bool)
        return TickColumns(
            symbol_index=pick,
            seq=self._sequence(pick),
            is_quote=is_quote,
            price=price,
            size=size,
            bid=bid,
            ask=ask,
            bid_size=sizes[1],
            ask_size=sizes[2],
            ts_event=ts_event,
            regime=regime,
            jumps=jumps,
        )

    def _sequence(self, pick: np.ndarray) -> np.ndarray:
        seq = np.empty(len(pick), dtype=np.int64)
        for i in range(len(self._seq)):
            rows = np.flatnonzero(pick == i)
            seq[rows] = self._seq[i] + np.arange(1, len(rows) + 1)
            self._seq[i] += len(rows)
        return seq

    def _duration(self, regime: Regime) -> int:
        """Draw how many steps `regime` lasts (geometric: a per-step switch chance)."""
        cfg = self.config
        p = cfg.p_calm_to_stressed if regime is Regime.CALM else cfg.p_stressed_to_calm
        return int(self._rng.geometric(p)) if p > 0 else _NEVER

    def _regime_path(self, m: int) -> np.ndarray:
        # Sampling whole sojourns keeps the Markov chain vectorised: few switches per chunk.
        out = np.empty(m, dtype=np.int8)
        done = 0
        while done < m:
            take = min(self._remaining, m - done)
            out[done : done + take] = self._regime
            done += take
            self._remaining -= take
            if self._remaining == 0:
                self._regime = Regime(1 - self._regime)
                self._remaining = self._duration(self._regime)
                self.regime_switches += 1
        return out


def records(columns: TickColumns, symbols: tuple[str, ...]) -> list[dict[str, Any]]:
    """Turn a chunk of columns into tick records shaped as `decode_tick` expects."""
    names = np.asarray(symbols, dtype=object)[columns.symbol_index].tolist()
    kinds = np.where(columns.is_quote, "quote", "trade").tolist()
    ts = columns.ts_event.tolist()
    return [
        {
            "instrument": name,
            "seq": seq,
            "kind": kind,
            "price": price,
            "size": size,
            "bid": bid,
            "ask": ask,
            "bid_size": bid_size,
            "ask_size": ask_size,
            "ts_event": ts_ns,
            "ts_init": ts_ns,
        }
        for name, seq, kind, price, size, bid, ask, bid_size, ask_size, ts_ns in zip(
            names,
            columns.seq.tolist(),
            kinds,
            columns.price.tolist(),
            columns.size.tolist(),
            columns.bid.tolist(),
            columns.ask.tolist(),
            columns.bid_size.tolist(),
            columns.ask_size.tolist(),
            ts,
            strict=True,
        )
    ]


def simulate(config: SimulationConfig, n_ticks: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield `n_ticks` simulated tick records in event-time order (forever if None).

    >>> ticks = list(simulate(SimulationConfig(symbols=("AAA", "BBB"), seed=1), 3))
    >>> [t["seq"] for t in ticks if t["instrument"] == "AAA"][:1]
    [1]
    >>> all(t["bid"] < t["ask"] and t["size"] > 0 for t in ticks)
    True
    """
    return islice(Simulator(config), n_ticks)


def stamp(record: dict[str, Any], ts_init: int) -> dict[str, Any]:
    """Return a copy of `record` with `ts_init` set (the publisher's wall-clock send time).

    >>> stamp({"ts_event": 1, "ts_init": 1}, 5)
    {'ts_event': 1, 'ts_init': 5}
    """
    return {**record, "ts_init": ts_init}
