"""Kraken spot websocket v2: the `trade` and `ticker` (best bid/offer) channels.

Protocol (Kraken "Spot WebSocket v2" docs): send
`{"method": "subscribe", "params": {"channel": "trade", "symbol": [...], "snapshot": true}}`
(and the same for `ticker` with `"event_trigger": "bbo"`), get an acknowledgement with
`"success": true`, then `{"channel": ..., "type": "snapshot" | "update", "data": [...]}`.
Prices are JSON numbers, times RFC 3339, and trade ids sequential per book. The trade
snapshot resends the book's last 50 trades: after a reconnect it backfills what it can
of a gap, and the connection's trade-id check drops the repeats. The venue also sends
`status` and `heartbeat` frames and answers our `{"method": "ping"}` with a pong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.codec import encode, loads
from connectors.feeds.live.connection import (
    TickFlag,
    VenueMessageError,
    VenueTick,
    rfc3339_ns,
)
from connectors.feeds.live.instrument import VenueConfig
from risk.domain.enums import TickKind

_SNAPSHOT = (TickFlag.SNAPSHOT.value,)
_NO_TIME = (TickFlag.NO_VENUE_TIME.value,)
_PING = '{"method":"ping"}'


class Kraken:
    """Read Kraken v2 frames into `VenueTick`s."""

    name = "kraken"

    def __init__(self, config: VenueConfig) -> None:
        self._instruments = {item.symbol: item.instrument for item in config.instruments}

    def url(self, base: str, symbols: Sequence[str]) -> str:
        """The v2 endpoint serves every pair."""
        return base

    def subscriptions(self, symbols: Sequence[str]) -> list[str]:
        """Subscribe to trades (with the snapshot, our backfill) and best bid/offer."""
        trade = {"channel": "trade", "symbol": list(symbols), "snapshot": True}
        ticker = {"channel": "ticker", "symbol": list(symbols), "event_trigger": "bbo"}
        return [
            encode({"method": "subscribe", "params": trade, "req_id": 1}).decode(),
            encode({"method": "subscribe", "params": ticker, "req_id": 2}).decode(),
        ]

    def heartbeat(self) -> str | None:
        """Kraken's application ping."""
        return _PING

    def parse(self, raw: str | bytes, ts_init: int) -> Iterable[VenueTick]:
        """Normalise one frame (acks, pongs, status and heartbeats give nothing)."""
        try:
            frame = loads(raw)
            if frame.get("success") is False:
                raise VenueMessageError(f"kraken error: {frame.get('error')}")
            channel = frame.get("channel")
            if channel not in ("trade", "ticker"):
                return ()
            snapshot = frame.get("type") == "snapshot"
            ticks: list[VenueTick] = []
            for item in frame["data"]:
                instrument = self._instruments.get(item["symbol"])
                if instrument is None:
                    continue
                if channel == "trade":
                    ticks.append(
                        VenueTick(
                            venue=self.name,
                            instrument=instrument,
                            kind=TickKind.TRADE,
                            price=float(item["price"]),
                            size=float(item["qty"]),
                            ts_event=rfc3339_ns(item["timestamp"]),
                            ts_init=ts_init,
                            venue_trade_id=int(item["trade_id"]),
                            flags=_SNAPSHOT if snapshot else (),
                        )
                    )
                    continue
                bid, ask = float(item["bid"]), float(item["ask"])
                stamp = item.get("timestamp")
                ticks.append(
                    VenueTick(
                        venue=self.name,
                        instrument=instrument,
                        kind=TickKind.QUOTE,
                        price=(bid + ask) / 2.0,
                        size=0.0,
                        bid=bid,
                        ask=ask,
                        bid_size=float(item["bid_qty"]),
                        ask_size=float(item["ask_qty"]),
                        ts_event=ts_init if stamp is None else rfc3339_ns(stamp),
                        ts_init=ts_init,
                        flags=_NO_TIME if stamp is None else (),
                    )
                )
            return ticks
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, VenueMessageError):
                raise
            raise VenueMessageError(f"kraken: {type(exc).__name__}: {exc}") from exc


def _time(time_ns: int) -> str:
    from datetime import UTC, datetime

    seconds, fraction = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction // 1000:06d}Z"


def wire_trade(
    symbol: str, trade_id: int, price: float, qty: float, time_ns: int, *, snapshot: bool = False
) -> str:
    """A trade frame as Kraken sends it (for the local venue server)."""
    item = {
        "symbol": symbol, "side": "buy", "price": price, "qty": qty, "ord_type": "limit",
        "trade_id": trade_id, "timestamp": _time(time_ns),
    }  # fmt: skip
    kind = "snapshot" if snapshot else "update"
    return encode({"channel": "trade", "type": kind, "data": [item]}).decode()


def wire_quote(symbol: str, bid: float, ask: float, size: float, time_ns: int) -> str:
    """A ticker (bbo) frame as Kraken sends it (for the local venue server)."""
    item = {
        "symbol": symbol, "bid": bid, "bid_qty": size, "ask": ask, "ask_qty": size,
        "last": ask, "volume": 997038.98383185, "vwap": bid, "low": bid, "high": ask,
        "change": -0.00017, "change_pct": -0.17, "timestamp": _time(time_ns),
    }  # fmt: skip
    return encode({"channel": "ticker", "type": "update", "data": [item]}).decode()


def subscribe_ack(request: dict[str, Any]) -> list[str]:
    """The server's answer to one request (for the local venue server)."""
    if request.get("method") == "ping":
        return [encode({"method": "pong", "req_id": request.get("req_id")}).decode()]
    params = request.get("params", {})
    result = {"channel": params.get("channel"), "symbol": (params.get("symbol") or [""])[0]}
    ack = {
        "method": "subscribe",
        "result": result,
        "success": True,
        "req_id": request.get("req_id"),
    }
    return [encode(ack).decode()]
