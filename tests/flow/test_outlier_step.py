"""The model step screens ticks for outliers: a bad print is one dead letter with reason
`outlier_price_jump`, the ticks around it go through, and the screen survives a snapshot."""

from __future__ import annotations

import pickle

from connectors.codec import encode
from connectors.kafka.record import KafkaRecord
from dataflows.flows.trading import InstrumentState, decode_ticks, handle_ticks, model_spec
from dataflows.settings import Settings
from risk.domain import DecodeFailure

S = 1_000_000_000


def record(offset: int, price: float) -> KafkaRecord:
    tick = {
        "instrument": "AAPL", "seq": offset + 1, "kind": "trade", "price": price,
        "size": 10.0, "ts_event": 1_700_000_000 * S + offset * S, "ts_init": 0,
    }  # fmt: skip
    tick["ts_init"] = tick["ts_event"]
    return KafkaRecord("md.ticks", 0, offset, b"AAPL", encode(tick), tick["ts_event"])


def test_bad_print_is_dead_lettered_as_outlier_and_the_stream_goes_on(settings: Settings) -> None:
    prices = [100.0 + (0.2 if n % 2 else -0.2) for n in range(60)]
    prices[40] = 300.0  # a fat-finger print three times the market
    decode = decode_ticks(frozenset(settings.trading.instruments))
    items = [item for item in decode([record(n, p) for n, p in enumerate(prices)])]
    state = InstrumentState(model_spec(settings))
    out = handle_ticks(state, [value for _, value in items[:30]])
    state = pickle.loads(pickle.dumps(state))  # a snapshot in between
    out += handle_ticks(state, [value for _, value in items[30:]])
    dead = [e for e in out if isinstance(e, DecodeFailure)]
    assert [(d.reason.value, d.offset) for d in dead] == [("outlier_price_jump", 40)]
    assert state.last_seq["AAPL"] == 60
