"""A local stand-in venue: a websocket server on 127.0.0.1 that speaks a venue's protocol.

It answers the client's subscribe requests the way the venue does, then replays scripted
frames in the venue's wire format, one script per connection: the first connection gets
`sessions[0]`, a reconnect `sessions[1]`, and so on. A session ends by holding the
connection open, closing it cleanly, or dropping it without a close frame (a network
fault). Tests and `hfl bench feed` connect the real client to it; nothing here reaches
the internet.

Run it alone (the benchmark does, so server and client use different cores):
`python -m connectors.feeds.live.venue_server --venue binance --trades 100000` prints
`ws://127.0.0.1:PORT` on its first line, serves one connection and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from socket import SO_SNDBUF, SOL_SOCKET
from typing import Any, Literal

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from connectors.codec import loads
from connectors.feeds.live import binance, coinbase, kraken

Ending = Literal["hold", "close", "drop"]
Ack = Callable[[dict[str, Any]], list[str]]


@dataclass(slots=True)
class Session:
    """What the venue sends on one connection after the subscriptions, and how it ends."""

    frames: Sequence[str] = ()
    then: Ending = "hold"
    frame_interval_s: float = 0.0


@dataclass(slots=True)
class VenueServer:
    """Serve scripted venue sessions on 127.0.0.1 (an ephemeral port)."""

    ack: Ack
    sessions: Sequence[Session]
    requests_before_data: int = 1
    send_buffer_bytes: int | None = None  # a venue's bounded per-client buffer (SO_SNDBUF)
    requests: list[dict[str, Any]] = field(default_factory=list)
    connections: int = 0
    sent: int = 0
    close_codes: list[int | None] = field(default_factory=list)
    url: str = ""
    _server: Server | None = None
    _open: set[ServerConnection] = field(default_factory=set)

    async def __aenter__(self) -> VenueServer:
        self._server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close(close_connections=False)
        for socket in list(self._open):  # a stalled client must not keep a test waiting
            socket.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, socket: ServerConnection) -> None:
        index = self.connections
        self.connections += 1
        self._open.add(socket)
        if self.send_buffer_bytes is not None:
            raw_socket = socket.transport.get_extra_info("socket")
            raw_socket.setsockopt(SOL_SOCKET, SO_SNDBUF, self.send_buffer_bytes)
        session = self.sessions[index] if index < len(self.sessions) else Session()
        try:
            for _ in range(self.requests_before_data):
                await self._answer(socket, await socket.recv())
            listener = asyncio.create_task(self._listen(socket))
            try:
                for frame in session.frames:
                    await socket.send(frame)
                    self.sent += 1
                    if session.frame_interval_s:
                        await asyncio.sleep(session.frame_interval_s)
                match session.then:
                    case "drop":
                        socket.transport.abort()
                    case "close":
                        await socket.close()
                    case "hold":
                        await socket.wait_closed()
            finally:
                listener.cancel()
        except ConnectionClosed:
            pass
        finally:
            self._open.discard(socket)
            self.close_codes.append(socket.close_code)

    async def _answer(self, socket: ServerConnection, raw: str | bytes) -> None:
        request = loads(raw)
        self.requests.append(request)
        for frame in self.ack(request):
            await socket.send(frame)

    async def _listen(self, socket: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in socket:
                await self._answer(socket, raw)


ACKS: dict[str, tuple[Ack, int]] = {
    "binance": (binance.subscribe_ack, 1),
    "coinbase": (coinbase.subscribe_ack, 1),
    "kraken": (kraken.subscribe_ack, 2),
}
"""Each venue's acknowledgement builder and how many requests its client sends first."""

SYMBOLS = {"binance": "BTCUSDT", "coinbase": "BTC-USD", "kraken": "BTC/USD"}


def synthetic_frames(
    venue: str,
    trades: int,
    *,
    start_ns: int,
    quote_every: int = 1,
    symbol: str | None = None,
    step_ns: int = 1_000_000,
    start_price: float = 30_000.0,
) -> list[str]:
    """`trades` trades (and a quote after every `quote_every`) in `venue`'s wire format.

    Prices walk deterministically (a seeded random walk of 2 bp steps); trade ids are
    consecutive from 1; event times are `start_ns` + `step_ns` per trade.
    """
    symbol = symbol or SYMBOLS[venue]
    frames: list[str] = []
    price = start_price
    walk = random.Random(trades)
    for n in range(1, trades + 1):
        price *= 1.0 + walk.gauss(0.0, 0.0002)
        time_ns = start_ns + n * step_ns
        bid, ask = price * 0.9999, price * 1.0001
        match venue:
            case "binance":
                frames.append(binance.wire_trade(symbol, n, price, 0.01, time_ns // 1_000_000))
                if quote_every and n % quote_every == 0:
                    frames.append(binance.wire_quote(symbol, 2 * n, bid, ask, 1.0))
            case "coinbase":
                frames.append(
                    coinbase.wire_trade(symbol, n, 2 * n, price=price, size=0.01, time_ns=time_ns)
                )
                if quote_every and n % quote_every == 0:
                    frames.append(
                        coinbase.wire_quote(
                            symbol, 2 * n + 1, bid=bid, ask=ask, size=1.0, time_ns=time_ns
                        )
                    )
            case "kraken":
                frames.append(kraken.wire_trade(symbol, n, price, 0.01, time_ns))
                if quote_every and n % quote_every == 0:
                    frames.append(kraken.wire_quote(symbol, bid, ask, 1.0 + n * 1e-6, time_ns))
            case _:
                raise ValueError(f"unknown venue {venue!r}")
    return frames


async def _serve_once(args: argparse.Namespace) -> None:
    venue = args.venue
    ack, requests = ACKS[venue]
    step_ns = int(args.step_ms * 1_000_000)
    frames = synthetic_frames(
        venue,
        args.trades,
        # paced: event times run with the wall clock, as a venue's do; otherwise they end
        # now (the series is as old as it is long, never in the future)
        start_ns=time.time_ns() if args.paced else time.time_ns() - args.trades * step_ns,
        quote_every=args.quote_every,
        symbol=args.symbol or None,
        step_ns=step_ns,
        start_price=args.start_price,
    )
    interval_s = step_ns / 1e9 / (2 if args.quote_every == 1 else 1) if args.paced else 0.0
    session = Session(frames=frames, then="close", frame_interval_s=interval_s)
    server = VenueServer(ack, [session], requests_before_data=requests)
    async with server:
        print(server.url, flush=True)
        # the one connection has ended (every frame read, or the client went away)
        while not server.close_codes:
            await asyncio.sleep(0.05)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve one connection of synthetic frames for a venue, then exit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", choices=sorted(ACKS), required=True)
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--quote-every", type=int, default=1)
    parser.add_argument("--symbol", default="", help="the venue symbol (default per venue)")
    parser.add_argument("--step-ms", type=float, default=1.0, help="event time between trades")
    parser.add_argument("--start-price", type=float, default=30_000.0)
    parser.add_argument(
        "--paced", action="store_true", help="send in event time (default: as fast as possible)"
    )
    args = parser.parse_args(argv)
    asyncio.run(_serve_once(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
