"""A deterministic paper broker: fills orders for one instrument against its ticks.

Orders and ticks reach the gateway through different Kafka topics, so an order may
arrive after ticks that are later in event time than the order itself. To make the
outcome independent of how the two streams interleave, the book keeps a bounded
buffer of recent ticks and matches every order against exactly the ticks whose
event-time clock is at or after `order.ts_event + latency_ns`, whether those ticks
are already buffered (the order catches up on arrival) or come later. Once the gate
promises that no order before a time will come (`orders_sent`), the ticks no later
order can trade on are dropped.

Liquidity: each tick offers its touch size once per side; our working orders share
it in priority order. Priority is arrival order on the order stream, which equals
FIFO by `(ts_event, client_order_id)` when that stream is sorted (as one partition
of `hfl.orders` is). Arrival order, not a sort key, is what keeps the result
identical under every interleaving with the tick stream: an order that arrives
later can never retroactively take liquidity that an earlier arrival already used.

Time in force: an order with `expire_ns` expires (`EXPIRED`, with what it filled)
at the first tick whose event-time clock reaches it, before that tick could fill it;
a marketable limit order that finds no touch within its limit rests until then.

Ticks are kept as columns (`TickColumns`: event time and sequence number, and the
touch each side trades against), only the ones a working order or an order still to
come can trade on, so a snapshot is a few array dumps proportional to that, and a
batch of ticks for an instrument with nothing working is a few array operations.

Nothing here reads the wall clock; every timestamp comes from the data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from hashlib import blake2b
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt

from connectors.codec import TickRow
from risk.domain.enums import OrderEventKind, OrderType, Side
from risk.domain.ids import fill_id, order_event_id, tick_id
from risk.domain.market import Tick
from risk.domain.money import ZERO, quantize
from risk.domain.order import Fill, Order, OrderEvent

Output: TypeAlias = OrderEvent | Fill

# Returned by the per-tick fast path; a tuple so no caller can mutate the shared value.
_NOTHING: Final[tuple[Output, ...]] = ()
# Sentinel "no working order can trade before this event time".
_NEVER: Final = 2**63
_BPS: Final = Decimal(10_000)
# Rows of `TickColumns.touch`.
_BUY_PRICE, _BUY_SIZE, _SELL_PRICE, _SELL_SIZE = range(4)
# Rows of `TickColumns.ids`.
_TS_EVENT, _SEQ = range(2)
_MIN_ROWS: Final = 64  # the smallest buffer allocation
_FIRST_CHUNK: Final = 16  # buffered rows a late order reads first

Int64s: TypeAlias = npt.NDArray[np.int64]
Float64s: TypeAlias = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class TickColumns:
    """Ticks of one instrument, in stream order, as the columns the paper broker reads.

    A fill names its tick by `tick_id(instrument, seq, ts_event)`, the id the codec
    gives every tick it decodes, so the id itself is not kept.

    Attributes:
        ids: int64, one row per tick: `ts_event`, `seq`.
        touch: float64, one row per tick: what a buy trades against (the ask, else the
            trade price) and its size (the ask size, else the trade size), then the
            same for a sell (the bid).
    """

    ids: Int64s
    touch: Float64s

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, instrument: str, ticks: Iterable[Tick]) -> TickColumns:
        """Columns of `ticks`.

        Raises:
            ValueError: A tick belongs to another instrument (a wiring bug).
        """
        ids: list[tuple[int, int]] = []
        touch: list[tuple[float, float, float, float]] = []
        for tick in ticks:
            if tick.instrument != instrument:
                msg = f"paper book for {instrument!r} got a tick for {tick.instrument!r}"
                raise ValueError(msg)
            price, size = tick.price, tick.size
            ids.append((tick.ts_event, tick.seq))
            touch.append(
                (
                    tick.ask if tick.ask is not None else price,
                    tick.ask_size if tick.ask_size is not None else size,
                    tick.bid if tick.bid is not None else price,
                    tick.bid_size if tick.bid_size is not None else size,
                )
            )
        return cls.from_rows(ids, touch)

    @classmethod
    def decoded(cls, rows: Sequence[TickRow]) -> TickColumns:
        """Columns of ticks decoded by `connectors.codec.decode_tick_row`; the same as
        `of` gives for the `Tick`s `decode_tick` makes of those records."""
        ids = [(row[2], row[1]) for row in rows]
        # price, size, bid, ask, bid_size, ask_size: a missing one becomes NaN, which a
        # valid tick's (finite) numbers never are.
        values = np.array([row[3:] for row in rows], dtype=np.float64).reshape(-1, 6)
        price, size, bid, ask, bid_size, ask_size = values.T
        touch = np.empty((len(rows), 4), dtype=np.float64)
        for column, (given, fallback) in enumerate(
            ((ask, price), (ask_size, size), (bid, price), (bid_size, size))
        ):
            touch[:, column] = np.where(np.isnan(given), fallback, given)
        return cls(np.array(ids, dtype=np.int64).reshape(-1, 2), touch)

    @classmethod
    def from_rows(
        cls, ids: Sequence[Sequence[int]], touch: Sequence[Sequence[float | None]]
    ) -> TickColumns:
        """Columns from rows of `(ts_event, seq)` and of the four touch values."""
        return cls(
            np.array(ids, dtype=np.int64).reshape(-1, 2),
            np.array(touch, dtype=np.float64).reshape(-1, 4),
        )

    def identities(self) -> list[tuple[int, int]]:
        """Each tick's `(ts_event, seq)`, which with the instrument identify it."""
        return [(ts, seq) for ts, seq in self.ids.tolist()]

    def select(self, mask: npt.NDArray[np.bool_]) -> TickColumns:
        """The ticks where `mask` is True, in order."""
        return TickColumns(self.ids[mask], self.touch[mask])


