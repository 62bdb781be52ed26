"""Shared streams and small Bytewax flows built from the real flows' step functions.

These tests run the real `build_flow()` of each flow with a `FlowIO` over lists
(`TestingSource` in, `TestingSink` out) instead of Kafka: the whole wiring is
exercised, only the I/O differs.

The tick stream is 8,000 simulated ticks of the ten configured instruments at 200
ticks/s of event time (about 40 s): enough one-second bars for the features to warm
up and, with the eased model settings below, for signals and orders to appear.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow, Stream
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSink, TestingSource, run_main

from connectors import topic
from connectors.codec import encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.record import KafkaRecord
from connectors.kafka.source import EndHooks
from dataflows.flows import gateway, trading
from dataflows.settings import Settings
from risk.domain import DecodeReason, Order
from risk.fill_sync import FillSyncMode

STREAM_TICKS = 8_000
TICKS_PER_S = 200.0
SEED = 11
BATCH_SIZE = 500

RunTrading = Callable[..., list[object]]
RunGateway = Callable[..., list[object]]
MakeRecords = Callable[..., list[KafkaRecord]]


def as_records(
    values: Iterable[bytes], topic_name: str = topic.TICKS, first_offset: int = 0
) -> list[KafkaRecord]:
    """Wrap encoded values as records at consecutive offsets of partition 0."""
    return [
        KafkaRecord(topic_name, 0, offset, None, value, 1_000_000 + offset)
        for offset, value in enumerate(values, start=first_offset)
    ]


class ListIO:
    """A `FlowIO` over lists: each topic's records in, every emitted event out.

    A source reads its topics' items in batches of `batch_sizes[first topic]`
    (default `batch_size`), so tests can vary how inputs interleave.
    """

    def __init__(
        self,
        inputs: dict[str, Sequence[object]],
        sink: list[object],
        batch_size: int,
        batch_sizes: dict[str, int] | None = None,
    ) -> None:
        self._inputs = inputs
        self._sink = sink
        self._batch_size = batch_size
        self._batch_sizes = batch_sizes or {}

    def input(
        self,
        step_id: str,
        flow: Dataflow,
        *topics: str,
        fetch_wait_ms: int | None = None,
        end: EndHooks | None = None,
        await_ends: bool = True,
    ) -> Stream[KafkaRecord]:
        """The lists of `topics`; they end when they run out, whatever `end` says."""
        items = [item for name in topics for item in self._inputs.get(name, ())]
        size = self._batch_sizes.get(topics[0], self._batch_size)
        return op.input(step_id, flow, TestingSource(items, batch_size=size))

    def output(self, step_id: str, events: Stream[object]) -> None:
        op.output(step_id, events, TestingSink(self._sink))


def trading_flow(
    settings: Settings, records: Sequence[object], sink: list[object], batch_size: int
) -> Dataflow:
    """The real trading flow with `records` as `md.ticks` and no fills or commands.

    `records` may hold `TestingSource` sentinels (ABORT) as well as records.
    """
    return trading.build_flow(settings, ListIO({topic.TICKS: records}, sink, batch_size))


def gateway_flow(
    settings: Settings,
    records: Sequence[KafkaRecord],
    orders: Sequence[Order],
    sink: list[object],
    *,
    tick_batch: int,
    order_batch: int,
) -> Dataflow:
    """The real gateway flow fed by a tick source and an order source."""
    inputs = {topic.TICKS: records, topic.ORDERS: as_records(encoded(orders), topic.ORDERS)}
    io = ListIO(inputs, sink, tick_batch, {topic.ORDERS: order_batch})
    return gateway.build_flow(settings, io)


def encoded(events: Iterable[object]) -> list[bytes]:
    """Encode every event, in order, as the Kafka sink would."""
    return [encode(event) for event in events]


@dataclass(frozen=True, slots=True, kw_only=True)
class BadStream:
    """Good ticks with bad records spliced in, and the reason each bad one must get."""

    records: list[KafkaRecord]
    expected: dict[int, DecodeReason]  # offset -> reason


@pytest.fixture(scope="session")
def settings() -> Settings:
    """Default settings with a model eager enough to signal within 40 s of event time.

    The trading steps run here without a gateway, so fills are booked on arrival.
    """
    base = Settings()
    model = replace(
        base.model,
        min_labelled=20,
        horizon_s=1.0,
        enter_long=0.51,
        enter_short=0.49,
        signal=replace(base.model.signal, engine="hysteresis"),  # chatty on purpose
    )
    risk = replace(base.risk, fill_sync=FillSyncMode.ARRIVAL)
    return replace(base, model=model, risk=risk)


@pytest.fixture(scope="session")
def tick_dicts(settings: Settings) -> list[dict[str, Any]]:
    """The seeded tick stream as the feed publishes it."""
    config = SimulationConfig(
        symbols=settings.trading.instruments, seed=SEED, ticks_per_second=TICKS_PER_S
    )
    return list(simulate(config, STREAM_TICKS))


@pytest.fixture(scope="session")
def tick_records(tick_dicts: list[dict[str, Any]]) -> list[KafkaRecord]:
    """The tick stream as records read from `md.ticks`."""
    return as_records(encoded(tick_dicts))


@pytest.fixture(scope="session")
def make_records() -> MakeRecords:
    """`as_records`, for tests that splice their own values into a stream."""
    return as_records


def trading_runner(settings: Settings) -> RunTrading:
    """Run records through the trading steps; return every event the flow emits.

    Keywords: `batch_size`, `recovery_dir` (a Bytewax recovery store; each batch is
    then its own epoch so an ABORT resumes close to where it stopped).
    """

    def run(
        records: Sequence[object],
        *,
        batch_size: int = BATCH_SIZE,
        recovery_dir: Path | None = None,
    ) -> list[object]:
        out: list[object] = []
        flow = trading_flow(settings, records, out, batch_size)
        if recovery_dir is None:
            run_main(flow)
        else:
            run_main(
                flow,
                epoch_interval=datetime.timedelta(0),
                recovery_config=RecoveryConfig(str(recovery_dir)),
            )
        return out

    return run


def abort_and_resume(
    run: RunTrading, records: Sequence[KafkaRecord], directory: Path
) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Encoded outputs of an uninterrupted run, and of a run aborted at half then resumed.

    Both runs keep a Bytewax recovery store under `directory`.
    """
    full_dir, resumed_dir = directory / "full", directory / "resumed"
    for store in (full_dir, resumed_dir):
        store.mkdir()
        init_db_dir(store, 1)
    half = len(records) // 2 // BATCH_SIZE * BATCH_SIZE
    with_abort = [*records[:half], TestingSource.ABORT(), *records[half:]]
    full = encoded(run(records, recovery_dir=full_dir))
    before = encoded(run(with_abort, recovery_dir=resumed_dir))
    after = encoded(run(with_abort, recovery_dir=resumed_dir))
    return full, before, after


