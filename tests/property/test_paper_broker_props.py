"""Property tests: the paper broker's outcome does not depend on stream interleaving."""

from __future__ import annotations

import pickle
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.gateway import InstrumentBook, PaperBrokerConfig, TickColumns
from dataflows.flows.gateway import BookState, TickBatch, handle
from risk.domain import (
    Fill,
    FillsThrough,
    Order,
    OrderEvent,
    OrderEventKind,
    OrdersSent,
    OrderType,
    Side,
    Tick,
    TickKind,
)
from risk.domain.ids import tick_id

INSTRUMENT = "XYZ"
MS = 1_000_000
CONFIG = PaperBrokerConfig(latency_ns=20 * MS)

sizes = st.sampled_from([None, 0.0, 0.5, 1.0, 1.25, 2.0, 5.0])
prices = st.integers(min_value=190, max_value=210).map(lambda n: n / 2)


@st.composite
def tick_streams(draw: st.DrawFn) -> list[Tick]:
    """Ticks with nondecreasing event times, mixing quotes (some sides missing) and trades."""
    ticks: list[Tick] = []
    ts = 0
    for seq in range(draw(st.integers(min_value=0, max_value=25))):
        ts += draw(st.sampled_from([0, 5, 10, 30])) * MS
        mid = draw(prices)
        is_quote = draw(st.booleans())
        spread = draw(st.sampled_from([0.01, 0.5])) if is_quote else 0.0
        ticks.append(
            Tick(
                tick_id=tick_id(INSTRUMENT, seq, ts),
                instrument=INSTRUMENT,
                seq=seq,
                kind=TickKind.QUOTE if is_quote else TickKind.TRADE,
                price=mid,
                size=0.0 if is_quote else draw(st.sampled_from([0.0, 1.0, 3.0])),
                bid=mid - spread if is_quote and draw(st.booleans()) else None,
                ask=mid + spread if is_quote and draw(st.booleans()) else None,
                bid_size=draw(sizes) if is_quote else None,
                ask_size=draw(sizes) if is_quote else None,
                ts_event=ts,
                ts_init=ts,
            )
        )
    return ticks


@st.composite
def order_streams(draw: st.DrawFn) -> list[Order]:
    """Orders in arbitrary event-time order, some invalid and some reusing an id."""
    orders: list[Order] = []
    for n in range(draw(st.integers(min_value=0, max_value=8))):
        reuse = orders and draw(st.integers(min_value=0, max_value=5)) == 0
        coid = orders[draw(st.integers(0, len(orders) - 1))].client_order_id if reuse else f"o{n}"
        order_type = draw(st.sampled_from(OrderType))
        no_limit = order_type is OrderType.MARKET or draw(st.integers(0, 9)) == 0
        ts = draw(st.integers(min_value=0, max_value=300)) * MS
        orders.append(
            Order(
                client_order_id=coid,
                signal_id=f"s{n}",
                account="acct",
                instrument=INSTRUMENT,
                side=draw(st.sampled_from(Side)),
                quantity=draw(st.sampled_from(["0", "0.5", "1", "2.25", "4", "7"]).map(Decimal)),
                order_type=order_type,
                limit_price=None if no_limit else Decimal(draw(prices)),
                ts_event=ts,
                ts_init=ts,
            )
        )
    return orders


def interleave(
    orders: Sequence[Order], ticks: Sequence[Tick], picks: Sequence[bool]
) -> list[Order | Tick]:
    """Merge the two streams, each kept in its own order; `picks` True takes an order."""
    merged: list[Order | Tick] = []
    o = t = 0
    for take_order in picks:
        if take_order and o < len(orders):
            merged.append(orders[o])
            o += 1
        elif t < len(ticks):
            merged.append(ticks[t])
            t += 1
    return [*merged, *orders[o:], *ticks[t:]]