NO_TICKS: Final = TickColumns.from_rows([], [])


@dataclass(frozen=True, slots=True, kw_only=True)
class PaperBrokerConfig:
    """How the paper broker simulates the venue.

    Attributes:
        latency_ns: Event-time delay before an order can first trade.
        slippage_bps: What market orders pay beyond the touch.
        fee_bps: Fee charged on each fill's notional.
        tick_buffer_ns: How far back in event time ticks are kept for late orders.
        min_buffered_ticks: Ticks kept whatever their age, so sparse data (daily
            bars) still has the next tick for an order that arrives after it.
        max_buffered_ticks: Hard cap on buffered ticks, whatever their age.
        max_working_orders: Orders resting at once; more are rejected.
        max_remembered_ids: Recent client order ids kept for duplicate detection.
    """

    latency_ns: int = 50_000_000
    slippage_bps: float = 1.0
    fee_bps: float = 0.5
    tick_buffer_ns: int = 60_000_000_000
    min_buffered_ticks: int = 1_000
    max_buffered_ticks: int = 10_000
    max_working_orders: int = 10_000
    max_remembered_ids: int = 10_000

    def __post_init__(self) -> None:
        """Reject a configuration that cannot describe a venue, naming every problem."""
        problems = [
            f"{name} must be >= {low}, got {value!r}"
            for name, value, low in (
                ("latency_ns", self.latency_ns, 0),
                ("slippage_bps", self.slippage_bps, 0),
                ("fee_bps", self.fee_bps, 0),
                ("tick_buffer_ns", self.tick_buffer_ns, 0),
                ("min_buffered_ticks", self.min_buffered_ticks, 0),
                ("max_buffered_ticks", self.max_buffered_ticks, 1),
                ("max_working_orders", self.max_working_orders, 1),
                ("max_remembered_ids", self.max_remembered_ids, 1),
            )
            # `not >=` also catches NaN.
            if not value >= low or value == float("inf")
        ]
        if problems:
            raise ValueError("invalid PaperBrokerConfig: " + "; ".join(problems))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkingOrder:
    """An accepted order that can still trade, with its progress so far.

    Attributes:
        order: The order as received.
        filled_quantity: Cumulative filled quantity.
        leaves_quantity: Quantity still open.
        event_count: Gateway events emitted for this order (numbers the next event id).
        fill_count: Fills emitted for this order (numbers the next fill id).
        eligible_ns: First event time at which the order may trade.
    """

    order: Order
    filled_quantity: Decimal
    leaves_quantity: Decimal
    event_count: int
    fill_count: int
    eligible_ns: int


