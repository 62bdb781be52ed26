"""History ingestion: OHLCV candles from the venues' public REST APIs through ccxt.

One *job* is (venue, instrument, interval) over [since, until). It pages forward from a
cursor with `fetch_ohlcv`, each request first taking its weight from the venue's token
bucket (the venue's published limit), retrying network errors and rate-limit answers
with exponential backoff and jitter. Each page is written by `sink` (ClickHouse, with a
deduplication token derived from the venue's candles only, so a page fetched twice is
written once) and optionally `publish` (Kafka); only then is the cursor saved, so a
killed run resumes at the first page it had not stored: 0 rows lost and none doubled.

Only complete candles are stored (open + interval ≤ until ≤ now). Venues that omit
empty intervals (Coinbase leaves out minutes without trades) are counted as `missing`,
not errors; Kraken serves only its latest 720 intervals, so a `since` older than that
starts at the oldest it still has (`unavailable` counts what it no longer holds).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from hashlib import blake2b
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import ccxt

from connectors.feeds.history.bucket import TokenBucket
from risk.domain.error import ConfigError, HflError

INTERVALS_S = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}
Row = dict[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueLimits:
    """A venue's REST budget and paging, from its published limits (config `history.venues`)."""

    rate_per_s: float  # tokens refilled per second
    burst: float  # bucket capacity
    weight: float = 1.0  # tokens one candle request costs
    page_limit: int = 500  # candles asked per request (the venue's maximum or less)
    newest_only: bool = False  # `since` only filters the venue's newest candles (Kraken)
    timeout_s: float = 10.0


