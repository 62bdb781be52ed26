"""Primary/secondary venue per instrument: which venue's ticks the system uses.

A pure policy over what the feeds deliver: each tick says which venue it came from and
when we received it. The primary's ticks are used while it is fresh. When it has been
silent for longer than `stale_after_ns` (or its connection reported it down: breaker
open, disconnected, stale), the next secondary tick switches the instrument over; those
ticks are used and marked. The primary's next tick switches back. Every switch is a
`FeedSwitched` event (alert and audit). When both venues are silent nothing is used and
the risk gate's own stale-data rule applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedRoute:
    """Where one instrument's market data comes from, in order of preference."""

    instrument: str
    primary: str
    secondary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedSwitched:
    """`instrument` now takes its ticks from `to_venue` instead of `from_venue`."""

    instrument: str
    from_venue: str
    to_venue: str
    reason: str
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Routing:
    """The policy's answer for one tick."""

    use: bool
    failover: bool = False
    switched: FeedSwitched | None = None


USE = Routing(use=True)
SKIP = Routing(use=False)


@dataclass(slots=True)
class _RouteState:
    route: FeedRoute
    active: str
    started_ns: int | None = None
    last_seen: dict[str, int] = field(default_factory=dict)


class Failover:
    """Choose, per instrument, whether a venue's tick is used.

    >>> policy = Failover([FeedRoute(instrument="X", primary="a", secondary="b")],
    ...                   stale_after_ns=5)
    >>> [policy.on_tick(v, "X", t).use for v, t in [("a", 0), ("b", 1), ("b", 9)]]
    [True, False, True]
    >>> policy.on_tick("a", "X", 10).switched.to_venue
    'a'
    """

    def __init__(self, routes: Iterable[FeedRoute], *, stale_after_ns: int) -> None:
        self.stale_after_ns = stale_after_ns
        self._routes = {r.instrument: _RouteState(route=r, active=r.primary) for r in routes}
        self._down: dict[str, str] = {}

    def active(self, instrument: str) -> str | None:
        """The venue `instrument` currently takes its ticks from (None: not routed)."""
        state = self._routes.get(instrument)
        return None if state is None else state.active

    def on_venue_down(self, venue: str, reason: str) -> None:
        """The venue's connection reported trouble: its instruments fail over at once."""
        self._down[venue] = reason

    def on_tick(self, venue: str, instrument: str, ts_ns: int) -> Routing:
        """Decide whether the tick `venue` delivered for `instrument` at `ts_ns` is used."""
        state = self._routes.get(instrument)
        if state is None:
            return USE
        self._down.pop(venue, None)
        state.last_seen[venue] = ts_ns
        if state.started_ns is None:
            state.started_ns = ts_ns
        route = state.route
        if venue == state.active:
            return USE if venue == route.primary else Routing(use=True, failover=True)
        if venue == route.primary:
            switched = self._switch(state, venue, "primary delivering again", ts_ns)
            return Routing(use=True, switched=switched)
        if venue != route.secondary:
            return SKIP
        reason = self._primary_trouble(state, ts_ns)
        if reason is None:
            return SKIP
        return Routing(use=True, failover=True, switched=self._switch(state, venue, reason, ts_ns))

    def _primary_trouble(self, state: _RouteState, ts_ns: int) -> str | None:
        primary = state.route.primary
        if primary in self._down:
            return f"{primary} {self._down[primary]}"
        # before the primary's first tick, its silence counts from the route's first tick
        seen = state.last_seen.get(primary, state.started_ns)
        silent = ts_ns - (ts_ns if seen is None else seen)
        if silent > self.stale_after_ns:
            return f"{primary} silent for {silent / NS_PER_S:.1f}s"
        return None

    @staticmethod
    def _switch(state: _RouteState, to_venue: str, reason: str, ts_ns: int) -> FeedSwitched:
        switched = FeedSwitched(
            instrument=state.route.instrument,
            from_venue=state.active,
            to_venue=to_venue,
            reason=reason,
            ts_init=ts_ns,
        )
        state.active = to_venue
        return switched
