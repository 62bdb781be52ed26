"""Coinbase Exchange public feed: the `matches`, `ticker` and `heartbeat` channels.

Protocol (Coinbase Exchange "WebSocket Feed" docs): send
`{"type": "subscribe", "product_ids": [...], "channels": [...]}`, get a `subscriptions`
frame, then `match` frames (trade id consecutive per product, `sequence`, RFC 3339
`time`), `ticker` frames (best bid/ask with sizes, same `sequence` space) and one
`heartbeat` per second per product. After every subscription the venue first resends
the product's latest trade as `last_match`: across a reconnect it is a repeat, which the
connection's trade-id check drops.
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


def _optional(value: Any) -> float | None:
    return None if value is None else float(value)


class Coinbase:
    """Read Coinbase Exchange feed frames into `VenueTick`s."""

    name = "coinbase"

    def __init__(self, config: VenueConfig) -> None:
        self._instruments = {item.symbol: item.instrument for item in config.instruments}

    def url(self, base: str, symbols: Sequence[str]) -> str:
        """The feed has one endpoint for every product."""
        return base

    def subscriptions(self, symbols: Sequence[str]) -> list[str]:
        """One subscribe for matches, ticker and heartbeat of every product."""
        request = {
            "type": "subscribe",
            "product_ids": list(symbols),
            "channels": ["heartbeat", "matches", "ticker"],
        }
        return [encode(request).decode()]

    def heartbeat(self) -> str | None:
        """The heartbeat channel streams to us; websocket pings cover our side."""
        return None

    def parse(self, raw: str | bytes, ts_init: int) -> Iterable[VenueTick]:
        """Normalise one feed frame (subscriptions and heartbeats give nothing)."""
        try:
            frame = loads(raw)
            kind = frame["type"]
            if kind == "error":
                raise VenueMessageError(f"coinbase error: {frame.get('message')}")
            if kind not in ("match", "last_match", "ticker"):
                return ()
            instrument = self._instruments.get(frame["product_id"])
            if instrument is None:
                return ()
            ts_event = rfc3339_ns(frame["time"])
            if kind == "ticker":
                bid, ask = float(frame["best_bid"]), float(frame["best_ask"])
                return (
                    VenueTick(
                        venue=self.name,
                        instrument=instrument,
                        kind=TickKind.QUOTE,
                        price=(bid + ask) / 2.0,
                        size=0.0,
                        bid=bid,
                        ask=ask,
                        bid_size=_optional(frame.get("best_bid_size")),
                        ask_size=_optional(frame.get("best_ask_size")),
                        ts_event=ts_event,
                        ts_init=ts_init,
                        venue_seq=int(frame["sequence"]),
                    ),
                )
            return (
                VenueTick(
                    venue=self.name,
                    instrument=instrument,
                    kind=TickKind.TRADE,
                    price=float(frame["price"]),
                    size=float(frame["size"]),
                    ts_event=ts_event,
                    ts_init=ts_init,
                    venue_trade_id=int(frame["trade_id"]),
                    venue_seq=int(frame["sequence"]),
                    flags=_SNAPSHOT if kind == "last_match" else (),
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, VenueMessageError):
                raise
            raise VenueMessageError(f"coinbase: {type(exc).__name__}: {exc}") from exc


def _time(time_ns: int) -> str:
    seconds, fraction = divmod(time_ns, 1_000_000_000)
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction // 1000:06d}Z"


def wire_trade(
    product: str, trade_id: int, sequence: int, *, price: float, size: float, time_ns: int
) -> str:
    """A match frame as Coinbase sends it (for the local venue server)."""
    frame = {
        "type": "match", "trade_id": trade_id, "sequence": sequence,
        "maker_order_id": "ac928c66-ca53-498f-9c13-a110027a60e8",
        "taker_order_id": "132fb6ae-456b-4654-b4e0-d681ac05cea1",
        "time": _time(time_ns), "product_id": product, "size": f"{size:.8f}",
        "price": f"{price:.2f}", "side": "sell",
    }  # fmt: skip
    return encode(frame).decode()


def wire_quote(
    product: str, sequence: int, *, bid: float, ask: float, size: float, time_ns: int
) -> str:
    """A ticker frame as Coinbase sends it (for the local venue server)."""
    frame = {
        "type": "ticker", "sequence": sequence, "product_id": product,
        "price": f"{ask:.2f}", "open_24h": "1310.79", "volume_24h": "245532.79269678",
        "low_24h": "1280.52", "high_24h": "1313.8", "volume_30d": "9788783.60117027",
        "best_bid": f"{bid:.2f}", "best_bid_size": f"{size:.8f}", "best_ask": f"{ask:.2f}",
        "best_ask_size": f"{size:.8f}", "side": "buy", "time": _time(time_ns),
        "trade_id": 0, "last_size": "0.01",
    }  # fmt: skip
    return encode(frame).decode()


def subscribe_ack(request: dict[str, Any]) -> list[str]:
    """The server's answer to a subscribe request (for the local venue server)."""
    channels = [
        {"name": name, "product_ids": request.get("product_ids", [])}
        for name in request.get("channels", [])
    ]
    return [encode({"type": "subscriptions", "channels": channels}).decode()]