# Published public market-data limits (each venue's REST documentation):
# Binance spot: 6,000 request weight per minute per IP, klines weight 2, limit ≤ 1000;
# Coinbase Exchange: 10 public requests per second per IP, bursts of 15, ≤ 300 candles;
# Kraken: public calls about 1 per second per IP, OHLC returns at most 720 intervals.
DEFAULT_LIMITS: dict[str, VenueLimits] = {
    "binance": VenueLimits(rate_per_s=100.0, burst=6000.0, weight=2.0, page_limit=1000),
    "coinbase": VenueLimits(rate_per_s=10.0, burst=15.0, page_limit=300),
    "kraken": VenueLimits(rate_per_s=1.0, burst=1.0, page_limit=720, newest_only=True),
}
_CCXT_CLASS = {"binance": "binance", "coinbase": "coinbaseexchange", "kraken": "kraken"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """One configured recurring ingestion (config `history.schedule`)."""

    venue: str
    symbols: tuple[str, ...]
    interval: str = "1m"
    every_s: float = 3600.0
    lookback_s: float = 86400.0  # the first run starts this far back; later runs resume


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryConfig:
    """Per-venue limits, the cursor directory and the schedule."""

    limits: dict[str, VenueLimits] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    state_dir: str = "var/ingest"
    schedule: tuple[Schedule, ...] = ()
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


def history_config_from_mapping(mapping: Mapping[str, Any] | None) -> HistoryConfig:
    """Parse the `history:` section of config/feeds.yaml; one error lists every problem."""
    mapping = mapping or {}
    problems: list[str] = []
    limits = dict(DEFAULT_LIMITS)
    for venue, given in (mapping.get("venues") or {}).items():
        if venue not in _CCXT_CLASS:
            problems.append(f"history.venues.{venue}: unknown venue (known: {sorted(_CCXT_CLASS)})")
            continue
        try:
            limits[venue] = replace(limits[venue], **dict(given or {}))
        except TypeError as exc:
            problems.append(f"history.venues.{venue}: {exc}")
            continue
        if limits[venue].rate_per_s <= 0 or limits[venue].burst < limits[venue].weight:
            problems.append(f"history.venues.{venue}: rate_per_s > 0 and burst ≥ weight needed")
    schedule = []
    for i, entry in enumerate(mapping.get("schedule") or ()):
        try:
            job = Schedule(**{**entry, "symbols": tuple(entry.get("symbols") or ())})
        except TypeError as exc:
            problems.append(f"history.schedule[{i}]: {exc}")
            continue
        if job.venue not in _CCXT_CLASS:
            problems.append(f"history.schedule[{i}].venue: unknown venue {job.venue!r}")
        if job.interval not in INTERVALS_S:
            problems.append(f"history.schedule[{i}].interval: one of {sorted(INTERVALS_S)}")
        if not job.symbols or job.every_s <= 0 or job.lookback_s <= 0:
            problems.append(f"history.schedule[{i}]: symbols, every_s > 0, lookback_s > 0 needed")
        schedule.append(job)
    if problems:
        raise ConfigError("feeds config: " + "; ".join(problems))
    return HistoryConfig(
        limits=limits,
        state_dir=str(mapping.get("state_dir", "var/ingest")),
        schedule=tuple(schedule),
        max_attempts=int(mapping.get("max_attempts", 6)),
        backoff_initial_s=float(mapping.get("backoff_initial_s", 0.5)),
        backoff_max_s=float(mapping.get("backoff_max_s", 30.0)),
    )


def make_exchange(venue: str, limits: VenueLimits, base_url: str | None = None) -> ccxt.Exchange:
    """A ccxt client of `venue` for public market data; `base_url` replaces its API hosts.

    ccxt's own throttle is off: the token bucket paces requests to the configured limits.
    Currencies are not loaded (candles need markets only).
    """
    if venue not in _CCXT_CLASS:
        raise ConfigError(f"unknown venue {venue!r} (known: {', '.join(sorted(_CCXT_CLASS))})")
    exchange = getattr(ccxt, _CCXT_CLASS[venue])(
        {"enableRateLimit": False, "timeout": int(limits.timeout_s * 1000)}
    )
    exchange.has["fetchCurrencies"] = False
    if venue == "binance":
        exchange.options["fetchMarkets"] = {"types": ["spot"]}
    if base_url:
        exchange.urls["api"] = _rebase(exchange.urls["api"], base_url.rstrip("/"))
    return exchange


def _rebase(urls: Any, base: str) -> Any:
    if isinstance(urls, dict):
        return {key: _rebase(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith("http"):
        return base + urlsplit(urls).path
    return urls


class CursorStore:
    """How far each job got: one small JSON file per job, replaced atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, venue: str, instrument: str, interval: str) -> Path:
        safe = instrument.replace("/", "_")
        return self.root / venue / f"{safe}.{interval}.json"

    def load(self, venue: str, instrument: str, interval: str) -> dict[str, Any] | None:
        """The saved cursor, or None for a job never run."""
        path = self._path(venue, instrument, interval)
        if not path.exists():
            return None
        return dict(json.loads(path.read_text()))

    def save(self, venue: str, instrument: str, interval: str, state: Mapping[str, Any]) -> None:
        """Write `state` so that a crash leaves either the old or the new file."""
        path = self._path(venue, instrument, interval)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)


@dataclass(slots=True)
class JobResult:
    """What one job did: rows stored, requests, retries, and holes in the venue's data."""

    venue: str
    instrument: str
    interval: str
    rows: int = 0
    pages: int = 0
    requests: int = 0
    retries: int = 0
    missing: int = 0
    unavailable: int = 0
    resumed_from_ms: int | None = None
    next_ms: int = 0
    waited_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        return {name: getattr(self, name) for name in self.__slots__}


def page_token(venue: str, instrument: str, interval: str, candles: Sequence[Sequence[Any]]) -> str:
    """A deduplication token from the venue's candles alone (never our receive time)."""
    digest = blake2b(f"{venue}|{instrument}|{interval}".encode(), digest_size=16)
    digest.update(json.dumps([list(c[:6]) for c in candles]).encode())
    return "history:" + digest.hexdigest()


def resolve_symbol(exchange: ccxt.Exchange, symbol: str) -> str:
    """The ccxt unified symbol for a unified or venue symbol (`BTC/USDT`, `BTCUSDT`, `XBTUSD`)."""
    if symbol in exchange.markets:
        return symbol
    for candidate in (symbol, symbol.replace("/", ""), symbol.replace("-", "")):
        markets = exchange.markets_by_id.get(candidate)
        if markets:
            return str(markets[0]["symbol"])
    for market in exchange.markets.values():
        if symbol in (market.get("info", {}).get("altname"), market.get("info", {}).get("wsname")):
            return str(market["symbol"])
    raise ConfigError(f"{exchange.id}: no market {symbol!r}")


@dataclass(slots=True)
class HistoryIngestor:
    """Run jobs against one venue with its bucket, retries and cursors."""

    venue: str
    exchange: ccxt.Exchange
    limits: VenueLimits
    cursors: CursorStore
    sink: Callable[[list[Row], str], None]
    publish: Callable[[list[Row]], None] | None = None
    on_page: Callable[[JobResult, int], None] | None = None
    max_attempts: int = 6
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    bucket: TokenBucket | None = None

    def __post_init__(self) -> None:
        if self.bucket is None:
            self.bucket = TokenBucket(self.limits.rate_per_s, self.limits.burst, sleep=self.sleep)

    def _fetch(
        self, symbol: str, interval: str, since_ms: int, result: JobResult
    ) -> list[list[Any]]:
        assert self.bucket is not None
        for attempt in range(1, self.max_attempts + 1):
            result.waited_s += self.bucket.acquire(self.limits.weight)
            result.requests += 1
            try:
                return list(
                    self.exchange.fetch_ohlcv(symbol, interval, since_ms, self.limits.page_limit)
                )
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
                if isinstance(exc, ccxt.DDoSProtection):  # rate limited: our budget is spent
                    self.bucket.penalize()
                if attempt == self.max_attempts:
                    raise HflError(
                        f"{self.venue} {symbol}: {attempt} attempts failed; last: "
                        f"{type(exc).__name__}: {str(exc)[:200]}"
                    ) from exc
                result.retries += 1
                step = min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempt - 1))
                self.sleep(step * (0.5 + 0.5 * self.rng.random()))
        raise AssertionError("unreachable")  # pragma: no cover

    def run(
        self, instrument: str, symbol: str, interval: str, since_ms: int, until_ms: int | None
    ) -> JobResult:
        """Ingest [cursor or since, until) of one instrument; returns what was done."""
        if interval not in INTERVALS_S:
            raise ConfigError(f"interval {interval!r}: one of {', '.join(INTERVALS_S)}")
        if not self.exchange.markets:
            self.exchange.load_markets()
        unified = resolve_symbol(self.exchange, symbol)
        step = INTERVALS_S[interval] * 1000
        end = min(until_ms if until_ms is not None else 2**62, self.clock_ms())
        end -= end % step
        result = JobResult(self.venue, instrument, interval)
        saved = self.cursors.load(self.venue, instrument, interval)
        cursor = since_ms - since_ms % step
        if saved is not None and int(saved["next_ms"]) > cursor:
            cursor = result.resumed_from_ms = int(saved["next_ms"])
        stored_before = int(saved.get("rows", 0)) if saved else 0
        result.next_ms = cursor
        while cursor < end:
            candles = self._fetch(unified, interval, cursor, result)
            page = sorted(
                (c for c in candles if cursor <= int(c[0]) and int(c[0]) + step <= end),
                key=lambda c: int(c[0]),
            )
            if not page:
                # Nothing in this window: a venue serving only its newest candles has
                # nothing newer at all; the others had no candles here, so step past it.
                skipped = (
                    end
                    if self.limits.newest_only
                    else min(end, cursor + step * self.limits.page_limit)
                )
                result.missing += (skipped - cursor) // step
                cursor = skipped
                continue
            first = int(page[0][0])
            hole = (first - cursor) // step
            if self.limits.newest_only and result.pages == 0 and result.resumed_from_ms is None:
                result.unavailable += hole
            else:
                result.missing += hole
            result.missing += (int(page[-1][0]) - first) // step + 1 - len(page)
            rows = [self._row(instrument, interval, c) for c in page]
            self.sink(rows, page_token(self.venue, instrument, interval, page))
            if self.publish is not None:
                self.publish(rows)
            cursor = int(page[-1][0]) + step
            result.rows += len(rows)
            result.pages += 1
            result.next_ms = cursor
            self.cursors.save(
                self.venue,
                instrument,
                interval,
                {"next_ms": cursor, "rows": stored_before + result.rows, "symbol": unified},
            )
            if self.on_page is not None:
                self.on_page(result, end)
        result.next_ms = cursor
        return result

    def _row(self, instrument: str, interval: str, c: Sequence[Any]) -> Row:
        return {
            "venue": self.venue,
            "instrument": instrument,
            "interval_s": INTERVALS_S[interval],
            "open": float(c[1]),
            "high": float(c[2]),
            "low": float(c[3]),
            "close": float(c[4]),
            "volume": float(c[5] or 0.0),
            "ts_event": int(c[0]) * 1_000_000,
            "ts_init": time.time_ns(),
        }
