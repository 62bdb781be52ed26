"""Incremental per-instrument indicators, O(1) per update, matching TA-Lib.

Every indicator keeps bounded state (fixed-size ring buffers and a few floats), pickles,
and returns None from `update` until it is warm. Warm-up lengths and seeding follow TA-Lib
exactly (EMA seeded with the SMA of its first N inputs, Wilder RSI and ATR, MACD's own
EMA alignment), so after warm-up each value equals TA-Lib's on the same series; the
unit tests check this to 1e-9 relative on real S&P 500 prices.

Rolling sums (moments, VWAP) are re-summed exactly from their window at least every
`max(window, 1024)` updates (O(1) amortised), so floating-point drift stays bounded however
long the stream runs. Variances are accumulated around a shift kept near the window mean,
which avoids the cancellation of the textbook `E[x²] - E[x]²` on price levels (TA-Lib's
own BBANDS/STDDEV use that textbook form and carry ~1e-12 absolute error on %b).

Degenerate inputs give defined values, never NaN or inf: a flat window (std below 1e-12
of the mean's magnitude) gives z-score 0.0 and Bollinger %b 0.5; an RSI window without
any move gives 50.0 (TA-Lib gives 0.0 there; neutral is what a model should see); a
non-positive previous price gives returns of 0.0; a VWAP window without volume gives the
last price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from risk.domain.error import ConfigError
from risk.domain.market import Bar, Tick

# A window whose std is below this fraction of its mean is treated as flat: with floats
# such a std is rounding noise, and dividing by it would turn noise into a large score.
_FLAT_RELATIVE_STD = 1e-12
_FLAT_RELATIVE_VAR = _FLAT_RELATIVE_STD * _FLAT_RELATIVE_STD
# RollingMoments re-centres once its shift is more than 4 std (16 variances) from the
# mean, bounding the cancellation in the variance to a factor of 16.
_MAX_SHIFT_VAR = 16.0
# Every rolling sum is re-summed exactly at least this often (or every window, if longer).
_SYNC_EVERY = 1024


def pct_b(price: float, mean: float, std: float, num_std: float) -> float:
    """Return Bollinger %b: where `price` sits between the lower (0) and upper (1) band.

    A zero-width band (flat window) gives 0.5, the middle.

    >>> pct_b(12.0, 10.0, 1.0, 2.0)
    1.0
    >>> pct_b(10.0, 10.0, 0.0, 2.0)
    0.5
    """
    if std == 0.0:
        return 0.5
    upper = mean + num_std * std
    lower = mean - num_std * std
    return (price - lower) / (upper - lower)


def zscore(price: float, mean: float, std: float) -> float:
    """Return `(price - mean) / std`, or 0.0 for a flat window.

    >>> zscore(12.0, 10.0, 2.0)
    1.0
    >>> zscore(10.0, 10.0, 0.0)
    0.0
    """
    if std == 0.0:
        return 0.0
    return (price - mean) / std


class RollingMoments:
    """Population mean and standard deviation of the last `window` values.

    `update` returns the mean (the SMA) once `window` values have been seen; `mean` and
    `std` then hold the window's moments. Sums are kept around a shift `K` (sums of
    `x - K` and `(x - K)²`), which avoids the cancellation of `E[x²] - E[x]²` on price
    levels as long as `K` stays near the data. They are re-summed exactly, with `K` moved
    to the mean, whenever the mean has wandered more than 4 std from `K` (at most once
    per `window` updates) and every `max(window, 1024)` updates regardless, so precision
    and drift stay bounded at O(1) amortised cost.

    >>> moments = RollingMoments(3)
    >>> [moments.update(x) for x in (1.0, 2.0, 3.0, 4.0)]
    [None, None, 2.0, 3.0]
    >>> round(moments.std, 12)
    0.816496580928
    """

    __slots__ = (
        "_buf",
        "_count",
        "_pos",
        "_s1",
        "_s2",
        "_shift",
        "_since_sync",
        "_window",
        "mean",
        "std",
    )

    def __init__(self, window: int) -> None:
        """Start empty; `window` must be positive."""
        if window < 1:
            msg = f"window must be >= 1, got {window}"
            raise ValueError(msg)
        self._window = window
        self._buf = [0.0] * window
        self._pos = 0
        self._count = 0
        self._shift = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self._since_sync = 0
        self.mean = 0.0
        self.std = 0.0

    def update(self, x: float) -> float | None:
        """Add `x`, dropping the oldest value once full; return the mean when warm."""
        window = self._window
        buf = self._buf
        pos = self._pos
        shift = self._shift
        if self._count == window:
            d = x - shift
            old = buf[pos] - shift
            s1 = self._s1 + (d - old)
            s2 = self._s2 + (d * d - old * old)
        else:
            if not self._count:
                shift = self._shift = x
            self._count += 1
            d = x - shift
            s1 = self._s1 + d
            s2 = self._s2 + d * d
        buf[pos] = x
        pos += 1
        self._pos = 0 if pos == window else pos
        self._s1 = s1
        self._s2 = s2
        self._since_sync += 1
        if self._count < window:
            return None
        m1 = s1 / window
        var = s2 / window - m1 * m1
        if self._since_sync >= window and (
            m1 * m1 > _MAX_SHIFT_VAR * var or self._since_sync >= _SYNC_EVERY
        ):
            m1, var = self._resync()
        mean = self._shift + m1
        # Below the flat threshold (or negative from rounding) the std is noise: zero it.
        self.std = 0.0 if var <= mean * mean * _FLAT_RELATIVE_VAR else math.sqrt(var)
        self.mean = mean
        return mean

    @property
    def warm(self) -> bool:
        """True once the window is full."""
        return self._count == self._window

    def _resync(self) -> tuple[float, float]:
        # Exact re-summation around the current mean: bounds drift and brings the shift
        # back to the data, so the variance keeps full precision.
        values = self._buf
        window = self._window
        shift = math.fsum(values) / window
        self._shift = shift
        s1 = self._s1 = math.fsum([v - shift for v in values])
        s2 = self._s2 = math.fsum([(v - shift) * (v - shift) for v in values])
        self._since_sync = 0
        m1 = s1 / window
        return m1, s2 / window - m1 * m1


class Sma(RollingMoments):
    """Simple moving average over `window` values (TA-Lib `SMA`)."""

    __slots__ = ()


class Ema:
    """Exponential moving average, seeded like TA-Lib with the SMA of the first `period`.

    >>> ema = Ema(3)
    >>> [ema.update(x) for x in (1.0, 2.0, 3.0, 5.0)]
    [None, None, 2.0, 3.5]
    """

    __slots__ = ("_count", "_k", "_period", "_sum", "value")

    def __init__(self, period: int) -> None:
        """Start unseeded; smoothing factor `2 / (period + 1)` as in TA-Lib."""
        if period < 1:
            msg = f"period must be >= 1, got {period}"
            raise ValueError(msg)
        self._period = period
        self._k = 2.0 / (period + 1)
        self._count = 0
        self._sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        """Add `x`; return the EMA once `period` values have been seen."""
        value = self.value
        if value is not None:
            value = (x - value) * self._k + value
            self.value = value
            return value
        self._count += 1
        self._sum += x
        if self._count == self._period:
            self.value = self._sum / self._period
        return self.value


class Rsi:
    """Wilder's relative strength index, as TA-Lib `RSI` (warm after `period` + 1 prices).

    When neither gains nor losses are left in the average (flat prices) it returns the
    neutral 50.0, where TA-Lib returns 0.0.

    >>> rsi = Rsi(2)
    >>> [rsi.update(x) for x in (1.0, 2.0, 1.0, 2.0)]
    [None, None, 50.0, 75.0]
    """

    __slots__ = ("_count", "_gain", "_loss", "_period", "_prev", "_warm")

    def __init__(self, period: int) -> None:
        """Start with no price seen."""
        if period < 1:
            msg = f"period must be >= 1, got {period}"
            raise ValueError(msg)
        self._period = period
        self._prev: float | None = None
        self._count = 0
        self._gain = 0.0
        self._loss = 0.0
        self._warm = False

    def update(self, x: float) -> float | None:
        """Add price `x`; return the RSI in [0, 100] once warm (50.0 if nothing moved)."""
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        diff = x - prev
        period = self._period
        if self._warm:
            # Same operation order as TA-Lib, so results agree to the last bit.
            gain = self._gain * (period - 1)
            loss = self._loss * (period - 1)
            if diff < 0:
                loss -= diff
            else:
                gain += diff
            gain /= period
            loss /= period
        else:
            if diff < 0:
                self._loss -= diff
            else:
                self._gain += diff
            self._count += 1
            if self._count < period:
                return None
            gain = self._gain / period
            loss = self._loss / period
            self._warm = True
        self._gain = gain
        self._loss = loss
        total = gain + loss
        return 100.0 * (gain / total) if total else 50.0


class Macd:
    """MACD line, signal and histogram exactly as TA-Lib `MACD(fast, slow, signal)`.

    TA-Lib seeds both EMAs on the same bar: the slow one with the SMA of the first `slow`
    prices, the fast one with the SMA of the last `fast` of those (not of the first
    `fast`), so its fast EMA differs from a standalone `Ema(fast)`. The signal EMA is
    seeded with the SMA of the first `signal` MACD values. Warm after
    `slow + signal - 1` prices.
    """

    __slots__ = (
        "_fast",
        "_fast_period",
        "_k_fast",
        "_k_slow",
        "_seed",
        "_signal",
        "_slow",
        "_slow_period",
    )

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        """Start unseeded; requires `1 <= fast < slow` and `signal >= 1`."""
        if not 1 <= fast < slow or signal < 1:
            msg = f"MACD needs 1 <= fast < slow and signal >= 1, got {fast}, {slow}, {signal}"
            raise ValueError(msg)
        self._fast_period = fast
        self._slow_period = slow
        self._k_fast = 2.0 / (fast + 1)
        self._k_slow = 2.0 / (slow + 1)
        self._fast = 0.0
        self._slow = 0.0
        self._signal = Ema(signal)
        # The first `slow` prices, kept only until both EMAs are seeded; None after.
        self._seed: list[float] | None = []

    def update(self, x: float) -> tuple[float, float, float] | None:
        """Add price `x`; return `(macd, signal, histogram)` once warm."""
        seed = self._seed
        if seed is None:
            fast = (x - self._fast) * self._k_fast + self._fast
            slow = (x - self._slow) * self._k_slow + self._slow
        else:
            seed.append(x)
            if len(seed) < self._slow_period:
                return None
            fast = self._sma(seed[-self._fast_period :])
            slow = self._sma(seed)
            self._seed = None
        self._fast = fast
        self._slow = slow
        line = fast - slow
        signal = self._signal.update(line)
        if signal is None:
            return None
        return line, signal, line - signal

    @staticmethod
    def _sma(values: list[float]) -> float:
        # Plain left-to-right sum, the order TA-Lib uses, so the seeds match bit for bit.
        total = 0.0
        for v in values:
            total += v
        return total / len(values)


class Atr:
    """Average true range with Wilder smoothing, as TA-Lib `ATR` (warm after period + 1 bars).

    The first bar only provides the previous close; the first ATR is the mean of the
    next `period` true ranges.

    >>> atr = Atr(2)
    >>> [atr.update(h, l, c) for h, l, c in ((11, 9, 10), (12, 10, 11), (13, 9, 12), (12, 11, 12))]
    [None, None, 3.0, 2.0]
    """

    __slots__ = ("_count", "_period", "_prev_close", "_sum", "value")

    def __init__(self, period: int) -> None:
        """Start with no bar seen."""
        if period < 1:
            msg = f"period must be >= 1, got {period}"
            raise ValueError(msg)
        self._period = period
        self._prev_close: float | None = None
        self._count = 0
        self._sum = 0.0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add one bar; return the ATR once warm."""
        prev_close = self._prev_close
        self._prev_close = close
        if prev_close is None:
            return None
        true_range = max(high - low, abs(high - prev_close), abs(low - prev_close))
        value = self.value
        if value is not None:
            value *= self._period - 1
            value += true_range
            value /= self._period
        else:
            self._count += 1
            self._sum += true_range
            if self._count < self._period:
                return None
            value = self._sum / self._period
        self.value = value
        return value


