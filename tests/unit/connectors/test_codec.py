"""Inbound validation: every bad tick becomes a reason code, good ones decode exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.codec import (
    MAX_RECORD_BYTES,
    Rejected,
    check_sequence,
    decode_event,
    decode_tick,
    encode,
)
from risk.domain import DecodeReason, Fill, Order, OrderType, Side, TickKind

GOOD = {
    "instrument": "AAPL",
    "seq": 7,
    "kind": "trade",
    "price": 101.5,
    "size": 3.0,
    "bid": 101.4,
    "ask": 101.6,
    "bid_size": 5.0,
    "ask_size": 6.0,
    "ts_event": 1_700_000_000_000_000_000,
    "ts_init": 1_700_000_000_000_000_100,
}


def reason_of(raw: bytes, instruments: frozenset[str] | None = None) -> DecodeReason:
    with pytest.raises(Rejected) as caught:
        decode_tick(raw, instruments)
    return caught.value.reason


def test_decode_tick_valid_trade_keeps_every_field() -> None:
    tick = decode_tick(encode(GOOD), frozenset({"AAPL"}))

    assert (tick.instrument, tick.seq, tick.kind, tick.price, tick.size) == (
        "AAPL",
        7,
        TickKind.TRADE,
        101.5,
        3.0,
    )
    assert (tick.bid, tick.ask, tick.ts_event) == (101.4, 101.6, GOOD["ts_event"])
    assert tick.tick_id == decode_tick(encode(GOOD)).tick_id


def test_decode_tick_quote_uses_mid_price_and_zero_size() -> None:
    quote = {**GOOD, "kind": "quote"}
    del quote["price"], quote["size"]

    tick = decode_tick(encode(quote))

    assert tick.price == pytest.approx(101.5)
    assert tick.size == 0.0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"price": "NaN"}, DecodeReason.NON_FINITE),
        ({"price": "inf"}, DecodeReason.NON_FINITE),
        ({"price": 0.0}, DecodeReason.NON_POSITIVE_PRICE),
        ({"price": -1.0}, DecodeReason.NON_POSITIVE_PRICE),
        ({"size": -2.0}, DecodeReason.NEGATIVE_SIZE),
        ({"seq": "7"}, DecodeReason.WRONG_TYPE),
        ({"price": "101.5"}, DecodeReason.WRONG_TYPE),
        ({"ts_event": 1.5}, DecodeReason.WRONG_TYPE),
        ({"kind": "auction"}, DecodeReason.WRONG_TYPE),
        ({"bid": 102.0, "ask": 101.0}, DecodeReason.CROSSED_QUOTE),
        ({"instrument": ""}, DecodeReason.WRONG_TYPE),
    ],
)
def test_decode_tick_bad_field_is_rejected_with_reason(
    change: dict[str, object], reason: DecodeReason
) -> None:
    assert reason_of(encode({**GOOD, **change})) is reason


@pytest.mark.parametrize("field", ["instrument", "seq", "ts_event", "ts_init", "price", "size"])
def test_decode_tick_missing_field_is_rejected(field: str) -> None:
    record = {k: v for k, v in GOOD.items() if k != field}
    assert reason_of(encode(record)) is DecodeReason.MISSING_FIELD


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"instrument": "AAPL", "price": NaN}', DecodeReason.NON_FINITE),
        (b'{"instrument": "AAPL", "price": Infinity}', DecodeReason.NON_FINITE),
        (b'{"instrument": "AAPL",', DecodeReason.MALFORMED_JSON),
        (b"[1, 2]", DecodeReason.NOT_AN_OBJECT),
        (b"x" * (MAX_RECORD_BYTES + 1), DecodeReason.OVERSIZED),
    ],
)
def test_decode_tick_unparseable_record_is_rejected(raw: bytes, reason: DecodeReason) -> None:
    assert reason_of(raw) is reason


def test_decode_tick_unknown_instrument_is_rejected() -> None:
    assert reason_of(encode(GOOD), frozenset({"MSFT"})) is DecodeReason.UNKNOWN_INSTRUMENT


@pytest.mark.parametrize(
    ("last", "seq", "reason"),
    [
        (None, 1, None),
        (1, 2, None),
        (1, 5, None),
        (5, 5, DecodeReason.DUPLICATE_SEQUENCE),
        (5, 3, DecodeReason.BACKWARDS_SEQUENCE),
    ],
)
def test_check_sequence_names_repeats_and_regressions(
    last: int | None, seq: int, reason: DecodeReason | None
) -> None:
    assert check_sequence(last, seq) is reason


def test_decode_event_round_trips_decimals_and_enums() -> None:
    order = Order(
        client_order_id="c",
        signal_id="s",
        account="a",
        instrument="AAPL",
        side=Side.SELL,
        quantity=Decimal("12.500000000"),
        order_type=OrderType.LIMIT,
        limit_price=Decimal("99.01"),
        ts_event=1,
        ts_init=2,
    )

    assert decode_event(Order, encode(order)) == order


def test_decode_event_missing_field_is_rejected() -> None:
    with pytest.raises(Rejected) as caught:
        decode_event(Fill, b'{"fill_id": "f"}')
    assert caught.value.reason is DecodeReason.WRONG_TYPE
