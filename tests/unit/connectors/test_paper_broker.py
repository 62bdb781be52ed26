"""Unit tests for the deterministic paper broker (connectors.gateway.paper)."""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from connectors.gateway import InstrumentBook, PaperBrokerConfig, TickColumns
from risk.domain import Fill, Order, OrderEvent, OrderEventKind, OrderType, Side, Tick, TickKind
from risk.domain.ids import fill_id, order_event_id, tick_id

INSTRUMENT = "XYZ"
MS = 1_000_000
LATENCY_NS = 50 * MS


def make_tick(
    seq: int,
    ts_ms: int,
    *,
    bid: float | None = 99.99,
    ask: float | None = 100.0,
    bid_size: float | None = 10.0,
    ask_size: float | None = 10.0,
    price: float | None = None,
    size: float = 0.0,
    kind: TickKind = TickKind.QUOTE,
) -> Tick:
    """Build a tick on INSTRUMENT at `ts_ms` milliseconds."""
    if price is None:
        price = (bid + ask) / 2 if bid is not None and ask is not None else 100.0
    return Tick(
        tick_id=tick_id(INSTRUMENT, seq, ts_ms * MS),
        instrument=INSTRUMENT,
        seq=seq,
        kind=kind,
        price=price,
        size=size,
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        ts_event=ts_ms * MS,
        ts_init=ts_ms * MS + 1,
    )


def make_trade(seq: int, ts_ms: int, price: float, size: float) -> Tick:
    """Build a trade print with no touch on INSTRUMENT."""
    return make_tick(
        seq,
        ts_ms,
        bid=None,
        ask=None,
        bid_size=None,
        ask_size=None,
        price=price,
        size=size,
        kind=TickKind.TRADE,
    )


def make_order(
    coid: str,
    ts_ms: int,
    *,
    side: Side = Side.BUY,
    quantity: str = "5",
    limit: str | None = None,
    order_type: OrderType | None = None,
) -> Order:
    """Build an order; a limit price makes it a limit order unless told otherwise."""
    if order_type is None:
        order_type = OrderType.MARKET if limit is None else OrderType.LIMIT
    return Order(
        client_order_id=coid,
        signal_id=f"sig-{coid}",
        account="acct",
        instrument=INSTRUMENT,
        side=side,
        quantity=Decimal(quantity),
        order_type=order_type,
        limit_price=None if limit is None else Decimal(limit),
        ts_event=ts_ms * MS,
        ts_init=ts_ms * MS + 7,
    )


def fills(outputs: Iterable[OrderEvent | Fill]) -> list[Fill]:
    """Keep only the fills."""
    return [out for out in outputs if isinstance(out, Fill)]


def events(outputs: Iterable[OrderEvent | Fill]) -> list[OrderEvent]:
    """Keep only the order events."""
    return [out for out in outputs if isinstance(out, OrderEvent)]


def run(book: InstrumentBook, stream: Sequence[Order | Tick]) -> list[OrderEvent | Fill]:
    """Feed a merged stream of orders and ticks to `book`, collecting every output."""
    out: list[OrderEvent | Fill] = []
    for item in stream:
        out.extend(book.on_order(item) if isinstance(item, Order) else book.on_tick(item))
    return out


def by_id(outputs: Iterable[OrderEvent | Fill]) -> list[OrderEvent | Fill]:
    """Sort outputs by their natural id so multisets compare as lists."""
    return sorted(outputs, key=lambda o: o.fill_id if isinstance(o, Fill) else o.event_id)


def test_on_order_valid_emits_accepted_with_full_leaves() -> None:
    book = InstrumentBook(INSTRUMENT)
    (accepted,) = book.on_order(make_order("o1", 0, quantity="5"))
    assert accepted == OrderEvent(
        event_id=order_event_id("o1", 1),
        client_order_id="o1",
        account="acct",
        instrument=INSTRUMENT,
        kind=OrderEventKind.ACCEPTED,
        filled_quantity=Decimal(0),
        leaves_quantity=Decimal(5),
        ts_event=0,
        ts_init=0,
    )
    assert [w.order.client_order_id for w in book.working_orders()] == ["o1"]


