"""The persist dataflow: every topic into ClickHouse, batched and idempotent.

Run it with recovery on::

    python -m bytewax.run "dataflows.flows.persist:build_flow()" -r var/recovery/persist -s 2 -b 30

Rows are buffered per table and written as one columnar insert per table when the
buffer is large or old, and always before an epoch's snapshot, so the Kafka offsets
Bytewax records never run ahead of what ClickHouse acknowledged. Each row carries
the (topic, offset) of its record so that, with `clickhouse.ack_journal` set, every
acknowledged batch is journalled with its offsets: the chaos suite (R5) checks that
against the offsets in the recovery store's snapshots. A replayed epoch
resends identical batches, which the tables absorb (DESIGN.md §4). With the embedded
engine this process owns the store, so it also serves read-only SQL on loopback for
`hfl sql`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import bytewax.operators as op
from bytewax.dataflow import Dataflow
from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors import topic
from connectors.codec import (
    check_sequence,
    decode_tick,
    encode,
    is_progress_marker,
    record_rows_decoder,
)
from connectors.kafka.record import KafkaRecord
from connectors.telemetry.metric import (
    DEAD_LETTERS,
    PERSIST_LAG,
    PERSIST_ROWS,
    count_reasons,
)
from dataflows.flows.shim import delegate
from dataflows.flows.wiring import FlowIO, KafkaIO, code_version, observe_process
from dataflows.settings import Settings, load_settings, masked
from risk.domain import DecodeFailure
from sinks.ack_journal import AckJournal, Source
from sinks.client import connect, is_embedded
from sinks.fault import FaultPlan, FaultyInserter
from sinks.migration import migrate
from sinks.query import QueryServer, remove_port_file
from sinks.row import TABLE_BY_TOPIC, table_for_record
from sinks.table_sink import TableBuffer, finished, run_rows
from sinks.writer import BatchWriter, Inserter

Row = dict[str, object]
PERSISTED_TOPICS = tuple(TABLE_BY_TOPIC)


DEAD = "dead"  # the key of dead letters among split_records' items


def split_records(
    prefix: str, instruments: frozenset[str]
) -> Callable[[list[KafkaRecord]], list[tuple[str, object]]]:
    """Decode records: ticks keyed by instrument for the sequence guard, rows by table,
    and records that do not decode as dead letters keyed `DEAD`.

    Every row keeps its record's (topic, offset) for the acknowledgement journal; a
    columnar record of features or predictions gives all of its rows (one offset).
    Invalid ticks are skipped: the trading flow dead-letters those.
    """
    ticks_topic = prefix + topic.TICKS
    decoders = {
        prefix + name: record_rows_decoder(name) for name in PERSISTED_TOPICS if name != topic.TICKS
    }

    def split(records: list[KafkaRecord]) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for record in records:
            if record.topic == ticks_topic:
                tick = decode_tick(record.value, instruments)
                if not isinstance(tick, DecodeFailure):
                    out.append((tick.instrument, (tick, (record.topic, record.offset))))
                continue
            rows = decoders[record.topic](record.value, origin=record)
            if isinstance(rows, DecodeFailure):
                out.append((DEAD, rows))
                continue
            source = (record.topic, record.offset)
            for row in rows:
                if not is_progress_marker(row):
                    out.append(("", (table_for_record(record.topic, row, prefix), row, source)))
        return out

    return split


SEQUENCE_STATE_VERSION = (
    1  # snapshot version of SequenceState (dataflows.flows.shim): bump on change
)


@dataclass(slots=True)
class SequenceState:
    """Last accepted sequence number of one instrument."""

    last_seq: int | None = None


def keep_in_sequence(
    state: SequenceState, ticks: list[tuple[object, Source]]
) -> list[tuple[str, Row, Source]]:
    """Drop duplicate or backwards ticks (they are dead letters), turn the rest into rows."""
    rows: list[tuple[str, Row, Source]] = []
    for tick, source in ticks:
        if check_sequence(state.last_seq, tick.seq) is None:  # type: ignore[attr-defined]
            state.last_seq = tick.seq  # type: ignore[attr-defined]
            rows.append(("ticks", asdict(tick), source))  # type: ignore[call-overload]
    return rows


class _TablePartition(StatefulSinkPartition[tuple[str, Row, Source], None]):
    """The one partition owning the store; it only adapts Bytewax to `TableBuffer`."""

    def __init__(self, store: PersistStore) -> None:
        self._store = store
        self._buffer = store.buffer()
        self._run_row = store.run_row(time.time_ns())
        self._buffer.writer.write("runs", [self._run_row])

    def write_batch(self, values: list[tuple[str, Row, Source]]) -> None:
        self._buffer.add(values)

    def snapshot(self) -> None:
        self._buffer.snapshot()

    def close(self) -> None:
        self._buffer.flush()
        self._buffer.writer.write("runs", [finished(self._run_row, time.time_ns())])
        self._store.close()


@dataclass(slots=True)
class PersistStore:
    """What the persist flow's sink writes to, opened by `open_store` (its owner)."""

    settings: Settings
    run_id: str
    client: Inserter
    server: QueryServer | None

    def buffer(self) -> TableBuffer:
        """A table buffer over this store, with the configured faults and journal."""
        clickhouse = self.settings.clickhouse
        inserter: Inserter = self.client
        if clickhouse.faults:
            inserter = FaultyInserter(self.client, FaultPlan.parse(clickhouse.faults))
        journal = AckJournal(clickhouse.ack_journal) if clickhouse.ack_journal else None
        return TableBuffer(
            BatchWriter(inserter),
            flush_rows=clickhouse.flush_rows,
            flush_interval_s=clickhouse.flush_interval_s,
            journal=journal,
            on_written=_observe_written,
        )

    def run_row(self, started_at_ns: int) -> Row:
        """This run's `runs` row, its settings with every secret masked."""
        config = encode(masked(self.settings)).decode()
        return run_rows(self.run_id, config, code_version(), started_at_ns)

    def close(self) -> None:
        """Stop serving read-only SQL (embedded store only)."""
        if self.server is not None:
            self.server.stop()
            remove_port_file(self.settings.clickhouse.url.reveal())


