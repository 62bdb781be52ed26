"""Read a Bytewax 0.21 recovery store: the input offsets a restart would resume from.

Each recovery partition (`part-N.sqlite3`) keeps the snapshots of every stateful step
(`snaps`: step id, state key, epoch, pickled state) and each execution's frontier
(`fronts`). A restart resumes at the frontier and loads, per step and key, the
latest snapshot of an earlier epoch. Our Kafka sources (`connectors.kafka.source`)
are the steps named `…_in` whose state keys are `p<i>` (Kafka partition *i*) and
whose state maps topic → next offset.
"""

from __future__ import annotations

import pickle
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from connectors.kafka.source import topic_offsets

_PART = re.compile(r"p\d+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Resumable:
    """Where a restart would resume: the frontier and each source partition's offsets."""

    frontier: int
    offsets: dict[tuple[str, int], dict[str, int]]


def resumable(store: Path, step_suffix: str = "_in") -> Resumable | None:
    """Offsets per (input step, partition) a restart of the flow of `store` resumes from.

    None when the store holds no execution yet (a fresh store starts from the
    beginning). Raises `sqlite3.OperationalError` while the flow holds a write lock.
    """
    db = sqlite3.connect(f"file:{store / 'part-0.sqlite3'}?mode=ro", uri=True)
    try:
        front = db.execute("SELECT worker_frontier FROM fronts ORDER BY ex_num DESC").fetchone()
        if front is None:
            return None
        rows = db.execute(
            "SELECT step_id, state_key, ser_change FROM snaps AS s "
            "WHERE step_id LIKE ? AND snap_epoch = (SELECT max(snap_epoch) FROM snaps "
            "WHERE step_id = s.step_id AND state_key = s.state_key AND snap_epoch < ?)",
            (f"%{step_suffix}", front[0]),
        ).fetchall()
    finally:
        db.close()
    offsets = {}
    for step, key, state in rows:
        if state is not None and _PART.fullmatch(key):
            offsets[step, int(key[1:])] = topic_offsets(pickle.loads(state))
    return Resumable(frontier=int(front[0]), offsets=offsets)