def run(book: InstrumentBook, stream: Iterable[Order | Tick]) -> list[OrderEvent | Fill]:
    """Feed a merged stream to `book`, collecting every output."""
    out: list[OrderEvent | Fill] = []
    for item in stream:
        out.extend(book.on_order(item) if isinstance(item, Order) else book.on_tick(item))
    return out


def by_id(outputs: Iterable[OrderEvent | Fill]) -> list[OrderEvent | Fill]:
    """Sort outputs by natural id so multisets compare as lists."""
    return sorted(outputs, key=lambda o: o.fill_id if isinstance(o, Fill) else o.event_id)


@settings(max_examples=300, deadline=None)
@given(
    orders=order_streams(),
    ticks=tick_streams(),
    picks=st.lists(st.booleans(), max_size=40),
)
def test_any_interleaving_gives_same_events_and_fills(
    orders: list[Order], ticks: list[Tick], picks: list[bool]
) -> None:
    orders_first = by_id(run(InstrumentBook(INSTRUMENT, CONFIG), [*orders, *ticks]))
    ticks_first = by_id(run(InstrumentBook(INSTRUMENT, CONFIG), [*ticks, *orders]))
    mixed = by_id(run(InstrumentBook(INSTRUMENT, CONFIG), interleave(orders, ticks, picks)))
    assert mixed == orders_first == ticks_first


@settings(max_examples=200, deadline=None)
@given(
    orders=order_streams(),
    ticks=tick_streams(),
    picks=st.lists(st.booleans(), max_size=40),
    cut=st.integers(min_value=0, max_value=40),
)
def test_snapshot_at_any_point_resumes_identically(
    orders: list[Order], ticks: list[Tick], picks: list[bool], cut: int
) -> None:
    stream = interleave(orders, ticks, picks)
    whole = run(InstrumentBook(INSTRUMENT, CONFIG), stream)
    book = InstrumentBook(INSTRUMENT, CONFIG)
    head = run(book, stream[:cut])
    assert head + run(pickle.loads(pickle.dumps(book)), stream[cut:]) == whole


@settings(max_examples=300, deadline=None)
@given(orders=order_streams(), ticks=tick_streams(), picks=st.lists(st.booleans(), max_size=40))
def test_fills_never_exceed_order_or_tick_liquidity(
    orders: list[Order], ticks: list[Tick], picks: list[bool]
) -> None:
    out = run(InstrumentBook(INSTRUMENT, CONFIG), interleave(orders, ticks, picks))
    first_seen: dict[str, Order] = {}
    for order in orders:
        first_seen.setdefault(order.client_order_id, order)
    filled: dict[str, Decimal] = defaultdict(Decimal)
    taken: dict[tuple[str, Side], Decimal] = defaultdict(Decimal)
    tick_by_id = {tick.tick_id: tick for tick in ticks}
    for fill in (o for o in out if isinstance(o, Fill)):
        order = first_seen[fill.client_order_id]
        assert fill.quantity > 0
        filled[fill.client_order_id] += fill.quantity
        assert fill.leaves_quantity == order.quantity - filled[fill.client_order_id] >= 0
        tick = tick_by_id[fill.tick_id]
        assert tick.ts_event >= order.ts_event + CONFIG.latency_ns
        assert fill.ts_event == fill.ts_init == tick.ts_event
        taken[fill.tick_id, fill.side] += fill.quantity
    for (tid, side), quantity in taken.items():
        tick = tick_by_id[tid]
        touch = tick.ask_size if side is Side.BUY else tick.bid_size
        available = touch if touch is not None else tick.size
        assert quantity <= Decimal(repr(available))
    terminal = [e for e in out if isinstance(e, OrderEvent) and e.kind is OrderEventKind.FILLED]
    for event in terminal:
        assert filled[event.client_order_id] == first_seen[event.client_order_id].quantity


def consumed(stream: Sequence[Order | Tick]) -> tuple[int, int]:
    """How many orders and ticks a prefix of a merged stream holds (the input offsets)."""
    orders = sum(isinstance(item, Order) for item in stream)
    return orders, len(stream) - orders


