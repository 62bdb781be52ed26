"""R5: ClickHouse errors and delays injected into the sink path lose and duplicate nothing.

A real chDB engine sits behind a failpoint (`sinks.fault`) that, by a seeded draw per
insert, fails before inserting (connection refused), fails after inserting (the
acknowledgement is lost), stalls, or works. The writer retries with backoff and
jitter, resending the identical batch with the same deduplication token.

- `R5-writer`: the writer alone; the table ends up with every row exactly once, even
  without `FINAL`.
- `R5-flow`: the real persist flow with the failpoint, in a run of the whole stack.
  Every table equals golden, and every batch is acknowledged before its epoch's
  snapshot: while the flow runs, each time the recovery store's frontier moves, the
  input offsets a restart would resume from are read, then the acknowledgement
  journal; after the run, every offset below those that produced a row must already
  have been acknowledged at that moment.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from connectors.codec import encode, loads
from dataflows.ops.recovery_store import resumable
from risk.domain import Fill, Side
from risk.domain.ids import fill_id
from sinks.ack_journal import acked_offsets
from sinks.fault import FAULTS, FaultPlan, FaultyInserter
from sinks.writer import BatchWriter
from tests.chaos.harness import Dump, Run, compare_tables, dump

BATCHES = 60
ROWS_PER_BATCH = 500
SEED = 5
WRITER_FAULTS = FaultPlan(seed=SEED, before=0.2, after=0.2, delay=0.1, max_in_row=4)
FLOW_FAULTS = "seed=5,before=0.15,after=0.15,delay=0.1,delay_s=0.3"


def fill_rows(account: str, batch: int) -> list[dict[str, Any]]:
    fills = [
        Fill(
            fill_id=fill_id(f"{account}-{batch}", n),
            client_order_id=f"{account}-{batch}",
            account=account,
            instrument="AAPL",
            side=Side.BUY,
            quantity=Decimal(1),
            price=Decimal("100.5"),
            fee=Decimal("0.01"),
            leaves_quantity=Decimal(0),
            tick_id="t",
            ts_event=1_700_000_000_000_000_000 + batch * 1000 + n,
            ts_init=1_700_000_000_000_000_000 + batch * 1000 + n,
        )
        for n in range(ROWS_PER_BATCH)
    ]
    return [loads(encode(fill)) for fill in fills]


def test_writer_with_injected_clickhouse_faults_loses_and_duplicates_nothing(
    clickhouse: Client, record: Callable[[str, dict[str, Any]], None]
) -> None:
    account = f"r5-{uuid.uuid4().hex[:8]}"
    faulty = FaultyInserter(clickhouse, WRITER_FAULTS)
    writer = BatchWriter(faulty, max_attempts=20, base_delay_s=0.01, max_delay_s=0.1)
    for batch in range(BATCHES):
        writer.write("fills", fill_rows(account, batch))
    where = {"a": account}
    raw, distinct = clickhouse.query(
        "SELECT count(), uniqExact(fill_id) FROM fills WHERE account = %(a)s", parameters=where
    ).result_rows[0]
    final = clickhouse.query(
        "SELECT count() FROM fills FINAL WHERE account = %(a)s", parameters=where
    ).result_rows[0][0]
    expected = BATCHES * ROWS_PER_BATCH
    record(
        "R5-writer",
        {
            "batches": BATCHES,
            "rows": expected,
            "injected": faulty.injected,
            "lost": expected - distinct,
            "duplicated": raw - distinct + final - distinct,
            "mismatched": 0 if final == distinct else abs(final - distinct),
        },
    )
    assert all(faulty.injected.values()), faulty.injected
    assert (raw, distinct, final) == (expected, expected, expected)


@dataclass(frozen=True, slots=True, kw_only=True)
class Seen:
    """Offsets a restart would resume from once the frontier reached `frontier`, and the
    journal's size read right after: everything acknowledged by then."""

    frontier: int
    offsets: dict[str, int]
    journal_bytes: int


@dataclass(slots=True)
class SnapshotWatcher:
    """Poll the persist flow's recovery store; note each new frontier's resumable offsets."""

    store: Path
    journal: Path
    seen: list[Seen] = field(default_factory=list)

    def poll(self) -> None:
        try:
            state = resumable(self.store, "records_in")
        except sqlite3.OperationalError:  # the flow holds a write lock right now
            return
        if state is None or not state.offsets:
            return
        if self.seen and self.seen[-1].frontier >= state.frontier:
            return
        size = self.journal.stat().st_size if self.journal.exists() else 0
        offsets = {t: o for part in state.offsets.values() for t, o in part.items()}
        self.seen.append(Seen(frontier=state.frontier, offsets=offsets, journal_bytes=size))


def unacknowledged(journal: bytes, seen: list[Seen]) -> list[str]:
    """Rows' offsets that were resumable before ClickHouse acknowledged them."""
    lines = journal.splitlines()
    every = acked_offsets(lines)
    late = []
    for point in seen:
        by_then = acked_offsets(journal[: point.journal_bytes].splitlines())
        for topic, next_offset in point.offsets.items():
            needed = {o for o in every.get(topic, set()) if o < next_offset}
            missing = needed - by_then.get(topic, set())
            late += [f"{topic}@{o} (frontier {point.frontier})" for o in sorted(missing)]
    return late


def count_in_log(log: Path, text: str) -> int:
    return log.read_text(errors="replace").count(text)


def test_persist_flow_with_clickhouse_faults_acks_every_batch_before_its_snapshot(
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    lines: list[bytes],
    golden: Dump,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    run = Run("r5", kafka_bootstrap, tmp_path_factory.mktemp("r5"), len(lines))
    journal = run.directory / "acks.jsonl"
    run.prepare(lines)
    run.start(
        "persist",
        HFL_CLICKHOUSE__FAULTS=FLOW_FAULTS,
        HFL_CLICKHOUSE__ACK_JOURNAL=str(journal),
    )
    run.start("gateway")
    run.start("trading")
    watcher = SnapshotWatcher(run.directory / "recovery" / "persist", journal)
    codes = run.finish(while_waiting=watcher.poll)
    assert all(code == 0 for code in codes.values()), f"{codes}\n{run.logs()}"
    late = unacknowledged(journal.read_bytes(), watcher.seen)
    figures, differing = compare_tables(golden, dump(run.store))
    log = run.children["persist"].log
    record(
        "R5-flow",
        figures
        | {
            "differing_tables": differing,
            "injected": {f: count_in_log(log, f"injected fault: {f}") for f in FAULTS},
            "acked_batches": journal.read_bytes().count(b'"acked"'),
            "snapshots_checked": len(watcher.seen),
            "rows_resumable_before_ack": len(late),
        },
    )
    assert len(watcher.seen) >= 3, watcher
    assert late == [], late[:20]
    assert differing == []