class RealizedVol:
    """Population std of the last `window` one-step log returns (TA-Lib `STDDEV`, nbdev 1).

    Not annualised. Warm after `window + 1` prices.
    """

    __slots__ = ("_moments", "_prev")

    def __init__(self, window: int) -> None:
        """Start with no price seen."""
        self._moments = RollingMoments(window)
        self._prev: float | None = None

    def update(self, price: float) -> float | None:
        """Add `price`; return the realized volatility once warm."""
        prev = self._prev
        self._prev = price
        if prev is None:
            return None
        if self._moments.update(log_return(price, prev)) is None:
            return None
        return self._moments.std


class RollingVwap:
    """Volume-weighted average price over the last `window` ticks.

    Quotes enter the window with size 0: they age trades out but add no weight. When the
    window holds no volume the last price is returned.

    >>> vwap = RollingVwap(2)
    >>> [vwap.update(p, s) for p, s in ((10.0, 1.0), (13.0, 2.0), (11.0, 0.0), (9.0, 0.0))]
    [None, 12.0, 13.0, 9.0]
    """

    __slots__ = (
        "_count",
        "_pos",
        "_prices",
        "_pv",
        "_since_sync",
        "_sizes",
        "_sync_every",
        "_traded",
        "_v",
        "_window",
    )

    def __init__(self, window: int) -> None:
        """Start empty; `window` must be positive."""
        if window < 1:
            msg = f"window must be >= 1, got {window}"
            raise ValueError(msg)
        self._window = window
        self._prices = [0.0] * window
        self._sizes = [0.0] * window
        self._pos = 0
        self._count = 0
        self._pv = 0.0
        self._v = 0.0
        # How many entries in the window carry volume: an exact zero test, where the
        # float sum of sizes could be left at rounding noise after trades age out.
        self._traded = 0
        self._since_sync = 0
        self._sync_every = max(window, _SYNC_EVERY)

    def update(self, price: float, size: float) -> float | None:
        """Add one tick; return the window VWAP once `window` ticks have been seen."""
        prices = self._prices
        sizes = self._sizes
        pos = self._pos
        window = self._window
        if self._count == window:
            old_size = sizes[pos]
            if old_size:
                self._pv -= prices[pos] * old_size
                self._v -= old_size
                self._traded -= 1
        else:
            self._count += 1
        if size:
            self._pv += price * size
            self._v += size
            self._traded += 1
        prices[pos] = price
        sizes[pos] = size
        pos += 1
        self._pos = 0 if pos == window else pos
        self._since_sync += 1
        if self._since_sync >= self._sync_every:
            self._resync()
        if self._count < window:
            return None
        if not self._traded:
            return price
        return self._pv / self._v

    def _resync(self) -> None:
        # Exact re-summation bounds the drift of the running sums.
        self._pv = math.fsum([p * s for p, s in zip(self._prices, self._sizes, strict=True)])
        self._v = math.fsum(self._sizes)
        self._since_sync = 0


