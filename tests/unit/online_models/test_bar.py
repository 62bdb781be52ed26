"""Event-time bars built from ticks."""

from __future__ import annotations

import pickle

import pytest

from online_models.bar import BarBuilder, bar_start_ns
from risk.domain.enums import TickKind
from risk.domain.market import Bar, Tick

_NS = 1_000_000_000


def make_tick(ts_s: float, price: float, size: float = 1.0, kind: TickKind | None = None) -> Tick:
    """A tick at `ts_s` seconds; size 0 makes a quote unless `kind` says otherwise."""
    ts = round(ts_s * _NS)
    return Tick(
        tick_id=f"t{ts}",
        instrument="X",
        seq=ts,
        kind=kind or (TickKind.TRADE if size else TickKind.QUOTE),
        price=price,
        size=size,
        ts_event=ts,
        ts_init=ts + 5,
    )


def feed(builder: BarBuilder, ticks: list[Tick]) -> list[Bar]:
    return [bar for tick in ticks if (bar := builder.update(tick)) is not None]


@pytest.mark.parametrize(
    ("ts_ns", "interval_s", "expected"),
    [
        (0, 1, 0),
        (999_999_999, 1, 0),
        (1_000_000_000, 1, 1_000_000_000),
        (7_500_000_000, 5, 5_000_000_000),
        (-1, 1, -1_000_000_000),
    ],
)
def test_bar_start_is_floor_of_event_time(ts_ns: int, interval_s: int, expected: int) -> None:
    assert bar_start_ns(ts_ns, interval_s * _NS) == expected


def test_bar_closes_on_first_tick_at_its_end() -> None:
    builder = BarBuilder("X", 1)
    assert feed(builder, [make_tick(0.2, 10.0), make_tick(0.9999, 11.0)]) == []
    closing = make_tick(1.0, 12.0)
    bar = builder.update(closing)
    assert bar == Bar(
        instrument="X",
        interval_s=1,
        open=10.0,
        high=11.0,
        low=10.0,
        close=11.0,
        volume=2.0,
        vwap=10.5,
        trade_count=2,
        ts_event=0,
        ts_init=closing.ts_event,
    )


def test_bar_ohlc_volume_vwap_over_the_interval() -> None:
    builder = BarBuilder("X", 5)
    ticks = [
        make_tick(10.0, 100.0, 2.0),
        make_tick(11.0, 103.0, 1.0),
        make_tick(12.0, 98.0, 3.0),
        make_tick(14.9, 101.0, 4.0),
        make_tick(15.0, 99.0, 1.0),
    ]
    (bar,) = feed(builder, ticks)
    assert (bar.open, bar.high, bar.low, bar.close) == (100.0, 103.0, 98.0, 101.0)
    assert bar.volume == 10.0
    assert bar.vwap == pytest.approx((200.0 + 103.0 + 294.0 + 404.0) / 10.0)
    assert bar.trade_count == 4
    assert bar.ts_event == 10 * _NS
    assert bar.ts_init == 15 * _NS


def test_bar_empty_intervals_are_skipped() -> None:
    builder = BarBuilder("X", 1)
    bars = feed(builder, [make_tick(0.5, 10.0), make_tick(3.2, 11.0), make_tick(4.1, 12.0)])
    assert [bar.ts_event for bar in bars] == [0, 3 * _NS]
    flushed = builder.flush()
    assert flushed is not None
    assert flushed.ts_event == 4 * _NS


def test_bar_quotes_move_ohlc_but_not_volume() -> None:
    builder = BarBuilder("X", 1)
    ticks = [
        make_tick(0.1, 10.0, 2.0),
        make_tick(0.2, 14.0, 0.0),
        make_tick(0.3, 8.0, 0.0),
        make_tick(0.4, 11.0, 0.0),
        make_tick(1.5, 11.0, 1.0),
    ]
    (bar,) = feed(builder, ticks)
    assert (bar.open, bar.high, bar.low, bar.close) == (10.0, 14.0, 8.0, 11.0)
    assert bar.volume == 2.0
    assert bar.vwap == 10.0
    assert bar.trade_count == 1


def test_bar_of_quotes_only_has_vwap_equal_close() -> None:
    builder = BarBuilder("X", 1)
    (bar,) = feed(
        builder, [make_tick(0.1, 10.0, 0.0), make_tick(0.7, 10.5, 0.0), make_tick(1.0, 9.0)]
    )
    assert (bar.volume, bar.trade_count, bar.vwap, bar.close) == (0.0, 0, 10.5, 10.5)


@pytest.mark.parametrize("late_ts_s", [0.5, 1.99, 2.5])
def test_bar_late_tick_for_a_closed_bar_is_ignored(late_ts_s: float) -> None:
    builder = BarBuilder("X", 1)
    feed(builder, [make_tick(0.5, 10.0), make_tick(3.1, 11.0)])
    assert builder.update(make_tick(late_ts_s, 99.0, 50.0)) is None
    bar = builder.flush()
    assert bar is not None
    assert (bar.high, bar.volume, bar.ts_event) == (11.0, 1.0, 3 * _NS)


def test_bar_out_of_order_tick_within_the_open_bar_is_folded_in() -> None:
    builder = BarBuilder("X", 1)
    feed(builder, [make_tick(0.5, 10.0), make_tick(0.2, 12.0)])
    bar = builder.flush()
    assert bar is not None
    assert (bar.high, bar.close, bar.volume, bar.ts_init) == (12.0, 12.0, 2.0, round(0.5 * _NS))


def test_bar_flush_without_open_bar_returns_none() -> None:
    builder = BarBuilder("X", 1)
    assert builder.flush() is None
    builder.update(make_tick(0.5, 10.0))
    assert builder.flush() is not None
    assert builder.flush() is None


def test_bar_flush_stamps_last_event_time_and_rejects_older_ticks() -> None:
    builder = BarBuilder("X", 1)
    feed(builder, [make_tick(2.1, 10.0), make_tick(2.6, 11.0)])
    bar = builder.flush()
    assert bar is not None
    assert (bar.ts_event, bar.ts_init) == (2 * _NS, round(2.6 * _NS))
    assert builder.update(make_tick(2.9, 12.0)) is None
    assert builder.flush() is None
    builder.update(make_tick(3.0, 13.0))
    after = builder.flush()
    assert after is not None
    assert after.ts_event == 3 * _NS


def test_bar_builder_pickles_mid_bar_and_continues_identically() -> None:
    ticks = [make_tick(i * 0.13, 100.0 + (i % 7) - 3, float(i % 3)) for i in range(100)]
    original = BarBuilder("X", 1)
    feed(original, ticks[:37])
    restored = pickle.loads(pickle.dumps(original))
    assert feed(restored, ticks[37:]) == feed(original, ticks[37:])
    assert restored.flush() == original.flush()


def test_bar_replay_gives_identical_bars() -> None:
    ticks = [make_tick(i * 0.37, 50.0 + (i % 5), float(i % 4)) for i in range(200)]
    assert feed(BarBuilder("X", 2), ticks) == feed(BarBuilder("X", 2), ticks)


@pytest.mark.parametrize("interval_s", [0, -1])
def test_bar_builder_nonpositive_interval_raises(interval_s: int) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        BarBuilder("X", interval_s)
