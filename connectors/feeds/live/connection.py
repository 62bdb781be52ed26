"""One hardened websocket connection per venue, shared by every venue adapter.

A `FeedConnection` connects, subscribes, reads frames and hands normalised events to a
bounded queue. Around that loop it keeps the connection honest:

- heartbeats: websocket pings every `heartbeat_s` (a pong missing for as long closes the
  connection), plus the venue's application ping where it has one (Kraken);
- stale streams: no frame for `stale_after_s` closes the connection and reconnects;
- reconnects: exponential backoff with jitter, resubscribing on every new connection;
- a circuit breaker per venue: after repeated failed sessions the venue is left alone
  for a cooldown and a `BREAKER_OPEN` status is emitted (failover listens for it);
- trade ids: a jump is a `FeedGap` event, a repeat (a venue's reconnect snapshot, or
  Coinbase's `last_match`) is suppressed and counted, also across reconnects;
- back-pressure: the queue is bounded; when it is full the reader stops reading, so the
  socket's buffers fill and the venue slows down (or drops us, which is then a gap) —
  memory never grows without bound;
- clean shutdown: `stop()` closes the socket with a close frame and ends the stream with
  a `STOPPED` status.

Why `websockets` and not `cryptofeed`: cryptofeed hard-wires venue endpoints, owns its
reconnect loop (no gap events for trades, no hook for a breaker or back-pressure) and
pulls in a large dependency tree; `websockets` is one well-kept library that lets a test
point the real client at a local server speaking each venue's documented protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from connectors.circuit import CircuitBreaker, CircuitState
from risk.domain.enums import TickKind

NS_PER_S = 1_000_000_000


class TickFlag(StrEnum):
    """Marks a normalised tick carries on its way to `md.ticks`."""

    NO_VENUE_TIME = "no_venue_time"  # the venue stamps no event time: ts_event = receive time
    SNAPSHOT = "snapshot"  # part of a venue's (re)subscription snapshot
    FAILOVER = "failover"  # taken from the secondary venue while the primary is down


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueTick:
    """One trade or best bid/offer from a venue, normalised to our units.

    `ts_event` is the venue's own event time and `ts_init` our receive time, both integer
    nanoseconds UTC. `venue_trade_id` is the venue's trade id (trades);
    `venue_seq` the venue's sequence or update id where it sends one.
    """

    venue: str
    instrument: str
    kind: TickKind
    price: float
    size: float
    bid: float | None = None
    ask: float | None = None
    bid_size: float | None = None
    ask_size: float | None = None
    ts_event: int
    ts_init: int
    venue_trade_id: int | None = None
    venue_seq: int | None = None
    flags: tuple[str, ...] = ()

    def record(self, seq: int) -> dict[str, Any]:
        """The `md.ticks` record: our Tick fields plus the venue's own identifiers.

        `seq` is our per-instrument sequence (see `Sequencer`): a venue's trade ids and
        quote update ids are separate counters, so neither orders one instrument's stream.
        """
        out: dict[str, Any] = {
            "instrument": self.instrument,
            "seq": seq,
            "kind": self.kind.value,
            "ts_event": self.ts_event,
            "ts_init": self.ts_init,
            "venue": self.venue,
        }
        if self.kind is TickKind.TRADE:
            out["price"] = self.price
            out["size"] = self.size
        for name in ("bid", "ask", "bid_size", "ask_size", "venue_trade_id", "venue_seq"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.flags:
            out["flags"] = list(self.flags)
        return out


class FeedState(StrEnum):
    """What happened to a venue connection."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    STALE = "stale"
    BREAKER_OPEN = "breaker_open"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedStatus:
    """A change of a venue connection's state (for alerts, audit and failover)."""

    venue: str
    state: FeedState
    detail: str
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedGap:
    """Trade ids jumped: `missing` trades between `expected` and `received` never came."""

    venue: str
    instrument: str
    expected: int
    received: int
    missing: int
    after_reconnect: bool
    ts_init: int


FeedEvent = VenueTick | FeedGap | FeedStatus


def rfc3339_ns(text: str) -> int:
    """Parse a venue's UTC RFC 3339 time ("2014-11-07T08:19:27.028459Z") to epoch ns.

    Fractions keep all their digits (up to nanoseconds); the whole-second part is cached
    because consecutive frames share it.

    >>> rfc3339_ns("2014-11-07T08:19:27.028459Z")
    1415348367028459000
    >>> rfc3339_ns("2023-09-25T07:48:36Z")
    1695628116000000000
    """
    head, dot, tail = text.partition(".")
    if dot:
        digits = tail.rstrip("Zz")
        if "+" in digits or not digits.isdigit() or len(digits) > 9:
            raise VenueMessageError(f"unreadable time {text!r}")
        fraction = int(digits.ljust(9, "0"))
    else:
        head = head.rstrip("Zz")
        fraction = 0
    return _whole_seconds(head) * NS_PER_S + fraction