def log_return(price: float, prev: float) -> float:
    """Return `ln(price / prev)`, or 0.0 when either price is not positive.

    >>> log_return(1.0, 1.0)
    0.0
    >>> log_return(5.0, 0.0)
    0.0
    """
    if price > 0.0 and prev > 0.0:
        return math.log(price / prev)
    return 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureConfig:
    """Periods of every per-instrument feature; the defaults are the usual TA settings."""

    sma_period: int = 20
    ema_fast_period: int = 12
    ema_slow_period: int = 26
    rsi_period: int = 14
    macd_fast: int = 12
    macd_slow: int = 26
    macd_signal: int = 9
    bb_period: int = 20
    bb_num_std: float = 2.0
    atr_period: int = 14
    realized_vol_window: int = 20
    vwap_window: int = 20
    zscore_window: int = 20

    def __post_init__(self) -> None:
        """Validate every field at once.

        Raises:
            ConfigError: Listing every invalid field.
        """
        problems = [
            f"{name} must be >= 1, got {getattr(self, name)}"
            for name in (
                "sma_period",
                "ema_fast_period",
                "ema_slow_period",
                "rsi_period",
                "macd_fast",
                "macd_slow",
                "macd_signal",
                "bb_period",
                "atr_period",
                "realized_vol_window",
                "vwap_window",
                "zscore_window",
            )
            if getattr(self, name) < 1
        ]
        if self.ema_fast_period == self.ema_slow_period:
            problems.append("ema_fast_period and ema_slow_period must differ (feature names)")
        if self.macd_fast >= self.macd_slow:
            problems.append("macd_fast must be < macd_slow")
        if not (self.bb_num_std > 0.0 and math.isfinite(self.bb_num_std)):
            problems.append(f"bb_num_std must be a positive number, got {self.bb_num_std}")
        if problems:
            raise ConfigError("invalid FeatureConfig: " + "; ".join(problems))