@dataclass(frozen=True, slots=True)
class Kill:
    """A gateway run killed -9: the input interleavings before and after, where the last
    snapshot was taken and where the kill came (positions in the first interleaving)."""

    orders: list[Order]
    ticks: list[Tick]
    picks: list[bool]
    replay_picks: list[bool]
    snapshot_at: int
    killed_at: int


@st.composite
def kills(draw: st.DrawFn, steps: int) -> Kill:
    """Kills within the first `steps` items of the merged input."""
    picks = st.lists(st.booleans(), max_size=steps)
    snapshot_at, killed_at = sorted(draw(st.tuples(st.integers(0, steps), st.integers(0, steps))))
    return Kill(
        draw(order_streams()),
        draw(tick_streams()),
        draw(picks),
        draw(picks),
        snapshot_at,
        killed_at,
    )


@settings(max_examples=300, deadline=None)
@given(kill=kills(40))
def test_kill_after_a_snapshot_and_replay_in_another_interleaving_emits_golden(kill: Kill) -> None:
    """What a gateway killed -9 does: snapshot, run on, die, resume from the snapshot.

    Everything emitted before the kill stays in the topic; the restarted book re-reads
    both inputs from the snapshot's offsets, interleaved however they now arrive. Every
    record it emits, again or new, equals the uninterrupted run's record with that id,
    and together they are exactly the uninterrupted run's records.
    """
    stream = interleave(kill.orders, kill.ticks, kill.picks)
    golden = {_id(out): out for out in run(InstrumentBook(INSTRUMENT, CONFIG), stream)}
    book = InstrumentBook(INSTRUMENT, CONFIG)
    emitted = run(book, stream[: kill.snapshot_at])
    snapshot = pickle.dumps(book)
    emitted += run(book, stream[kill.snapshot_at : kill.killed_at])
    o, t = consumed(stream[: kill.snapshot_at])
    replay = interleave(kill.orders[o:], kill.ticks[t:], kill.replay_picks)
    emitted += run(pickle.loads(snapshot), replay)
    assert all(golden[_id(out)] == out for out in emitted)
    assert {_id(out) for out in emitted} == golden.keys()


def _id(out: OrderEvent | Fill) -> str:
    return out.fill_id if isinstance(out, Fill) else out.event_id


def with_progress(
    orders: Sequence[Order], ticks: Sequence[Tick]
) -> tuple[list[Order | OrdersSent], list[TickBatch]]:
    """The two gateway inputs with their progress: the gate's promise after each order
    (sent in event-time order) and each tick in a batch of its own, with its clock."""
    promised: list[Order | OrdersSent] = []
    for order in sorted(orders, key=lambda o: o.ts_event):
        promised += [order, _sent(order.ts_event)]
    promised.append(_sent(10**12))
    clocked = [
        TickBatch(INSTRUMENT, tick.ts_event, TickColumns.of(INSTRUMENT, (tick,))) for tick in ticks
    ]
    return promised, clocked


def _sent(through_ns: int) -> OrdersSent:
    return OrdersSent(
        progress_id=f"p{through_ns}",
        account="acct",
        through_ns=through_ns,
        ts_event=through_ns,
        ts_init=through_ns,
    )


@settings(max_examples=300, deadline=None)
@given(
    orders=order_streams(),
    ticks=tick_streams(),
    picks=st.lists(st.booleans(), max_size=80),
)
def test_no_fill_before_a_progress_marker_comes_after_it(
    orders: list[Order], ticks: list[Tick], picks: list[bool]
) -> None:
    """`FillsThrough(P)` is a promise: whatever the interleaving, no fill before P follows."""
    promised, clocked = with_progress(orders, ticks)
    state = BookState(CONFIG)
    out: list[object] = []
    for item in interleave(promised, clocked, picks):  # type: ignore[arg-type]
        out += handle(state, [item])
    for position, marker in enumerate(out):
        if isinstance(marker, FillsThrough):
            late = [
                o for o in out[position:] if isinstance(o, Fill) and o.ts_event < marker.through_ns
            ]
            assert late == []
    in_time_order = sorted(orders, key=lambda o: o.ts_event)
    expected = run(InstrumentBook(INSTRUMENT, CONFIG), [*in_time_order, *ticks])
    assert by_id(o for o in out if not isinstance(o, FillsThrough)) == by_id(expected)  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(kill=kills(80))
