"""`hfl bench feed`: normalised ticks per second per venue, and ingestion latency.

Method: for each venue, a local venue server runs in its own process
(`python -m connectors.feeds.live.venue_server`), with `trades` trades each followed by a
best bid/offer update in that venue's wire format, sent as fast as the socket takes
them. The real client (`FeedConnection` with the venue's adapter) connects, subscribes
and reads; every event goes through the same `LiveRouter` that `hfl feed live` uses, so
each tick is sequenced and encoded into the `md.ticks` record (producing to Kafka is
not part of this benchmark: the pipeline benchmark measures it).

- `ticks_per_s`: normalised ticks routed, divided by the wall time from the first tick
  received to the last one routed (building the frames and connecting are not timed);
- `ticks_per_cpu_s`: the same ticks divided by this process's CPU time over that span:
  what one core sustains, whatever else the machine runs (the wall figure depends on
  the load, which is printed);
- `ingest_ms`: per tick, from our receive stamp (`ts_init`, taken when the frame came
  off the socket) to its record being encoded, p50/p99/max — the part of the < 100 ms
  ingestion budget this process spends;
- `venue_lag_ms` is not reported: the server's event times are synthetic.

Progress goes to stderr; the last stdout line is one JSON object: per venue its figures,
plus the machine's load average at the start and the end.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from connectors.feeds.live.connection import ConnectionConfig, FeedConnection, VenueTick
from connectors.feeds.live.instrument import venues_from_mapping
from connectors.feeds.live.runner import ADAPTERS, LiveRouter
from connectors.feeds.live.venue_server import SYMBOLS


def _percentiles_ms(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    last = len(ordered) - 1
    return {
        "p50": round(ordered[last // 2] / 1e6, 3),
        "p99": round(ordered[(last * 99) // 100] / 1e6, 3),
        "max": round(ordered[last] / 1e6, 3),
    }


async def _measure(venue: str, url: str, expected: int) -> dict[str, Any]:
    config = venues_from_mapping(
        {
            venue: {
                "url": url,
                "instruments": {
                    "BTC-USD": {"symbol": SYMBOLS[venue], "tick_size": 0.01, "lot_size": 1e-8}
                },
            }
        }
    )[venue]
    connection = FeedConnection(
        ADAPTERS[venue](config),
        url,
        config.symbols(),
        ConnectionConfig(heartbeat_s=60.0, stale_after_s=60.0, queue_size=10_000),
    )
    router = LiveRouter()
    latencies: list[int] = []
    runner = asyncio.create_task(connection.run())
    first_ns = last_ns = 0
    routed = 0
    cpu_start = 0.0
    async for event in connection.events():
        records = router.route(event)
        if isinstance(event, VenueTick) and records:
            now = time.time_ns()
            if routed == 0:
                first_ns = event.ts_init
                cpu_start = time.process_time()
            latencies.append(now - event.ts_init)
            routed += 1
            last_ns = now
            if routed == expected:
                await connection.stop()
    cpu_s = time.process_time() - cpu_start
    await runner
    seconds = (last_ns - first_ns) / 1e9
    return {
        "ticks": routed,
        "ticks_per_s": round(routed / seconds) if seconds > 0 else None,
        "ticks_per_cpu_s": round(routed / cpu_s) if cpu_s > 0 else None,
        "ingest_ms": _percentiles_ms(latencies),
        "reconnects": connection.metrics.reconnects,
        "gaps": connection.metrics.gaps,
        "duplicates": connection.metrics.duplicates,
    }


def bench_feed(root: Path, *, trades: int, venues: list[str]) -> dict[str, Any]:
    """Run the benchmark for `venues`; print progress to stderr and the figures as JSON."""
    figures: dict[str, Any] = {"load_before": os.getloadavg()}
    for venue in venues:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "connectors.feeds.live.venue_server",
                "--venue",
                venue,
                "--trades",
                str(trades),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            measure = _measure(venue, url, 2 * trades)
            figures[venue] = asyncio.run(asyncio.wait_for(measure, timeout=900))
        finally:
            server.kill()
            server.wait()
        print(f"{venue}: {figures[venue]}", file=sys.stderr)
    figures["load_after"] = os.getloadavg()
    print(orjson.dumps(figures).decode())
    return figures
