"""The gateway dataflow: a deterministic paper broker between orders and fills.

Run it with recovery on::

    python -m bytewax.run "dataflows.gateway:build_flow()" -r var/recovery/gateway -s 2 -b 30

Orders (`hfl.orders`) and ticks (`md.ticks`) are keyed by instrument and matched in
event time by `connectors.gateway.paper.InstrumentBook`; order events and fills go
to `hfl.order_events` and `hfl.fills`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors import topic
from connectors.codec import Rejected, check_sequence, decode_tick
from connectors.gateway.paper import InstrumentBook, Output, PaperBrokerConfig
from connectors.kafka.record import KafkaRecord
from dataflows.settings import Settings, load_settings
from dataflows.shim import delegate
from dataflows.wiring import FlowIO, KafkaIO, decoder, split_dead_letters
from risk.domain import Order, Tick

GatewayInput = Order | Tick


def paper_config(settings: Settings) -> PaperBrokerConfig:
    """The paper broker's latency, slippage, fees and tick buffer from settings."""
    gateway = settings.gateway
    return PaperBrokerConfig(
        latency_ns=int(gateway.latency_ms * 1_000_000),
        slippage_bps=gateway.slippage_bps,
        fee_bps=gateway.fee_bps,
        tick_buffer_ns=int(gateway.tick_buffer_s * 1_000_000_000),
        max_buffered_ticks=gateway.max_buffered_ticks,
    )


def valid_ticks(
    instruments: frozenset[str],
) -> Callable[[list[KafkaRecord]], list[tuple[str, GatewayInput]]]:
    """Decode ticks keyed by instrument; invalid ones are the trading flow's dead letters."""

    def decode(records: list[KafkaRecord]) -> list[tuple[str, GatewayInput]]:
        out: list[tuple[str, GatewayInput]] = []
        for record in records:
            try:
                tick = decode_tick(record.value, instruments)
            except Rejected:
                continue
            out.append((tick.instrument, tick))
        return out

    return decode


@dataclass(slots=True)
class BookState:
    """One instrument's paper book, built on its first input, plus its sequence guard."""

    config: PaperBrokerConfig
    book: InstrumentBook | None = None
    last_seq: int | None = None


def handle(state: BookState, batch: list[GatewayInput]) -> list[Output]:
    """Feed orders and ticks to the instrument's book in arrival order."""
    out: list[Output] = []
    for item in batch:
        if state.book is None:
            state.book = InstrumentBook(item.instrument, state.config)
        produced: Sequence[Output]
        if isinstance(item, Tick):
            if check_sequence(state.last_seq, item.seq) is not None:
                continue  # duplicates must not offer their size twice
            state.last_seq = item.seq
            produced = state.book.on_tick(item)
        else:
            produced = state.book.on_order(item)
        out.extend(produced)
    return out


def build_flow(settings: Settings | None = None, io: FlowIO | None = None) -> Dataflow:
    """Build the gateway dataflow from `settings` (default: config files + environment).

    `io` (default Kafka) supplies the inputs and the output; tests pass lists.
    """
    settings = settings or load_settings()
    io = io or KafkaIO(settings)
    flow = Dataflow("gateway")
    config = paper_config(settings)
    ticks = op.flat_map_batch(
        "decode_ticks",
        io.input("ticks_in", flow, topic.TICKS),
        valid_ticks(frozenset(settings.trading.instruments)),
    )
    orders = op.flat_map_batch(
        "decode_orders", io.input("orders_in", flow, topic.ORDERS), decoder(Order)
    )
    valid_orders, dead = split_dead_letters("split_orders", orders)
    keyed_orders = op.key_on("orders_by_instrument", valid_orders, lambda order: order.instrument)
    outputs = op.key_rm(
        "book_events",
        op.stateful_batch(
            "paper_book",
            op.merge("book_in", ticks, keyed_orders),
            delegate(lambda: BookState(config), handle),
        ),
    )
    io.output("events_out", op.merge("all_events", outputs, dead))
    return flow
