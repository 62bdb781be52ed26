"""Market data: ticks and event-time bars."""

from __future__ import annotations

from dataclasses import dataclass

from risk.domain.enums import TickKind


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One validated trade print or quote update.

    `price` is the trade price, or the mid for a quote; `size` is the traded size
    (0 for a quote). `bid`/`ask` and their sizes are the touch when known.
    A live venue feed also says where the tick came from: `venue`, the venue's own
    `venue_trade_id` (trades) and `venue_seq` (its sequence or update id), and `flags`
    (`failover`, `backfill`, `snapshot`, `no_venue_time`); empty for other feeds.
    """

    tick_id: str
    instrument: str
    seq: int
    kind: TickKind
    price: float
    size: float
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    ts_event: int
    ts_init: int
    venue: str = ""
    venue_trade_id: int | None = None
    venue_seq: int | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """OHLCV over one event-time interval `[ts_event, ts_event + interval_s)`."""

    instrument: str
    interval_s: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trade_count: int
    ts_event: int
    ts_init: int
