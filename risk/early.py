"""Fills and order events that reach the gate before the order they belong to.

In a live run a fill can only follow its order. After a crash the trading flow
resumes from its last snapshot and decides the replayed signals again, while the
gateway's fills for those orders are already in `hfl.fills`: the fill can now arrive
first. Parking it until the gate re-submits the order keeps the gate's state what it
was in the uninterrupted run, instead of crashing on an "unknown order".
"""

from __future__ import annotations

from collections import deque

from risk.book import InvariantViolation
from risk.domain.order import Fill, OrderEvent

OrderReport = Fill | OrderEvent


class EarlyReports:
    """Order reports parked by client order id until their order is submitted.

    Bounded: more than `limit` parked reports means orders that were never sent,
    which is a broken invariant, not a replay.

    >>> early = EarlyReports(limit=1)
    >>> early.release("unknown")
    []
    >>> len(early)
    0
    """

    __slots__ = ("_limit", "_parked", "_size")

    def __init__(self, limit: int = 10_000) -> None:
        self._limit = limit
        self._parked: dict[str, list[OrderReport]] = {}
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def park(self, report: OrderReport) -> None:
        """Keep `report` until its order is submitted.

        Raises:
            InvariantViolation: If more than `limit` reports wait for unknown orders.
        """
        if self._size >= self._limit:
            msg = (
                f"{self._size} fills or order events wait for orders never submitted "
                f"(latest for {report.client_order_id})"
            )
            raise InvariantViolation(msg)
        self._parked.setdefault(report.client_order_id, []).append(report)
        self._size += 1

    def release(self, client_order_id: str) -> list[OrderReport]:
        """Return (and forget) the reports parked for `client_order_id`, in arrival order."""
        reports = self._parked.pop(client_order_id, [])
        self._size -= len(reports)
        return reports


class RecentIds:
    """The last `size` ids seen, to drop a redelivered record (a gateway replaying its epoch).

    >>> recent = RecentIds(size=2)
    >>> [recent.add(i) for i in ("a", "b", "a", "c", "a")]
    [True, True, False, True, True]
    """

    __slots__ = ("_order", "_set")

    def __init__(self, size: int = 20_000) -> None:
        self._order: deque[str] = deque(maxlen=size)
        self._set: set[str] = set()

    def add(self, record_id: str) -> bool:
        """Remember `record_id`; False if it was already among the recent ones."""
        if record_id in self._set:
            return False
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(record_id)
        self._set.add(record_id)
        return True
