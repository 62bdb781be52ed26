"""The gateway dataflow: a deterministic paper broker between orders and fills.

Run it with recovery on::

    python -m bytewax.run "dataflows.flows.gateway:build_flow()" -r var/recovery/gateway -s 2 -b 30

Orders and cancel requests (`hfl.orders`) and ticks (`md.ticks`) are keyed by
instrument and matched in event time by `connectors.gateway.paper.InstrumentBook`;
order events (CANCELED for an honoured cancel) and fills go to `hfl.order_events`
and `hfl.fills`.

Progress marker: each instrument's book also emits `FillsThrough(through_ns=P)` on
`hfl.fills`, behind every fill before P, and the same `OrderEventsThrough` on
`hfl.order_events`, behind every order event before P (an event comes with the order,
cancel or fill that caused it, so the same bound covers it). A fill at time f needs
its tick (all ticks before the clock C of the one-partition, time-ordered `md.ticks`
have been fed) and its order, decided at least the latency L before f (all orders
before W have come, says the gate's `OrdersSent(W)`). So P = min(C, W + L) is safe,
and it moves only when both the tick stream and the gate's promises move on.

The same promise bounds each book's tick buffer: an order still to come trades only
on ticks at W + L or later, so the earlier ones are dropped (`InstrumentBook.
orders_sent`). A snapshot then holds the ticks the tick stream runs ahead of the gate,
not the whole buffer the settings allow (`hfl bench gateway` measures both).

Recovery: Bytewax snapshots every book at the end of each epoch
(`recovery.snapshot_interval_s`). A restarted gateway resumes from the last epoch
whose snapshot was written and re-emits, byte-identical, the order events and fills
emitted since (the account step drops them, `AccountGate.is_replayed_report`). A
gateway killed before its first epoch after a restart closed wrote no snapshot, so the
next restart re-emits its output too. The count per restart is therefore the output
since the last snapshot: it grows with the output rate, and with every restart that
did not live one epoch, but is not replayed from the beginning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import bytewax.operators as op
import numpy as np
from bytewax.dataflow import Dataflow

from connectors import topic
from connectors.codec import TickRow, check_sequence, decode_order_request, decode_tick_row
from connectors.gateway.paper import (
    NO_TICKS,
    InstrumentBook,
    Output,
    PaperBrokerConfig,
    TickColumns,
)
from connectors.kafka.record import KafkaRecord
from connectors.telemetry.log import log_event
from dataflows.flows.shim import delegate
from dataflows.flows.wiring import (
    FlowIO,
    KafkaIO,
    observe_process,
    settle_heap,
    split_dead_letters,
)
from dataflows.settings import Settings, load_settings
from dataflows.settings_domain import paper_config
from risk.domain import (
    CancelOrder,
    DecodeFailure,
    Fill,
    FillsThrough,
    Order,
    OrderEvent,
    OrderEventsThrough,
    OrdersSent,
    Tick,
)
from risk.domain.ids import stable_id


@dataclass(frozen=True, slots=True)
class TickBatch:
    """One source poll's valid ticks of one instrument, in stream order, as columns, and
    the poll's clock: every tick with `ts_event < through_ns` has been fed to the books.

    One Bytewax item per instrument per poll, not one per tick plus a clock item per
    instrument: fewer items through the runtime, no `Tick` per tick, and a book with
    nothing working only appends the batch to its buffer (`InstrumentBook.on_columns`).
    """

    instrument: str
    through_ns: int
    ticks: TickColumns = field(default=NO_TICKS)


GatewayInput = Order | CancelOrder | Tick | OrdersSent | TickBatch
LOG = logging.getLogger("hfl.gateway")


def valid_ticks(
    instruments: frozenset[str],
) -> Callable[[list[KafkaRecord]], list[tuple[str, GatewayInput]]]:
    """Decode a poll's ticks into one `TickBatch` per instrument; invalid ticks are the
    trading flow's dead letters.

    Every instrument's book gets its batch, empty or not, once the poll held a valid
    tick, so a quiet instrument's progress marker moves on too. The records are
    decoded to fields (`decode_tick_row`: the same ticks pass as `decode_tick`'s), not
    to `Tick`s: the book reads columns.
    """
    names = sorted(instruments)

    def decode(records: list[KafkaRecord]) -> list[tuple[str, GatewayInput]]:
        by_name: dict[str, list[TickRow]] = {}
        clock = -1
        for record in records:
            row = decode_tick_row(record.value, instruments)
            if row is None:
                continue
            rows = by_name.get(row[0])
            if rows is None:
                rows = by_name[row[0]] = []
            rows.append(row)
            clock = max(clock, row[2])
        if not by_name:
            return []
        # Later ticks may share the newest time, so only earlier ones are complete.
        return [
            (
                name,
                TickBatch(
                    name, clock, TickColumns.decoded(by_name[name]) if name in by_name else NO_TICKS
                ),
            )
            for name in names
        ]

    return decode


def by_instrument(
    instruments: frozenset[str],
) -> Callable[[Order | CancelOrder | OrdersSent], list[tuple[str, GatewayInput]]]:
    """Key orders and cancels by instrument; the gate's promise goes to every book."""
    names = sorted(instruments)

    def key(request: Order | CancelOrder | OrdersSent) -> list[tuple[str, GatewayInput]]:
        if isinstance(request, OrdersSent):
            return [(name, request) for name in names]
        return [(request.instrument, request)]

    return key


def decode_order_requests(
    records: list[KafkaRecord],
) -> list[Order | CancelOrder | OrdersSent | DecodeFailure]:
    """Decode `hfl.orders` records into orders, cancel requests and the gate's promises;
    bad ones are dead letters."""
    return [decode_order_request(record.value, origin=record) for record in records]


# Snapshot version of BookState (dataflows.flows.shim): bump on change.
# 2: the book's recent Ticks gained the venue fields (an older pickle restores them unset).
# 3: the book keeps its ticks as arrays (`TickColumns`), not `Tick`s.
BOOK_STATE_VERSION = 3


@dataclass(slots=True)
class BookState:
    """One instrument's paper book, built on its first order or tick, its sequence guard
    and how far its progress marker got."""

    config: PaperBrokerConfig
    instrument: str = ""
    book: InstrumentBook | None = None
    last_seq: int | None = None
    account: str = ""
    ticks_through: int = -1
    orders_through: int | None = None
    reported_through: int = -1


def handle(state: BookState, batch: list[GatewayInput]) -> list[Output | FillsThrough]:
    """Feed orders, cancels and ticks to the instrument's book in arrival order, then
    mark how far its fills and order events are complete if that moved."""
    out: list[Output | FillsThrough] = []
    for item in batch:
        if isinstance(item, TickBatch):
            state.instrument = item.instrument
            if len(item.ticks):
                _feed_ticks(state, item.ticks, out)
            state.ticks_through = max(state.ticks_through, item.through_ns)
            continue
        if isinstance(item, OrdersSent):
            state.account = item.account
            previous = state.orders_through
            state.orders_through = (
                item.through_ns if previous is None else max(previous, item.through_ns)
            )
            if state.book is not None:
                state.book.orders_sent(state.orders_through)
            continue
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
        _emit(produced, out)
    out.extend(_progress(state))
    return out


def _feed_ticks(state: BookState, ticks: TickColumns, out: list[Output | FillsThrough]) -> None:
    """Feed a batch of one instrument's ticks to its book, without repeated or backwards
    sequence numbers (a duplicate must not offer its size twice)."""
    seqs = ticks.ids[:, 1]
    last = -1 if state.last_seq is None else state.last_seq  # a valid seq is >= 0
    # A tick is fresh when its seq exceeds every one before it (`check_sequence`).
    highest = np.maximum.accumulate(np.maximum(seqs, last))
    before = np.empty_like(highest)
    before[0] = last
    before[1:] = highest[:-1]
    fresh = seqs > before
    state.last_seq = int(highest[-1])
    if not fresh.all():
        ticks = ticks.select(fresh)
        if not len(ticks):
            return
    if state.book is None:
        state.book = InstrumentBook(state.instrument, state.config)
    _emit(state.book.on_columns(ticks), out)


def _emit(produced: Sequence[Output], out: list[Output | FillsThrough]) -> None:
    out.extend(produced)
    for event in produced:
        log_event(LOG, _describe(event), event)


def _progress(state: BookState) -> list[FillsThrough]:
    """The instrument's progress markers for fills and order events, when they moved
    past the last ones."""
    if state.orders_through is None or not state.instrument:
        return []
    through = min(state.ticks_through, state.orders_through + state.config.latency_ns)
    if through <= state.reported_through:
        return []
    state.reported_through = through
    account, instrument = state.account, state.instrument
    return [
        kind(
            progress_id=stable_id(name, account, instrument, through),
            account=account,
            instrument=instrument,
            through_ns=through,
            ts_event=through,
            ts_init=through,
        )
        for kind, name in _MARKERS
    ]


_MARKERS = ((FillsThrough, "fills_through"), (OrderEventsThrough, "order_events_through"))


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
    io = io or KafkaIO(settings, writer="gateway")
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
    instruments = frozenset(settings.trading.instruments)
    keyed_orders = op.flat_map("orders_by_instrument", valid_orders, by_instrument(instruments))
    outputs = op.key_rm(
        "book_events",
        op.stateful_batch(
            "paper_book",
            op.merge("book_in", ticks, keyed_orders),
            delegate(
                lambda: BookState(config),
                handle,
                step="gateway.paper_book",
                version=BOOK_STATE_VERSION,
            ),
        ),
    )
    io.output("events_out", op.merge("all_events", outputs, dead))
    settle_heap()
    return flow
