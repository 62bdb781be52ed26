"""The inline tick check (`_plain_tick`) accepts only what the full checks accept, and
builds the very tick they build; anything else it leaves to them."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import codec
from risk.domain import DecodeFailure

INSTRUMENTS = frozenset({"AAPL", "MSFT"})

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.5, -1.0, math.inf, 2**64, 7, 0, -3]),
    st.integers(min_value=-(2**65), max_value=2**65),
)
anything = st.one_of(
    numbers, st.none(), st.booleans(), st.text(max_size=5), st.lists(st.integers(), max_size=2)
)
plausible_int = st.one_of(st.integers(min_value=-5, max_value=2**64), anything)
fields = st.fixed_dictionaries(
    {},
    optional={
        "instrument": st.one_of(st.sampled_from(["AAPL", "MSFT", "", "XYZ"]), anything),
        "seq": plausible_int,
        "ts_event": plausible_int,
        "ts_init": plausible_int,
        "kind": st.one_of(st.sampled_from(["trade", "quote", "TRADE"]), anything),
        "price": numbers,
        "size": numbers,
        "bid": st.one_of(st.none(), numbers),
        "ask": st.one_of(st.none(), numbers),
        "bid_size": st.one_of(st.none(), numbers),
        "ask_size": st.one_of(st.none(), numbers),
        "venue": st.one_of(st.sampled_from(["", "binance"]), anything),
        "venue_trade_id": plausible_int,
        "flags": st.one_of(st.just(["backfill"]), anything),
    },
)


def checked(obj: dict[str, Any]) -> object:
    try:
        return codec._checked_tick(obj, INSTRUMENTS)
    except codec._Invalid as invalid:
        return (invalid.reason, invalid.detail)


@settings(max_examples=3000, deadline=None)
@given(fields)
def test_plain_tick_agrees_with_the_full_checks(obj: dict[str, Any]) -> None:
    plain = codec._plain_tick(obj, INSTRUMENTS)

    if plain is not None:
        assert plain == checked(obj)


@settings(max_examples=500, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "instrument": st.sampled_from(["AAPL", "MSFT"]),
            "seq": st.integers(min_value=0, max_value=2**63 - 1),
            "ts_event": st.integers(min_value=0, max_value=2**63 - 1),
            "ts_init": st.integers(min_value=0, max_value=2**63 - 1),
            "price": st.floats(min_value=1e-9, max_value=1e12),
            "size": st.floats(min_value=0.0, max_value=1e12),
        },
        optional={
            "kind": st.just("trade"),
            "bid": st.floats(min_value=1e-9, max_value=1.0),
            "ask": st.floats(min_value=2.0, max_value=1e12),
            "bid_size": st.floats(min_value=0.0, max_value=1e9),
            "ask_size": st.floats(min_value=0.0, max_value=1e9),
        },
    )
)
def test_plain_trades_take_the_inline_path(obj: dict[str, Any]) -> None:
    plain = codec._plain_tick(obj, INSTRUMENTS)

    assert plain is not None
    assert plain == codec._checked_tick(obj, INSTRUMENTS)
    assert codec.decode_tick(codec.encode(obj), INSTRUMENTS) == plain


def test_a_bad_tick_still_gets_the_full_checks_reason() -> None:
    raw = b'{"instrument":"AAPL","seq":1,"price":-2.0,"size":1.0,"ts_event":5,"ts_init":6}'

    failure = codec.decode_tick(raw, INSTRUMENTS)

    assert isinstance(failure, DecodeFailure)
    assert failure.reason.value == "non_positive_price"


@settings(max_examples=2000, deadline=None)
@given(fields)
def test_tick_row_passes_exactly_the_ticks_decode_tick_passes_with_their_fields(
    obj: dict[str, Any],
) -> None:
    # The standard library writes what orjson cannot: huge integers, NaN literals.
    raw = json.dumps(obj).encode()
    tick = codec.decode_tick(raw, INSTRUMENTS)

    row = codec.decode_tick_row(raw, INSTRUMENTS)

    if isinstance(tick, DecodeFailure):
        assert row is None
    else:
        assert row == (
            tick.instrument,
            tick.seq,
            tick.ts_event,
            tick.price,
            tick.size,
            tick.bid,
            tick.ask,
            tick.bid_size,
            tick.ask_size,
        )


def test_an_encoded_tick_without_a_venue_takes_the_inline_path() -> None:
    tick = codec.decode_tick(
        b'{"instrument":"AAPL","seq":1,"price":2.0,"size":1.0,"ts_event":5,"ts_init":6}'
    )
    assert not isinstance(tick, DecodeFailure)
    obj = codec.loads(codec.encode(tick))

    assert obj["venue"] == ""
    assert codec._plain_tick(obj, INSTRUMENTS) == tick