def feature_names(config: FeatureConfig | None = None) -> tuple[str, ...]:
    """Return the feature names, in the order `InstrumentFeatures` emits them.

    >>> feature_names()[:4]
    ('return_1', 'log_return_1', 'sma_20', 'ema_12')
    >>> len(feature_names())
    14
    """
    c = config or FeatureConfig()
    return (
        "return_1",
        "log_return_1",
        f"sma_{c.sma_period}",
        f"ema_{c.ema_fast_period}",
        f"ema_{c.ema_slow_period}",
        f"rsi_{c.rsi_period}",
        "macd",
        "macd_signal",
        "macd_hist",
        "bb_pct_b",
        f"atr_{c.atr_period}",
        f"realized_vol_{c.realized_vol_window}",
        f"vwap_{c.vwap_window}",
        f"zscore_{c.zscore_window}",
    )


def warmup_ticks(config: FeatureConfig | None = None) -> int:
    """Return how many ticks every tick-based feature needs before it is warm.

    ATR also needs `atr_period + 1` closed bars fed through `on_bar`.

    >>> warmup_ticks()
    34
    """
    c = config or FeatureConfig()
    return max(
        2,
        c.sma_period,
        c.ema_fast_period,
        c.ema_slow_period,
        c.rsi_period + 1,
        c.macd_slow + c.macd_signal - 1,
        c.bb_period,
        c.realized_vol_window + 1,
        c.vwap_window,
        c.zscore_window,
    )


