"""Live venue feeds: each venue's documented wire format, served by a local websocket
server, read by the real client and normalised to tick records the trading flow accepts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connectors.codec import loads, tick_from_object
from connectors.feeds.live import binance, coinbase, kraken
from connectors.feeds.live.connection import (
    ConnectionConfig,
    FeedConnection,
    FeedEvent,
    FeedState,
    FeedStatus,
    Sequencer,
    VenueTick,
    rfc3339_ns,
    run_until,
)
from connectors.feeds.live.instrument import venues_from_mapping
from connectors.feeds.live.venue_server import ACKS, SYMBOLS, Session, VenueServer, synthetic_frames
from risk.domain.enums import TickKind

R = TypeVar("R")
GUARD_S = 120.0
FIXTURES = Path(__file__).parents[2] / "fixtures" / "venues"

VENUES = venues_from_mapping(
    {
        "binance": {
            "url": "ws://unused",
            "instruments": {
                "BNB-BTC": {"symbol": "BNBBTC", "tick_size": 1e-6, "lot_size": 0.001},
                "BNB-USDT": {"symbol": "BNBUSDT", "tick_size": 1e-4, "lot_size": 0.001},
            },
        },
        "coinbase": {
            "url": "ws://unused",
            "instruments": {
                "BTC-USD": {"symbol": "BTC-USD", "tick_size": 0.01, "lot_size": 1e-8},
                "ETH-USD": {"symbol": "ETH-USD", "tick_size": 0.01, "lot_size": 1e-8},
            },
        },
        "kraken": {
            "url": "ws://unused",
            "instruments": {
                "MATIC-USD": {"symbol": "MATIC/USD", "tick_size": 1e-4, "lot_size": 1e-8},
                "ALGO-USD": {"symbol": "ALGO/USD", "tick_size": 1e-5, "lot_size": 1e-8},
            },
        },
    }
)
ADAPTERS = {"binance": binance.Binance, "coinbase": coinbase.Coinbase, "kraken": kraken.Kraken}


def fixture_frames(venue: str) -> list[str]:
    lines = (FIXTURES / f"{venue}.jsonl").read_text().splitlines()
    return [line for line in lines if line.strip()]


def serve_fixture(venue: str) -> tuple[list[FeedEvent], list[dict[str, Any]]]:
    """Serve the venue's fixture on one connection; read until every frame is through."""
    frames = fixture_frames(venue)
    _ack, requests = ACKS[venue]

    async def scenario() -> tuple[list[FeedEvent], list[dict[str, Any]]]:
        # The fixture's own acks stand in for the server's: the server sends no ack.
        server = VenueServer(lambda _r: [], [Session(frames=frames)], requests_before_data=requests)
        async with server:
            config = VENUES[venue]
            connection = FeedConnection(ADAPTERS[venue](config), server.url, config.symbols())
            return await collect(
                connection, lambda: connection.metrics.messages == len(frames)
            ), server.requests

    return run(scenario())


async def collect(connection: FeedConnection, done: Callable[[], bool]) -> list[FeedEvent]:
    """Run `connection` until `done()` (polled), then stop it; every event seen."""
    runner = asyncio.create_task(connection.run())

    async def watch() -> None:
        while not done():
            await asyncio.sleep(0.005)
        await connection.stop()

    watcher = asyncio.create_task(watch())
    events = [event async for event in connection.events()]
    await asyncio.gather(runner, watcher)
    return events


def run(scenario: Coroutine[Any, Any, R]) -> R:
    """Run a scenario with a guard: a hang is a failure, not a stuck suite."""
    return asyncio.run(asyncio.wait_for(scenario, timeout=GUARD_S))


def ticks(events: list[FeedEvent]) -> list[VenueTick]:
    return [e for e in events if isinstance(e, VenueTick)]


def test_binance_fixture_normalises_trades_and_book_ticker() -> None:
    events, requests = serve_fixture("binance")
    assert requests == [
        {
            "method": "SUBSCRIBE",
            "params": ["bnbbtc@trade", "bnbbtc@bookTicker", "bnbusdt@trade", "bnbusdt@bookTicker"],
            "id": 1,
        }
    ]
    trade, quote, second = ticks(events)
    assert (trade.instrument, trade.kind, trade.price, trade.size) == (
        "BNB-BTC",
        TickKind.TRADE,
        0.001,
        100.0,
    )
    assert (trade.venue_trade_id, trade.ts_event) == (12345, 1672515782136 * 1_000_000)
    assert (quote.instrument, quote.bid, quote.ask, quote.bid_size, quote.ask_size) == (
        "BNB-USDT",
        25.3519,
        25.3652,
        31.21,
        40.66,
    )
    # spot bookTicker has no event time: stamped on receipt, and flagged so
    assert quote.venue_seq == 400900217 and quote.ts_event == quote.ts_init
    assert quote.flags == ("no_venue_time",)
    assert second.venue_trade_id == 12346 and second.ts_event == 1672515782200 * 1_000_000


