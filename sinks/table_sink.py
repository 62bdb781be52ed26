"""Rows buffered per table and written as one columnar insert per table.

The persist flow's sink partition delegates here. A buffer is flushed when it is
large or old, and always on `snapshot()`, so the Kafka offsets a recovery snapshot
records never run ahead of what ClickHouse acknowledged. With an `AckJournal`, each
acknowledged batch is journalled with the (topic, offset) of its rows (chaos R5).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sinks.ack_journal import AckJournal, Source
from sinks.writer import BatchWriter

Row = dict[str, object]


@dataclass(slots=True)
class TableBuffer:
    """Buffers `(table, row, source)` triples and writes them per table.

    Args:
        writer: the idempotent batch writer.
        flush_rows: flush once this many rows are buffered.
        flush_interval_s: flush once the oldest buffered row is this old.
        journal: journals the sources of every acknowledged batch, when set.
        on_written: called with each written table and its rows (metrics).
        clock: monotonic seconds (a parameter so tests need not sleep).
    """

    writer: BatchWriter
    flush_rows: int
    flush_interval_s: float
    journal: AckJournal | None = None
    on_written: Callable[[str, list[Row]], None] = lambda table, rows: None
    clock: Callable[[], float] = time.monotonic
    _buffers: dict[str, list[Row]] = field(default_factory=dict)
    _sources: dict[str, list[Source]] = field(default_factory=dict)
    _buffered: int = 0
    _last_flush: float | None = None

    def add(self, values: list[tuple[str, Row, Source]]) -> None:
        """Buffer `values`; flush when the buffer is large or old."""
        if self._last_flush is None:
            self._last_flush = self.clock()
        for table, row, _ in values:
            self._buffers.setdefault(table, []).append(row)
        if self.journal is not None:
            for table, _, source in values:
                self._sources.setdefault(table, []).append(source)
        self._buffered += len(values)
        age = self.clock() - self._last_flush
        if self._buffered >= self.flush_rows or age >= self.flush_interval_s:
            self.flush()

    def flush(self) -> None:
        """Write every buffered table, one insert each."""
        for table, rows in self._buffers.items():
            if rows:
                self.writer.write(table, rows)
                self.on_written(table, rows)
                if self.journal is not None:
                    self.journal.acked(table, self._sources.pop(table, []))
        self._buffers.clear()
        self._buffered = 0
        self._last_flush = self.clock()

    def snapshot(self) -> None:
        """Flush before Bytewax snapshots the input offsets."""
        self.flush()
        if self.journal is not None:
            self.journal.snapshot()


def run_rows(run_id: str, config_json: str, code_version: str, started_at_ns: int) -> Row:
    """The `runs` row a run writes when it starts (version 1).

    >>> run_rows("r", "{}", "abc", 5)["status"]
    'running'
    """
    return {
        "run_id": run_id,
        "started_at": started_at_ns,
        "config": config_json,
        "code_version": code_version,
        "status": "running",
        "version": 1,
    }


def finished(run_row: Row, finished_at_ns: int) -> Row:
    """The `runs` row that replaces `run_row` when the run ends (version 2)."""
    return run_row | {"finished_at": finished_at_ns, "status": "finished", "version": 2}
