"""A poison pill on any topic a flow reads is a dead letter, and the flow goes on.

Each flow runs as built (`build_flow`) over lists: the trading flow with a bad record
on every inbound topic, the gateway with one on `hfl.orders`, the persist flow with one
on every persisted topic (into the session's ClickHouse). Each bad record must come out
as one `DecodeFailure` naming its topic and offset, and the good records around it
must still be processed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from bytewax.testing import run_main
from clickhouse_connect.driver.client import Client
from conftest import ListIO, as_records, encoded

from connectors import topic
from connectors.codec import decode_tick
from connectors.kafka.record import KafkaRecord
from dataflows.flows import gateway, persist, trading
from dataflows.settings import Secret, Settings
from risk.domain import Bar, DecodeFailure, FeatureVector, Order, Tick

POISON: tuple[bytes, ...] = (
    b"this is not json",
    b'{"max_position":[0,[1],18446744073709551615]}',
    b'{"command_id":"c","account":"paper","action":"reduce","reason":"r","actor":12345,'
    b'"flatten":"yes","ts_event":"x","ts_init":1}',
    # Well formed, but a limit the gate refuses by raising: it must not reach the gate.
    b'{"command_id":"l","account":"paper-1","instrument":"AAPL","max_position":"-5",'
    b'"reason":"r","actor":"a","ts_event":1,"ts_init":1}',
    b"\xff\xfe\x00",
    b"[" * 3000,
    b'{"ts_event": 1e999}',
)
FIRST_OFFSET = 1000


def pills(name: str) -> list[KafkaRecord]:
    """Every poison value as records of topic `name`, at offsets from `FIRST_OFFSET`."""
    return as_records(POISON, name, first_offset=FIRST_OFFSET)


def dead_letters(events: Sequence[object]) -> dict[tuple[str, int], DecodeFailure]:
    return {(e.topic, e.offset): e for e in events if isinstance(e, DecodeFailure)}


def expected(names: Sequence[str]) -> set[tuple[str, int]]:
    return {(name, FIRST_OFFSET + i) for name in names for i in range(len(POISON))}


TRADING_INBOUND = (
    topic.FILLS,
    topic.ORDER_EVENTS,
    topic.CONTROL,
    topic.ALERTS,
    topic.MODEL_CONTROL,
)


def test_trading_poison_on_every_inbound_topic_is_dead_lettered_and_ticks_go_on(
    settings: Settings, tick_records: list[KafkaRecord]
) -> None:
    ticks = [*tick_records[:1500], *pills(topic.TICKS), *tick_records[1500:3000]]
    inputs: dict[str, Sequence[object]] = {topic.TICKS: ticks}
    inputs |= {name: pills(name) for name in TRADING_INBOUND}
    out: list[object] = []

    run_main(trading.build_flow(settings, ListIO(inputs, out, 500)))

    found = dead_letters(out)
    assert expected([topic.TICKS, *TRADING_INBOUND]) <= set(found)
    assert all(found[key].reason and found[key].raw_size for key in found)
    last_tick = decode_tick(tick_records[2999].value)
    assert isinstance(last_tick, Tick)
    bars = [e for e in out if isinstance(e, Bar)]
    # Ticks after the pills were still modelled, up to the last second of the stream.
    assert bars and max(bar.ts_event for bar in bars) >= last_tick.ts_event - 2 * 10**9


def test_gateway_poison_on_orders_is_dead_lettered_and_orders_still_fill(
    settings: Settings, tick_records: list[KafkaRecord], orders: list[Order]
) -> None:
    order_records = [*pills(topic.ORDERS), *as_records(encoded(orders), topic.ORDERS)]
    ticks = [*pills(topic.TICKS), *tick_records]
    inputs = {topic.TICKS: ticks, topic.ORDERS: order_records}
    out: list[object] = []

    run_main(gateway.build_flow(settings, ListIO(inputs, out, 500, {topic.ORDERS: 10})))

    assert set(dead_letters(out)) == expected([topic.ORDERS])
    assert any(type(e).__name__ == "Fill" for e in out)


def test_persist_poison_on_every_topic_is_dead_lettered_and_good_rows_are_stored(
    settings: Settings, clickhouse_url: str, clickhouse: Client, tmp_path: Any
) -> None:
    names = [name for name in persist.PERSISTED_TOPICS if name != topic.TICKS]
    prefix = "poison."
    good = FeatureVector(
        tick_id="poison-good", instrument="AAPL", values={"x": 1.0}, ts_event=5, ts_init=6
    )
    # ListIO reads by topic name; the records carry the prefixed name, as from Kafka.
    inputs: dict[str, Sequence[object]] = {name: pills(prefix + name) for name in names}
    inputs[topic.FEATURES] = [
        *inputs[topic.FEATURES],
        *as_records(encoded([good]), prefix + topic.FEATURES, first_offset=5000),
    ]
    kafka = replace(settings.kafka, topic_prefix=prefix)
    store = replace(settings.clickhouse, url=Secret(clickhouse_url), flush_interval_s=0.0)
    out: list[object] = []

    run_main(
        persist.build_flow(
            replace(settings, kafka=kafka, clickhouse=store), ListIO(inputs, out, 50)
        )
    )

    assert set(dead_letters(out)) == expected([prefix + name for name in names])
    stored = clickhouse.query("SELECT count() FROM features WHERE tick_id = 'poison-good'")
    assert stored.result_rows[0][0] == 1


@pytest.mark.parametrize("value", POISON)
def test_persist_split_records_turns_poison_on_audit_into_a_dead_letter(value: bytes) -> None:
    split = persist.split_records("", frozenset({"AAPL"}))

    ((key, item),) = split(as_records([value], topic.AUDIT, first_offset=3))

    assert key == persist.DEAD
    assert isinstance(item, DecodeFailure)
    assert (item.topic, item.offset) == (topic.AUDIT, 3)
