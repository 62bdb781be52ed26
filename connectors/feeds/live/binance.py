"""Binance spot public streams: `<symbol>@trade` and `<symbol>@bookTicker`.

Protocol (Binance "WebSocket Streams" docs): connect to `/stream`, send
`{"method": "SUBSCRIBE", "params": [...], "id": n}`, get `{"result": null, "id": n}`,
then combined-stream frames `{"stream": "btcusdt@trade", "data": {...}}`. The server
sends websocket pings (answered by the library) and drops a connection after 24 h.
Trade ids (`t`) are consecutive per symbol; `T` is the trade time in ms. bookTicker
carries an update id `u` but no event time on spot: such quotes are stamped with our
receive time and flagged `no_venue_time`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from connectors.codec import encode, loads
from connectors.feeds.live.connection import TickFlag, VenueMessageError, VenueTick
from connectors.feeds.live.instrument import VenueConfig
from risk.domain.enums import TickKind

NS_PER_MS = 1_000_000
_NO_TIME = (TickFlag.NO_VENUE_TIME.value,)


class Binance:
    """Read Binance combined-stream frames into `VenueTick`s."""

    name = "binance"

    def __init__(self, config: VenueConfig) -> None:
        self._instruments = {item.symbol.upper(): item.instrument for item in config.instruments}

    def url(self, base: str, symbols: Sequence[str]) -> str:
        """Binance's combined-stream endpoint; streams are subscribed by message."""
        return base

    def subscriptions(self, symbols: Sequence[str]) -> list[str]:
        """One SUBSCRIBE for the trade and bookTicker streams of every symbol."""
        streams = [f"{s.lower()}@{kind}" for s in symbols for kind in ("trade", "bookTicker")]
        return [encode({"method": "SUBSCRIBE", "params": streams, "id": 1}).decode()]

    def heartbeat(self) -> str | None:
        """Binance pings us; websocket pings cover the other direction."""
        return None

    def parse(self, raw: str | bytes, ts_init: int) -> Iterable[VenueTick]:
        """Normalise one combined-stream frame (acks and unknown streams give nothing)."""
        try:
            frame = loads(raw)
            data: dict[str, Any] | None = frame.get("data")
            if data is None:
                if "error" in frame:
                    raise VenueMessageError(f"binance error: {frame['error']}")
                return ()
            instrument = self._instruments.get(data["s"])
            if instrument is None:
                return ()
            if data.get("e") == "trade":
                return (
                    VenueTick(
                        venue=self.name,
                        instrument=instrument,
                        kind=TickKind.TRADE,
                        price=float(data["p"]),
                        size=float(data["q"]),
                        ts_event=int(data["T"]) * NS_PER_MS,
                        ts_init=ts_init,
                        venue_trade_id=int(data["t"]),
                    ),
                )
            if "u" in data and "b" in data:  # bookTicker has no "e" on spot
                bid, ask = float(data["b"]), float(data["a"])
                event_ms = data.get("E")
                return (
                    VenueTick(
                        venue=self.name,
                        instrument=instrument,
                        kind=TickKind.QUOTE,
                        price=(bid + ask) / 2.0,
                        size=0.0,
                        bid=bid,
                        ask=ask,
                        bid_size=float(data["B"]),
                        ask_size=float(data["A"]),
                        ts_event=ts_init if event_ms is None else int(event_ms) * NS_PER_MS,
                        ts_init=ts_init,
                        venue_seq=int(data["u"]),
                        flags=_NO_TIME if event_ms is None else (),
                    ),
                )
            return ()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, VenueMessageError):
                raise
            raise VenueMessageError(f"binance: {type(exc).__name__}: {exc}") from exc


def wire_trade(symbol: str, trade_id: int, price: float, qty: float, time_ms: int) -> str:
    """A trade frame as Binance sends it (for the local venue server)."""
    data = {
        "e": "trade", "E": time_ms + 1, "s": symbol, "t": trade_id, "p": f"{price:.8f}",
        "q": f"{qty:.8f}", "T": time_ms, "m": trade_id % 2 == 0, "M": True,
    }  # fmt: skip
    return encode({"stream": f"{symbol.lower()}@trade", "data": data}).decode()


def wire_quote(symbol: str, update_id: int, bid: float, ask: float, size: float) -> str:
    """A bookTicker frame as Binance sends it (for the local venue server)."""
    data = {
        "u": update_id, "s": symbol, "b": f"{bid:.8f}", "B": f"{size:.8f}",
        "a": f"{ask:.8f}", "A": f"{size:.8f}",
    }  # fmt: skip
    return encode({"stream": f"{symbol.lower()}@bookTicker", "data": data}).decode()


def subscribe_ack(request: dict[str, Any]) -> list[str]:
    """The server's answer to one client request (for the local venue server)."""
    return [encode({"result": None, "id": request.get("id")}).decode()]
