"""Refill a websocket trade gap from the venue's REST trades, where the venue offers it.

A `FeedGap` says trade ids `expected .. received - 1` never came. Coinbase Exchange
serves any trade by id (`GET /products/{id}/trades?after=<id>`: the trades below that
id, newest first, up to 1000 a page), so the hole is refilled exactly, each tick
flagged `backfill`. The others do not, through a public endpoint, by trade id:

- Binance's `historicalTrades` (by id) needs an API key (ccxt refuses it without one);
  `aggTrades` merges trades at one price, so it cannot restore the missing trades;
- Kraken's REST trades page by time, not by the websocket's trade ids; its websocket
  trade snapshot (last 50) already refills short holes on resubscription.

Requests go through ccxt with the history ingestion's token bucket and limits
(`connectors.feeds.history.ingest`); the fetch is blocking and is run off the event loop.
ccxt is imported and the client made on the first gap, in that worker thread (the import
takes seconds on a busy machine: the feed's start does not wait for it).
A gap larger than `max_trades` is refilled up to that many (the newest are kept as
missing: the `feed_gap` alert already reported the whole hole).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.feeds.history.bucket import TokenBucket
from connectors.feeds.live.connection import FeedGap, VenueTick, rfc3339_ns
from risk.domain.enums import TickKind

BACKFILL_FLAG = "backfill"
BACKFILL_VENUES = frozenset({"coinbase"})
_PAGE = 1000


# Coinbase Exchange: 10 public requests a second, bursts of 15 (as history ingestion).
_RATE_PER_S, _BURST = 10.0, 15.0


@dataclass(slots=True)
class GapBackfill:
    """Fetch the trades a gap missed from one venue's REST API (Coinbase Exchange)."""

    venue: str
    symbols: Mapping[str, str]  # our instrument -> the venue's product id
    base_url: str | None = None  # in place of the venue's API host (a stand-in)
    max_trades: int = 5000
    bucket: TokenBucket = field(default_factory=lambda: TokenBucket(_RATE_PER_S, _BURST))
    exchange: Any = None
    refilled: int = 0
    failed: int = 0

    def __post_init__(self) -> None:
        if self.venue not in BACKFILL_VENUES:
            raise ValueError(f"{self.venue} offers no REST trades by id")

    @classmethod
    def for_venue(
        cls, venue: str, symbols: Mapping[str, str], base_url: str | None = None
    ) -> GapBackfill:
        """A backfill through ccxt (`base_url` replaces the venue's API host)."""
        return cls(venue, dict(symbols), base_url)

    def fetch(self, gap: FeedGap) -> list[VenueTick]:
        """The missing trades in id order, flagged `backfill`; [] when the venue fails."""
        import ccxt

        from connectors.feeds.history.ingest import DEFAULT_LIMITS, make_exchange

        product = self.symbols.get(gap.instrument)
        if product is None:
            return []
        if self.exchange is None:
            self.exchange = make_exchange(self.venue, DEFAULT_LIMITS[self.venue], self.base_url)
        wanted_from = max(gap.expected, gap.received - self.max_trades)
        found: dict[int, dict[str, Any]] = {}
        after = gap.received
        try:
            while after > wanted_from:
                self.bucket.acquire(1.0)
                page = self.exchange.publicGetProductsIdTrades(
                    {"id": product, "after": str(after), "limit": str(_PAGE)}
                )
                if not page:
                    break
                for trade in page:
                    trade_id = int(trade["trade_id"])
                    if wanted_from <= trade_id < gap.received:
                        found[trade_id] = trade
                after = min(int(t["trade_id"]) for t in page)
        except ccxt.BaseError:
            self.failed += 1
            return []
        now = time.time_ns()
        ticks = [
            VenueTick(
                venue=self.venue,
                instrument=gap.instrument,
                kind=TickKind.TRADE,
                price=float(trade["price"]),
                size=float(trade["size"]),
                ts_event=rfc3339_ns(trade["time"]),
                ts_init=now,
                venue_trade_id=trade_id,
                flags=(BACKFILL_FLAG,),
            )
            for trade_id, trade in sorted(found.items())
        ]
        self.refilled += len(ticks)
        return ticks
