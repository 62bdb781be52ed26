"""History ingestion through the real ccxt client against the local REST stand-in."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connectors.feeds.history.bucket import TokenBucket
from connectors.feeds.history.ingest import (
    DEFAULT_LIMITS,
    CursorStore,
    HistoryIngestor,
    history_config_from_mapping,
    make_exchange,
    page_token,
)
from connectors.feeds.history.rest_server import RestVenueServer, candle
from risk.domain.error import ConfigError, HflError

START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
HOURS = 30


@pytest.fixture
def server() -> Any:
    server = RestVenueServer(start_ms=START_MS, end_ms=START_MS + HOURS * 3_600_000)
    server.start()
    yield server
    server.stop()


def _ingestor(
    venue: str, server: RestVenueServer, tmp_path: Path, rows: list[Any], **limits: Any
) -> HistoryIngestor:
    venue_limits = replace(DEFAULT_LIMITS[venue], **({"rate_per_s": 1e6, "burst": 1e6} | limits))
    return HistoryIngestor(
        venue,
        make_exchange(venue, venue_limits, server.url),
        venue_limits,
        CursorStore(tmp_path),
        sink=lambda page, token: rows.append((token, page)),
        backoff_initial_s=0.01,
    )


@pytest.mark.parametrize(
    ("venue", "symbol", "pages"),
    [("binance", "BTCUSDT", 2), ("coinbase", "BTC-USD", 5)],
)
def test_candles_are_normalised_and_paged(
    server: RestVenueServer, tmp_path: Path, venue: str, symbol: str, pages: int
) -> None:
    stored: list[Any] = []
    until = START_MS + 24 * 3_600_000
    result = _ingestor(venue, server, tmp_path, stored).run("BTC-X", symbol, "1m", START_MS, until)
    rows = [row for _, page in stored for row in page]
    assert (result.rows, result.pages, result.missing, len(rows)) == (1440, pages, 0, 1440)
    assert [r["ts_event"] for r in rows] == [
        (START_MS + 60_000 * i) * 1_000_000 for i in range(1440)
    ]
    o, h, lo, c, v, _ = candle(venue, symbol, START_MS)
    first = rows[0]
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        pytest.approx(o),
        pytest.approx(h),
        pytest.approx(lo),
        pytest.approx(c),
        pytest.approx(v),
    )
    assert first["venue"] == venue and first["instrument"] == "BTC-X" and first["interval_s"] == 60


def test_kraken_serves_only_its_newest_720_and_says_so(
    server: RestVenueServer, tmp_path: Path
) -> None:
    stored: list[Any] = []
    result = _ingestor("kraken", server, tmp_path, stored).run(
        "BTC-USD", "BTC/USD", "1m", START_MS, START_MS + HOURS * 3_600_000
    )
    assert (result.rows, result.unavailable, result.missing) == (720, HOURS * 60 - 720, 0)


def test_rate_limit_answers_are_retried_and_drain_the_bucket(
    server: RestVenueServer, tmp_path: Path
) -> None:
    server.throttle_every = 2
    stored: list[Any] = []
    until = START_MS + 12 * 3_600_000
    result = _ingestor("coinbase", server, tmp_path, stored).run(
        "BTC-USD", "BTC-USD", "1m", START_MS, until
    )
    assert result.rows == 720 and result.retries == server.throttled == 2


def test_a_venue_that_keeps_refusing_fails_after_max_attempts(
    server: RestVenueServer, tmp_path: Path
) -> None:
    server.throttle_every = 1
    ingestor = _ingestor("binance", server, tmp_path, [])
    ingestor.max_attempts = 3
    with pytest.raises(HflError, match="3 attempts failed"):
        ingestor.run("BTC-USDT", "BTCUSDT", "1m", START_MS, START_MS + 3_600_000)


def test_requests_are_paced_to_the_venue_limit(server: RestVenueServer, tmp_path: Path) -> None:
    ingestor = _ingestor("coinbase", server, tmp_path, [], rate_per_s=20.0, burst=1.0, page_limit=5)
    started = time.monotonic()
    result = ingestor.run("BTC-USD", "BTC-USD", "1m", START_MS, START_MS + 50 * 60_000)
    elapsed = time.monotonic() - started
    assert result.requests == 10
    assert elapsed >= 9 / 20.0 * 0.95  # the first from the full bucket, then 20 a second


def test_a_crash_between_write_and_cursor_refetches_the_same_page_with_the_same_token(
    server: RestVenueServer, tmp_path: Path
) -> None:
    stored: list[Any] = []
    ingestor = _ingestor("binance", server, tmp_path, stored, page_limit=60)
    saves = 0
    save = ingestor.cursors.save

    def crash_on_second_save(*args: Any) -> None:
        nonlocal saves
        saves += 1
        if saves == 2:
            raise KeyboardInterrupt  # killed after the page was written, before its cursor
        save(*args)

    ingestor.cursors.save = crash_on_second_save  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        ingestor.run("BTC-USDT", "BTCUSDT", "1m", START_MS, START_MS + 3 * 3_600_000)
    ingestor.cursors.save = save  # type: ignore[method-assign]
    result = ingestor.run("BTC-USDT", "BTCUSDT", "1m", START_MS, START_MS + 3 * 3_600_000)
    assert result.resumed_from_ms == START_MS + 3_600_000
    tokens = [token for token, _ in stored]
    assert len(tokens) == 4 and tokens[1] == tokens[2]  # ClickHouse drops the repeat
    assert len(set(tokens)) == 3


def test_page_token_ignores_our_receive_time_only() -> None:
    candles = [[1, 2.0, 3.0, 1.0, 2.5, 10.0]]
    assert page_token("b", "X", "1m", candles) == page_token("b", "X", "1m", [list(candles[0])])
    assert page_token("b", "X", "1m", candles) != page_token(
        "b", "X", "1m", [[1, 2.0, 3.0, 1.0, 2.6, 10.0]]
    )


def test_token_bucket_allows_bursts_then_the_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(
        2.0, 4.0, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s)
    )
    for _ in range(4):
        assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(0.5)
    bucket.penalize()
    assert bucket.acquire(2.0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bucket.acquire(5.0)


def test_history_config_lists_every_problem() -> None:
    config = history_config_from_mapping(
        {"venues": {"kraken": {"rate_per_s": 0.5}}, "schedule": [
            {"venue": "binance", "symbols": ["BTC-USDT"], "every_s": 60}]}
    )  # fmt: skip
    assert config.limits["kraken"].rate_per_s == 0.5 and config.limits["kraken"].page_limit == 720
    assert config.schedule[0].symbols == ("BTC-USDT",)
    with pytest.raises(ConfigError) as caught:
        history_config_from_mapping(
            {
                "venues": {"ftx": {}},
                "schedule": [{"venue": "binance", "symbols": [], "interval": "7m"}],
            }
        )
    assert (
        "ftx" in str(caught.value)
        and "interval" in str(caught.value)
        and "symbols" in str(caught.value)
    )
