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

Nothing here reads the wall clock; every timestamp comes from the data.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Final, TypeAlias

from risk.domain.enums import OrderEventKind, OrderType, Side
from risk.domain.ids import fill_id, order_event_id
from risk.domain.market import Tick
from risk.domain.money import ZERO, quantize
from risk.domain.order import Fill, Order, OrderEvent

Output: TypeAlias = OrderEvent | Fill

# Returned by the per-tick fast path; a tuple so no caller can mutate the shared value.
_NOTHING: Final[tuple[Output, ...]] = ()
# Sentinel "no working order can trade before this event time".
_NEVER: Final = 2**63
_BPS: Final = Decimal(10_000)
# Buffered ticks are snapshotted column by column: about 5x faster to pickle than
# 10,000 dataclass instances, which matters because Bytewax snapshots every epoch.
_TICK_FIELDS: Final = (
    "tick_id",
    "seq",
    "kind",
    "price",
    "size",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "ts_event",
    "ts_init",
)


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
    """

    __slots__ = (
        "_buffer_ns",
        "_buy_multiplier",
        "_clock",
        "_clocks",
        "_evicted_clock",
        "_fee_rate",
        "_first",
        "_min_buffered",
        "_next_eligible_ns",
        "_seen",
        "_seen_order",
        "_sell_multiplier",
        "_tick_count",
        "_ticks",
        "_used_buy",
        "_used_sell",
        "_working",
        "config",
        "instrument",
    )

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
        # Buffered ticks and, in parallel, the event-time clock (running max of
        # ts_event) at each; the clock keeps eligibility monotone even if a venue
        # stamps a tick slightly backwards.
        cap = config.max_buffered_ticks
        self._ticks: deque[Tick] = deque(maxlen=cap)
        self._clocks: deque[int] = deque(maxlen=cap)
        self._clock = -_NEVER
        self._evicted_clock = -_NEVER
        self._tick_count = 0  # ticks ever received; absolute index of the next one
        # Liquidity already taken per absolute tick index, so late orders see the rest.
        self._used_buy: dict[int, Decimal] = {}
        self._used_sell: dict[int, Decimal] = {}
        self._working: dict[str, WorkingOrder] = {}
        self._next_eligible_ns = _NEVER
        # Recent client order ids -> duplicates seen so far, with their arrival order,
        # and the order first received under each (to tell a redelivery from a reuse).
        self._seen: dict[str, int] = {}
        self._first: dict[str, Order] = {}
        self._seen_order: deque[str] = deque()

    def __getstate__(self) -> dict[str, object]:
        """Return the snapshot state, with buffered ticks stored as columns."""
        state: dict[str, object] = {
            name: getattr(self, name) for name in self.__slots__ if name != "_ticks"
        }
        state["_ticks"] = tuple(list(map(attrgetter(f), self._ticks)) for f in _TICK_FIELDS)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        """Restore a snapshot taken by `__getstate__`."""
        columns = state["_ticks"]
        for name, value in state.items():
            if name != "_ticks":
                setattr(self, name, value)
        assert isinstance(columns, tuple)
        instrument = self.instrument
        rows = zip(*columns, strict=True)
        fields = _TICK_FIELDS
        ticks = (Tick(instrument=instrument, **dict(zip(fields, r, strict=True))) for r in rows)
        self._ticks = deque(ticks, maxlen=self._clocks.maxlen)

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
            if self._first.get(coid) == order:
                # A replayed epoch of the trading flow resends identical orders: the
                # venue already has it, so a redelivery changes nothing.
                return _NOTHING
            return [self._reject_duplicate(order)]
        self._remember(coid)
        self._first[coid] = order
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
        """Buffer `tick` and fill working orders it is eligible for.

        Runs for every tick of every instrument, so the path with nothing to trade
        allocates nothing beyond the buffer slot and returns a shared empty tuple.

        Raises:
            ValueError: The tick belongs to another instrument (a wiring bug).
        """
        if tick.instrument != self.instrument:
            msg = f"paper book for {self.instrument!r} got a tick for {tick.instrument!r}"
            raise ValueError(msg)
        clock = self._clock
        if tick.ts_event > clock:
            clock = self._clock = tick.ts_event
        clocks = self._clocks
        index = self._tick_count
        self._tick_count = index + 1
        if len(clocks) == clocks.maxlen:
            # Full: the bounded deques drop their oldest entry on append.
            self._evicted_clock = clocks[0]
            if self._used_buy or self._used_sell:
                self._forget_used(index - len(clocks))
        self._ticks.append(tick)
        clocks.append(clock)
        if clocks[0] < clock - self._buffer_ns:
            self._evict(clock)
        if clock < self._next_eligible_ns:
            return _NOTHING
        return self._match_live(tick, index, clock)

    def on_ticks(self, ticks: Sequence[Tick]) -> Sequence[Output]:
        """Buffer a batch of `ticks` (in stream order) and fill what they allow.

        The same outputs, buffer and bookkeeping as `on_tick` on each in turn, at a
        fraction of the cost for a book with nothing working: one pass that appends
        each tick and its clock, matching only ticks at or past the earliest time a
        working order may trade, and one eviction at the end. Evicting once with the
        batch's last clock leaves the same buffer as evicting after every tick: the
        clocks are monotone, so every tick an earlier horizon dropped the last one
        drops too, and the minimum kept is the same; matching never reads the buffer.

        Raises:
            ValueError: A tick belongs to another instrument (a wiring bug).
        """
        instrument = self.instrument
        clock = self._clock
        clocks, buffer = self._clocks, self._ticks
        cap = self.config.max_buffered_ticks  # the deques' maxlen
        index = self._tick_count
        out: list[Output] | None = None
        for tick in ticks:
            if tick.instrument != instrument:
                msg = f"paper book for {instrument!r} got a tick for {tick.instrument!r}"
                raise ValueError(msg)
            clock = max(clock, tick.ts_event)
            if len(clocks) == cap:
                # Full: the bounded deques drop their oldest entry on append.
                self._evicted_clock = clocks[0]
                if self._used_buy or self._used_sell:
                    self._forget_used(index - cap)
            buffer.append(tick)
            clocks.append(clock)
            if clock >= self._next_eligible_ns:
                produced = self._match_live(tick, index, clock)
                if produced:
                    if out is None:
                        out = []
                    out.extend(produced)
            index += 1
        self._clock = clock
        self._tick_count = index
        if clocks and clocks[0] < clock - self._buffer_ns:
            self._evict(clock)
        return out or _NOTHING

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
        return len(self._ticks)

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
        ticks, clocks = self._ticks, self._clocks
        first = self._tick_count - len(ticks)
        while len(clocks) > keep and clocks[0] < horizon:
            ticks.popleft()
            self._evicted_clock = clocks.popleft()
            if self._used_buy or self._used_sell:
                self._forget_used(first)
            first += 1

    def _forget_used(self, index: int) -> None:
        """Drop the liquidity bookkeeping of the evicted tick number `index`."""
        self._used_buy.pop(index, None)
        self._used_sell.pop(index, None)

    def _catch_up(self, working: WorkingOrder, out: list[Output]) -> WorkingOrder | None:
        """Fill a newly accepted order from buffered ticks it is eligible for."""
        clocks = self._clocks
        eligible_ns = working.eligible_ns
        if not clocks or clocks[-1] < eligible_ns:
            return working
        # Clocks are monotone, so the eligible ticks are a suffix: find its start
        # from the right, where deque indexing is cheap.
        start = len(clocks) - 1
        while start > 0 and clocks[start - 1] >= eligible_ns:
            start -= 1
        ticks = self._ticks
        first = self._tick_count - len(ticks)
        result: WorkingOrder | None = working
        for position in range(start, len(ticks)):
            result = self._try_fill(
                working, ticks[position], first + position, clocks[position], out
            )
            if result is None:
                return None
            working = result
        return result

    def _match_live(self, tick: Tick, index: int, clock: int) -> Sequence[Output]:
        """Offer a fresh tick to every eligible working order in priority order."""
        out: list[Output] = []
        finished: list[str] = []
        working_orders = self._working
        for coid, working in list(working_orders.items()):
            if working.eligible_ns > clock:
                continue
            result = self._try_fill(working, tick, index, clock, out)
            if result is None:
                finished.append(coid)
            elif result is not working:
                working_orders[coid] = result
        if finished:
            for coid in finished:
                del working_orders[coid]
            self._refresh_next_eligible()
        return out or _NOTHING

    def _try_fill(
        self, working: WorkingOrder, tick: Tick, index: int, clock: int, out: list[Output]
    ) -> WorkingOrder | None:
        """Fill what `tick` (at event-time `clock`) allows of `working`, or expire it;
        return its new state, None when done."""
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
            touch_f = tick.ask if tick.ask is not None else tick.price
            size_f = tick.ask_size if tick.ask_size is not None else tick.size
            used = self._used_buy
        else:
            touch_f = tick.bid if tick.bid is not None else tick.price
            size_f = tick.bid_size if tick.bid_size is not None else tick.size
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
        return self._emit_fill(working, tick, quantity, price, out)

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
        tick: Tick,
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
        ts = tick.ts_event
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
                tick_id=tick.tick_id,
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
