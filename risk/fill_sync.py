"""Book fills and order events in event time: hold decisions until the gateway says
every earlier fill and order event is in.

The account step sees two streams: signals, bars and drift events from the trading
flow's own instrument steps, and fills from the gateway. In arrival order, which fills
a decision, a P&L snapshot or a risk figure at time t saw depends on how fast the
gateway ran. In event time it does not: before the item at t, exactly the fills with
`ts_event < t - delay` are booked, in `(ts_event, client_order_id, cumulative
quantity)` order.

Order events (CANCELED, REJECTED, EXPIRED release working quantity, which sizing and
every limit check see) are booked the same way, in the same order, a fill before an
event of the same order, time and leaves quantity. They travel on their own topic,
with no order across topics for a reader, so each topic carries its own marker.

`FillSync` holds items until the gateway's progress markers (`FillsThrough` and
`OrderEventsThrough`) for every instrument have passed `t - delay`. The gateway can
only mark a time once it has every order that could fill before it, which the gate
announces with `promise()` (`OrdersSent`): no order before the time of the first
item still held will come.

Why the delay: a fill comes at least the venue latency L after its order, so a
promise W lets the gateway mark W + L, and the gate can then decide up to
W + L + delay. Each promise -> marker round trip (two Kafka hops and both flows'
batches, some 10-300 ms on a loaded machine) thus advances the gate by L + delay of
event time: with L alone (50 ms) a live gate would fall behind real time; with a
delay above the round trip it never waits in steady state. The price is that the
gate books each fill `delay` after it happened, in event time, which is what it sees
in arrival order anyway, only now the same in every run.

A gateway that is down or far behind must not stop trading: once the first held item
has waited `max_wait_ns` by the clock the caller passes (wall time: this is a timer,
and only a failing gateway makes it fire), it and every item after it are released
with the fills that are in, without waiting, until the markers catch up again.
`lag_started()` says when the gateway fell behind, so the gate can raise an alert and
move to REDUCING. Late fills are booked before the next item.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Generic, TypeVar

from risk.domain.order import Fill, FillsThrough, OrderEvent, OrderEventsThrough

T = TypeVar("T")
Report = Fill | OrderEvent

_NEVER = -(2**63)
_FOREVER = 2**63


class FillSyncMode(StrEnum):
    """When the account step books fills (`risk.fill_sync`).

    `journal`: on arrival, the order of every input journaled per batch (`InputOrder`);
    `event_time`: held for the gateway's markers (`FillSync`); `arrival`: on arrival,
    unjournaled; `auto`: `event_time` in a bounded replay with the gateway, else
    `journal` (`dataflows.flows.account.fill_sync_mode`).
    """

    AUTO = "auto"
    JOURNAL = "journal"
    EVENT_TIME = "event_time"
    ARRIVAL = "arrival"


class FillSync(Generic[T]):
    """Items held until every report (fill, order event) before them is in, and the
    reports that are in. `markers` are the marker types (one per topic) to wait for.

    >>> sync = FillSync[str](("XYZ",), delay_ns=5, max_wait_ns=100, markers=(FillsThrough,))
    >>> sync.hold("signal", 15)
    >>> sync.release(now_ns=0), sync.promise()
    ([], 15)
    >>> sync.mark(FillsThrough(progress_id="p", account="a", instrument="XYZ",
    ...     through_ns=10, ts_event=10, ts_init=10))
    >>> sync.release(now_ns=1)
    ['signal']
    """

    __slots__ = (
        "_blocked_since_ns",
        "_delay_ns",
        "_fills",
        "_held",
        "_lag_start_ns",
        "_lagging",
        "_last_ns",
        "_max_wait_ns",
        "_streams",
        "_through",
    )

    def __init__(
        self,
        instruments: tuple[str, ...],
        *,
        delay_ns: int,
        max_wait_ns: int,
        markers: tuple[type[FillsThrough], ...] = (FillsThrough, OrderEventsThrough),
    ) -> None:
        self._streams = [(kind, name) for kind in markers for name in instruments]
        self._delay_ns = delay_ns
        self._max_wait_ns = max_wait_ns
        self._through: dict[tuple[type[FillsThrough], str], int] = {}
        self._fills: list[tuple[int, str, Decimal, int, str, Report]] = []
        self._held: deque[tuple[int, T]] = deque()
        self._last_ns = _NEVER
        self._lagging = False
        self._lag_start_ns: int | None = None
        self._blocked_since_ns: int | None = None

    def __len__(self) -> int:
        """Items and fills waiting."""
        return len(self._held) + len(self._fills)

    def add_report(self, report: Report) -> None:
        """Keep a fill or order event until the item it precedes in event time is released."""
        # Reports of one order at one time keep their order: larger leaves came first,
        # and a fill before the event that reports it.
        if isinstance(report, Fill):
            rank, report_id = 0, report.fill_id
        else:
            rank, report_id = 1, report.event_id
        key = (report.ts_event, report.client_order_id, -report.leaves_quantity, rank, report_id)
        heapq.heappush(self._fills, (*key, report))

    def mark(self, marker: FillsThrough) -> None:
        """Note that every report its topic carries on its instrument before its time is in."""
        key = (type(marker), marker.instrument)
        self._through[key] = max(self._through.get(key, _NEVER), marker.through_ns)

    def hold(self, item: T, at_ns: int) -> None:
        """Hold `item`, which happens at event time `at_ns`, behind the items held before."""
        self._held.append((at_ns, item))

    def promise(self) -> int | None:
        """Event time before which the gate will send no more orders, once it has any item.

        Orders come only from held items, in order, at their own times.
        """
        if self._held:
            return self._held[0][0]
        return None if self._last_ns == _NEVER else self._last_ns

    @property
    def clock_ns(self) -> int | None:
        """Event time of the last item released, or None before the first."""
        return None if self._last_ns == _NEVER else self._last_ns

    def settled(self) -> bool:
        """True when nothing is held and every marker has passed the last item released:
        every report before the gate's last decision is in. A bounded run ends only then
        (`dataflows.flows.run_end`), so what it decides and books does not depend on when the
        gateway's markers came.

        >>> sync = FillSync[str](("XYZ",), delay_ns=5, max_wait_ns=100, markers=(FillsThrough,))
        >>> sync.settled()
        True
        >>> sync.hold("signal", 15)
        >>> sync.mark(FillsThrough(progress_id="p", account="a", instrument="XYZ",
        ...     through_ns=10, ts_event=10, ts_init=10))
        >>> sync.release(now_ns=0), sync.settled()
        (['signal'], False)
        >>> sync.mark(FillsThrough(progress_id="q", account="a", instrument="XYZ",
        ...     through_ns=15, ts_event=15, ts_init=15))
        >>> sync.settled()
        True
        """
        if self._held:
            return False
        last_ns = self._last_ns
        return all(self._through.get(name, _NEVER) >= last_ns for name in self._streams)

    def release(self, *, now_ns: int, max_items: int | None = None) -> list[Report | T]:
        """Return the items whose reports up to `delay` before them are all in (or that
        waited too long by `now_ns`), each after those reports; at most `max_items`."""
        out: list[Report | T] = []
        through = min((self._through.get(name, _NEVER) for name in self._streams), default=0)
        held = self._held
        left = len(held) if max_items is None else max_items
        while held and left > 0:
            left -= 1
            at_ns = held[0][0]
            complete = at_ns - self._delay_ns <= through
            if complete:
                self._blocked_since_ns = None
            elif not self._lagging:
                if self._blocked_since_ns is None:
                    self._blocked_since_ns = now_ns
                if now_ns - self._blocked_since_ns < self._max_wait_ns:
                    break
                self._lag_start_ns = at_ns
            self._lagging = not complete
            _, item = held.popleft()
            self._last_ns = max(self._last_ns, at_ns)
            self._take_fills(self._last_ns - self._delay_ns, out)
            out.append(item)
        return out

    def drain(self) -> list[Report | T]:
        """Return every held item, each after the reports before it, then every other
        report: the end of input, when no later item and no marker will come.

        >>> sync = FillSync[str](("XYZ",), delay_ns=5, max_wait_ns=100)
        >>> sync.hold("signal", 15)
        >>> sync.drain(), len(sync)
        (['signal'], 0)
        """
        out: list[Report | T] = []
        held = self._held
        while held:
            at_ns, item = held.popleft()
            self._last_ns = max(self._last_ns, at_ns)
            self._take_fills(self._last_ns - self._delay_ns, out)
            out.append(item)
        self._take_fills(_FOREVER, out)
        return out

    def lag_started(self) -> int | None:
        """Event time of the first item released without its fills since last asked, once
        per episode of the gateway falling behind; None if it did not."""
        started, self._lag_start_ns = self._lag_start_ns, None
        return started

    def _take_fills(self, before_ns: int, out: list[Report | T]) -> None:
        fills = self._fills
        while fills and fills[0][0] < before_ns:
            out.append(heapq.heappop(fills)[-1])


@dataclass(frozen=True, slots=True, kw_only=True)
class JournaledInputs:
    """One batch of the risk gate's input journal: the inputs it applied, in order.

    `inputs` are the keys `risk.engine.account.input_key` gives (`InputOrder`).
    """

    account: str
    inputs: tuple[str, ...]


class InputOrder(Generic[T]):
    """The order in which the gate consumed its inputs, journaled, and its replay.

    Live, the gate applies every input as it arrives and journals, per batch and
    before the batch's effects leave, the keys of what it applied, in order
    (`written` notes where). A resumed gate first reads the journal from
    `journal_from` (the entries after its snapshot) and applies the inputs Bytewax
    delivers again in the journal's order (`replay`, `order`): an input that comes
    early waits for those before it; once the journal's last input is applied, the
    gate is live again and whatever waited beyond the journal goes on in arrival order.
    Same inputs and journal => same decisions, however the inputs interleave on resume.

    The snapshot keeps the offset, how many inputs of the entries from there were
    applied (`consumed`) and the inputs waiting for their turn: nothing in the live
    path, and on resume only the inputs that came out of the journal's order. The
    journal's keys themselves are read again on resume, never pickled.

    >>> order = InputOrder[str](journal_from=7)
    >>> order.replay(["s1", "f1", "s2"], end=9)
    >>> order.order([("s1", "sig 1"), ("s2", "sig 2")])
    (['sig 1'], [])
    >>> order.settled(), len(order)
    (False, 3)
    >>> order.order([("f1", "fill 1"), ("s3", "sig 3")])
    (['fill 1', 'sig 2'], [('s3', 'sig 3')])
    >>> order.settled(), order.journal_from
    (True, 9)
    >>> order.written(offset=9)
    >>> order.journal_from, order.order([("s4", "sig 4")])
    (10, ([], [('s4', 'sig 4')]))
    """

    __slots__ = (
        "_expected",
        "_parked",
        "_read_end",
        "_stalled_since_ns",
        "consumed",
        "journal_from",
        "max_wait_ns",
    )

    def __init__(self, journal_from: int = 0, max_wait_ns: int = 10_000_000_000) -> None:
        self.journal_from = journal_from
        self.max_wait_ns = max_wait_ns
        self.consumed = 0
        self._stalled_since_ns: int | None = None
        self._read_end = journal_from
        self._expected: deque[str] = deque()
        self._parked: dict[str, deque[T]] = {}

    def __len__(self) -> int:
        """Inputs the replay still expects plus those waiting for their turn."""
        return len(self._expected) + sum(map(len, self._parked.values()))

    def __getstate__(self) -> dict[str, object]:
        return {
            "journal_from": self.journal_from,
            "max_wait_ns": self.max_wait_ns,
            "consumed": self.consumed,
            "parked": [(key, list(items)) for key, items in self._parked.items()],
        }

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["journal_from"], state["max_wait_ns"])  # type: ignore[misc]
        self.consumed = state["consumed"]  # type: ignore[assignment]
        self._parked = {key: deque(items) for key, items in state["parked"]}  # type: ignore[attr-defined]

    def settled(self) -> bool:
        """True when no replayed input is awaited and nothing waits for its turn."""
        return not self._expected and not self._parked

    def replay(self, keys: list[str], end: int) -> None:
        """Take the keys the journal holds from `journal_from` up to offset `end`, in
        the order they were applied; the first `consumed` were applied before the
        snapshot."""
        self._read_end = max(self._read_end, end)
        self._expected = deque(keys[self.consumed :])
        self._advance([])

    def order(self, arrived: list[tuple[str, T]]) -> tuple[list[T], list[tuple[str, T]]]:
        """Of the inputs `arrived` (key, input; in arrival order) and those that waited:
        the replayed ones whose turn came, in journal order, and, once the journal is
        done, the live ones in arrival order (to be applied after the replayed ones and
        journaled, `written`)."""
        if not self._expected and not self._parked:
            return [], arrived
        parked = self._parked
        for key, item in arrived:
            parked.setdefault(key, deque()).append(item)
        replayed: list[T] = []
        self._advance(replayed)
        if self._expected:
            return replayed, []
        live = [(key, item) for key, items in parked.items() for item in items]
        parked.clear()
        return replayed, live

    def stalled(self, progressed: bool, now_ns: int) -> bool:
        """True once the replay awaited an input for `max_wait_ns` of wall time (`now_ns`,
        a timer: only a lost input makes it fire) without any progress."""
        if progressed or self._stalled_since_ns is None:
            self._stalled_since_ns = now_ns
        if not self._expected:
            self._stalled_since_ns = None
            return False
        return now_ns - self._stalled_since_ns >= self.max_wait_ns

    def skip(self) -> list[str]:
        """Give up on the replay (an awaited input never came): the keys still awaited;
        what waited goes on live with the next `order`."""
        missing = list(self._expected)
        self._expected.clear()
        self._live()
        return missing

    def written(self, offset: int) -> None:
        """Note that the batch applied last is journaled at `offset`: a resume from here
        on needs only the entries after it."""
        self.journal_from = offset + 1
        self.consumed = 0

    def _advance(self, replayed: list[T]) -> None:
        expected, parked = self._expected, self._parked
        while expected:
            items = parked.get(expected[0])
            if not items:
                return
            replayed.append(items.popleft())
            if not items:
                del parked[expected[0]]
            expected.popleft()
            self.consumed += 1
        self._live()

    def _live(self) -> None:
        self.journal_from = max(self.journal_from, self._read_end)
        self.consumed = 0