def test_market_buy_fills_at_first_tick_after_latency_with_slippage_and_fee() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, quantity="5"))
    assert book.on_tick(make_tick(1, 49, ask=90.0)) == ()  # inside the latency
    out = book.on_tick(make_tick(2, 50, ask=100.0))
    event, fill = out
    assert fill == Fill(
        fill_id=fill_id("o1", 1),
        client_order_id="o1",
        account="acct",
        instrument=INSTRUMENT,
        side=Side.BUY,
        quantity=Decimal("5"),
        price=Decimal("100.010000000"),  # 100 * (1 + 1bp)
        fee=Decimal("0.025002500"),  # 5 * 100.01 * 0.5bp
        leaves_quantity=Decimal(0),
        tick_id=tick_id(INSTRUMENT, 2, 50 * MS),
        ts_event=50 * MS,
        ts_init=50 * MS,
    )
    assert event.event_id == order_event_id("o1", 2)
    assert (event.kind, event.filled_quantity, event.leaves_quantity) == (
        OrderEventKind.FILLED,
        Decimal(5),
        Decimal(0),
    )
    assert book.working_orders() == ()
    assert book.on_tick(make_tick(3, 60)) == ()


def test_market_sell_fills_at_bid_less_slippage() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(slippage_bps=2.5, fee_bps=1.0))
    book.on_order(make_order("o1", 0, side=Side.SELL, quantity="3"))
    (fill,) = fills(book.on_tick(make_tick(1, 60, bid=200.0)))
    assert fill.price == Decimal("199.950000000")  # 200 * (1 - 2.5bp)
    assert fill.fee == Decimal("0.059985000")  # 3 * 199.95 * 1bp
    assert fill.side is Side.SELL


def test_market_order_without_touch_uses_trade_price_and_size() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(slippage_bps=0.0, fee_bps=0.0))
    book.on_order(make_order("o1", 0, quantity="5"))
    (fill,) = fills(book.on_tick(make_trade(1, 60, price=50.5, size=3.0)))
    assert (fill.price, fill.quantity, fill.fee) == (Decimal("50.5"), Decimal(3), Decimal(0))
    assert fill.leaves_quantity == Decimal(2)


@pytest.mark.parametrize(
    ("side", "limit", "uncrossed", "crossed", "expected_price"),
    [
        (Side.BUY, "100", {"ask": 100.5}, {"ask": 99.5}, "99.5"),
        (Side.BUY, "100", {"ask": 100.01}, {"ask": 100.0}, "100"),
        (Side.SELL, "100", {"bid": 99.5}, {"bid": 100.25}, "100.25"),
        (Side.SELL, "100", {"bid": 99.99}, {"bid": 100.0}, "100"),
    ],
)
def test_limit_order_fills_only_when_crossed_at_touch_without_slippage(
    side: Side,
    limit: str,
    uncrossed: dict[str, float],
    crossed: dict[str, float],
    expected_price: str,
) -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, side=side, limit=limit))
    quote = {"bid": 99.0, "ask": 101.0}
    assert book.on_tick(make_tick(1, 60, **(quote | uncrossed))) == ()
    assert len(book.working_orders()) == 1
    (fill,) = fills(book.on_tick(make_tick(2, 70, **(quote | crossed))))
    assert fill.price == Decimal(expected_price)
    assert book.working_orders() == ()


def test_market_order_carrying_a_limit_price_ignores_it() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(slippage_bps=0.0))
    book.on_order(make_order("o1", 0, limit="1", order_type=OrderType.MARKET))
    (fill,) = fills(book.on_tick(make_tick(1, 60, ask=100.0)))
    assert fill.price == Decimal(100)


