"""Three venues' live feeds through `hfl feed live` into the trading flow, on the real broker.

Three local venue servers (Binance, Coinbase Exchange, Kraken wire formats) each stream
20 s of trades and best bid/offer for one instrument, paced like a venue; `hfl feed live`
normalises them onto `md.ticks` as a user would run it (only the URLs point at
127.0.0.1); the trading and gateway flows run as `python -m bytewax.run` with recovery
on, drain and stop; every instrument gets orders.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest

from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import ORDERS, TICKS
from dataflows.ops.process import start_flow, wait_all
from dataflows.settings import load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TRADES = 1_000  # 20 s at 20 ms a trade, each followed by a quote, paced in real time
VENUES = {  # venue: (venue symbol, our instrument, start price)
    "binance": ("BTCUSDT", "BTC-USDT", 300.0),
    "coinbase": ("ETH-USD", "ETH-USD", 200.0),
    "kraken": ("SOL/USD", "SOL-USD", 100.0),
}
FEEDS_YAML = """
live:
  venues:
    binance:
      url: wss://stream.binance.com:9443/stream
      instruments: {BTC-USDT: {symbol: BTCUSDT, tick_size: 0.01, lot_size: 0.00001}}
    coinbase:
      url: wss://ws-feed.exchange.coinbase.com
      instruments: {ETH-USD: {symbol: ETH-USD, tick_size: 0.01, lot_size: 0.00000001}}
    kraken:
      url: wss://ws.kraken.com/v2
      instruments: {SOL-USD: {symbol: SOL/USD, tick_size: 0.01, lot_size: 0.00000001}}
  connection: {heartbeat_s: 60, stale_after_s: 120}  # a loaded CI machine answers pings late
"""


def start_venue(venue: str, symbol: str, price: float) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "connectors.feeds.live.venue_server",
            "--venue",
            venue,
            "--trades",
            str(TRADES),
            "--symbol",
            symbol,
            "--step-ms",
            "20",
            "--start-price",
            str(price),
            "--paced",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    assert url.startswith("ws://127.0.0.1:"), url
    return process, url


STORED_VENUES = """
import json, os
from sinks.client import connect
client = connect(os.environ["HFL_CLICKHOUSE_URL"])
rows = client.query(
    "SELECT venue, count(), uniqExact(venue_trade_id) FROM ticks FINAL GROUP BY venue"
).result_rows
print(json.dumps({venue: [n, ids] for venue, n, ids in rows}))
"""


def test_three_venues_feed_the_trading_flow_end_to_end(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"live-{uuid.uuid4().hex[:8]}."
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "HFL_TRADING__INSTRUMENTS": ",".join(i for _, i, _ in VENUES.values()),
        "HFL_MODEL__MIN_LABELLED": "20",
        "HFL_MODEL__SIGNAL__ENGINE": "hysteresis",  # chatty thresholds on purpose
        "HFL_MODEL__HORIZON_S": "1",
        "HFL_MODEL__ENTER_LONG": "0.51",
        "HFL_MODEL__ENTER_SHORT": "0.49",
        "HFL_RUN_ID": prefix.rstrip("."),
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    config = tmp_path / "feeds.yaml"
    config.write_text(FEEDS_YAML)
    servers = [start_venue(v, s, p) for v, (s, _, p) in VENUES.items()]
    try:
        urls = [f"--url={v}={url}" for v, (_, url) in zip(VENUES, servers, strict=True)]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "dataflows.commands",
                "feed",
                "live",
                "--config",
                str(config),
                *urls,
                "--max-ticks",
                str(2 * TRADES * len(VENUES)),
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        for process, _ in servers:
            process.kill()
            process.wait()
    assert done.returncode == 0, done.stderr[-3000:]
    summary = orjson.loads(done.stdout.strip().splitlines()[-1])
    assert summary["per_venue"] == dict.fromkeys(VENUES, 2 * TRADES)
    assert all(v["gaps"] == 0 and v["duplicates"] == 0 for v in summary["venues"])

    ticks = read_log(kafka_bootstrap, prefix + TICKS)
    assert Counter(t["venue"] for t in ticks) == dict.fromkeys(VENUES, 2 * TRADES)

    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    # The gateway answers the trading flow's orders, so its risk gate can settle and end.
    # It drains the ticks long before the trading flow has imported River and warmed its
    # models (16 s at load average 20): its idle bound must outlast that.
    flows = [
        start_flow(name, settings, tmp_path, env | {"HFL_KAFKA__EXIT_WHEN_IDLE_S": idle})
        for name, idle in (("trading", "3"), ("gateway", "45"), ("persist", "45"))
    ]
    codes = wait_all(flows, 300)
    for flow in flows:
        if codes[flow.name] is None:
            flow.process.kill()
        assert codes[flow.name] == 0, f"{flow.name}: {flow.tail()[-3000:]}"
    orders = [o for o in read_log(kafka_bootstrap, prefix + ORDERS) if "progress_id" not in o]
    assert {o["instrument"] for o in orders} == {i for _, i, _ in VENUES.values()}
    # The ticks table keeps where each tick came from: venue, its trade id, flags.
    stored = subprocess.run(
        [sys.executable, "-c", STORED_VENUES], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    per_venue = orjson.loads(stored.stdout.strip().splitlines()[-1])
    assert per_venue == {v: [2 * TRADES, TRADES] for v in VENUES}