class InstrumentFeatures:
    """All features of one instrument, updated per tick in O(1).

    `update` returns the complete feature dict (keys `feature_names(config)`) only once
    every feature is warm, and None before: a model never sees a partial vector. ATR is
    computed on closed bars fed through `on_bar`; feed the bar a tick closes before that
    tick so the ATR includes it. Every tick, trade or quote, is one price observation;
    quotes add no weight to the VWAP. One instance per instrument (keyed state).
    """

    __slots__ = (
        "_atr",
        "_atr_value",
        "_bb",
        "_bb_num_std",
        "_ema_fast",
        "_ema_slow",
        "_macd",
        "_names",
        "_prev_price",
        "_price_moments",
        "_rsi",
        "_rv",
        "_sma",
        "_ticks",
        "_vwap",
        "_warmup_ticks",
        "_zs",
        "config",
    )

    def __init__(self, config: FeatureConfig | None = None) -> None:
        """Build cold indicators for `config` (defaults when None)."""
        c = config or FeatureConfig()
        self.config = c
        self._names = feature_names(c)
        # SMA, Bollinger and z-score over equal windows share one set of moments.
        moments: dict[int, RollingMoments] = {}
        for window in (c.sma_period, c.bb_period, c.zscore_window):
            moments.setdefault(window, RollingMoments(window))
        self._price_moments = tuple(moments.values())
        self._sma = moments[c.sma_period]
        self._bb = moments[c.bb_period]
        self._zs = moments[c.zscore_window]
        self._bb_num_std = c.bb_num_std
        self._ema_fast = Ema(c.ema_fast_period)
        self._ema_slow = Ema(c.ema_slow_period)
        self._rsi = Rsi(c.rsi_period)
        self._macd = Macd(c.macd_fast, c.macd_slow, c.macd_signal)
        self._atr = Atr(c.atr_period)
        self._atr_value: float | None = None
        self._rv = RollingMoments(c.realized_vol_window)
        self._vwap = RollingVwap(c.vwap_window)
        self._prev_price: float | None = None
        # Counted from the second tick, the first with a return.
        self._ticks = 1
        self._warmup_ticks = warmup_ticks(c)

    @property
    def names(self) -> tuple[str, ...]:
        """The feature names, in emission order."""
        return self._names

    def on_bar(self, bar: Bar) -> None:
        """Feed one closed bar (of this instrument) to the bar-based features (ATR)."""
        self._atr_value = self._atr.update(bar.high, bar.low, bar.close)

    def update(self, tick: Tick) -> dict[str, float] | None:
        """Advance every feature with `tick`; return all of them once all are warm."""
        row = self.update_row(tick.price, tick.size)
        return None if row is None else dict(zip(self._names, row, strict=True))

    def update_row(self, price: float, size: float) -> tuple[float, ...] | None:
        """`update` with a tick's price and size; the values as a tuple in `names` order."""
        prev = self._prev_price
        self._prev_price = price
        for moments in self._price_moments:
            moments.update(price)
        ema_fast = self._ema_fast.update(price)
        ema_slow = self._ema_slow.update(price)
        rsi = self._rsi.update(price)
        macd = self._macd.update(price)
        vwap = self._vwap.update(price, size)
        if prev is None:
            return None
        if price > 0.0 and prev > 0.0:
            ratio = price / prev
            ret = ratio - 1.0
            log_ret = math.log(ratio)
        else:
            ret = log_ret = 0.0
        rv = self._rv.update(log_ret)
        ticks = self._ticks
        if ticks < self._warmup_ticks:
            # Saturates at the warm-up length: the counter stays bounded too.
            self._ticks = ticks = ticks + 1
        atr = self._atr_value
        # The tick count covers the rolling windows; the None tests narrow the types.
        if (
            ticks < self._warmup_ticks
            or atr is None
            or rv is None
            or macd is None
            or rsi is None
            or ema_fast is None
            or ema_slow is None
            or vwap is None
        ):
            return None
        bb = self._bb
        zs = self._zs
        return (
            ret,
            log_ret,
            self._sma.mean,
            ema_fast,
            ema_slow,
            rsi,
            macd[0],
            macd[1],
            macd[2],
            pct_b(price, bb.mean, bb.std, self._bb_num_std),
            atr,
            self._rv.std,
            vwap,
            zscore(price, zs.mean, zs.std),
        )
