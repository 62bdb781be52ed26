"""Run live venue connections into Kafka records: ticks, alerts and audit events.

`load_feed_config` reads `config/feeds.yaml` (venues, instrument mapping, failover
routes); `open_connections` builds one `FeedConnection` per venue; `LiveRouter` turns
their events into outbound records — ticks onto `md.ticks` with our per-instrument
`seq` (failover applied), gaps and outages onto `hfl.alerts`, failover switches onto
`hfl.alerts` and `hfl.audit`; `run_live` drives it all until a tick budget is spent
or it is cancelled.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from connectors.codec import encode
from connectors.feeds.live.binance import Binance
from connectors.feeds.live.coinbase import Coinbase
from connectors.feeds.live.connection import (
    ConnectionConfig,
    FeedConnection,
    FeedEvent,
    FeedGap,
    FeedState,
    FeedStatus,
    Sequencer,
    TickFlag,
    Venue,
    VenueTick,
)
from connectors.feeds.live.instrument import VenueConfig, venues_from_mapping
from connectors.feeds.live.kraken import Kraken
from connectors.kafka.record import OutboundRecord

if TYPE_CHECKING:
    from connectors.feeds.live.backfill import GapBackfill
from connectors.topic import ALERTS, AUDIT, TICKS
from risk.domain.control import Alert, AuditEvent
from risk.domain.enums import AlertSeverity
from risk.domain.error import ConfigError
from risk.domain.ids import stable_id
from risk.failover import Failover, FeedRoute, FeedSwitched

ADAPTERS: dict[str, Callable[[VenueConfig], Venue]] = {
    "binance": Binance,
    "coinbase": Coinbase,
    "kraken": Kraken,
}
NS_PER_S = 1_000_000_000
_DOWN_STATES = {
    FeedState.DISCONNECTED: AlertSeverity.WARNING,
    FeedState.STALE: AlertSeverity.WARNING,
    FeedState.BREAKER_OPEN: AlertSeverity.CRITICAL,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedConfig:
    """Everything `config/feeds.yaml` says about live feeds."""

    venues: dict[str, VenueConfig]
    routes: tuple[FeedRoute, ...]
    failover_stale_s: float
    connection: ConnectionConfig


def feed_config_from_mapping(mapping: Mapping[str, Any]) -> FeedConfig:
    """Validate the `live` section; one `ConfigError` lists every problem."""
    live = mapping.get("live") or {}
    venues = venues_from_mapping(live.get("venues") or {})
    problems: list[str] = []
    routes = []
    for instrument, spec in (live.get("failover") or {}).items():
        primary, secondary = (spec or {}).get("primary"), (spec or {}).get("secondary")
        for role, venue in (("primary", primary), ("secondary", secondary)):
            config = venues.get(str(venue))
            if config is None:
                problems.append(f"failover.{instrument}.{role}: unknown venue {venue!r}")
            elif instrument not in {i.instrument for i in config.instruments}:
                problems.append(f"failover.{instrument}.{role}: {venue} does not list it")
        if primary == secondary:
            problems.append(f"failover.{instrument}: primary and secondary are the same")
        routes.append(
            FeedRoute(instrument=instrument, primary=str(primary), secondary=str(secondary))
        )
    known = {f.name for f in ConnectionConfig.__dataclass_fields__.values()}
    connection_spec = live.get("connection") or {}
    problems += [f"connection.{k}: unknown setting" for k in connection_spec if k not in known]
    unknown_venues = [v for v in venues if v not in ADAPTERS]
    problems += [f"venues.{v}: no adapter (known: {sorted(ADAPTERS)})" for v in unknown_venues]
    if problems:
        raise ConfigError(f"live: {len(problems)} problems: " + "; ".join(problems))
    return FeedConfig(
        venues=venues,
        routes=tuple(routes),
        failover_stale_s=float(live.get("failover_stale_s", 5.0)),
        connection=ConnectionConfig(**{k: v for k, v in connection_spec.items() if k in known}),
    )


def load_feed_config(path: str | Path) -> FeedConfig:
    """Read and validate a feeds YAML file."""
    return feed_config_from_mapping(yaml.safe_load(Path(path).read_text()) or {})


def open_connections(
    config: FeedConfig,
    venues: Sequence[str],
    *,
    instruments: frozenset[str] | None = None,
    urls: Mapping[str, str] | None = None,
) -> list[FeedConnection]:
    """One connection per venue in `venues`, for `instruments` (all configured if None)."""
    connections = []
    for name in venues:
        venue = config.venues[name]
        symbols = venue.symbols(instruments)
        if not symbols:
            continue
        url = (urls or {}).get(name, venue.url)
        connections.append(FeedConnection(ADAPTERS[name](venue), url, symbols, config.connection))
    return connections


class LiveRouter:
    """Turn feed events into outbound Kafka records (ticks, alerts, audit events)."""

    def __init__(self, *, prefix: str = "", failover: Failover | None = None) -> None:
        self.ticks_topic = prefix + TICKS
        self.alerts_topic = prefix + ALERTS
        self.audit_topic = prefix + AUDIT
        self.failover = failover
        self.sequencer = Sequencer()
        self.published: Counter[str] = Counter()
        self.unused: Counter[str] = Counter()
        self.switches: list[FeedSwitched] = []
        self.alerts: Counter[str] = Counter()
        self.backfilled: Counter[str] = Counter()

    def route(self, event: FeedEvent) -> list[OutboundRecord]:
        """The records one feed event gives (none for a secondary tick not in use)."""
        match event:
            case VenueTick():
                return self._tick(event)
            case FeedGap():
                message = (
                    f"{event.venue} {event.instrument}: {event.missing} trades missing "
                    f"({event.expected}..{event.received - 1})"
                    + (" across a reconnect" if event.after_reconnect else "")
                )
                return [self._alert("feed_gap", AlertSeverity.WARNING, event, message)]
            case FeedStatus(state=state) if state in _DOWN_STATES:
                if self.failover is not None:
                    self.failover.on_venue_down(event.venue, state.value)
                message = f"{event.venue} {state.value}: {event.detail}"
                return [self._alert("feed_down", _DOWN_STATES[state], event, message)]
            case _:
                return []

    def _tick(self, tick: VenueTick) -> list[OutboundRecord]:
        out: list[OutboundRecord] = []
        flags = tick.flags
        if self.failover is not None:
            routing = self.failover.on_tick(tick.venue, tick.instrument, tick.ts_init)
            if routing.switched is not None:
                out.extend(self._switched(routing.switched))
            if not routing.use:
                self.unused[tick.venue] += 1
                return out
            if routing.failover:
                flags = (*flags, TickFlag.FAILOVER.value)
        record = tick.record(self.sequencer.next(tick.instrument, tick.ts_init))
        if flags:
            record["flags"] = list(flags)
        out.append(OutboundRecord(self.ticks_topic, tick.instrument.encode(), encode(record)))
        self.published[tick.venue] += 1
        return out

    def _alert(
        self, name: str, severity: AlertSeverity, event: FeedGap | FeedStatus, message: str
    ) -> OutboundRecord:
        subject = (
            event.venue if isinstance(event, FeedStatus) else f"{event.venue}:{event.instrument}"
        )
        self.alerts[name] += 1
        alert = Alert(
            alert_id=stable_id("alert", name, subject, event.ts_init),
            name=name,
            severity=severity,
            source="feed",
            subject=subject,
            message=message,
            ts_event=event.ts_init,
            ts_init=event.ts_init,
        )
        return OutboundRecord(self.alerts_topic, subject.encode(), encode(alert))

    def _switched(self, switched: FeedSwitched) -> list[OutboundRecord]:
        self.switches.append(switched)
        self.alerts["feed_failover"] += 1
        message = (
            f"{switched.instrument}: {switched.from_venue} -> {switched.to_venue} "
            f"({switched.reason})"
        )
        alert = Alert(
            alert_id=stable_id("alert", "feed_failover", switched.instrument, switched.ts_init),
            name="feed_failover",
            severity=AlertSeverity.WARNING,
            source="feed",
            subject=switched.instrument,
            message=message,
            ts_event=switched.ts_init,
            ts_init=switched.ts_init,
        )
        audit = AuditEvent(
            audit_id=stable_id("audit", "feed_failover", switched.instrument, switched.ts_init),
            actor="feed",
            action="feed_failover",
            subject=switched.instrument,
            reason=switched.reason,
            detail=json.dumps({"from": switched.from_venue, "to": switched.to_venue}),
            ts_event=switched.ts_init,
            ts_init=switched.ts_init,
        )
        key = switched.instrument.encode()
        return [
            OutboundRecord(self.alerts_topic, key, encode(alert)),
            OutboundRecord(self.audit_topic, key, encode(audit)),
        ]


async def run_live(
    connections: Iterable[FeedConnection],
    router: LiveRouter,
    sink: Callable[[OutboundRecord], None],
    *,
    max_ticks: int | None = None,
    report: Callable[[list[FeedConnection]], None] | None = None,
    report_every_s: float = 5.0,
    backfills: Mapping[str, GapBackfill] | None = None,
) -> int:
    """Route every connection's events to `sink` until `max_ticks` ticks are published
    (forever when None); then close every connection cleanly. Returns ticks published.

    `report`, when given, is called with the connections every `report_every_s`.
    A gap of a venue in `backfills` is refilled from its REST API (off the event loop)
    before the tick after the hole is routed: the refilled trades keep id order.
    """
    connections = list(connections)
    done = asyncio.Event()

    async def progress() -> None:
        while report is not None:
            await asyncio.sleep(report_every_s)
            report(connections)

    async def forward(connection: FeedConnection) -> None:
        async for event in connection.events():
            for record in router.route(event):
                sink(record)
            refill = backfills.get(connection.venue.name) if backfills else None
            if refill is not None and isinstance(event, FeedGap):
                for tick in await asyncio.to_thread(refill.fetch, event):
                    for record in router.route(tick):
                        sink(record)
                    router.backfilled[tick.venue] += 1
            if max_ticks is not None and sum(router.published.values()) >= max_ticks:
                done.set()

    runners = [asyncio.create_task(c.run()) for c in connections]
    forwarders = [asyncio.create_task(forward(c)) for c in connections]
    reporter = asyncio.create_task(progress())
    try:
        await done.wait()
    finally:
        reporter.cancel()
        for connection in connections:
            await connection.stop()
        await asyncio.gather(*runners, *forwarders, return_exceptions=True)
    return sum(router.published.values())