def test_limit_buy_on_trade_tick_crosses_on_trade_price() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, limit="100"))
    assert book.on_tick(make_trade(1, 60, price=100.5, size=9.0)) == ()
    (fill,) = fills(book.on_tick(make_trade(2, 61, price=99.75, size=9.0)))
    assert fill.price == Decimal("99.75")


def test_partial_fills_over_several_ticks_sum_to_quantity() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, quantity="10"))
    outputs = [
        out for seq in (1, 2, 3) for out in book.on_tick(make_tick(seq, 50 + seq, ask_size=4.0))
    ]
    got = fills(outputs)
    assert [f.quantity for f in got] == [Decimal(4), Decimal(4), Decimal(2)]
    assert sum(f.quantity for f in got) == Decimal(10)
    assert [f.leaves_quantity for f in got] == [Decimal(6), Decimal(2), Decimal(0)]
    assert [f.fill_id for f in got] == [fill_id("o1", n) for n in (1, 2, 3)]
    assert [(e.kind, e.filled_quantity) for e in events(outputs)] == [
        (OrderEventKind.PARTIALLY_FILLED, Decimal(4)),
        (OrderEventKind.PARTIALLY_FILLED, Decimal(8)),
        (OrderEventKind.FILLED, Decimal(10)),
    ]


def test_tick_with_zero_available_size_fills_nothing() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0))
    assert book.on_tick(make_tick(1, 60, ask_size=0.0)) == ()
    assert book.on_tick(make_trade(2, 61, price=100.0, size=0.0)) == ()
    assert book.working_orders()[0].leaves_quantity == Decimal(5)


def test_float_touch_size_is_quantised_and_fill_never_exceeds_leaves() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, quantity="0.5"))
    (first,) = fills(book.on_tick(make_tick(1, 60, ask_size=0.1 + 0.2)))
    assert first.quantity == Decimal("0.300000000")
    (second,) = fills(book.on_tick(make_tick(2, 61, ask_size=1e6)))
    assert second.quantity == Decimal("0.2")
    assert second.leaves_quantity == 0


def test_orders_share_tick_size_fifo_and_remainder_works_on_next_tick() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("a", 0, quantity="3"))
    book.on_order(make_order("b", 1, quantity="3"))
    first = fills(book.on_tick(make_tick(1, 60, ask_size=5.0)))
    assert [(f.client_order_id, f.quantity) for f in first] == [("a", 3), ("b", 2)]
    second = fills(book.on_tick(make_tick(2, 61, ask_size=5.0)))
    assert [(f.client_order_id, f.quantity) for f in second] == [("b", 1)]


def test_buy_and_sell_consume_separate_sides_of_a_tick() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("b", 0, quantity="4"))
    book.on_order(make_order("s", 0, side=Side.SELL, quantity="4"))
    got = fills(book.on_tick(make_tick(1, 60, ask_size=4.0, bid_size=4.0)))
    assert [(f.client_order_id, f.quantity) for f in got] == [("b", 4), ("s", 4)]


def test_late_order_fills_from_buffer_exactly_as_early_order() -> None:
    ticks = [make_tick(seq, 40 + 10 * seq, ask=100.0 + seq, ask_size=2.0) for seq in range(1, 6)]
    orders = [make_order("a", 0, quantity="3"), make_order("b", 5, quantity="4")]
    early = run(InstrumentBook(INSTRUMENT), [*orders, *ticks])
    late = run(InstrumentBook(INSTRUMENT), [*ticks, *orders])
    mixed = run(
        InstrumentBook(INSTRUMENT), [ticks[0], orders[0], *ticks[1:3], orders[1], *ticks[3:]]
    )
    assert by_id(early) == by_id(late) == by_id(mixed)
    assert {f.tick_id for f in fills(late)} == {t.tick_id for t in ticks[:4]}


