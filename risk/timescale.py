"""The data's time scale: one bar interval, and every schedule and factor derived from it.

Daily bars, minute bars and ticks run through the same code. Whatever has a time scale
(the risk model's sampling and annualisation, the time in force, how far the gateway
keeps ticks, model metrics and checkpoint schedules, warm-up) derives it from one
interval: declared (`data.bar_interval: 1d`, `1m`, `1s`, `250ms`) or, with `auto`,
estimated from the input's event times by `estimate_interval_ns`.

The estimate is deterministic: per instrument, the median of the positive gaps between
its first `warm` event times; then the median over instruments (lower median, so the
result is one of the observed gaps). A gap of zero (several ticks in one event time)
says nothing about the sampling and is ignored; weekends and holidays are outliers the
median ignores, so daily closes come out as exactly one day.

Every derived figure is floored at today's tick-data value (`TICK`: one second), so tick
data keeps its behaviour and only slower data stretches the schedules:

>>> scale = TimeScale(NS_PER_DAY)
>>> scale.name, scale.periods_per_day, scale.periods_per_year
('1d', 1.0, 252.0)
>>> scale.time_in_force_ns // NS_PER_DAY, scale.min_labelled
(5, 20)
>>> TICK.periods_per_day, TICK.time_in_force_ns // NS_PER_S, TICK.min_labelled
(23400.0, 5, 200)
>>> TimeScale(60 * NS_PER_S).periods_per_year
98280.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
NS_PER_DAY = 86_400 * NS_PER_S
TRADING_SECONDS_PER_DAY = 23_400  # 6.5 hours, a US equity session
TRADING_DAYS_PER_YEAR = 252
AUTO = "auto"
WARM_TICKS = 200  # event times per instrument the estimate looks at
_UNITS = {
    "ns": 1,
    "us": 1_000,
    "ms": NS_PER_MS,
    "s": NS_PER_S,
    "m": 60 * NS_PER_S,
    "min": 60 * NS_PER_S,
}
_UNITS |= {"h": 3_600 * NS_PER_S, "d": NS_PER_DAY, "w": 7 * NS_PER_DAY}
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|min|m|h|d|w)$")


def parse_interval(text: str) -> int:
    """The interval `text` names (`1d`, `5m`, `1s`, `250ms`, `1w`; also `us`, `ns`), in ns.

    >>> parse_interval("1d") == NS_PER_DAY, parse_interval("5m"), parse_interval("250ms")
    (True, 300000000000, 250000000)
    >>> parse_interval("fortnight")
    Traceback (most recent call last):
    ...
    ValueError: bar interval 'fortnight': use auto or a number with ms, s, m, h, d or w (1d, 1m, 1s)
    """
    match = _INTERVAL.match(text.strip().lower())
    if match is None or float(match.group(1)) <= 0:
        msg = f"bar interval {text!r}: use auto or a number with ms, s, m, h, d or w (1d, 1m, 1s)"
        raise ValueError(msg)
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def format_interval(interval_ns: int) -> str:
    """The shortest exact name of `interval_ns` (`parse_interval` reads it back).

    >>> format_interval(NS_PER_DAY), format_interval(90 * NS_PER_S), format_interval(1_500_000)
    ('1d', '90s', '1500us')
    >>> parse_interval(format_interval(36_687_708))
    36687708
    """
    for unit, size in (("w", 7 * NS_PER_DAY), ("d", NS_PER_DAY), ("h", 3_600 * NS_PER_S)):
        if interval_ns % size == 0:
            return f"{interval_ns // size}{unit}"
    for unit, size in (("m", 60 * NS_PER_S), ("s", NS_PER_S), ("ms", NS_PER_MS), ("us", 1_000)):
        if interval_ns % size == 0:
            return f"{interval_ns // size}{unit}"
    return f"{interval_ns}ns"


def rounded_interval(interval_ns: int) -> int:
    """An estimated interval rounded to whole seconds (whole milliseconds below a second,
    at least 1 ns), so it prints and reads back as a name (`42s`, `250ms`).

    >>> [format_interval(rounded_interval(ns)) for ns in (41_979_798_227, 20_400_000, 7)]
    ['42s', '20ms', '7ns']
    """
    unit = NS_PER_S if interval_ns >= NS_PER_S else NS_PER_MS if interval_ns >= NS_PER_MS else 1
    return max(unit, round(interval_ns / unit) * unit)


def _lower_median(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def estimate_interval_ns(events: Iterable[tuple[str, int]], warm: int = WARM_TICKS) -> int | None:
    """The sampling interval of `(instrument, ts_event)` pairs in input order, or None.

    Per instrument, the lower median of the positive gaps between its first `warm` event
    times; then the lower median of those over instruments. None when no instrument has
    two distinct event times. Reads only as far as every instrument's warm window needs
    (it stops at the first instrument seen past its window once all seen are full).

    >>> day = NS_PER_DAY
    >>> closes = [("A", 0), ("B", 0), ("A", day), ("B", day), ("A", 4 * day), ("B", 4 * day),
    ...           ("A", 5 * day), ("B", 5 * day)]
    >>> estimate_interval_ns(closes) == day
    True
    >>> estimate_interval_ns([("A", 5), ("A", 5)]) is None
    True
    """
    last: dict[str, int] = {}
    seen: dict[str, int] = {}
    gaps: dict[str, list[int]] = {}
    for instrument, ts in events:
        count = seen.get(instrument, 0)
        if count >= warm:
            if all(n >= warm for n in seen.values()):
                break
            continue
        seen[instrument] = count + 1
        previous = last.get(instrument)
        last[instrument] = ts
        if previous is not None and ts > previous:
            gaps.setdefault(instrument, []).append(ts - previous)
    medians = [_lower_median(found) for found in gaps.values() if found]
    return _lower_median(medians) if medians else None


@dataclass(frozen=True, slots=True)
class TimeScale:
    """Everything with a time scale, derived from the data's bar interval.

    Attributes:
        interval_ns: Event time between two samples of one instrument (one bar).
        source: Where the interval came from ("declared", "estimated", "default").
    """

    interval_ns: int
    source: str = "declared"

    def __post_init__(self) -> None:
        if self.interval_ns <= 0:
            msg = f"a bar interval must be positive, got {self.interval_ns} ns"
            raise ValueError(msg)

    @property
    def name(self) -> str:
        """The interval's name (`1d`, `1m`, `1s`)."""
        return format_interval(self.interval_ns)

    @property
    def sample_ns(self) -> int:
        """One return sample per instrument: one bar, at least a second (ticks)."""
        return max(self.interval_ns, NS_PER_S)

    @property
    def is_daily(self) -> bool:
        """True for bars of a trading session or longer (one or more per day at most)."""
        return self.sample_ns >= TRADING_SECONDS_PER_DAY * NS_PER_S

    @property
    def periods_per_day(self) -> float:
        """Samples per trading day: a 6.5-hour session of intraday samples; for bars of a
        day or longer, one per trading day they span (five trading days a week)."""
        if not self.is_daily:
            return TRADING_SECONDS_PER_DAY * NS_PER_S / self.sample_ns
        days = self.sample_ns / NS_PER_DAY
        return 1.0 / max(1, round(days * 5 / 7)) if days >= 2 else 1.0

    @property
    def periods_per_year(self) -> float:
        """The annualisation factor of one sample (252 trading days a year)."""
        return self.periods_per_day * TRADING_DAYS_PER_YEAR

    @property
    def recompute_ns(self) -> int:
        """Portfolio risk figures: every 5 s of event time, or every bar if slower."""
        return max(5 * NS_PER_S, self.sample_ns)

    @property
    def time_in_force_ns(self) -> int:
        """Orders live 5 bars (a weekend and a holiday between daily closes), at least 5 s."""
        return max(5 * NS_PER_S, 5 * self.interval_ns)

    @property
    def reference_age_ns(self) -> int:
        """A market price stays the collar's reference this long (as the time in force)."""
        return self.time_in_force_ns

    @property
    def tick_buffer_ns(self) -> int:
        """The gateway keeps ticks 60 bars (at least 60 s): an order decided on bar t
        still fills on bar t + 1 when the replay ran that far ahead of the trading flow."""
        return max(60 * NS_PER_S, 60 * self.interval_ns)

    @property
    def metrics_ns(self) -> int:
        """Model metrics rows: every 10 s of event time, or every bar if slower."""
        return max(10 * NS_PER_S, self.sample_ns)

    @property
    def checkpoint_ns(self) -> int:
        """Model checkpoints: every 60 s of event time for ticks; for bars, at most one
        per 250 bars (a year of daily bars). A pickle per daily bar would cost one per
        tick, when one a minute of ticks costs one per thousands of ticks."""
        if self.interval_ns <= NS_PER_S:
            return 60 * NS_PER_S
        return max(60 * NS_PER_S, 250 * self.interval_ns)

    @property
    def pnl_ns(self) -> int:
        """P&L snapshots: every second of event time, or every bar if slower."""
        return self.sample_ns

    @property
    def stale_ns(self) -> int:
        """No new tick for this long is stale data: 10 s, or 5 bars if slower."""
        return max(10 * NS_PER_S, 5 * self.interval_ns)

    @property
    def min_labelled(self) -> int:
        """Labels a model needs before it trades: 200 ticks or intraday bars (minutes
        of ticks, an afternoon of minute bars), 20 daily bars (a trading month)."""
        return 20 if self.is_daily else 200

    @property
    def frequency(self) -> str:
        """The return frequency of one sample as `risk.performance.parse_frequency` names
        it: `daily`, or an intraday `Nmin` / `Ns` (at least a second).

        >>> TimeScale(NS_PER_DAY).frequency, TimeScale(60 * NS_PER_S).frequency, TICK.frequency
        ('daily', '1min', '1s')
        """
        if self.is_daily:
            return "daily"
        seconds = self.sample_ns // NS_PER_S
        return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds}s"

    def describe(self) -> str:
        """One line naming the interval, its source and the derived figures.

        >>> print(TimeScale(NS_PER_DAY, "estimated").describe())  # doctest: +NORMALIZE_WHITESPACE
        bar interval 1d (estimated): annualised by 252 periods per year, 1 per day;
        time in force 5d, risk every 1d, checkpoints every 250d, min_labelled 20
        """
        return (
            f"bar interval {self.name} ({self.source}): annualised by "
            f"{self.periods_per_year:.10g} periods per year, {self.periods_per_day:.10g} per day; "
            f"time in force {format_interval(self.time_in_force_ns)}, "
            f"risk every {format_interval(self.recompute_ns)}, "
            f"checkpoints every {format_interval(self.checkpoint_ns)}, "
            f"min_labelled {self.min_labelled}"
        )


TICK = TimeScale(NS_PER_S, "default")  # tick data, and what an unresolved `auto` means
