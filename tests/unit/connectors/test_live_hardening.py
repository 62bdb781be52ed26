"""Live feed hardening against a local venue server: reconnect within the backoff, no
duplicates across reconnects, every gap reported, stale streams, the breaker,
back-pressure and a clean close."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import pytest

from connectors.codec import loads
from connectors.feeds.history.rest_server import RestVenueServer
from connectors.feeds.live import binance, coinbase, kraken
from connectors.feeds.live.backfill import GapBackfill
from connectors.feeds.live.connection import (
    ConnectionConfig,
    FeedConnection,
    FeedEvent,
    FeedGap,
    FeedState,
    FeedStatus,
    Venue,
    VenueTick,
)
from connectors.feeds.live.instrument import venues_from_mapping
from connectors.feeds.live.runner import LiveRouter, run_live
from connectors.feeds.live.venue_server import ACKS, SYMBOLS, Session, VenueServer
from connectors.kafka.record import OutboundRecord

R = TypeVar("R")
GUARD_S = 120.0
T0_NS = 1_700_000_000_000_000_000
VENUES = venues_from_mapping(
    {
        venue: {
            "url": "ws://unused",
            "instruments": {"BTC-USD": {"symbol": symbol, "tick_size": 0.01, "lot_size": 1e-8}},
        }
        for venue, symbol in SYMBOLS.items()
    }
)
ADAPTERS: dict[str, Callable[..., Venue]] = {
    "binance": binance.Binance,
    "coinbase": coinbase.Coinbase,
    "kraken": kraken.Kraken,
}
FAST = ConnectionConfig(
    heartbeat_s=1.0,
    stale_after_s=2.0,
    backoff_initial_s=0.2,
    backoff_max_s=1.0,
    backoff_jitter=0.5,
    breaker_threshold=3,
    breaker_cooldown_s=0.3,
)


def trade_frame(venue: str, n: int, *, snapshot: bool = False) -> str:
    symbol, price, time_ns = SYMBOLS[venue], 30_000.0 + n, T0_NS + n * 1_000_000
    match venue:
        case "binance":
            return binance.wire_trade(symbol, n, price, 0.01, time_ns // 1_000_000)
        case "coinbase":
            frame = coinbase.wire_trade(symbol, n, 2 * n, price=price, size=0.01, time_ns=time_ns)
            return frame.replace('"match"', '"last_match"') if snapshot else frame
        case _:
            return kraken.wire_trade(symbol, n, price, 0.01, time_ns, snapshot=snapshot)


def trades(venue: str, ids: range, *, snapshot: bool = False) -> list[str]:
    return [trade_frame(venue, n, snapshot=snapshot) for n in ids]


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


def connection_to(server: VenueServer, venue: str, config: ConnectionConfig) -> FeedConnection:
    venue_config = VENUES[venue]
    return FeedConnection(
        ADAPTERS[venue](venue_config),
        server.url,
        venue_config.symbols(),
        config,
        rng=random.Random(3),
    )


def run(scenario: Coroutine[Any, Any, R]) -> R:
    """Run a scenario with a guard: a hang is a failure, not a stuck suite."""
    return asyncio.run(asyncio.wait_for(scenario, timeout=GUARD_S))


def trade_ids(events: list[FeedEvent]) -> list[int]:
    return [e.venue_trade_id for e in events if isinstance(e, VenueTick) and e.venue_trade_id]


@pytest.mark.parametrize("venue", ["binance", "coinbase", "kraken"])
def test_forced_disconnect_reconnects_within_backoff_without_duplicates(venue: str) -> None:
    # The second session resends the last 10 trades (Kraken's snapshot, Coinbase's
    # last_match, a Binance replay): every one of them must be dropped.
    sessions = [
        Session(frames=trades(venue, range(1, 51)), then="drop"),
        Session(frames=trades(venue, range(41, 51), snapshot=True) + trades(venue, range(51, 101))),
    ]
    ack, requests = ACKS[venue]

    async def scenario() -> tuple[list[FeedEvent], FeedConnection, VenueServer]:
        async with VenueServer(ack, sessions, requests_before_data=requests) as server:
            connection = connection_to(server, venue, FAST)
            events = await collect(connection, lambda: connection.metrics.ticks >= 100)
            return events, connection, server

    events, connection, server = run(scenario())
    assert trade_ids(events) == list(range(1, 101))  # each once, in order
    assert connection.metrics.duplicates == 10
    assert connection.metrics.gaps == 0 and connection.metrics.reconnects == 1
    downtime = connection.connected_at[1] - connection.disconnected_at[0]
    assert downtime <= FAST.backoff_initial_s + 0.5, downtime
    # resubscribed on the new connection: the same requests, twice
    subscribes = [r for r in server.requests if r.get("method") != "ping"]
    assert subscribes[: len(subscribes) // 2] == subscribes[len(subscribes) // 2 :]
    assert len(subscribes) == 2 * requests
    states = [e.state for e in events if isinstance(e, FeedStatus)]
    assert states == [
        FeedState.CONNECTED,
        FeedState.DISCONNECTED,
        FeedState.CONNECTED,
        FeedState.STOPPED,
    ]


@pytest.mark.parametrize("venue", ["binance", "coinbase", "kraken"])
def test_trades_missed_while_disconnected_and_in_stream_are_gap_events(venue: str) -> None:
    sessions = [
        Session(frames=trades(venue, range(1, 21)) + trades(venue, range(25, 31)), then="drop"),
        Session(frames=trades(venue, range(41, 61))),
    ]
    ack, requests = ACKS[venue]

    async def scenario() -> tuple[list[FeedEvent], FeedConnection]:
        async with VenueServer(ack, sessions, requests_before_data=requests) as server:
            connection = connection_to(server, venue, FAST)
            events = await collect(connection, lambda: connection.metrics.ticks >= 46)
            return events, connection

    events, connection = run(scenario())
    gaps = [e for e in events if isinstance(e, FeedGap)]
    assert [(g.expected, g.received, g.missing, g.after_reconnect) for g in gaps] == [
        (21, 25, 4, False),
        (31, 41, 10, True),
    ]
    assert connection.metrics.gaps == 2 and connection.metrics.missing_trades == 14
    # the gap event comes right before the first tick after the hole
    after = [events[events.index(g) + 1] for g in gaps]
    assert [t.venue_trade_id for t in after if isinstance(t, VenueTick)] == [25, 41]


def test_silent_stream_is_detected_stale_and_reconnected() -> None:
    config = ConnectionConfig(
        heartbeat_s=5.0, stale_after_s=0.3, backoff_initial_s=0.05, backoff_jitter=0.0
    )
    sessions = [
        Session(frames=trades("kraken", range(1, 4)), then="hold"),
        Session(frames=trades("kraken", range(4, 7))),
    ]

    async def scenario() -> tuple[list[FeedEvent], FeedConnection]:
        async with VenueServer(kraken.subscribe_ack, sessions, requests_before_data=2) as server:
            connection = connection_to(server, "kraken", config)
            events = await collect(connection, lambda: connection.metrics.ticks >= 6)
            return events, connection

    events, connection = run(scenario())
    assert trade_ids(events) == [1, 2, 3, 4, 5, 6]
    assert connection.metrics.stale == 1
    states = [e.state for e in events if isinstance(e, FeedStatus)]
    assert states[:3] == [FeedState.CONNECTED, FeedState.STALE, FeedState.CONNECTED]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_venue_refusing_connections_opens_the_breaker() -> None:
    config = ConnectionConfig(
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
        breaker_threshold=3,
        breaker_cooldown_s=0.2,
        open_timeout_s=1.0,
    )

    async def scenario() -> list[FeedEvent]:
        venue = kraken.Kraken(VENUES["kraken"])
        url = f"ws://127.0.0.1:{closed_port()}"
        connection = FeedConnection(venue, url, ["BTC/USD"], config, rng=random.Random(1))
        runner = asyncio.create_task(connection.run())
        events: list[FeedEvent] = []
        async for event in connection.events():
            events.append(event)
            if isinstance(event, FeedStatus) and event.state is FeedState.BREAKER_OPEN:
                await connection.stop()
        await runner
        return events

    started = time.monotonic()
    events = run(scenario())
    states = [e.state for e in events if isinstance(e, FeedStatus)]
    assert states == [FeedState.DISCONNECTED] * 3 + [FeedState.BREAKER_OPEN, FeedState.STOPPED]
    assert time.monotonic() - started < 5.0


def test_slow_consumer_holds_the_venue_back_with_a_bounded_queue() -> None:
    total = 10_000
    frames = trades("binance", range(1, total + 1))
    # Keepalive pings wait while reading is paused: a consumer stalled past the pong
    # timeout is dropped (as a venue would drop it). Here it stalls well within it.
    config = ConnectionConfig(queue_size=64, stale_after_s=60.0, heartbeat_s=60.0)

    async def scenario() -> tuple[list[int], FeedConnection, int]:
        server = VenueServer(
            binance.subscribe_ack, [Session(frames=frames)], send_buffer_bytes=65_536
        )
        async with server:
            connection = connection_to(server, "binance", config)
            runner = asyncio.create_task(connection.run())
            while not connection.queue.full():  # the consumer stalls: nothing is taken
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)
            sent_while_stalled = server.sent
            ids: list[int] = []
            async for event in connection.events():
                if isinstance(event, VenueTick) and event.venue_trade_id:
                    ids.append(event.venue_trade_id)
                    if len(ids) == total:
                        await connection.stop()
            await runner
            return ids, connection, sent_while_stalled

    ids, connection, sent_while_stalled = run(scenario())
    # the venue was held back by a full queue, not buffered without bound
    assert sent_while_stalled < total // 2, sent_while_stalled
    assert connection.metrics.queue_high_water == 64
    assert ids == list(range(1, total + 1))
    assert connection.metrics.gaps == 0 and connection.metrics.duplicates == 0


def test_stop_closes_the_socket_with_a_normal_close_frame() -> None:
    async def scenario() -> VenueServer:
        frames = trades("coinbase", range(1, 4))
        async with VenueServer(coinbase.subscribe_ack, [Session(frames=frames)]) as server:
            connection = connection_to(server, "coinbase", FAST)
            await collect(connection, lambda: connection.metrics.ticks >= 3)
            for _ in range(100):
                if server.close_codes:
                    break
                await asyncio.sleep(0.01)
            return server

    server = run(scenario())
    assert server.close_codes == [1000]


# A websocket trade gap refilled from the venue's REST trades (Coinbase Exchange): the real
# ccxt client refills each hole from the local REST stand-in; the routed records hold
# every trade id once, in order, the refilled ones flagged `backfill`.
REST_START_MS = 1_767_225_600_000


def test_gaps_are_refilled_in_id_order_and_flagged() -> None:
    sessions = [
        Session(frames=trades("coinbase", range(1, 21)) + trades("coinbase", range(25, 31)),
                then="drop"),
        Session(frames=trades("coinbase", range(41, 61))),
    ]  # fmt: skip
    rest = RestVenueServer(
        start_ms=REST_START_MS, end_ms=REST_START_MS + 3_600_000, last_trade_id=100
    )
    rest.start()
    records: list[OutboundRecord] = []
    ack, requests = ACKS["coinbase"]

    async def scenario() -> None:
        async with VenueServer(ack, sessions, requests_before_data=requests) as server:
            connection = connection_to(server, "coinbase", FAST)
            backfill = GapBackfill.for_venue("coinbase", {"BTC-USD": "BTC-USD"}, rest.url)
            router = LiveRouter()
            await run_live(
                [connection], router, records.append, max_ticks=60,
                backfills={"coinbase": backfill},
            )  # fmt: skip
            assert router.backfilled == {"coinbase": 14}
            assert backfill.refilled == 14 and backfill.failed == 0

    try:
        asyncio.run(asyncio.wait_for(scenario(), timeout=120))
    finally:
        rest.stop()
    ticks = [loads(r.value) for r in records if r.topic == "md.ticks"]
    ids = [t["venue_trade_id"] for t in ticks]
    assert ids == list(range(1, 61))
    refilled = [t["venue_trade_id"] for t in ticks if "backfill" in t.get("flags", ())]
    assert refilled == [*range(21, 25), *range(31, 41)]
    seqs = [t["seq"] for t in ticks]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    alerts = [loads(r.value)["name"] for r in records if r.topic == "hfl.alerts"]
    assert alerts.count("feed_gap") == 2  # the holes are still reported


def test_a_failing_venue_refills_nothing_and_says_so() -> None:
    backfill = GapBackfill.for_venue("coinbase", {"BTC-USD": "BTC-USD"}, "http://127.0.0.1:9")
    gap = FeedGap(
        venue="coinbase", instrument="BTC-USD", expected=5, received=9, missing=4,
        after_reconnect=False, ts_init=0,
    )  # fmt: skip
    assert backfill.fetch(gap) == [] and backfill.failed == 1
    assert GapBackfill.for_venue("coinbase", {}, None).fetch(gap) == []