@functools.lru_cache(maxsize=1024)
def _whole_seconds(head: str) -> int:
    try:
        moment = datetime.fromisoformat(head).replace(tzinfo=UTC)
    except ValueError as exc:
        raise VenueMessageError(f"unreadable time {head!r}") from exc
    return int(moment.timestamp())


class VenueMessageError(ValueError):
    """A frame the venue adapter cannot read (it is counted, never fatal)."""


class Venue(Protocol):
    """What a venue adapter provides: where to connect, what to send, how to read."""

    name: str

    def url(self, base: str, symbols: Sequence[str]) -> str:
        """The websocket URL for `symbols`."""
        ...

    def subscriptions(self, symbols: Sequence[str]) -> list[str]:
        """Frames to send after connecting (resent after every reconnect)."""
        ...

    def heartbeat(self) -> str | None:
        """An application-level ping frame, or None when websocket pings suffice."""
        ...

    def parse(self, raw: str | bytes, ts_init: int) -> Iterable[VenueTick]:
        """Normalise one frame; control frames give nothing; raises VenueMessageError."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionConfig:
    """How hard one venue connection tries, and how much it may buffer."""

    heartbeat_s: float = 10.0
    stale_after_s: float = 30.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backoff_jitter: float = 0.5  # each delay is cut by up to this fraction, at random
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 60.0
    queue_size: int = 10_000
    open_timeout_s: float = 10.0
    lag_samples: int = 10_000


def backoff_delay_s(attempt: int, config: ConnectionConfig, rng: random.Random) -> float:
    """Exponential delay before reconnect `attempt` (0-based), with jitter.

    >>> cfg = ConnectionConfig(backoff_initial_s=1.0, backoff_max_s=8.0, backoff_jitter=0.0)
    >>> [backoff_delay_s(n, cfg, random.Random(1)) for n in range(5)]
    [1.0, 2.0, 4.0, 8.0, 8.0]
    """
    ceiling = min(config.backoff_max_s, config.backoff_initial_s * 2.0 ** min(attempt, 32))
    return ceiling * (1.0 - config.backoff_jitter * rng.random())


@dataclass(slots=True)
class FeedMetrics:
    """Counters of one venue connection (plain numbers: the CLI exports them)."""

    venue: str
    messages: int = 0
    ticks: int = 0
    duplicates: int = 0
    gaps: int = 0
    missing_trades: int = 0
    reconnects: int = 0
    stale: int = 0
    unreadable: int = 0
    queue_high_water: int = 0
    lag_ns: deque[int] = field(default_factory=lambda: deque(maxlen=10_000))

    def lag_percentiles_ms(self) -> dict[str, float]:
        """Venue event time -> our receive time, p50/p99/max over the recent samples."""
        if not self.lag_ns:
            return {}
        ordered = sorted(self.lag_ns)
        last = len(ordered) - 1
        return {
            "p50": ordered[last // 2] / 1e6,
            "p99": ordered[(last * 99) // 100] / 1e6,
            "max": ordered[last] / 1e6,
        }

    def snapshot(self) -> dict[str, Any]:
        """Every counter, and the lag percentiles, as one plain dict."""
        return {
            "venue": self.venue,
            "messages": self.messages,
            "ticks": self.ticks,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "missing_trades": self.missing_trades,
            "reconnects": self.reconnects,
            "stale": self.stale,
            "unreadable": self.unreadable,
            "queue_high_water": self.queue_high_water,
            "lag_ms": self.lag_percentiles_ms(),
        }


class StreamGuard:
    """Drop repeated ticks and report trade-id gaps, per instrument, across reconnects.

    Trades carry consecutive ids on all three venues: a lower or equal id is a repeat,
    a jump is a gap. Quotes carry an update id on some venues (suppress anything not
    newer) and nothing on others (suppress an exact repeat of the last quote, which is
    what a resubscription snapshot resends).

    >>> from risk.domain.enums import TickKind
    >>> guard = StreamGuard("v")
    >>> def trade(n):
    ...     return VenueTick(venue="v", instrument="X", kind=TickKind.TRADE, price=1.0,
    ...                      size=1.0, ts_event=0, ts_init=0, venue_trade_id=n)
    >>> [type(e).__name__ for n in (1, 2, 2, 5) for e in guard.admit(trade(n), False)]
    ['VenueTick', 'VenueTick', 'FeedGap', 'VenueTick']
    """

    __slots__ = ("_last_quote", "_last_quote_seq", "_last_trade", "duplicates", "venue")

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self._last_trade: dict[str, int] = {}
        self._last_quote_seq: dict[str, int] = {}
        self._last_quote: dict[str, tuple[float | None, ...]] = {}
        self.duplicates = 0

    def admit(self, tick: VenueTick, after_reconnect: bool) -> list[FeedEvent]:
        """The events `tick` gives: nothing (a repeat), the tick, or a gap then the tick."""
        instrument = tick.instrument
        if tick.kind is TickKind.TRADE and tick.venue_trade_id is not None:
            trade_id = tick.venue_trade_id
            last = self._last_trade.get(instrument)
            if last is not None and trade_id <= last:
                self.duplicates += 1
                return []
            self._last_trade[instrument] = trade_id
            if last is not None and trade_id > last + 1:
                gap = FeedGap(
                    venue=self.venue,
                    instrument=instrument,
                    expected=last + 1,
                    received=trade_id,
                    missing=trade_id - last - 1,
                    after_reconnect=after_reconnect,
                    ts_init=tick.ts_init,
                )
                return [gap, tick]
            return [tick]
        if tick.kind is TickKind.QUOTE:
            if tick.venue_seq is not None:
                last_seq = self._last_quote_seq.get(instrument)
                if last_seq is not None and tick.venue_seq <= last_seq:
                    self.duplicates += 1
                    return []
                self._last_quote_seq[instrument] = tick.venue_seq
            else:
                touch = (tick.bid, tick.ask, tick.bid_size, tick.ask_size)
                if self._last_quote.get(instrument) == touch:
                    self.duplicates += 1
                    return []
                self._last_quote[instrument] = touch
        return [tick]


class Sequencer:
    """Our per-instrument `seq`: strictly increasing, also across feed restarts.

    seq = max(last + 1, ts_init): receive-time nanoseconds keep a restarted feed ahead of
    what it published before, so the trading flow's sequence check never sees a regression.

    >>> s = Sequencer()
    >>> s.next("X", 100), s.next("X", 100), s.next("X", 50), s.next("Y", 7)
    (100, 101, 102, 7)
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, instrument: str, ts_init: int) -> int:
        """The next sequence number of `instrument` for a tick received at `ts_init`."""
        last = self._last.get(instrument)
        seq = ts_init if last is None or ts_init > last else last + 1
        self._last[instrument] = seq
        return seq