def test_late_order_catch_up_skips_ticks_inside_its_latency() -> None:
    book = InstrumentBook(INSTRUMENT)
    for seq, ts_ms in enumerate((10, 40, 59, 60, 70), start=1):
        book.on_tick(make_tick(seq, ts_ms, ask=100.0 + seq, ask_size=1.0))
    got = fills(book.on_order(make_order("o1", 10, quantity="2")))
    assert [f.tick_id for f in got] == [
        tick_id(INSTRUMENT, 4, 60 * MS),
        tick_id(INSTRUMENT, 5, 70 * MS),
    ]
    assert [f.ts_event for f in got] == [60 * MS, 70 * MS]


def test_duplicate_client_order_id_rejected_without_disturbing_original() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, quantity="5"))
    (dup,) = book.on_order(make_order("o1", 1, quantity="9"))
    assert dup.kind is OrderEventKind.REJECTED
    assert dup.event_id == order_event_id("o1", -1)
    assert "duplicate" in dup.reason
    (again,) = book.on_order(make_order("o1", 2, quantity="9"))
    assert again.event_id == order_event_id("o1", -2)
    (working,) = book.working_orders()
    assert working.order.quantity == Decimal(5)
    event, fill = book.on_tick(make_tick(1, 60))
    assert event.event_id == order_event_id("o1", 2)
    assert fill.quantity == Decimal(5)


def test_duplicate_of_finished_order_is_rejected() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0))
    book.on_tick(make_tick(1, 60))
    (dup,) = book.on_order(make_order("o1", 0, quantity="7"))
    assert dup.kind is OrderEventKind.REJECTED
    assert book.working_orders() == ()


@pytest.mark.parametrize("filled_first", [False, True])
def test_identical_redelivery_of_an_order_changes_nothing(filled_first: bool) -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0))
    if filled_first:
        book.on_tick(make_tick(1, 60))
    before = book.working_orders()
    assert book.on_order(make_order("o1", 0)) == ()
    assert book.working_orders() == before


@pytest.mark.parametrize(
    ("first", "again", "redelivery"),
    [
        ({"quantity": "5"}, {"quantity": "5.000"}, True),  # equal Decimals, as `==` says
        ({"quantity": "0"}, {"quantity": "-0"}, True),
        ({"limit": "100.5"}, {"limit": "100.50"}, True),
        ({"limit": "100.5"}, {"limit": "100.05"}, False),
        ({"quantity": "NaN"}, {"quantity": "NaN"}, False),  # NaN equals nothing
        ({}, {"side": Side.SELL}, False),
    ],
)
def test_a_redelivery_is_an_order_equal_to_the_first_under_its_id(
    first: dict[str, Any], again: dict[str, Any], redelivery: bool
) -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, **first))
    restored = pickle.loads(pickle.dumps(book))

    out = restored.on_order(make_order("o1", 0, **again))

    assert (out == ()) is redelivery
    assert make_order("o1", 0, **first) == make_order("o1", 0, **again) or not redelivery


@pytest.mark.parametrize(
    ("order", "reason_part"),
    [
        (make_order("z", 0, quantity="0"), "positive"),
        (make_order("n", 0, quantity="-1"), "positive"),
        (make_order("nan", 0, quantity="NaN"), "positive"),
        (make_order("p", 0, quantity="1.0000000001"), "decimal places"),
        (make_order("l", 0, order_type=OrderType.LIMIT), "limit price"),
        (make_order("lz", 0, limit="0"), "limit price"),
    ],
)
def test_nonsense_order_rejected_with_reason(order: Order, reason_part: str) -> None:
    book = InstrumentBook(INSTRUMENT)
    (rejected,) = book.on_order(order)
    assert rejected.kind is OrderEventKind.REJECTED
    assert rejected.event_id == order_event_id(order.client_order_id, 1)
    assert reason_part in rejected.reason
    assert book.working_orders() == ()


def test_cancel_working_order_emits_canceled_and_stops_fills() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(make_order("o1", 0, quantity="10"))
    book.on_tick(make_tick(1, 60, ask_size=4.0))
    (canceled,) = book.cancel("o1", 70 * MS)
    assert canceled.kind is OrderEventKind.CANCELED
    assert canceled.event_id == order_event_id("o1", 3)
    assert (canceled.filled_quantity, canceled.leaves_quantity) == (Decimal(4), Decimal(0))
    assert canceled.ts_event == canceled.ts_init == 70 * MS
    assert book.on_tick(make_tick(2, 80)) == ()
    assert book.cancel("o1", 90 * MS) == ()


