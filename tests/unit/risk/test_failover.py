"""Failover policy: primary used while fresh, secondary when it is silent or down, back."""

from __future__ import annotations

from risk.failover import Failover, FeedRoute

S = 1_000_000_000
ROUTE = FeedRoute(instrument="BTC-USD", primary="coinbase", secondary="kraken")


def policy() -> Failover:
    return Failover([ROUTE], stale_after_ns=5 * S)


def test_secondary_ticks_are_unused_while_the_primary_is_fresh() -> None:
    p = policy()
    assert p.on_tick("coinbase", "BTC-USD", 0).use
    assert not p.on_tick("kraken", "BTC-USD", 4 * S).use
    assert p.active("BTC-USD") == "coinbase"


def test_primary_silent_past_the_threshold_switches_to_the_marked_secondary() -> None:
    p = policy()
    p.on_tick("coinbase", "BTC-USD", 0)
    routing = p.on_tick("kraken", "BTC-USD", 5 * S + 1)
    assert routing.use and routing.failover
    assert routing.switched is not None
    assert (routing.switched.from_venue, routing.switched.to_venue) == ("coinbase", "kraken")
    assert "silent for 5.0s" in routing.switched.reason
    again = p.on_tick("kraken", "BTC-USD", 6 * S)
    assert again.use and again.failover and again.switched is None


def test_primary_reported_down_switches_at_the_next_secondary_tick() -> None:
    p = policy()
    p.on_tick("coinbase", "BTC-USD", 0)
    p.on_venue_down("coinbase", "breaker_open")
    routing = p.on_tick("kraken", "BTC-USD", 1)
    assert routing.switched is not None and routing.switched.reason == "coinbase breaker_open"


def test_primary_delivering_again_takes_the_instrument_back_unmarked() -> None:
    p = policy()
    p.on_tick("coinbase", "BTC-USD", 0)
    p.on_tick("kraken", "BTC-USD", 6 * S)
    back = p.on_tick("coinbase", "BTC-USD", 7 * S)
    assert back.use and not back.failover
    assert back.switched is not None and back.switched.to_venue == "coinbase"
    assert not p.on_tick("kraken", "BTC-USD", 7 * S + 1).use


def test_both_silent_uses_nothing_and_unrouted_instruments_pass() -> None:
    p = policy()
    assert p.on_tick("binance", "BTC-USDT", 0).use  # not routed: always used
    assert not p.on_tick("binance", "BTC-USD", 0).use  # a third venue is never used
    assert p.active("BTC-USD") == "coinbase"