class FeedConnection:
    """Keep one venue's public stream flowing into a bounded queue of `FeedEvent`s."""

    def __init__(
        self,
        venue: Venue,
        base_url: str,
        symbols: Sequence[str],
        config: ConnectionConfig | None = None,
        *,
        rng: random.Random | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.venue = venue
        self.config = config or ConnectionConfig()
        self.symbols = list(symbols)
        self.url = venue.url(base_url, self.symbols)
        self.metrics = FeedMetrics(venue.name, lag_ns=deque(maxlen=self.config.lag_samples))
        self.breaker = CircuitBreaker(
            f"feed {venue.name}",
            threshold=self.config.breaker_threshold,
            cooldown_s=self.config.breaker_cooldown_s,
        )
        self.queue: asyncio.Queue[FeedEvent] = asyncio.Queue(maxsize=self.config.queue_size)
        self.connected_at: list[float] = []  # monotonic time of every (re)connection
        self.disconnected_at: list[float] = []
        self._guard = StreamGuard(venue.name)
        self._rng = rng or random.Random()
        self._clock_ns = clock_ns
        self._stopping = asyncio.Event()
        self._socket: ClientConnection | None = None

    async def events(self) -> AsyncIterator[FeedEvent]:
        """Yield events until the connection is stopped (the STOPPED status is yielded)."""
        while True:
            event = await self.queue.get()
            yield event
            if isinstance(event, FeedStatus) and event.state is FeedState.STOPPED:
                return

    async def stop(self) -> None:
        """Ask `run` to close the socket cleanly and end the stream."""
        self._stopping.set()
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close()

    async def run(self) -> None:
        """Connect, read and reconnect until `stop()`; ends the queue with STOPPED."""
        attempt = 0
        sessions = 0
        try:
            while not self._stopping.is_set():
                if self.breaker.state is CircuitState.OPEN:
                    await self._status(FeedState.BREAKER_OPEN, f"{self.breaker.name} open")
                    await self._sleep(self.config.breaker_cooldown_s)
                    continue
                healthy = await self._session(after_reconnect=sessions > 0)
                sessions += 1
                if self._stopping.is_set():
                    break
                if healthy:
                    self.breaker.record_success()
                    attempt = 0
                else:
                    self.breaker.record_failure()
                self.metrics.reconnects += 1
                delay = backoff_delay_s(attempt, self.config, self._rng)
                attempt += 1
                await self._sleep(delay)
        finally:
            await self.queue.put(
                FeedStatus(
                    venue=self.venue.name,
                    state=FeedState.STOPPED,
                    detail="stopped",
                    ts_init=self._clock_ns(),
                )
            )

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _status(self, state: FeedState, detail: str) -> None:
        status = FeedStatus(
            venue=self.venue.name, state=state, detail=detail, ts_init=self._clock_ns()
        )
        await self.queue.put(status)

    async def _session(self, *, after_reconnect: bool) -> bool:
        """One connection's life; True when it delivered data before it ended."""
        cfg = self.config
        delivered = False
        try:
            async with connect(
                self.url,
                open_timeout=cfg.open_timeout_s,
                ping_interval=cfg.heartbeat_s,
                ping_timeout=cfg.heartbeat_s,
                close_timeout=2.0,
                max_queue=64,
                proxy=None,
            ) as socket:
                self._socket = socket
                self.connected_at.append(time.monotonic())
                for frame in self.venue.subscriptions(self.symbols):
                    await socket.send(frame)
                await self._status(FeedState.CONNECTED, self.url)
                pinger = asyncio.create_task(self._app_heartbeat(socket))
                try:
                    delivered = await self._read(socket, after_reconnect=after_reconnect)
                finally:
                    pinger.cancel()
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, InvalidURI) as exc:
            if not self._stopping.is_set():
                self.disconnected_at.append(time.monotonic())
                await self._status(FeedState.DISCONNECTED, f"{type(exc).__name__}: {exc}")
        finally:
            self._socket = None
        return delivered

    async def _app_heartbeat(self, socket: ClientConnection) -> None:
        frame = self.venue.heartbeat()
        if frame is None:
            return
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            await socket.send(frame)

    async def _read(self, socket: ClientConnection, *, after_reconnect: bool) -> bool:
        """Read frames until the socket closes or goes stale; True if any tick came."""
        delivered = False
        metrics = self.metrics
        queue = self.queue
        venue = self.venue
        guard = self._guard
        while True:
            try:
                raw = await asyncio.wait_for(socket.recv(), timeout=self.config.stale_after_s)
            except TimeoutError:
                metrics.stale += 1
                self.disconnected_at.append(time.monotonic())
                await self._status(
                    FeedState.STALE, f"no frame for {self.config.stale_after_s:.1f}s"
                )
                await socket.close(code=1001, reason="stale stream")
                return delivered
            ts_init = self._clock_ns()
            metrics.messages += 1
            try:
                ticks = venue.parse(raw, ts_init)
            except VenueMessageError:
                metrics.unreadable += 1
                continue
            for tick in ticks:
                delivered = True
                for event in guard.admit(tick, after_reconnect):
                    if isinstance(event, FeedGap):
                        metrics.gaps += 1
                        metrics.missing_trades += event.missing
                    else:
                        metrics.ticks += 1
                        if TickFlag.NO_VENUE_TIME not in tick.flags:
                            metrics.lag_ns.append(ts_init - tick.ts_event)
                    if queue.full():
                        metrics.queue_high_water = queue.maxsize
                    await queue.put(event)  # blocks when full: back-pressure, never growth
                size = queue.qsize()
                metrics.queue_high_water = max(metrics.queue_high_water, size)
            metrics.duplicates = guard.duplicates


async def run_until(
    connection: FeedConnection, stop_when: Callable[[FeedEvent], bool]
) -> list[FeedEvent]:
    """Run `connection`, collecting events until `stop_when(event)`; then stop cleanly.

    A helper for bounded runs (tests, benchmarks): the end is decided by the data.
    """
    task = asyncio.create_task(connection.run())
    seen: list[FeedEvent] = []
    async for event in connection.events():
        seen.append(event)
        if stop_when(event):
            await connection.stop()
            break
    async for event in connection.events():  # drain to STOPPED so run() can finish
        seen.append(event)
    await task
    return seen
