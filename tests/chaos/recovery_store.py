"""Watch a Bytewax recovery store while its flow runs: which input offsets are resumable.

Bytewax 0.21 keeps, per recovery partition (`part-N.sqlite3`), the snapshots of every
step (`snaps`: step, key, epoch, pickled state) and each execution's frontier
(`fronts`). A restart resumes at the frontier and loads, per step and key, the latest
snapshot of an earlier epoch. So once the frontier reached *F*, the input offsets in
the latest snapshot before *F* are what a crash would resume from: everything before
them must already be in ClickHouse.
"""

from __future__ import annotations

import pickle
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumable:
    """Offsets a restart would resume from, seen once the frontier reached `frontier`.

    `journal_bytes` is the acknowledgement journal's size read right after the
    store, i.e. everything acknowledged by then.
    """

    frontier: int
    snap_epoch: int
    offsets: dict[str, int]
    journal_bytes: int


@dataclass(slots=True)
class SnapshotWatcher:
    """Poll one input step's resumable offsets in a one-partition store."""

    store: Path
    input_step: str
    journal: Path
    seen: list[Resumable] = field(default_factory=list)
    busy_polls: int = 0

    def poll(self) -> None:
        """Note the resumable offsets if the frontier moved since the last poll."""
        try:
            frontier, snap = self._read()
        except sqlite3.OperationalError:  # the flow holds a write lock right now
            self.busy_polls += 1
            return
        if snap is None or (self.seen and self.seen[-1].frontier >= frontier):
            return
        size = self.journal.stat().st_size if self.journal.exists() else 0
        epoch, offsets = snap
        self.seen.append(
            Resumable(frontier=frontier, snap_epoch=epoch, offsets=offsets, journal_bytes=size)
        )

    def _read(self) -> tuple[int, tuple[int, dict[str, int]] | None]:
        db = sqlite3.connect(f"file:{self.store / 'part-0.sqlite3'}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT worker_frontier FROM fronts ORDER BY ex_num DESC LIMIT 1"
            ).fetchone()
            if row is None:
                return -1, None
            frontier = int(row[0])
            snap = db.execute(
                "SELECT snap_epoch, ser_change FROM snaps WHERE step_id LIKE ? "
                "AND snap_epoch < ? AND ser_change IS NOT NULL "
                "ORDER BY snap_epoch DESC LIMIT 1",
                (f"%{self.input_step}", frontier),
            ).fetchone()
        finally:
            db.close()
        if snap is None:
            return frontier, None
        return frontier, (int(snap[0]), dict(pickle.loads(snap[1])))
