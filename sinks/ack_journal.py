"""A journal of what ClickHouse acknowledged, by source record (chaos suite, R5).

Each line is one JSON object, written with a single `write` right after the event it
records, so a reader in another process sees a line only once its event happened:

- ``{"acked": table, "offsets": {topic: [offset, …]}}`` after an insert returned;
- ``{"snapshot": n}`` after the persist sink's n-th `snapshot()` flushed everything.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

from connectors.codec import dumps, loads

Source = tuple[str, int]


class AckJournal:
    """Append-only journal file (created if missing, appended across restarts)."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._snapshots = 0

    def acked(self, table: str, sources: list[Source]) -> None:
        """Record that the rows of `sources` are in `table`."""
        offsets: dict[str, list[int]] = defaultdict(list)
        for topic, offset in sources:
            offsets[topic].append(offset)
        self._write({"acked": table, "offsets": offsets})

    def snapshot(self) -> None:
        """Record that a snapshot found nothing left unacknowledged."""
        self._snapshots += 1
        self._write({"snapshot": self._snapshots})

    def _write(self, entry: object) -> None:
        os.write(self._fd, dumps(entry) + b"\n")


def acked_offsets(lines: list[bytes]) -> dict[str, set[int]]:
    """Offsets acknowledged per topic in journal `lines`.

    >>> acked_offsets([b'{"acked":"t","offsets":{"a":[1,2]}}', b'{"snapshot":1}'])
    {'a': {1, 2}}
    """
    acked: dict[str, set[int]] = defaultdict(set)
    for line in lines:
        entry = loads(line)
        for topic, offsets in entry.get("offsets", {}).items():
            acked[topic].update(offsets)
    return dict(acked)
