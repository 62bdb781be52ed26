"""Failover on real connections: a primary venue goes silent, the secondary takes over
within the stale threshold and is marked, the primary comes back and takes over again;
each switch is an alert and an audit record."""

from __future__ import annotations

import asyncio
from typing import Any

from connectors.codec import loads
from connectors.feeds.live import coinbase, kraken
from connectors.feeds.live.connection import ConnectionConfig, FeedConnection
from connectors.feeds.live.instrument import venues_from_mapping
from connectors.feeds.live.runner import LiveRouter, run_live
from connectors.feeds.live.venue_server import Session, VenueServer
from connectors.kafka.record import OutboundRecord
from risk.failover import Failover, FeedRoute

T0_NS = 1_700_000_000_000_000_000
STALE_S = 0.5
VENUES = venues_from_mapping(
    {
        "coinbase": {
            "url": "ws://unused",
            "instruments": {"BTC-USD": {"symbol": "BTC-USD", "tick_size": 0.01, "lot_size": 1e-8}},
        },
        "kraken": {
            "url": "ws://unused",
            "instruments": {"BTC-USD": {"symbol": "BTC/USD", "tick_size": 0.1, "lot_size": 1e-8}},
        },
    }
)


def coinbase_trades(ids: range) -> list[str]:
    return [
        coinbase.wire_trade(
            "BTC-USD", n, 2 * n, price=30_000.0 + n, size=0.01, time_ns=T0_NS + n * 10**6
        )
        for n in ids
    ]


def kraken_trades(ids: range) -> list[str]:
    return [kraken.wire_trade("BTC/USD", n, 30_000.0 + n, 0.01, T0_NS + n * 10**6) for n in ids]


def test_silent_primary_fails_over_within_the_threshold_and_comes_back() -> None:
    config = ConnectionConfig(
        heartbeat_s=5.0, stale_after_s=1.5, backoff_initial_s=0.05, backoff_jitter=0.0
    )
    primary_sessions = [
        Session(frames=coinbase_trades(range(1, 21)), frame_interval_s=0.02, then="hold"),
        Session(frames=coinbase_trades(range(21, 41)), frame_interval_s=0.02),
    ]
    secondary = [Session(frames=kraken_trades(range(1, 1001)), frame_interval_s=0.02)]

    async def scenario() -> tuple[list[OutboundRecord], LiveRouter]:
        async with (
            VenueServer(coinbase.subscribe_ack, primary_sessions) as primary_server,
            VenueServer(kraken.subscribe_ack, secondary, requests_before_data=2) as second,
        ):
            connections = [
                FeedConnection(
                    coinbase.Coinbase(VENUES["coinbase"]), primary_server.url, ["BTC-USD"], config
                ),
                FeedConnection(kraken.Kraken(VENUES["kraken"]), second.url, ["BTC/USD"], config),
            ]
            failover = Failover(
                [FeedRoute(instrument="BTC-USD", primary="coinbase", secondary="kraken")],
                stale_after_ns=int(STALE_S * 1e9),
            )
            router = LiveRouter(failover=failover)
            records: list[OutboundRecord] = []

            def sink(record: OutboundRecord) -> None:
                records.append(record)
                if router.published["coinbase"] >= 40:
                    raise_done.set()

            raise_done = asyncio.Event()
            task = asyncio.create_task(run_live(connections, router, sink))
            await asyncio.wait_for(raise_done.wait(), timeout=120)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return records, router

    records, router = asyncio.run(scenario())
    ticks = [loads(r.value) for r in records if r.topic == "md.ticks"]
    venues = [t["venue"] for t in ticks]
    # primary, then the secondary (marked), then the primary again (unmarked)
    first_kraken = venues.index("kraken")
    back = venues.index("coinbase", first_kraken)
    assert set(venues[:first_kraken]) == {"coinbase"}
    assert set(venues[first_kraken:back]) == {"kraken"}
    assert all("failover" in t.get("flags", []) for t in ticks[first_kraken:back])
    assert all("failover" not in t.get("flags", []) for t in ticks if t["venue"] == "coinbase")
    assert [(s.from_venue, s.to_venue) for s in router.switches] == [
        ("coinbase", "kraken"),
        ("kraken", "coinbase"),
    ]
    last_primary = ticks[first_kraken - 1]["ts_init"]
    switch_after_s = (router.switches[0].ts_init - last_primary) / 1e9
    assert STALE_S < switch_after_s <= STALE_S + 1.0, switch_after_s
    seqs = [t["seq"] for t in ticks]
    assert seqs == sorted(set(seqs))  # one strictly increasing sequence across venues
    audits: list[dict[str, Any]] = [loads(r.value) for r in records if r.topic == "hfl.audit"]
    alerts = [loads(r.value)["name"] for r in records if r.topic == "hfl.alerts"]
    assert [a["action"] for a in audits] == ["feed_failover", "feed_failover"]
    assert alerts.count("feed_failover") == 2 and "feed_down" in alerts
