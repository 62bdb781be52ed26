"""Fills and order events that reach the gate before the order they belong to.

In a live run a fill can only follow its order. After a crash the trading flow
resumes from its last snapshot and decides the replayed signals again, while the
gateway's fills for those orders are already in `hfl.fills`: the fill can now arrive
first. Parking it until the gate re-submits the order keeps the gate's state what it
was in the uninterrupted run, instead of crashing on an "unknown order".
"""

from __future__ import annotations

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

    def expire(self, instrument: str, decided_until: int) -> None:
        """Drop reports on `instrument` from before its latest decision at `decided_until`.

        Orders are decided in event-time order per instrument, so an order not decided
        yet is not earlier than `decided_until`, and neither are its reports (fills come
        at least its latency later). A parked report from before belongs to an order
        decided earlier that the gate no longer remembers: a restarted gateway replaying
        past the gate's memory of orders. Dropping it keeps such a replay from filling
        the bound.

        >>> early = EarlyReports()
        >>> early.expire("XYZ", 0)
        >>> len(early)
        0
        """
        if not self._size:
            return
        for client_order_id, reports in list(self._parked.items()):
            if reports[0].instrument != instrument:
                continue
            kept = [report for report in reports if report.ts_event >= decided_until]
            self._size -= len(reports) - len(kept)
            if kept:
                self._parked[client_order_id] = kept
            else:
                del self._parked[client_order_id]

    def release(self, client_order_id: str) -> list[OrderReport]:
        """Return (and forget) the reports parked for `client_order_id`, in arrival order."""
        reports = self._parked.pop(client_order_id, [])
        self._size -= len(reports)
        return reports