@pytest.fixture(scope="session")
def run_trading(settings: Settings) -> RunTrading:
    """`trading_runner` with the session's settings."""
    return trading_runner(settings)


@pytest.fixture(scope="session")
def run_gateway(settings: Settings) -> RunGateway:
    """Run tick records and orders through the gateway's book step; return its outputs."""

    def run(
        records: Sequence[KafkaRecord],
        orders: Sequence[Order],
        *,
        tick_batch: int = BATCH_SIZE,
        order_batch: int = 10,
    ) -> list[object]:
        out: list[object] = []
        flow = gateway_flow(
            settings, records, orders, out, tick_batch=tick_batch, order_batch=order_batch
        )
        run_main(flow)
        return out

    return run


@pytest.fixture(scope="session")
def trading_events(run_trading: RunTrading, tick_records: list[KafkaRecord]) -> list[object]:
    """One run of the clean tick stream through the trading steps."""
    return run_trading(tick_records)


@pytest.fixture(scope="session")
def orders(trading_events: list[object]) -> list[Order]:
    """The orders the trading steps sent for the clean stream."""
    found = [event for event in trading_events if isinstance(event, Order)]
    assert found, "the eased model settings should yield orders"
    return found


@pytest.fixture(scope="session")
def bad_stream(tick_dicts: list[dict[str, Any]]) -> BadStream:
    """The clean stream with one bad record of every kind spliced in."""
    values = encoded(tick_dicts)
    inserts: dict[int, list[tuple[bytes, DecodeReason]]] = {}

    def after(index: int, value: bytes, reason: DecodeReason) -> None:
        inserts.setdefault(index, []).append((value, reason))

    tick = tick_dicts[100]
    literal = encode({**tick, "price": 0.0}).replace(b'"price":0.0', b'"price":NaN')
    assert b'"price":NaN' in literal
    after(100, encode({**tick, "price": "NaN"}), DecodeReason.NON_FINITE)
    after(200, literal, DecodeReason.NON_FINITE)
    after(300, encode({**tick, "size": -5.0}), DecodeReason.NEGATIVE_SIZE)
    after(400, b'{"instrument":"AAPL","seq":', DecodeReason.MALFORMED_JSON)
    after(500, encode({**tick, "note": "x" * 70_000}), DecodeReason.OVERSIZED)
    after(600, encode({**tick, "instrument": "ZZZZ"}), DecodeReason.UNKNOWN_INSTRUMENT)
    after(700, values[700], DecodeReason.DUPLICATE_SEQUENCE)
    # A replay of tick 800 once its instrument has moved two ticks on.
    name = tick_dicts[800]["instrument"]
    later = [i for i in range(801, len(tick_dicts)) if tick_dicts[i]["instrument"] == name]
    after(later[1], values[800], DecodeReason.BACKWARDS_SEQUENCE)

    stream: list[bytes] = []
    expected: dict[int, DecodeReason] = {}
    for index, value in enumerate(values):
        stream.append(value)
        for bad, reason in inserts.get(index, ()):
            expected[len(stream)] = reason
            stream.append(bad)
    return BadStream(records=as_records(stream), expected=expected)