def test_cancel_unknown_order_returns_nothing() -> None:
    assert InstrumentBook(INSTRUMENT).cancel("nope", 0) == ()


def test_pickled_mid_stream_continues_with_identical_outputs() -> None:
    stream: list[Order | Tick] = [
        make_tick(1, 10, ask_size=1.5),
        make_order("a", 0, quantity="4"),
        make_order("b", 5, side=Side.SELL, limit="99.5", quantity="2"),
        make_tick(2, 60, ask_size=1.0, bid=99.0),
        make_tick(3, 70, ask_size=1.0, bid=99.6, bid_size=1.0),
        make_order("c", 20, limit="100", quantity="3"),
        make_tick(4, 80, ask_size=2.0),
        make_tick(5, 90, bid=99.7),
    ]
    whole = run(InstrumentBook(INSTRUMENT), stream)
    for cut in range(len(stream) + 1):
        book = InstrumentBook(INSTRUMENT)
        head = run(book, stream[:cut])
        restored = pickle.loads(pickle.dumps(book))
        assert head + run(restored, stream[cut:]) == whole
    assert len(fills(whole)) >= 5


def test_buffer_bounded_by_count() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(max_buffered_ticks=8))
    for seq in range(100):
        book.on_tick(make_tick(seq, seq))
    assert book.buffered_tick_count() == 8
    restored = pickle.loads(pickle.dumps(book))
    assert restored.buffered_tick_count() == 8
    restored.on_tick(make_tick(100, 100))
    assert restored.buffered_tick_count() == 8


def test_buffer_bounded_by_event_time() -> None:
    config = PaperBrokerConfig(tick_buffer_ns=100 * MS, min_buffered_ticks=0)
    book = InstrumentBook(INSTRUMENT, config)
    for seq in range(1000):
        book.on_tick(make_tick(seq, seq * 10))
    assert book.buffered_tick_count() == 11  # ticks at 9890..9990 ms


def test_buffer_keeps_minimum_ticks_whatever_their_age() -> None:
    config = PaperBrokerConfig(tick_buffer_ns=100 * MS, min_buffered_ticks=50)
    book = InstrumentBook(INSTRUMENT, config)
    for seq in range(1000):
        book.on_tick(make_tick(seq, seq * 10))
    assert book.buffered_tick_count() == 50


def test_sparse_ticks_late_order_fills_at_next_tick() -> None:
    day_ms = 86_400_000
    book = InstrumentBook(INSTRUMENT)
    for seq in range(1, 6):
        book.on_tick(make_tick(seq, seq * day_ms, ask=100.0 + seq, ask_size=1e6))
    accepted, *got = book.on_order(make_order("daily", 2 * day_ms))
    assert accepted.kind is OrderEventKind.ACCEPTED
    assert fills(got)[0].tick_id == tick_id(INSTRUMENT, 3, 3 * day_ms * MS)


def test_order_older_than_buffer_is_rejected_as_late() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(max_buffered_ticks=4))
    for seq in range(10):
        book.on_tick(make_tick(seq, 100 + seq))
    (rejected,) = book.on_order(make_order("old", 0))
    assert rejected.kind is OrderEventKind.REJECTED
    assert "late" in rejected.reason
    accepted, *got = book.on_order(make_order("recent", 106 - 50))
    assert accepted.kind is OrderEventKind.ACCEPTED
    assert fills(got)[0].tick_id == tick_id(INSTRUMENT, 6, 106 * MS)


def test_liquidity_bookkeeping_forgotten_with_evicted_ticks() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(max_buffered_ticks=4))
    for n in range(20):
        book.on_order(make_order(f"o{n}", n, quantity="1"))
        book.on_tick(make_tick(n, 60 + n))
    state = book.__getstate__()
    assert len(state["_used_buy"]) <= 4  # type: ignore[arg-type]


