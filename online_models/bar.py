"""Event-time OHLCV bars built incrementally from ticks."""

from __future__ import annotations

from risk.domain.enums import TickKind
from risk.domain.market import Bar, Tick

_NS_PER_S = 1_000_000_000


def bar_start_ns(ts_event_ns: int, interval_ns: int) -> int:
    """Return the start of the event-time bar holding `ts_event_ns`.

    Floor division keeps bars aligned to the epoch, so every worker and every replay cuts
    the same bars.

    >>> bar_start_ns(2_500_000_000, 1_000_000_000)
    2000000000
    >>> bar_start_ns(-1, 1_000_000_000)
    -1000000000
    """
    return ts_event_ns // interval_ns * interval_ns


class BarBuilder:
    """Fold one instrument's ticks into event-time bars of `interval_s` seconds.

    A bar covers `[start, start + interval)` with `start = floor(ts_event / interval) *
    interval`. It closes when the first tick at or past its end arrives; that tick opens
    the next bar. Intervals without ticks are skipped: no synthetic bars are made.

    Trades and quotes both move open/high/low/close (a quote's price is its mid); only
    trades add to `trade_count`, and only sizes add to `volume` (a quote has size 0).
    `vwap` is the volume-weighted trade price of the bar, or `close` when it had no volume.

    The closed bar's `ts_event` is its start and its `ts_init` the `ts_event` of the tick
    that closed it, so replays build byte-identical bars.

    Late ticks (`ts_event` before the open bar's start, or before the end of the last
    closed bar) are ignored: a closed bar has already been emitted and is never amended,
    and bars are emitted in order. The caller still feeds such ticks to other consumers.
    A tick out of order *within* the open bar is folded in: ticks count in arrival order,
    so `close` is the price of the last tick to arrive.

    Examples:
        >>> from risk.domain.enums import TickKind
        >>> from risk.domain.market import Tick
        >>> def tick(ts_s: float, price: float, size: float = 1.0) -> Tick:
        ...     return Tick(tick_id="t", instrument="X", seq=0, kind=TickKind.TRADE,
        ...                 price=price, size=size, ts_event=int(ts_s * 1e9), ts_init=0)
        >>> builder = BarBuilder("X", 1)
        >>> builder.update(tick(0.1, 10.0)) is None
        True
        >>> builder.update(tick(0.5, 12.0, 3.0)) is None
        True
        >>> bar = builder.update(tick(1.2, 11.0))
        >>> (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.vwap, bar.trade_count)
        (10.0, 12.0, 10.0, 12.0, 4.0, 11.5, 2)
    """

    __slots__ = (
        "_close",
        "_count",
        "_end_ns",
        "_high",
        "_interval_ns",
        "_last_ts_ns",
        "_low",
        "_min_ts_ns",
        "_notional",
        "_open",
        "_start_ns",
        "_volume",
        "instrument",
        "interval_s",
    )

    def __init__(self, instrument: str, interval_s: int) -> None:
        """Start with no open bar.

        Args:
            instrument: Instrument id stamped on every bar.
            interval_s: Bar length in whole seconds; must be positive.

        Raises:
            ValueError: If `interval_s` is not positive.
        """
        if interval_s <= 0:
            msg = f"BarBuilder interval_s must be positive, got {interval_s}"
            raise ValueError(msg)
        self.instrument = instrument
        self.interval_s = interval_s
        self._interval_ns = interval_s * _NS_PER_S
        # `_start_ns is None` means no bar is open; `_min_ts_ns` rejects late ticks.
        self._start_ns: int | None = None
        self._end_ns = 0
        self._min_ts_ns: int | None = None
        self._last_ts_ns = 0
        self._open = self._high = self._low = self._close = 0.0
        self._volume = self._notional = 0.0
        self._count = 0

    def update(self, tick: Tick) -> Bar | None:
        """Fold `tick` into the open bar; return the bar it closes, if any."""
        ts = tick.ts_event
        if self._start_ns is None:
            if self._min_ts_ns is not None and ts < self._min_ts_ns:
                return None
            self._open_bar(tick)
            return None
        if ts >= self._end_ns:
            closed = self._make_bar(ts)
            self._open_bar(tick)
            return closed
        if ts < self._start_ns:
            return None
        price = tick.price
        if price > self._high:
            self._high = price
        elif price < self._low:
            self._low = price
        self._close = price
        size = tick.size
        if size:
            self._volume += size
            self._notional += price * size
        if tick.kind is TickKind.TRADE:
            self._count += 1
        if ts > self._last_ts_ns:  # noqa: PLR1730 - a branch is cheaper than max() per tick
            self._last_ts_ns = ts
        return None

    def flush(self) -> Bar | None:
        """Close and return the open bar at the end of a stream, or None if none is open.

        Its `ts_init` is the latest `ts_event` folded into it: no closing tick exists.
        Ticks before the flushed bar's end are ignored afterwards.
        """
        if self._start_ns is None:
            return None
        closed = self._make_bar(self._last_ts_ns)
        self._min_ts_ns = self._end_ns
        self._start_ns = None
        return closed

    def _open_bar(self, tick: Tick) -> None:
        start = bar_start_ns(tick.ts_event, self._interval_ns)
        self._start_ns = start
        self._end_ns = start + self._interval_ns
        self._min_ts_ns = start
        self._last_ts_ns = tick.ts_event
        price = tick.price
        self._open = self._high = self._low = self._close = price
        size = tick.size
        self._volume = size
        self._notional = price * size
        self._count = 1 if tick.kind is TickKind.TRADE else 0

    def _make_bar(self, ts_init: int) -> Bar:
        assert self._start_ns is not None
        volume = self._volume
        return Bar(
            instrument=self.instrument,
            interval_s=self.interval_s,
            open=self._open,
            high=self._high,
            low=self._low,
            close=self._close,
            volume=volume,
            vwap=self._notional / volume if volume else self._close,
            trade_count=self._count,
            ts_event=self._start_ns,
            ts_init=ts_init,
        )