class InstrumentBook:
    """Paper-trading state for one instrument: working orders and recent ticks.

    Pure logic, picklable and bounded: the gateway dataflow keeps one per instrument
    key and feeds it orders, ticks and cancels; it returns the events and fills.

    The tick buffer is three arrays (`_clocks`, and `TickColumns`' `ids` and `touch`)
    whose live rows are `[_lo, _hi)`: appending a batch copies it in after the live
    rows, dropping old ticks moves `_lo`, and a full allocation is compacted (or
    grown, up to twice the cap) before the next append. A snapshot holds the live
    rows only.
    """

    __slots__ = (
        "_buffer_ns",
        "_buy_multiplier",
        "_cap",
        "_clock",
        "_clocks",
        "_evicted_clock",
        "_fee_rate",
        "_first",
        "_hi",
        "_ids",
        "_lo",
        "_min_buffered",
        "_next_eligible_ns",
        "_seen",
        "_seen_order",
        "_sell_multiplier",
        "_tick_count",
        "_touch",
        "_used_buy",
        "_used_sell",
        "_working",
        "config",
        "instrument",
    )

    # Rebuilt by `__setstate__` from the live rows, so not in a snapshot.
    _BUFFER: Final = frozenset({"_clocks", "_ids", "_touch", "_lo", "_hi"})

    def __init__(self, instrument: str, config: PaperBrokerConfig | None = None) -> None:
        """Start an empty book for `instrument`."""
        self.instrument = instrument
        self.config = config = config if config is not None else PaperBrokerConfig()
        slippage = Decimal(repr(config.slippage_bps)) / _BPS
        self._buy_multiplier = 1 + slippage
        self._sell_multiplier = 1 - slippage
        self._fee_rate = Decimal(repr(config.fee_bps)) / _BPS
        self._buffer_ns = config.tick_buffer_ns
        self._min_buffered = config.min_buffered_ticks
        self._cap = config.max_buffered_ticks
        # Buffered ticks and, in parallel, the event-time clock (running max of
        # ts_event) at each; the clock keeps eligibility monotone even if a venue
        # stamps a tick slightly backwards.
        self._set_buffer(NO_TICKS.ids[:0, 0], NO_TICKS)
        self._clock = -_NEVER
        # The clock of the newest tick dropped from the buffer: an order eligible at
        # or before it is late.
        self._evicted_clock = -_NEVER
        self._tick_count = 0  # ticks ever received; absolute index of the next one
        # Liquidity already taken per absolute tick index, so late orders see the rest.
        self._used_buy: dict[int, Decimal] = {}
        self._used_sell: dict[int, Decimal] = {}
        self._working: dict[str, WorkingOrder] = {}
        self._next_eligible_ns = _NEVER
        # Recent client order ids -> duplicates seen so far, with their arrival order,
        # and the fingerprint of the order first received under each (to tell a
        # redelivery from a reuse): a snapshot copies up to `max_remembered_ids` short
        # byte strings, not as many orders' objects and Decimals (~4 us each, every epoch).
        self._seen: dict[str, int] = {}
        self._first: dict[str, bytes | None] = {}
        self._seen_order: deque[str] = deque()

    def __getstate__(self) -> dict[str, object]:
        """Return the snapshot state: the live tick rows as three arrays, however the
        allocation behind them looks (so equal books pickle equal)."""
        state: dict[str, object] = {
            name: getattr(self, name) for name in self.__slots__ if name not in self._BUFFER
        }
        lo, hi = self._lo, self._hi
        state["ticks"] = (self._clocks[lo:hi], self._ids[lo:hi], self._touch[lo:hi])
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Restore a snapshot taken by `__getstate__`."""
        ticks = state.pop("ticks")
        assert isinstance(ticks, tuple)
        clocks, ids, touch = ticks
        for name, value in state.items():
            setattr(self, name, value)
        # Copies: the next append may write into them in place.
        self._set_buffer(clocks.copy(), TickColumns(ids.copy(), touch.copy()))

    def _set_buffer(self, clocks: Int64s, ticks: TickColumns) -> None:
        self._clocks, self._ids, self._touch = clocks, ticks.ids, ticks.touch
        self._lo, self._hi = 0, len(clocks)

    def on_order(self, order: Order) -> Sequence[Output]:
        """Accept or reject `order`, then fill it from buffered ticks it is entitled to.

        Returns:
            `ACCEPTED` followed by any fills (each an `OrderEvent` then its `Fill`),
            a single `REJECTED` event, or nothing for an identical redelivery of an
            order already received.

        Raises:
            ValueError: The order belongs to another instrument (a wiring bug).
        """
        if order.instrument != self.instrument:
            msg = f"paper book for {self.instrument!r} got an order for {order.instrument!r}"
            raise ValueError(msg)
        coid = order.client_order_id
        if coid in self._seen or coid in self._working:
            first = self._first.get(coid)
            if first is not None and first == _fingerprint(order):
                # A replayed epoch of the trading flow resends identical orders: the
                # venue already has it, so a redelivery changes nothing.
                return _NOTHING
            return [self._reject_duplicate(order)]
        self._remember(coid)
        self._first[coid] = _fingerprint(order)
        eligible_ns = order.ts_event + self.config.latency_ns
        reason = self._rejection_reason(order, eligible_ns)
        if reason:
            rejected = OrderEventKind.REJECTED
            return [
                _event(
                    order,
                    1,
                    rejected,
                    filled=ZERO,
                    leaves=ZERO,
                    ts_event=order.ts_event,
                    reason=reason,
                )
            ]
        out: list[Output] = [
            _event(
                order,
                1,
                OrderEventKind.ACCEPTED,
                filled=ZERO,
                leaves=order.quantity,
                ts_event=order.ts_event,
            )
        ]
        accepted = WorkingOrder(
            order=order,
            filled_quantity=ZERO,
            leaves_quantity=order.quantity,
            event_count=1,
            fill_count=0,
            eligible_ns=eligible_ns,
        )
        working = self._catch_up(accepted, out)
        if working is not None:
            self._working[coid] = working
            self._next_eligible_ns = min(self._next_eligible_ns, eligible_ns)
        return out

    def on_tick(self, tick: Tick) -> Sequence[Output]:
        """Buffer `tick` and fill working orders it is eligible for (`on_columns`).

        Raises:
            ValueError: The tick belongs to another instrument (a wiring bug).
        """
        return self.on_columns(TickColumns.of(self.instrument, (tick,)))

    def on_ticks(self, ticks: Sequence[Tick]) -> Sequence[Output]:
        """Buffer a batch of `ticks` (in stream order) and fill what they allow
        (`on_columns`).

        Raises:
            ValueError: A tick belongs to another instrument (a wiring bug).
        """
        return self.on_columns(TickColumns.of(self.instrument, ticks))

    def on_columns(self, ticks: TickColumns) -> Sequence[Output]:
        """Buffer a batch of ticks (in stream order) and fill working orders they allow.

        The same outputs and the same book, whatever the batching, as the ticks one by
        one (a property test holds it), for a batch's cost and not a tick's when
        nothing is working:

        - the event-time clocks of the batch are one running maximum;
        - matching reads only the tick it matches, never the buffer, so it runs first,
          and only on the ticks at or past the earliest time a working order may trade
          (a suffix: the clocks are monotone);
        - the batch is then appended at once, the oldest ticks beyond the cap dropped,
          and the ones past the event-time horizon after it: the clocks are monotone,
          so every tick a per-tick horizon would have dropped the last one drops too,
          and the minimum kept is the same.
        """
        count = len(ticks)
        if not count:
            return _NOTHING
        clocks = np.maximum.accumulate(np.maximum(ticks.ids[:, _TS_EVENT], self._clock))
        last_clock = int(clocks[-1])
        out: Sequence[Output] = _NOTHING
        if self._next_eligible_ns <= last_clock:
            start = int(np.searchsorted(clocks, self._next_eligible_ns, "left"))
            out = self._match_batch(ticks, clocks, start)
        self._clock = last_clock
        self._tick_count += count
        self._append(clocks, ticks)
        if self._clocks[self._lo] < last_clock - self._buffer_ns:
            self._evict(last_clock)
        return out

    def _match_batch(self, ticks: TickColumns, clocks: Int64s, start: int) -> Sequence[Output]:
        """Offer the batch's ticks from `start` on to the working orders, each tick while
        its clock reaches the earliest time one of them may trade."""
        out: list[Output] = []
        index = self._tick_count + start  # the absolute index of tick `start`
        rows = zip(
            clocks[start:].tolist(),
            ticks.ids[start:].tolist(),
            ticks.touch[start:].tolist(),
            strict=True,
        )
        for clock, (ts_event, seq), touch in rows:
            if clock >= self._next_eligible_ns:
                self._match_live(
                    index, clock=clock, ts_event=ts_event, seq=seq, touch=touch, out=out
                )
            elif not self._working:
                break
            index += 1
        return out or _NOTHING

    def _append(self, clocks: Int64s, ticks: TickColumns) -> None:
        """Add a batch after the live rows, dropping the oldest beyond the cap."""
        cap, lo, hi = self._cap, self._lo, self._hi
        live, count = hi - lo, len(clocks)
        over = live + count - cap
        if over > 0:
            # The cap drops the oldest: buffered ones first, then the batch's own.
            if over >= live:
                self._evicted_clock = int(
                    clocks[over - live - 1] if over > live else self._clocks[hi - 1]
                )
                clocks = clocks[over - live :]
                ticks = TickColumns(ticks.ids[over - live :], ticks.touch[over - live :])
                lo = hi
            else:
                self._evicted_clock = int(self._clocks[lo + over - 1])
                lo += over
            count = len(clocks)
            live = hi - lo
        if hi + count > len(self._clocks):
            rows = max(_MIN_ROWS, 2 * (live + count))
            fresh = (
                np.empty(rows, dtype=np.int64),
                np.empty((rows, 2), dtype=np.int64),
                np.empty((rows, 4), dtype=np.float64),
            )
            for new, old in zip(fresh, (self._clocks, self._ids, self._touch), strict=True):
                new[:live] = old[lo:hi]
            self._clocks, self._ids, self._touch = fresh
            lo, hi = 0, live
        self._clocks[hi : hi + count] = clocks
        self._ids[hi : hi + count] = ticks.ids
        self._touch[hi : hi + count] = ticks.touch
        self._lo, self._hi = lo, hi + count
        if over > 0:
            self._forget_used()

    def orders_sent(self, through_ns: int) -> None:
        """Forget the ticks that no order still to come can trade on.

        `through_ns` is the gate's promise (`OrdersSent`): every order with an earlier
        `ts_event` was sent, and came before the promise on the one-partition order
        stream. An order still to come is therefore eligible at `through_ns +
        latency_ns` or later and trades only on ticks whose clock is at least that
        (`_catch_up`); orders already here never look back at buffered ticks. So the
        earlier ticks go, whatever their age and the buffer's minimum, and with them
        their liquidity bookkeeping. The fills are the same as with the whole buffer:
        only an order breaking the promise could tell, and it is rejected as late
        (`_rejection_reason`) rather than filled from whatever is left.

        This bounds the buffer, and so every snapshot of it, by how far the tick
        stream runs ahead of the gate's decisions, not by the buffer's size limits.
        """
        self._drop_before(through_ns + self.config.latency_ns, keep=0)

    def cancel(self, client_order_id: str, ts_event: int) -> Sequence[OrderEvent]:
        """Cancel a working order; an unknown or finished order yields nothing.

        The cancel takes effect on arrival, as at a real venue: fills from ticks
        processed before it stand.
        """
        working = self._working.pop(client_order_id, None)
        if working is None:
            return ()
        if working.eligible_ns == self._next_eligible_ns:
            self._refresh_next_eligible()
        event = _event(
            working.order,
            working.event_count + 1,
            OrderEventKind.CANCELED,
            filled=working.filled_quantity,
            leaves=ZERO,
            ts_event=ts_event,
        )
        return [event]

    def working_orders(self) -> tuple[WorkingOrder, ...]:
        """Return the orders still able to trade, in priority order."""
        return tuple(self._working.values())

    def buffered_tick_count(self) -> int:
        """Return how many ticks the buffer holds (bounded by the config)."""
        return self._hi - self._lo

    def _rejection_reason(self, order: Order, eligible_ns: int) -> str:
        """Say why `order` cannot be accepted, or return "" when it can."""
        quantity = order.quantity
        if not quantity.is_finite() or quantity <= 0:
            return f"quantity must be positive, got {quantity}"
        if quantize(quantity) != quantity:
            return f"quantity {quantity} has more than nine decimal places"
        if order.order_type is OrderType.LIMIT:
            limit = order.limit_price
            if limit is None:
                return "limit order without a limit price"
            if not limit.is_finite() or limit <= 0:
                return f"limit price must be positive, got {limit}"
        if len(self._working) >= self.config.max_working_orders:
            return f"too many working orders ({len(self._working)})"
        if eligible_ns <= self._evicted_clock:
            # Ticks this order was entitled to are gone: filling from what is left
            # would depend on arrival timing, so refuse loudly instead.
            return "late: ticks at its eligible time already left the buffer"
        return ""

    def _reject_duplicate(self, order: Order) -> OrderEvent:
        """Reject a reused client order id without touching the original order.

        Duplicate rejections are numbered -1, -2, ... so their event ids never
        collide with the original order's own events (numbered from 1).
        """
        coid = order.client_order_id
        count = self._seen.get(coid, 0) + 1
        self._remember(coid, count)
        return OrderEvent(
            event_id=order_event_id(coid, -count),
            client_order_id=coid,
            account=order.account,
            instrument=order.instrument,
            kind=OrderEventKind.REJECTED,
            filled_quantity=ZERO,
            leaves_quantity=ZERO,
            reason="duplicate client_order_id",
            ts_event=order.ts_event,
            ts_init=order.ts_event,
        )

    def _remember(self, coid: str, duplicates: int = 0) -> None:
        """Record `coid` as seen, forgetting the oldest id beyond the bound."""
        seen = self._seen
        if coid not in seen:
            order = self._seen_order
            if len(order) >= self.config.max_remembered_ids:
                forgotten = order.popleft()
                del seen[forgotten]
                self._first.pop(forgotten, None)
            order.append(coid)
        seen[coid] = duplicates

    def _evict(self, clock: int) -> None:
        """Drop ticks older than the buffer horizon in event time, keeping the minimum."""
        self._drop_before(clock - self._buffer_ns, keep=self._min_buffered)

    def _drop_before(self, horizon: int, *, keep: int) -> None:
        """Drop the oldest ticks while their clock is before `horizon`, keeping `keep`."""
        lo, hi = self._lo, self._hi
        if hi - lo <= keep or not self._clocks[lo] < horizon:
            return
        dropped = int(np.searchsorted(self._clocks[lo:hi], horizon, "left"))
        dropped = min(dropped, hi - lo - keep)
        self._evicted_clock = int(self._clocks[lo + dropped - 1])
        self._lo = lo + dropped
        self._forget_used()

    def _forget_used(self) -> None:
        """Drop the liquidity bookkeeping of ticks no longer buffered."""
        if self._used_buy or self._used_sell:
            first = self._tick_count - (self._hi - self._lo)
            for used in (self._used_buy, self._used_sell):
                for index in [index for index in used if index < first]:
                    del used[index]

    def _catch_up(self, working: WorkingOrder, out: list[Output]) -> WorkingOrder | None:
        """Fill a newly accepted order from buffered ticks it is eligible for."""
        lo, hi = self._lo, self._hi
        eligible_ns = working.eligible_ns
        if lo == hi or self._clocks[hi - 1] < eligible_ns:
            return working
        # Clocks are monotone, so the eligible ticks are a suffix. Most orders finish
        # on its first ticks: read it in growing chunks, not all at once.
        start = lo + int(np.searchsorted(self._clocks[lo:hi], eligible_ns, "left"))
        index = self._tick_count - (hi - start)  # the absolute index of row `start`
        chunk = _FIRST_CHUNK
        while start < hi:
            end = min(hi, start + chunk)
            rows = zip(
                self._clocks[start:end].tolist(),
                self._ids[start:end].tolist(),
                self._touch[start:end].tolist(),
                strict=True,
            )
            for clock, (ts_event, seq), touch in rows:
                result = self._try_fill(
                    working, index, clock=clock, ts_event=ts_event, seq=seq, touch=touch, out=out
                )
                if result is None:
                    return None
                working = result
                index += 1
            start, chunk = end, chunk * 4
        return working

    def _match_live(
        self,
        index: int,
        *,
        clock: int,
        ts_event: int,
        seq: int,
        touch: list[float],
        out: list[Output],
    ) -> None:
        """Offer a fresh tick to every eligible working order in priority order."""
        finished: list[str] = []
        working_orders = self._working
        for coid, working in list(working_orders.items()):
            if working.eligible_ns > clock:
                continue
            result = self._try_fill(
                working, index, clock=clock, ts_event=ts_event, seq=seq, touch=touch, out=out
            )
            if result is None:
                finished.append(coid)
            elif result is not working:
                working_orders[coid] = result
        if finished:
            for coid in finished:
                del working_orders[coid]
            self._refresh_next_eligible()

    def _try_fill(
        self,
        working: WorkingOrder,
        index: int,
        *,
        clock: int,
        ts_event: int,
        seq: int,
        touch: list[float],
        out: list[Output],
    ) -> WorkingOrder | None:
        """Fill what tick number `index` (at event-time `clock`, its `touch` a
        `TickColumns.touch` row) allows of `working`, or expire it; return its new
        state, None when done."""
        order = working.order
        expire_ns = order.expire_ns
        if expire_ns is not None and clock >= expire_ns:
            out.append(
                _event(
                    order,
                    working.event_count + 1,
                    OrderEventKind.EXPIRED,
                    filled=working.filled_quantity,
                    leaves=ZERO,
                    ts_event=expire_ns,
                )
            )
            return None
        buy = order.side is Side.BUY
        if buy:
            touch_f, size_f = touch[_BUY_PRICE], touch[_BUY_SIZE]
            used = self._used_buy
        else:
            touch_f, size_f = touch[_SELL_PRICE], touch[_SELL_SIZE]
            used = self._used_sell
        if size_f <= 0:
            return working
        limit = order.limit_price
        limit_order = order.order_type is OrderType.LIMIT
        if limit_order and limit is not None and _clearly_uncrossed(buy, touch_f, limit):
            # Resting limits see every tick; skip the Decimal work when floats settle it.
            return working
        taken = used.get(index, ZERO)
        quantity = min(working.leaves_quantity, quantize(size_f) - taken)
        if quantity <= 0:
            return working
        price = self._fill_price(order, buy, quantize(touch_f))
        if price is None:
            return working
        used[index] = taken + quantity
        return self._emit_fill(
            working, ts_event=ts_event, seq=seq, quantity=quantity, price=price, out=out
        )

    def _fill_price(self, order: Order, buy: bool, touch: Decimal) -> Decimal | None:
        """Price at which `order` trades against `touch`, or None when not crossed."""
        if order.order_type is OrderType.MARKET:
            multiplier = self._buy_multiplier if buy else self._sell_multiplier
            return quantize(touch * multiplier)
        limit = order.limit_price
        assert limit is not None  # guaranteed by _rejection_reason
        if buy:
            return touch if touch <= limit else None
        return touch if touch >= limit else None

    def _emit_fill(
        self,
        working: WorkingOrder,
        *,
        ts_event: int,
        seq: int,
        quantity: Decimal,
        price: Decimal,
        out: list[Output],
    ) -> WorkingOrder | None:
        """Append the order event and fill for one execution; return the new state."""
        order = working.order
        coid = order.client_order_id
        filled = working.filled_quantity + quantity
        leaves = working.leaves_quantity - quantity
        events = working.event_count + 1
        fills = working.fill_count + 1
        ts = ts_event
        kind = OrderEventKind.FILLED if leaves == 0 else OrderEventKind.PARTIALLY_FILLED
        out.append(_event(order, events, kind, filled=filled, leaves=leaves, ts_event=ts))
        out.append(
            Fill(
                fill_id=fill_id(coid, fills),
                client_order_id=coid,
                account=order.account,
                instrument=order.instrument,
                side=order.side,
                quantity=quantity,
                price=price,
                fee=quantize(quantity * price * self._fee_rate),
                leaves_quantity=leaves,
                tick_id=tick_id(order.instrument, seq, ts),
                ts_event=ts,
                ts_init=ts,
            )
        )
        if leaves == 0:
            return None
        return WorkingOrder(
            order=order,
            filled_quantity=filled,
            leaves_quantity=leaves,
            event_count=events,
            fill_count=fills,
            eligible_ns=working.eligible_ns,
        )

    def _refresh_next_eligible(self) -> None:
        """Recompute the earliest event time at which any working order may trade."""
        self._next_eligible_ns = min(
            (working.eligible_ns for working in self._working.values()), default=_NEVER
        )


def _event(
    order: Order,
    seq: int,
    kind: OrderEventKind,
    *,
    filled: Decimal,
    leaves: Decimal,
    ts_event: int,
    reason: str = "",
) -> OrderEvent:
    """Build the `seq`-th gateway event of `order`, stamped deterministically."""
    return OrderEvent(
        event_id=order_event_id(order.client_order_id, seq),
        client_order_id=order.client_order_id,
        account=order.account,
        instrument=order.instrument,
        kind=kind,
        filled_quantity=filled,
        leaves_quantity=leaves,
        reason=reason,
        ts_event=ts_event,
        ts_init=ts_event,
    )


def _fingerprint(order: Order) -> bytes | None:
    """A digest equal for two orders exactly when they are equal (`==`), or None for an
    order equal to none (a NaN quantity or limit: NaN equals nothing).

    Decimals enter by value, as `==` compares them: `Decimal("10")` and
    `Decimal("10.0")` give the same digest, as do `0` and `-0`.

    >>> from dataclasses import replace
    >>> order = Order(client_order_id="o", signal_id="s", account="a", instrument="X",
    ...               side=Side.BUY, quantity=Decimal("10"), order_type=OrderType.MARKET,
    ...               limit_price=None, ts_event=1, ts_init=1)
    >>> _fingerprint(order) == _fingerprint(replace(order, quantity=Decimal("10.00")))
    True
    >>> _fingerprint(order) == _fingerprint(replace(order, signal_id="t"))
    False
    >>> _fingerprint(replace(order, quantity=Decimal("NaN"))) is None
    True
    """
    values: list[object] = []
    for value in (order.quantity, order.limit_price):
        if value is not None and value.is_nan():
            return None
        values.append(None if value is None else _by_value(value))
    key = (
        order.client_order_id,
        order.signal_id,
        order.account,
        order.instrument,
        order.side.value,
        order.order_type.value,
        order.ts_event,
        order.ts_init,
        order.expire_ns,
        *values,
    )
    return blake2b(repr(key).encode(), digest_size=16).digest()


def _by_value(value: Decimal) -> object:
    """What identifies a non-NaN Decimal's value: its sign, digits and exponent without
    trailing zeros (exact, unlike `normalize`, which rounds to the context precision).

    >>> _by_value(Decimal("1.50")) == _by_value(Decimal("1.5")), _by_value(Decimal("-0"))
    (True, 0)
    """
    if value.is_infinite():
        return str(value)
    if value.is_zero():
        return 0
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    trailing = len(digits) - len(bytes(digits).rstrip(b"\0"))
    return sign, digits[: len(digits) - trailing], exponent + trailing


def _clearly_uncrossed(buy: bool, touch: float, limit: Decimal) -> bool:
    """Tell cheaply, in floats, that a limit order certainly does not cross `touch`.

    The margin exceeds quantisation (0.5e-9) plus float rounding, so a True here
    always agrees with the exact Decimal comparison; False means "compare exactly".

    >>> _clearly_uncrossed(True, 101.0, Decimal("100"))
    True
    >>> _clearly_uncrossed(True, 100.0000000004, Decimal("100"))
    False
    >>> _clearly_uncrossed(False, 99.0, Decimal("100"))
    True
    """
    limit_f = float(limit)
    margin = 1e-9 + 1e-12 * abs(limit_f)
    return touch > limit_f + margin if buy else touch < limit_f - margin