def test_promise_drops_ticks_no_order_still_to_come_can_trade_on() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(min_buffered_ticks=1_000))
    for seq in range(100):
        book.on_tick(make_tick(seq, seq))
    book.orders_sent(40 * MS)  # an order still to come trades at 40 + 50 ms or later
    assert book.buffered_tick_count() == 10  # ticks at 90..99 ms
    accepted, *got = book.on_order(make_order("at-promise", 40))
    assert accepted.kind is OrderEventKind.ACCEPTED
    assert fills(got)[0].tick_id == tick_id(INSTRUMENT, 90, 90 * MS)


def test_promise_keeps_fills_identical_to_the_whole_buffer() -> None:
    ticks = [make_tick(seq, seq * 7, ask_size=2.0) for seq in range(200)]
    orders = [make_order(f"o{n}", n * 60, quantity="3") for n in range(20)]
    whole = InstrumentBook(INSTRUMENT)
    trimmed = InstrumentBook(INSTRUMENT)
    expected = run(whole, ticks)
    got = run(trimmed, ticks)
    for order in orders:  # the gate sends in event time, each promise after its order
        expected += whole.on_order(order)
        got += trimmed.on_order(order)
        trimmed.orders_sent(order.ts_event)
    assert got == expected
    assert len(fills(got)) >= 20
    assert trimmed.buffered_tick_count() < whole.buffered_tick_count()


def test_order_breaking_the_promise_is_rejected_as_late_not_filled_from_the_rest() -> None:
    book = InstrumentBook(INSTRUMENT)
    for seq in range(100):
        book.on_tick(make_tick(seq, seq))
    book.orders_sent(40 * MS)
    (rejected,) = book.on_order(make_order("broken-promise", 39))
    assert rejected.kind is OrderEventKind.REJECTED
    assert "late" in rejected.reason


def test_promise_forgets_the_liquidity_bookkeeping_of_dropped_ticks() -> None:
    book = InstrumentBook(INSTRUMENT)
    for n in range(20):
        book.on_order(make_order(f"o{n}", n, quantity="1"))
        book.on_tick(make_tick(n, 60 + n))
    used = sorted(book.__getstate__()["_used_buy"])  # type: ignore[call-overload]
    assert used == list(range(10))  # o1.. caught up on the liquidity left at tick 0, 1, ...
    book.orders_sent(15 * MS)  # an order still to come trades from 65 ms: ticks 5.. stay
    state = book.__getstate__()
    assert sorted(state["_used_buy"]) == list(range(5, 10))  # type: ignore[call-overload]
    assert book.buffered_tick_count() == 15


def test_working_orders_bounded() -> None:
    book = InstrumentBook(INSTRUMENT, PaperBrokerConfig(max_working_orders=2))
    book.on_order(make_order("a", 0, limit="1"))
    book.on_order(make_order("b", 0, limit="1"))
    (rejected,) = book.on_order(make_order("c", 0, limit="1"))
    assert "too many" in rejected.reason


def test_tick_for_other_instrument_raises() -> None:
    tick = make_tick(1, 0)
    other = dataclasses.replace(tick, instrument="OTHER")
    with pytest.raises(ValueError, match="OTHER"):
        InstrumentBook(INSTRUMENT).on_tick(other)


def test_backwards_tick_timestamp_uses_running_clock() -> None:
    early, late = InstrumentBook(INSTRUMENT), InstrumentBook(INSTRUMENT)
    ticks = [make_tick(1, 60, ask_size=1.0), make_tick(2, 55, ask_size=1.0), make_tick(3, 70)]
    order = make_order("o1", 0, quantity="3")
    assert by_id(run(early, [order, *ticks])) == by_id(run(late, [*ticks, order]))


def test_config_with_several_problems_names_them_all() -> None:
    with pytest.raises(ValueError, match=r"latency_ns.*fee_bps.*max_buffered_ticks"):
        PaperBrokerConfig(latency_ns=-1, fee_bps=float("nan"), max_buffered_ticks=0)


