"""The gateway dataflow: a deterministic paper broker between orders and fills.

Run it with recovery on::

    python -m bytewax.run "dataflows.gateway:build_flow()" -r var/recovery/gateway -s 2 -b 30

Orders and cancel requests (`hfl.orders`) and ticks (`md.ticks`) are keyed by
instrument and matched in event time by `connectors.gateway.paper.InstrumentBook`;
order events (CANCELED for an honoured cancel) and fills go to `hfl.order_events`
and `hfl.fills`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow

from connectors import topic
from connectors.codec import Rejected, check_sequence, decode_order_request, decode_tick
from connectors.gateway.paper import InstrumentBook, Output, PaperBrokerConfig
from connectors.kafka.record import KafkaRecord
from dataflows.settings import Settings, load_settings
from dataflows.shim import delegate
from dataflows.wiring import FlowIO, KafkaIO, dead_letter, observe_process, split_dead_letters
from risk.domain import CancelOrder, DecodeFailure, Fill, Order, OrderEvent, Tick
from sinks.log import log_event

GatewayInput = Order | CancelOrder | Tick
LOG = logging.getLogger("hfl.gateway")


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


def decode_order_requests(records: list[KafkaRecord]) -> list[Order | CancelOrder | DecodeFailure]:
    """Decode `hfl.orders` records into orders and cancel requests; bad ones are dead letters."""
    out: list[Order | CancelOrder | DecodeFailure] = []
    for record in records:
        try:
            out.append(decode_order_request(record.value))
        except Rejected as rejected:
            out.append(dead_letter(record, rejected))
    return out


@dataclass(slots=True)
class BookState:
    """One instrument's paper book, built on its first input, plus its sequence guard."""

    config: PaperBrokerConfig
    book: InstrumentBook | None = None
    last_seq: int | None = None


def handle(state: BookState, batch: list[GatewayInput]) -> list[Output]:
    """Feed orders, cancels and ticks to the instrument's book in arrival order."""
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
        elif isinstance(item, CancelOrder):
            produced = state.book.cancel(item.client_order_id, item.ts_event)
        else:
            produced = state.book.on_order(item)
        out.extend(produced)
        for event in produced:
            log_event(LOG, _describe(event), event)
    return out


def _describe(event: Output) -> str:
    match event:
        case Fill():
            return "order fill"
        case OrderEvent():
            return f"order {event.kind}"
    return type(event).__name__


def build_flow(settings: Settings | None = None, io: FlowIO | None = None) -> Dataflow:
    """Build the gateway dataflow from `settings` (default: config files + environment).

    `io` (default Kafka) supplies the inputs and the output; tests pass lists.
    """
    settings = settings or load_settings()
    observe_process("gateway")
    io = io or KafkaIO(settings)
    flow = Dataflow("gateway")
    config = paper_config(settings)
    ticks = op.flat_map_batch(
        "decode_ticks",
        io.input("ticks_in", flow, topic.TICKS),
        valid_ticks(frozenset(settings.trading.instruments)),
    )
    orders = op.flat_map_batch(
        "decode_orders", io.input("orders_in", flow, topic.ORDERS), decode_order_requests
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
