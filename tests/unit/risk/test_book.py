"""Unit tests for the book: average-cost positions, realised P&L, fees, snapshots."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from risk.book import Book, InvariantViolation
from risk.domain.enums import Side
from risk.domain.order import Fill

D = Decimal
TS = 1_700_000_000_000_000_000


def make_fill(
    side: Side,
    quantity: str | int,
    price: str | int,
    *,
    fee: str | int = 0,
    instrument: str = "AAPL",
    account: str = "acc",
) -> Fill:
    return Fill(
        fill_id=f"f-{side}-{quantity}-{price}",
        client_order_id="o-1",
        account=account,
        instrument=instrument,
        side=side,
        quantity=D(quantity),
        price=D(price),
        fee=D(fee),
        leaves_quantity=D(0),
        tick_id="t-1",
        ts_event=TS,
        ts_init=TS + 1,
    )


def book() -> Book:
    return Book("acc", D(100_000))


def test_apply_fill_open_long_sets_quantity_and_average() -> None:
    b = book()
    position = b.apply_fill(make_fill(Side.BUY, 10, 100))
    assert position.quantity == D(10)
    assert position.average_price == D(100)
    assert position.realized_pnl == 0
    assert (position.ts_event, position.ts_init) == (TS, TS + 1)
    assert b.cash == D(99_000)


def test_apply_fill_add_averages_price() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100))
    position = b.apply_fill(make_fill(Side.BUY, 30, 120))
    assert position.quantity == D(40)
    assert position.average_price == D(115)
    assert position.realized_pnl == 0


def test_apply_fill_reduce_long_realises_and_keeps_average() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100))
    position = b.apply_fill(make_fill(Side.SELL, 4, 110))
    assert position.quantity == D(6)
    assert position.average_price == D(100)
    assert position.realized_pnl == D(40)
    assert b.realized_pnl == D(40)


def test_apply_fill_reduce_short_realises_with_short_sign() -> None:
    b = book()
    b.apply_fill(make_fill(Side.SELL, 10, 100))
    position = b.apply_fill(make_fill(Side.BUY, 10, 90))
    assert position.quantity == 0
    assert position.average_price == 0
    assert position.realized_pnl == D(100)


def test_apply_fill_flip_realises_closed_part_and_opens_rest_at_fill_price() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100))
    position = b.apply_fill(make_fill(Side.SELL, 25, 90))
    assert position.quantity == D(-15)
    assert position.average_price == D(90)
    assert position.realized_pnl == D(-100)


def test_apply_fill_fees_accumulate_and_reduce_cash_not_realised() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100, fee="1.5"))
    b.apply_fill(make_fill(Side.SELL, 10, 100, fee="2.25"))
    assert b.fees == D("3.75")
    assert b.realized_pnl == 0
    assert b.cash == D(100_000) - D("3.75")


def test_snapshot_uses_mark_for_unrealised_and_exposure() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100, fee=1))
    b.apply_fill(make_fill(Side.SELL, 5, 50, instrument="MSFT"))
    b.mark("AAPL", 105.5)
    b.mark("MSFT", 40.0)
    snap = b.snapshot(TS + 5, TS + 6)
    assert snap.unrealized_pnl == D(55) + D(50)
    assert snap.gross_exposure == D(1055) + D(200)
    assert snap.net_exposure == D(1055) - D(200)
    assert snap.cash == D(100_000) - D(1000) - D(1) + D(250)
    assert snap.equity == snap.cash + snap.net_exposure
    assert (snap.ts_event, snap.ts_init, snap.account) == (TS + 5, TS + 6, "acc")


def test_snapshot_without_mark_uses_last_fill_price() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100))
    b.apply_fill(make_fill(Side.BUY, 10, 110))
    snap = b.snapshot(TS, TS)
    assert snap.unrealized_pnl == D(100)
    assert snap.gross_exposure == D(2200)


@pytest.mark.parametrize(
    "fills",
    [
        [(Side.BUY, 10, 100, 1), (Side.SELL, 25, 90, 2), (Side.BUY, 3, 95, 0)],
        [(Side.SELL, 7, "13.37", "0.01"), (Side.SELL, 2, 12, 0), (Side.BUY, 20, "14.5", 1)],
    ],
)
def test_snapshot_equity_equals_initial_plus_pnl_minus_fees(
    fills: list[tuple[Side, int, int | str, int | str]],
) -> None:
    b = book()
    for side, quantity, price, fee in fills:
        b.apply_fill(make_fill(side, quantity, price, fee=fee))
    b.mark("AAPL", 101.25)
    snap = b.snapshot(TS, TS)
    expected = b.initial_cash + snap.realized_pnl + snap.unrealized_pnl - snap.fees
    assert abs(snap.equity - expected) < D("0.000001")


@pytest.mark.parametrize(
    "fill",
    [
        make_fill(Side.BUY, 0, 100),
        make_fill(Side.BUY, 1, 0),
        make_fill(Side.BUY, 1, 100, fee=-1),
        make_fill(Side.BUY, 1, 100, account="other"),
    ],
)
def test_apply_fill_impossible_fill_raises(fill: Fill) -> None:
    with pytest.raises(InvariantViolation):
        book().apply_fill(fill)


def test_book_pickle_round_trip_keeps_state() -> None:
    b = book()
    b.apply_fill(make_fill(Side.BUY, 10, 100, fee=1))
    b.mark("AAPL", 101.0)
    restored = pickle.loads(pickle.dumps(b))
    assert restored.snapshot(TS, TS) == b.snapshot(TS, TS)
