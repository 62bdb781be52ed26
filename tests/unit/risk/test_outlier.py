"""Outlier screen: each rule on constructed ticks, and the real series under defaults."""

from __future__ import annotations

import math
import random

import pytest

from connectors.feeds.outlier_report import (
    AAPL_SPLIT_DAY,
    AAPL_SPLIT_RATIO,
    count_outliers,
    simulated_ticks,
    sp500_ticks,
    unadjusted_split,
)
from risk.domain.enums import TickKind
from risk.domain.market import Tick
from risk.outlier import OutlierAction, OutlierConfig, OutlierRule, OutlierScreen

S = 1_000_000_000


def tick(
    price: float = 100.0,
    n: int = 0,
    *,
    kind: TickKind = TickKind.TRADE,
    size: float = 1.0,
    bid: float | None = None,
    ask: float | None = None,
    ts_event: int | None = None,
    ts_init: int | None = None,
) -> Tick:
    ts = n * S if ts_event is None else ts_event
    return Tick(
        tick_id=str(n),
        instrument="X",
        seq=n,
        kind=kind,
        price=price,
        size=size,
        bid=bid,
        ask=ask,
        ts_event=ts,
        ts_init=ts if ts_init is None else ts_init,
    )


def warmed(config: OutlierConfig | None = None, ticks: int = 40) -> OutlierScreen:
    """A screen that has seen `ticks` ordinary +-0.5 % moves around 100."""
    screen = OutlierScreen(config)
    for n in range(ticks):
        assert screen.screen(tick(100.0 + (0.5 if n % 2 else -0.5), n)).clean
    return screen


def test_bad_print_far_off_the_level_is_dead_lettered_and_the_next_normal_tick_passes() -> None:
    screen = warmed()
    verdict = screen.screen(tick(180.0, 100))
    assert verdict.rejected is OutlierRule.PRICE_JUMP
    assert verdict.rejected.reason.value == "outlier_price_jump"
    assert screen.screen(tick(100.2, 101)).clean


def test_a_level_confirmed_by_the_next_tick_is_accepted() -> None:
    screen = warmed()
    assert screen.screen(tick(50.0, 100)).rejected is OutlierRule.PRICE_JUMP
    assert screen.screen(tick(50.1, 101)).clean  # second tick at the new level: real
    assert screen.screen(tick(50.2, 102)).clean


def test_large_move_within_the_instrument_s_own_volatility_passes() -> None:
    screen = OutlierScreen()
    rng = random.Random(5)
    price = 100.0
    for n in range(60):  # moves of ~10 % a tick: 30 % is not extraordinary here
        price *= math.exp(rng.gauss(0.0, 0.1))
        assert screen.screen(tick(price, n)).rejected is None
    assert screen.screen(tick(price * 1.3, 60)).rejected is None


def test_jump_before_enough_history_passes() -> None:
    screen = OutlierScreen()
    screen.screen(tick(100.0, 0))
    assert screen.screen(tick(300.0, 1)).clean


@pytest.mark.parametrize(
    ("bid", "ask", "rule", "rejected"),
    [
        (101.0, 100.0, OutlierRule.CROSSED_QUOTE, True),
        (100.0, 100.0, OutlierRule.LOCKED_QUOTE, False),
    ],
)
def test_crossed_quote_dead_letters_and_locked_quote_flags(
    bid: float, ask: float, rule: OutlierRule, rejected: bool
) -> None:
    verdict = OutlierScreen().screen(
        tick((bid + ask) / 2, kind=TickKind.QUOTE, size=0.0, bid=bid, ask=ask)
    )
    assert (verdict.rejected is rule) is rejected
    assert (rule in verdict.flags) is not rejected


@pytest.mark.parametrize("size", [0.0, -1.0])
def test_trade_of_zero_or_negative_size_is_dead_lettered(size: float) -> None:
    assert OutlierScreen().screen(tick(size=size)).rejected is OutlierRule.ZERO_SIZE


def test_old_and_future_timestamps_are_flagged() -> None:
    screen = OutlierScreen()
    old = screen.screen(tick(ts_event=0, ts_init=61 * S))
    ahead = screen.screen(tick(ts_event=100 * S, ts_init=90 * S))
    assert old.flags == (OutlierRule.STALE_TIMESTAMP,) and old.rejected is None
    assert ahead.flags == (OutlierRule.FUTURE_TIMESTAMP,) and ahead.rejected is None


def test_venue_sequence_going_back_is_dead_lettered_event_time_alone_is_not() -> None:
    screen = OutlierScreen()
    assert screen.screen(tick(n=5), venue_seq=10).clean
    assert screen.screen(tick(n=6), venue_seq=10).rejected is OutlierRule.OUT_OF_ORDER
    assert screen.screen(tick(n=7), venue_seq=9).rejected is OutlierRule.OUT_OF_ORDER
    assert screen.screen(tick(n=4), venue_seq=11).clean  # a failover venue's clock may lag


def test_each_rule_s_action_is_configurable() -> None:
    config = OutlierConfig(
        actions={
            OutlierRule.CROSSED_QUOTE: OutlierAction.FLAG,
            OutlierRule.ZERO_SIZE: OutlierAction.OFF,
        }
    )
    screen = OutlierScreen(config)
    crossed = screen.screen(tick(100.0, 1, kind=TickKind.QUOTE, size=0, bid=101.0, ask=99.0))
    assert crossed.rejected is None and crossed.flags == (OutlierRule.CROSSED_QUOTE,)
    assert screen.screen(tick(100.0, 2, size=0.0)).clean


def test_real_sp500_daily_series_loses_no_tick_under_defaults() -> None:
    counts = count_outliers(sp500_ticks())
    assert counts["ticks"] == 12_570
    assert counts["dead_letter"] == {} and counts["flag"] == {}


def test_unadjusted_aapl_split_costs_one_tick_then_the_new_level_is_accepted() -> None:
    raw = unadjusted_split(sp500_ticks(), "AAPL", AAPL_SPLIT_DAY, AAPL_SPLIT_RATIO)
    counts = count_outliers(raw)
    assert counts["dead_letter"] == {"price_jump": 1}
    assert counts["examples"][0].startswith("AAPL 1402344000000000000")  # 2014-06-09 close


def test_simulated_intraday_ticks_with_jumps_lose_no_tick_under_defaults() -> None:
    counts = count_outliers(simulated_ticks(50_000))
    assert counts["dead_letter"] == {}