def test_gateway_killed_and_replayed_with_promises_emits_what_an_untrimmed_book_does(
    kill: Kill,
) -> None:
    """The gateway step, whose books drop the ticks the gate's promises rule out,
    snapshotted, run on, killed and resumed in another interleaving: every order event
    and fill it emits, again or new, is the one a book that never drops a tick emits,
    and together they are all of them."""
    golden_book = InstrumentBook(INSTRUMENT, CONFIG)
    in_time_order = sorted(kill.orders, key=lambda o: o.ts_event)
    golden = {_id(out): out for out in run(golden_book, [*in_time_order, *kill.ticks])}
    promised, clocked = with_progress(kill.orders, kill.ticks)
    stream = interleave(promised, clocked, kill.picks)  # type: ignore[arg-type]
    state = BookState(CONFIG)
    emitted = _handle_each(state, stream[: kill.snapshot_at])
    snapshot = pickle.dumps(state)
    emitted += _handle_each(state, stream[kill.snapshot_at : kill.killed_at])
    sent = sum(isinstance(item, Order | OrdersSent) for item in stream[: kill.snapshot_at])
    replay = interleave(
        promised[sent:],  # type: ignore[arg-type]
        clocked[kill.snapshot_at - sent :],  # type: ignore[arg-type]
        kill.replay_picks,
    )
    emitted += _handle_each(pickle.loads(snapshot), replay)
    reports = [out for out in emitted if not isinstance(out, FillsThrough)]
    assert all(golden[_id(out)] == out for out in reports)  # type: ignore[arg-type]
    assert {_id(out) for out in reports} == golden.keys()  # type: ignore[arg-type]


def _handle_each(state: BookState, items: Iterable[object]) -> list[object]:
    out: list[object] = []
    for item in items:
        out += handle(state, [item])  # type: ignore[list-item]
    return out


def run_batched(
    book: InstrumentBook, stream: Sequence[Order | Tick], cuts: Sequence[int]
) -> list[OrderEvent | Fill]:
    """Feed `stream` to `book` with consecutive ticks in batches (`on_ticks`), a batch
    ending at each of `cuts` (positions in the stream) and before every order."""
    out: list[OrderEvent | Fill] = []
    pending: list[Tick] = []
    ends = set(cuts)
    for position, item in enumerate(stream):
        if isinstance(item, Order):
            out.extend(book.on_ticks(pending))
            pending = []
            out.extend(book.on_order(item))
        else:
            pending.append(item)
            if position in ends:
                out.extend(book.on_ticks(pending))
                pending = []
    out.extend(book.on_ticks(pending))
    return out


@settings(max_examples=300, deadline=None)
@given(
    ticks=tick_streams(),
    orders=order_streams(),
    picks=st.lists(st.booleans(), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=10),
    buffered=st.integers(min_value=1, max_value=6),
)
def test_ticks_in_batches_give_what_ticks_one_by_one_give(
    ticks: list[Tick],
    orders: list[Order],
    picks: list[bool],
    cuts: list[int],
    buffered: int,
) -> None:
    # A small buffer so both the size cap and the event-time horizon evict mid-batch.
    config = PaperBrokerConfig(
        latency_ns=20 * MS,
        tick_buffer_ns=40 * MS,
        min_buffered_ticks=min(buffered, 2),
        max_buffered_ticks=buffered,
    )
    stream = interleave(orders, ticks, picks)
    one, batched = InstrumentBook(INSTRUMENT, config), InstrumentBook(INSTRUMENT, config)

    assert run_batched(batched, stream, cuts) == run(one, stream)
    assert pickle.dumps(batched) == pickle.dumps(one)