def test_coinbase_fixture_normalises_matches_and_ticker() -> None:
    events, requests = serve_fixture("coinbase")
    assert requests[0]["channels"] == ["heartbeat", "matches", "ticker"]
    assert sorted(requests[0]["product_ids"]) == ["BTC-USD", "ETH-USD"]
    last, match, quote = ticks(events)
    assert last.flags == ("snapshot",) and last.venue_trade_id == 9
    assert (match.price, match.size, match.venue_trade_id, match.venue_seq) == (
        400.23,
        5.23512,
        10,
        50,
    )
    assert match.ts_event == rfc3339_ns("2014-11-07T08:19:27.028459Z") == 1415348367028459000
    assert (quote.instrument, quote.bid, quote.ask, quote.venue_seq) == (
        "ETH-USD",
        1285.04,
        1285.27,
        37475248783,
    )


def test_kraken_fixture_normalises_trade_snapshot_updates_and_ticker() -> None:
    events, requests = serve_fixture("kraken")
    assert [r["params"]["channel"] for r in requests[:2]] == ["trade", "ticker"]
    assert requests[0]["params"]["snapshot"] is True
    first, second, third, quote = ticks(events)
    assert [t.venue_trade_id for t in (first, second, third)] == [4665846, 4665847, 4665848]
    assert first.flags == ("snapshot",) and third.flags == ()
    assert (third.instrument, third.price, third.size) == ("MATIC-USD", 0.5117, 40.0)
    assert third.ts_event == rfc3339_ns("2023-09-25T07:49:37.708706Z")
    assert (quote.instrument, quote.bid, quote.ask, quote.bid_size) == (
        "ALGO-USD",
        0.10025,
        0.10036,
        740.0,
    )


@pytest.mark.parametrize("venue", ["binance", "coinbase", "kraken"])
def test_fixture_ticks_become_records_the_codec_accepts(venue: str) -> None:
    events, _ = serve_fixture(venue)
    sequencer = Sequencer()
    instruments = frozenset(i.instrument for i in VENUES[venue].instruments)
    seen = ticks(events)
    assert seen, "the fixture must give ticks"
    for tick in seen:
        record = tick.record(sequencer.next(tick.instrument, tick.ts_init))
        decoded = tick_from_object(loads(coinbase.encode(record)), instruments)
        assert (decoded.instrument, decoded.kind, decoded.ts_event) == (
            tick.instrument,
            tick.kind,
            tick.ts_event,
        )
        assert decoded.price == pytest.approx(tick.price)
        assert record["venue"] == venue
        if tick.kind is TickKind.TRADE:
            assert record["venue_trade_id"] == tick.venue_trade_id
    statuses = [e.state for e in events if isinstance(e, FeedStatus)]
    assert statuses == [FeedState.CONNECTED, FeedState.STOPPED]


def test_unreadable_frames_are_counted_not_fatal() -> None:
    frames = ["not json", '{"stream":"bnbbtc@trade","data":{"e":"trade","s":"BNBBTC"}}']
    frames.append(binance.wire_trade("BNBBTC", 1, 0.001, 1.0, 1_700_000_000_000))

    async def scenario() -> FeedConnection:
        async with VenueServer(lambda _r: [], [Session(frames=frames)]) as server:
            config = VENUES["binance"]
            connection = FeedConnection(
                binance.Binance(config), server.url, config.symbols(), ConnectionConfig()
            )
            await run_until(connection, lambda e: isinstance(e, VenueTick))
            return connection

    connection = run(scenario())
    assert connection.metrics.unreadable == 2
    assert connection.metrics.ticks == 1


@pytest.mark.parametrize("venue", ["binance", "coinbase", "kraken"])
def test_synthetic_venue_frames_parse_back_to_trades_and_quotes(venue: str) -> None:
    config = venues_from_mapping(
        {
            venue: {
                "url": "ws://x",
                "instruments": {
                    "I": {"symbol": SYMBOLS[venue], "tick_size": 0.01, "lot_size": 1.0}
                },
            }
        }
    )[venue]
    adapter = ADAPTERS[venue](config)
    frames = synthetic_frames(venue, 50, start_ns=1_700_000_000_000_000_000)
    parsed = [t for frame in frames for t in adapter.parse(frame, 1)]
    assert [t.kind for t in parsed] == [TickKind.TRADE, TickKind.QUOTE] * 50
    assert [t.venue_trade_id for t in parsed[::2]] == list(range(1, 51))
    assert all(t.bid is not None and t.ask is not None and t.bid < t.ask for t in parsed[1::2])


def test_feed_metrics_export_counts_only_what_is_new() -> None:
    from prometheus_client import REGISTRY

    from connectors.telemetry.metric import observe_feed

    def value(kind: str) -> float | None:
        return REGISTRY.get_sample_value(
            "hfl_feed_events_total", {"venue": "metric-test", "kind": kind}
        )

    observe_feed({"venue": "metric-test", "messages": 5, "gaps": 1, "lag_ms": {"p99": 12.0}})
    observe_feed({"venue": "metric-test", "messages": 8, "gaps": 1, "lag_ms": {"p99": 20.0}})
    assert (value("messages"), value("gaps")) == (8.0, 1.0)
    lag = REGISTRY.get_sample_value(
        "hfl_feed_lag_seconds", {"venue": "metric-test", "quantile": "p99"}
    )
    assert lag == 0.02