# -- time in force ----------------------------------------------------------------------


def good_till(order: Order, expire_ms: int) -> Order:
    return dataclasses.replace(order, expire_ns=expire_ms * MS)


def test_limit_order_not_crossed_by_its_expiry_expires_with_nothing_filled() -> None:
    book = InstrumentBook(INSTRUMENT)
    order = good_till(make_order("o1", 0, limit="100.5"), 200)
    book.on_order(order)
    assert book.on_tick(make_tick(1, 100, bid=101.0, ask=102.0)) == ()  # above the limit
    (expired,) = book.on_tick(make_tick(2, 200, bid=99.0, ask=100.0))  # crossed, too late
    assert isinstance(expired, OrderEvent)
    assert expired.kind is OrderEventKind.EXPIRED
    assert (expired.filled_quantity, expired.leaves_quantity) == (Decimal(0), Decimal(0))
    assert expired.ts_event == 200 * MS
    assert book.working_orders() == ()


def test_partly_filled_order_expires_with_what_it_filled() -> None:
    book = InstrumentBook(INSTRUMENT)
    book.on_order(good_till(make_order("o1", 0, quantity="15"), 200))
    assert len(fills(book.on_tick(make_tick(1, 100)))) == 1  # 10 of 15
    (expired,) = events(book.on_tick(make_tick(2, 250)))
    assert expired.kind is OrderEventKind.EXPIRED
    assert expired.filled_quantity == Decimal(10)


def test_late_order_past_its_expiry_in_the_buffer_expires_on_arrival() -> None:
    early, late = InstrumentBook(INSTRUMENT), InstrumentBook(INSTRUMENT)
    order = good_till(make_order("o1", 0, limit="99"), 150)
    ticks = [make_tick(1, 100, bid=100.0, ask=101.0), make_tick(2, 200, bid=100.0, ask=101.0)]
    assert by_id(run(early, [order, *ticks])) == by_id(run(late, [*ticks, order]))
    assert [e.kind for e in events(run(InstrumentBook(INSTRUMENT), [*ticks, order]))] == [
        OrderEventKind.ACCEPTED,
        OrderEventKind.EXPIRED,
    ]


def test_columns_of_decoded_records_equal_columns_of_their_ticks() -> None:
    ticks = [
        make_tick(1, 10),
        make_tick(2, 20, bid=None, bid_size=None),
        make_tick(3, 30, ask=None, ask_size=5.0),
        make_trade(4, 40, 101.5, 3.0),
    ]
    rows = [
        (t.instrument, t.seq, t.ts_event, t.price, t.size, t.bid, t.ask, t.bid_size, t.ask_size)
        for t in ticks
    ]

    decoded, of = TickColumns.decoded(rows), TickColumns.of(INSTRUMENT, ticks)

    assert decoded.ids.tolist() == of.ids.tolist() == [[t.ts_event, t.seq] for t in ticks]
    assert decoded.touch.tolist() == of.touch.tolist()
    assert of.touch.tolist()[1] == [100.0, 10.0, 100.0, 0.0]  # no bid: the price
    assert of.touch.tolist()[3] == [101.5, 3.0, 101.5, 3.0]


def test_snapshot_holds_only_the_buffered_ticks() -> None:
    config = PaperBrokerConfig(min_buffered_ticks=0, max_buffered_ticks=10_000)
    book = InstrumentBook(INSTRUMENT, config)
    book.on_ticks([make_tick(seq, seq) for seq in range(1, 3_001)])
    full = len(pickle.dumps(book))
    book.orders_sent(2_990 * MS - LATENCY_NS)

    restored = pickle.loads(pickle.dumps(book))

    assert book.buffered_tick_count() == restored.buffered_tick_count() == 11
    assert len(pickle.dumps(book)) < full / 50
    assert pickle.dumps(restored) == pickle.dumps(book)
