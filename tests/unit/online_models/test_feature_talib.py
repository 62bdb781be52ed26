"""Every incremental indicator equals TA-Lib (or numpy) on real S&P 500 prices.

The series are River's `SP500Stocks` daily returns (Feb 2013 - Feb 2018, 1,257 days, ten
stocks, bundled with River), turned into prices `close_t = 100 * prod(1 + r / 100)`
(the returns are in percent). For ATR an OHLC series is built deterministically from the
same data: `open_t = close_{t-1}`, and the high/low extend the open-close range by half the
next day's absolute return.

Tolerance: relative 1e-9 after warm-up, and warm-up alignment must match exactly (our None
where TA-Lib has NaN). Values that cross zero (returns, MACD, z-score) also get an absolute
tolerance of 1e-12. Bollinger %b is checked twice: the bands against TA-Lib at rtol 1e-9,
%b against numpy's exact two-pass std at atol 1e-12, and %b against TA-Lib at atol 5e-12,
because TA-Lib's own std uses `E[x²] - E[x]²` and carries up to ~2.3e-12 absolute error on
%b for these series (ours is ~1e-14 from exact).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

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
    pct_b,
    zscore,
)
from risk.domain.enums import TickKind
from risk.domain.market import Bar, Tick

talib = pytest.importorskip("talib")
river_datasets = pytest.importorskip("river.datasets")

Array = NDArray[np.float64]

SYMBOLS = ("AAPL", "AMZN", "IBM", "INTC", "JNJ", "JPM", "KO", "MSFT", "WMT", "XOM")
RTOL = 1e-9
ATOL_NEAR_ZERO = 1e-12


@cache
def _returns() -> dict[str, Array]:
    rows = [x for x, _ in river_datasets.SP500Stocks()]
    return {s: np.array([row[s] for row in rows], dtype=np.float64) / 100.0 for s in SYMBOLS}


def _close(symbol: str) -> Array:
    return np.asarray(100.0 * np.cumprod(1.0 + _returns()[symbol]), dtype=np.float64)


def _ohlc(symbol: str) -> tuple[Array, Array, Array, Array]:
    returns = _returns()[symbol]
    close = _close(symbol)
    open_ = np.concatenate(([100.0], close[:-1]))
    spread = np.abs(np.concatenate((returns[1:], returns[:1]))) / 2.0
    high = np.maximum(open_, close) * (1.0 + spread)
    low = np.minimum(open_, close) * (1.0 - spread)
    return open_, high, low, close


def _sizes(symbol: str) -> Array:
    # Deterministic volumes from another stock's real returns; exact zeros become quotes.
    other = SYMBOLS[(SYMBOLS.index(symbol) + 1) % len(SYMBOLS)]
    return np.round(np.abs(_returns()[other]) * 1e5)


def _run(update: object, xs: Array) -> Array:
    assert callable(update)
    out = [update(x) for x in xs.tolist()]
    return np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def _assert_matches(mine: Array, ref: Array, atol: float = 0.0) -> None:
    np.testing.assert_array_equal(np.isnan(mine), np.isnan(ref), err_msg="warm-up differs")
    assert np.count_nonzero(~np.isnan(ref)) > 1000
    np.testing.assert_allclose(mine, ref, rtol=RTOL, atol=atol)


def _rolling_mean_std(x: Array, window: int) -> tuple[Array, Array]:
    view = sliding_window_view(x, window)
    pad = np.full(window - 1, np.nan)
    return np.concatenate((pad, view.mean(axis=1))), np.concatenate((pad, view.std(axis=1)))


def _log_returns(close: Array) -> Array:
    return np.log(close[1:] / close[:-1])


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_sma_matches_talib(symbol: str) -> None:
    close = _close(symbol)
    _assert_matches(_run(Sma(20).update, close), talib.SMA(close, 20))


@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("period", [12, 26])
def test_ema_matches_talib(symbol: str, period: int) -> None:
    close = _close(symbol)
    _assert_matches(_run(Ema(period).update, close), talib.EMA(close, period))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_rsi_matches_talib(symbol: str) -> None:
    close = _close(symbol)
    _assert_matches(_run(Rsi(14).update, close), talib.RSI(close, 14))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_macd_matches_talib(symbol: str) -> None:
    close = _close(symbol)
    macd = Macd(12, 26, 9)
    rows = [macd.update(x) for x in close.tolist()]
    mine = np.array([(np.nan,) * 3 if r is None else r for r in rows], dtype=np.float64)
    for column, ref in enumerate(talib.MACD(close, 12, 26, 9)):
        _assert_matches(mine[:, column], ref, atol=ATOL_NEAR_ZERO)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_bollinger_matches_talib(symbol: str) -> None:
    close = _close(symbol)
    upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    moments = RollingMoments(20)
    bands = []
    pct = []
    for x in close.tolist():
        if moments.update(x) is None:
            bands.append((np.nan,) * 3)
            pct.append(np.nan)
            continue
        mean, std = moments.mean, moments.std
        bands.append((mean + 2.0 * std, mean, mean - 2.0 * std))
        pct.append(pct_b(x, mean, std, 2.0))
    mine = np.array(bands, dtype=np.float64)
    for column, ref in enumerate((upper, middle, lower)):
        _assert_matches(mine[:, column], ref)
    window_mean, window_std = _rolling_mean_std(close, 20)
    exact = (close - (window_mean - 2.0 * window_std)) / (4.0 * window_std)
    _assert_matches(np.array(pct), exact, atol=ATOL_NEAR_ZERO)
    _assert_matches(np.array(pct), (close - lower) / (upper - lower), atol=5e-12)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_atr_matches_talib(symbol: str) -> None:
    _, high, low, close = _ohlc(symbol)
    atr = Atr(14)
    mine = [atr.update(h, lo, c) for h, lo, c in zip(high, low, close, strict=True)]
    _assert_matches(
        np.array([np.nan if v is None else v for v in mine], dtype=np.float64),
        talib.ATR(high, low, close, 14),
    )


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_realized_vol_matches_talib_stddev_population(symbol: str) -> None:
    close = _close(symbol)
    mine = _run(RealizedVol(20).update, close)
    # TA-Lib sees the returns series, which starts one price later.
    _assert_matches(mine[1:], talib.STDDEV(_log_returns(close), 20, 1.0))
    _assert_matches(mine[1:], _rolling_mean_std(_log_returns(close), 20)[1])


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_zscore_matches_numpy(symbol: str) -> None:
    close = _close(symbol)
    moments = RollingMoments(20)
    mine = [
        np.nan if moments.update(x) is None else zscore(x, moments.mean, moments.std)
        for x in close.tolist()
    ]
    mean, std = _rolling_mean_std(close, 20)
    _assert_matches(np.array(mine), (close - mean) / std, atol=ATOL_NEAR_ZERO)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_vwap_matches_numpy(symbol: str) -> None:
    close = _close(symbol)
    sizes = _sizes(symbol)
    vwap = RollingVwap(20)
    mine = [vwap.update(p, s) for p, s in zip(close.tolist(), sizes.tolist(), strict=True)]
    notional = sliding_window_view(close * sizes, 20).sum(axis=1)
    volume = sliding_window_view(sizes, 20).sum(axis=1)
    ref = np.where(volume > 0, notional / np.where(volume > 0, volume, 1.0), close[19:])
    _assert_matches(
        np.array([np.nan if v is None else v for v in mine], dtype=np.float64),
        np.concatenate((np.full(19, np.nan), ref)),
    )


def _reference_features(symbol: str) -> dict[str, Array]:
    _, high, low, close = _ohlc(symbol)
    sizes = _sizes(symbol)
    names = feature_names()
    upper, _, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
    macd, signal, hist = talib.MACD(close, 12, 26, 9)
    mean, std = _rolling_mean_std(close, 20)
    notional = sliding_window_view(close * sizes, 20).sum(axis=1)
    volume = sliding_window_view(sizes, 20).sum(axis=1)
    vwap = np.where(volume > 0, notional / np.where(volume > 0, volume, 1.0), close[19:])
    returns = np.concatenate(([np.nan], close[1:] / close[:-1] - 1.0))
    log_returns = np.concatenate(([np.nan], _log_returns(close)))
    columns = (
        returns,
        log_returns,
        talib.SMA(close, 20),
        talib.EMA(close, 12),
        talib.EMA(close, 26),
        talib.RSI(close, 14),
        macd,
        signal,
        hist,
        (close - lower) / (upper - lower),
        talib.ATR(high, low, close, 14),
        np.concatenate(([np.nan], talib.STDDEV(_log_returns(close), 20, 1.0))),
        np.concatenate((np.full(19, np.nan), vwap)),
        (close - mean) / std,
    )
    return dict(zip(names, columns, strict=True))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_instrument_features_match_references(symbol: str) -> None:
    open_, high, low, close = _ohlc(symbol)
    sizes = _sizes(symbol)
    features = InstrumentFeatures(FeatureConfig())
    day_ns = 86_400 * 10**9
    rows: list[dict[str, float] | None] = []
    for i in range(len(close)):
        bar = Bar(
            instrument=symbol,
            interval_s=86_400,
            open=float(open_[i]),
            high=float(high[i]),
            low=float(low[i]),
            close=float(close[i]),
            volume=float(sizes[i]),
            vwap=float(close[i]),
            trade_count=1,
            ts_event=i * day_ns,
            ts_init=(i + 1) * day_ns,
        )
        # The bar closes before its last tick is scored, as TA-Lib's ATR[t] includes bar t.
        features.on_bar(bar)
        tick = Tick(
            tick_id=f"{symbol}-{i}",
            instrument=symbol,
            seq=i,
            kind=TickKind.TRADE if sizes[i] else TickKind.QUOTE,
            price=float(close[i]),
            size=float(sizes[i]),
            ts_event=(i + 1) * day_ns - 1,
            ts_init=(i + 1) * day_ns - 1,
        )
        rows.append(features.update(tick))
    first = next(i for i, row in enumerate(rows) if row is not None)
    # MACD(12, 26, 9) is the slowest: TA-Lib's lookback is 33.
    assert first == 33
    assert all(row is not None for row in rows[first:])
    reference = _reference_features(symbol)
    tolerances = {"bb_pct_b": 5e-12, "macd": ATOL_NEAR_ZERO, "macd_signal": ATOL_NEAR_ZERO}
    tolerances |= {"macd_hist": ATOL_NEAR_ZERO, "zscore_20": ATOL_NEAR_ZERO}
    tolerances |= {"return_1": ATOL_NEAR_ZERO, "log_return_1": ATOL_NEAR_ZERO}
    for name, ref in reference.items():
        mine = np.array([row[name] for row in rows[first:] if row is not None])
        np.testing.assert_allclose(
            mine, ref[first:], rtol=RTOL, atol=tolerances.get(name, 0.0), err_msg=name
        )
