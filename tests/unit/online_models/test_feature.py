"""Incremental indicators and the per-instrument feature aggregate."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from online_models.feature import (
    Atr,
    Ema,
    FeatureConfig,
    InstrumentFeatures,
    Macd,
    RealizedVol,
    RollingMoments,
    RollingVwap,
    Rsi,
    Sma,
    feature_names,
    log_return,
    pct_b,
    warmup_ticks,
    zscore,
)
from risk.domain.enums import TickKind
from risk.domain.error import ConfigError
from risk.domain.market import Bar, Tick

_NS = 1_000_000_000


def make_tick(seq: int, price: float, size: float = 1.0) -> Tick:
    """A tick every 100 ms; size 0 makes a quote."""
    return Tick(
        tick_id=f"t{seq}",
        instrument="X",
        seq=seq,
        kind=TickKind.TRADE if size else TickKind.QUOTE,
        price=price,
        size=size,
        ts_event=seq * _NS // 10,
        ts_init=seq * _NS // 10,
    )


def make_bar(seq: int, high: float, low: float, close: float) -> Bar:
    return Bar(
        instrument="X",
        interval_s=1,
        open=close,
        high=high,
        low=low,
        close=close,
        volume=1.0,
        vwap=close,
        trade_count=1,
        ts_event=seq * _NS,
        ts_init=(seq + 1) * _NS,
    )


def random_walk(n: int, seed: int = 3, start: float = 100.0) -> list[float]:
    rng = random.Random(seed)
    prices = []
    price = start
    for _ in range(n):
        price *= math.exp(rng.gauss(0.0, 1e-3))
        prices.append(price)
    return prices


def feed_ticks(
    features: InstrumentFeatures, prices: list[float], start: int = 0
) -> Iterator[dict[str, float] | None]:
    """Feed one tick per price and a 1-second bar every ten ticks, as the flow would."""
    for offset, price in enumerate(prices):
        seq = start + offset
        if seq % 10 == 0:
            features.on_bar(make_bar(seq // 10, price * 1.001, price * 0.999, price))
        yield features.update(make_tick(seq, price, size=float(seq % 7)))


# --- single indicators -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "feed", "warm_after"),
    [
        (lambda: Sma(5), lambda ind, x: ind.update(x), 5),
        (lambda: RollingMoments(1), lambda ind, x: ind.update(x), 1),
        (lambda: Ema(5), lambda ind, x: ind.update(x), 5),
        (lambda: Rsi(5), lambda ind, x: ind.update(x), 6),
        (lambda: Macd(3, 5, 2), lambda ind, x: ind.update(x), 6),
        (lambda: RealizedVol(5), lambda ind, x: ind.update(x), 6),
        (lambda: RollingVwap(5), lambda ind, x: ind.update(x, 1.0), 5),
        (lambda: Atr(5), lambda ind, x: ind.update(x + 1.0, x - 1.0, x), 6),
    ],
    ids=["sma", "moments_1", "ema", "rsi", "macd", "realized_vol", "vwap", "atr"],
)
def test_indicator_returns_none_until_warm_then_values(
    make: Callable[[], object], feed: Callable[[object, float], object], warm_after: int
) -> None:
    indicator = make()
    outputs = [feed(indicator, x) for x in random_walk(warm_after + 5)]
    assert all(v is None for v in outputs[: warm_after - 1])
    assert all(v is not None for v in outputs[warm_after - 1 :])


@pytest.mark.parametrize("period", [2, 5, 14])
def test_rsi_all_gains_returns_100(period: int) -> None:
    rsi = Rsi(period)
    values = [rsi.update(float(x)) for x in range(1, 40)]
    assert values[period] == 100.0
    assert values[-1] == 100.0


@pytest.mark.parametrize("period", [2, 5, 14])
def test_rsi_all_losses_returns_0(period: int) -> None:
    rsi = Rsi(period)
    values = [rsi.update(float(x)) for x in range(40, 1, -1)]
    assert values[-1] == 0.0


def test_rsi_flat_prices_returns_50() -> None:
    rsi = Rsi(3)
    assert [rsi.update(7.0) for _ in range(6)][-1] == 50.0


def test_ema_seeds_with_sma_of_first_period() -> None:
    ema = Ema(4)
    values = [ema.update(x) for x in (1.0, 2.0, 3.0, 6.0, 13.0)]
    assert values[3] == 3.0
    assert values[4] == pytest.approx((13.0 - 3.0) * 0.4 + 3.0)


def test_macd_fast_ema_is_seeded_on_the_slow_seed_bar() -> None:
    # TA-Lib's MACD seeds its fast EMA with the last `fast` of the first `slow` prices.
    macd = Macd(2, 4, 1)
    out = [macd.update(x) for x in (1.0, 2.0, 3.0, 10.0)]
    assert out[3] is not None
    assert out[3][0] == pytest.approx((3.0 + 10.0) / 2 - (1 + 2 + 3 + 10) / 4)


@pytest.mark.parametrize(
    ("fast", "slow", "signal"), [(26, 12, 9), (12, 12, 9), (0, 26, 9), (12, 26, 0)]
)
def test_macd_invalid_periods_raise(fast: int, slow: int, signal: int) -> None:
    with pytest.raises(ValueError, match="MACD"):
        Macd(fast, slow, signal)


@pytest.mark.parametrize("cls", [RollingMoments, Sma, Ema, Rsi, Atr, RollingVwap])
def test_indicator_zero_period_raises(cls: Callable[[int], object]) -> None:
    with pytest.raises(ValueError, match=">= 1"):
        cls(0)


def test_atr_first_value_is_mean_true_range_then_wilder() -> None:
    atr = Atr(2)
    bars = ((11.0, 9.0, 10.0), (12.0, 10.0, 11.0), (13.0, 9.0, 12.0), (12.0, 11.0, 12.0))
    assert [atr.update(*bar) for bar in bars] == [None, None, 3.0, 2.0]


def test_true_range_uses_gap_from_previous_close() -> None:
    atr = Atr(1)
    atr.update(10.0, 10.0, 10.0)
    assert atr.update(15.0, 14.0, 14.5) == 5.0


@pytest.mark.parametrize(
    "values",
    [[5.0] * 8, [0.1 + 0.2] * 8, [1.0, 2.0, 3.0] + [0.3] * 6, [1e6 + 0.1] * 40],
    ids=["exact", "inexact_float", "flat_after_moves", "large_level"],
)
def test_rolling_moments_flat_window_has_zero_std(values: list[float]) -> None:
    moments = RollingMoments(5)
    for v in values:
        moments.update(v)
    assert moments.std == 0.0
    assert zscore(values[-1], moments.mean, moments.std) == 0.0
    assert pct_b(values[-1], moments.mean, moments.std, 2.0) == 0.5


@pytest.mark.parametrize("level", [1e-4, 1.0, 1e6])
def test_rolling_moments_long_trending_stream_stays_exact(level: float) -> None:
    # 50k updates through re-centring and periodic re-summation: no drift.
    prices = [level * p for p in random_walk(50_000, seed=11)]
    prices = [p * (1.0 + 1e-4 * i) for i, p in enumerate(prices)]
    moments = RollingMoments(20)
    for p in prices:
        moments.update(p)
    tail = np.array(prices[-20:])
    assert moments.mean == pytest.approx(float(tail.mean()), rel=1e-12)
    assert moments.std == pytest.approx(float(tail.std()), rel=1e-9)


def test_vwap_window_without_volume_returns_last_price() -> None:
    vwap = RollingVwap(3)
    outputs = [vwap.update(p, s) for p, s in ((10.0, 0.1), (11.0, 0.2), (12.0, 0.0))]
    assert outputs[-1] == pytest.approx((1.0 + 2.2) / 0.3)
    outputs += [vwap.update(p, 0.0) for p in (13.0, 14.0, 15.0)]
    assert outputs[-1] == 15.0


def test_vwap_quotes_age_trades_out_of_the_window() -> None:
    vwap = RollingVwap(2)
    vwap.update(10.0, 5.0)
    assert vwap.update(20.0, 0.0) == 10.0
    assert vwap.update(30.0, 1.0) == 30.0


@pytest.mark.parametrize(("price", "prev"), [(1.0, 0.0), (0.0, 1.0), (-1.0, 1.0)])
def test_log_return_nonpositive_price_returns_0(price: float, prev: float) -> None:
    assert log_return(price, prev) == 0.0


# --- configuration -------------------------------------------------------------------------


def test_feature_names_follow_config_periods() -> None:
    config = FeatureConfig(sma_period=5, ema_fast_period=3, ema_slow_period=8, rsi_period=7)
    names = feature_names(config)
    assert names[2:6] == ("sma_5", "ema_3", "ema_8", "rsi_7")
    assert len(set(names)) == len(names) == 14


def test_feature_config_invalid_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as info:
        FeatureConfig(sma_period=0, macd_fast=30, bb_num_std=-1.0, ema_fast_period=26)
    message = str(info.value)
    for fragment in ("sma_period", "macd_fast must be < macd_slow", "bb_num_std", "must differ"):
        assert fragment in message


def test_warmup_ticks_default_is_macd_lookback_plus_one() -> None:
    assert warmup_ticks() == 26 + 9 - 1


# --- the aggregate -------------------------------------------------------------------------


def test_instrument_features_without_bars_never_emits() -> None:
    features = InstrumentFeatures()
    outputs = [features.update(make_tick(i, p)) for i, p in enumerate(random_walk(200))]
    assert all(out is None for out in outputs)


def test_instrument_features_emits_full_vector_once_every_feature_is_warm() -> None:
    features = InstrumentFeatures()
    for i in range(15):
        features.on_bar(make_bar(i, 101.0, 99.0, 100.0))
    outputs = [features.update(make_tick(i, p)) for i, p in enumerate(random_walk(60))]
    first = next(i for i, out in enumerate(outputs) if out is not None)
    assert first == warmup_ticks() - 1
    assert all(out is not None for out in outputs[first:])
    emitted = outputs[-1]
    assert emitted is not None
    assert tuple(emitted) == feature_names()
    assert all(isinstance(v, float) and math.isfinite(v) for v in emitted.values())


def test_instrument_features_waits_for_atr_bars() -> None:
    features = InstrumentFeatures(FeatureConfig(atr_period=3))
    prices = random_walk(60)
    for i, p in enumerate(prices[:50]):
        assert features.update(make_tick(i, p)) is None
    for i in range(4):
        features.on_bar(make_bar(i, 101.0, 99.0, 100.0))
    assert features.update(make_tick(50, prices[50])) is not None


@pytest.mark.parametrize(
    "prices",
    [[100.0] * 200, [100.0, 0.0] * 100, [1e-9 * (1 + (i % 3)) for i in range(200)]],
    ids=["flat", "zero_prices", "tiny_prices"],
)
def test_instrument_features_degenerate_prices_stay_finite(prices: list[float]) -> None:
    features = InstrumentFeatures()
    outputs = [out for out in feed_ticks(features, prices) if out is not None]
    assert outputs
    for out in outputs:
        assert all(math.isfinite(v) for v in out.values())


def test_instrument_features_flat_prices_give_neutral_values() -> None:
    features = InstrumentFeatures()
    out = [o for o in feed_ticks(features, [50.0] * 200) if o is not None][-1]
    assert out["rsi_14"] == 50.0
    assert out["zscore_20"] == 0.0
    assert out["bb_pct_b"] == 0.5
    assert out["realized_vol_20"] == 0.0
    assert out["macd"] == out["macd_hist"] == 0.0


def test_instrument_features_pickle_midstream_continues_identically() -> None:
    prices = random_walk(3_000, seed=5)
    original = InstrumentFeatures()
    list(feed_ticks(original, prices[:1_500]))
    restored = pickle.loads(pickle.dumps(original))
    assert isinstance(restored, InstrumentFeatures)
    expected = list(feed_ticks(original, prices[1_500:], start=1_500))
    actual = list(feed_ticks(restored, prices[1_500:], start=1_500))
    assert actual == expected
    assert any(out is not None for out in actual)


def test_instrument_features_replay_is_deterministic() -> None:
    prices = random_walk(500, seed=9)
    first = list(feed_ticks(InstrumentFeatures(), prices))
    second = list(feed_ticks(InstrumentFeatures(), prices))
    assert first == second


def test_instrument_features_state_stays_bounded() -> None:
    features = InstrumentFeatures()
    list(feed_ticks(features, random_walk(2_000)))
    small = len(pickle.dumps(features))
    list(feed_ticks(features, random_walk(20_000), start=2_000))
    assert len(pickle.dumps(features)) <= small + 64


def test_instrument_features_distinct_windows_are_tracked_separately() -> None:
    config = FeatureConfig(sma_period=5, bb_period=10, zscore_window=15)
    features = InstrumentFeatures(config)
    prices = random_walk(200)
    out = [o for o in feed_ticks(features, prices) if o is not None][-1]
    assert out["sma_5"] == pytest.approx(float(np.mean(prices[-5:])), rel=1e-12)
    tail = np.array(prices[-15:])
    assert out["zscore_15"] == pytest.approx(float((tail[-1] - tail.mean()) / tail.std()), rel=1e-9)