def open_store(settings: Settings, run_id: str) -> PersistStore:
    """Open the store: apply migrations and, for the embedded engine (which allows one
    process per directory), serve read-only SQL on loopback for `hfl sql` and the
    dashboard."""
    url = settings.clickhouse.url.reveal()
    client = connect(url)
    migrate(client, cluster=settings.clickhouse.cluster)
    server = None
    if is_embedded(url):
        server = QueryServer(url)
        server.start()  # records its port and token
    return PersistStore(settings, run_id, client, server)


def _observe_written(table: str, rows: list[Row]) -> None:
    PERSIST_ROWS.labels(table).inc(len(rows))
    if table == "ticks":
        PERSIST_LAG.set(time.time() - rows[-1]["ts_init"] / 1e9)  # type: ignore[operator]
    elif table == "dlq":
        count_reasons(DEAD_LETTERS, (str(row["reason"]) for row in rows))


class ClickHouseSink(FixedPartitionedSink[Row, None]):
    """One partition owning the store: chDB allows a single process per directory."""

    def __init__(self, settings: Settings, run_id: str) -> None:
        self._settings = settings
        self._run_id = run_id

    def list_parts(self) -> list[str]:
        return ["clickhouse"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _TablePartition:
        return _TablePartition(open_store(self._settings, self._run_id))


def build_flow(settings: Settings | None = None, io: FlowIO | None = None) -> Dataflow:
    """Build the persist dataflow from `settings` (default: config files + environment).

    `io` (default Kafka) supplies the records and takes the dead letters: a record that
    does not decode goes to `hfl.dlq` (which this flow persists in turn), never stops it.
    """
    settings = settings or load_settings()
    observe_process("persist")
    io = io or KafkaIO(settings, writer="persist")
    prefix = settings.kafka.topic_prefix
    flow = Dataflow("persist")
    # Persistence may lag by design; long broker-side waits keep idle polling cheap.
    # A bounded run ends at the end markers of every writer of these topics.
    records = io.input("records_in", flow, *PERSISTED_TOPICS, fetch_wait_ms=100)
    decoded = op.flat_map_batch(
        "decode", records, split_records(prefix, frozenset(settings.trading.instruments))
    )
    dead = op.branch("split_dead", decoded, lambda item: item[0] == DEAD)
    io.output("dead_letters", op.map("dead_letter", dead.trues, lambda item: item[1]))
    branches = op.branch("split_ticks", dead.falses, lambda item: item[0] != "")
    ticks = branches.trues
    others = op.map("rows", branches.falses, lambda item: item[1])
    tick_rows = op.key_rm(
        "tick_rows",
        op.stateful_batch(
            "tick_sequence",
            ticks,
            delegate(
                SequenceState,
                keep_in_sequence,
                step="persist.tick_sequence",
                version=SEQUENCE_STATE_VERSION,
            ),
        ),
    )
    run_id = os.environ.get("HFL_RUN_ID", "adhoc")
    # The sink sees values only, so each keeps its table: (table, (table, row, source)).
    rows = op.map("by_table", op.merge("all_rows", others, tick_rows), lambda item: (item[0], item))
    op.output("clickhouse", rows, ClickHouseSink(settings, run_id))
    return flow
