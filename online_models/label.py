"""Delayed labels: a prediction's outcome is known only after its horizon (time or ticks)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import chain
from typing import Any, NamedTuple

import numpy as np

# One pending entry: (due_ns, tick_id, ts_event, price, features, y_pred).
# A plain tuple keeps the per-tick cost to one allocation.
# Features: a dict (per-tick path) or a tuple in the feature names' order (batched path).
Features = dict[str, float] | tuple[float, ...]
_Entry = tuple[int, str, int, float, Features, float]


def as_matrix(rows: Sequence[tuple[float, ...]]) -> np.ndarray:
    """Equal-length float tuples as one float64 matrix, a row each (nearly twice as fast
    as `np.array(rows)`, which inspects every tuple).

    >>> as_matrix([(1.0, 2.0), (3.0, 4.0)]).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    width = len(rows[0]) if rows else 0
    flat = np.fromiter(chain.from_iterable(rows), np.float64, count=len(rows) * width)
    return flat.reshape(len(rows), width)


class Resolved(NamedTuple):
    """A past prediction whose label is now known.

    `label` is 1 when the price at the first tick at/after the horizon is above
    the price at prediction time, else 0 (a flat price counts as 0);
    `forward_return` is that price over the price then, minus one. `y_pred` is
    what the model said then (a probability of up, or a forecast return).
    """

    tick_id: str
    ts_event: int
    features: Features
    y_pred: float
    label: int
    forward_return: float


class PendingLabels:
    """Predictions waiting for their horizon to elapse in event time, oldest first.

    Bounded: when `max_pending` entries wait and another arrives, the oldest is
    evicted without a label and counted in `evicted`. A label lost this way is
    visible (the scorer exposes the count) rather than silent; it only happens
    when ticks arrive faster than `max_pending / horizon`.

    Entries resolve in arrival order and resolution stops at the first entry
    not yet due, exactly as `river.stream.simulate_qa` does with a constant
    delay; with a constant horizon and non-decreasing `ts_event` this is the
    same as resolving every due entry.

    >>> pending = PendingLabels(horizon_ns=10)
    >>> pending.add("a", 0, 100.0, {"x": 1.0}, 0.6)
    >>> pending.add("b", 5, 101.0, {"x": 2.0}, 0.4)
    >>> pending.resolve(9, 102.0)
    []
    >>> [(r.tick_id, r.label) for r in pending.resolve(10, 100.5)]
    [('a', 1)]
    >>> [(r.tick_id, r.label) for r in pending.resolve(20, 100.5)]
    [('b', 0)]

    With `horizon_ticks` > 0 the horizon is counted in calls to `resolve` (one per
    tick of the instrument) instead of event time: a prediction added after the n-th
    call resolves at call n + `horizon_ticks`, as River's evaluator does with an
    integer `delay`.

    >>> by_ticks = PendingLabels(horizon_ns=0, horizon_ticks=2)
    >>> by_ticks.resolve(0, 100.0)
    []
    >>> by_ticks.add("a", 0, 100.0, {}, 0.5)
    >>> by_ticks.resolve(1, 101.0), [r.tick_id for r in by_ticks.resolve(2, 99.0)]
    ([], ['a'])
    """

    __slots__ = ("_entries", "_ticks", "evicted", "horizon_ns", "horizon_ticks", "max_pending")

    def __init__(
        self, horizon_ns: int, *, horizon_ticks: int = 0, max_pending: int = 100_000
    ) -> None:
        """Create an empty queue.

        Args:
            horizon_ns: Event time after which a prediction is labelled (>= 0).
            horizon_ticks: > 0 counts the horizon in ticks instead (`horizon_ns` unused).
            max_pending: Most entries held at once (>= 1).

        Raises:
            ValueError: A bound is out of range.
        """
        if horizon_ns < 0:
            msg = f"horizon_ns must be >= 0, got {horizon_ns}"
            raise ValueError(msg)
        if horizon_ticks < 0:
            msg = f"horizon_ticks must be >= 0, got {horizon_ticks}"
            raise ValueError(msg)
        if max_pending < 1:
            msg = f"max_pending must be >= 1, got {max_pending}"
            raise ValueError(msg)
        self.horizon_ns = horizon_ns
        self.horizon_ticks = horizon_ticks
        self.max_pending = max_pending
        self._ticks = 0
        self.evicted = 0
        self._entries: deque[_Entry] = deque()

    def __getstate__(self) -> dict[str, Any]:
        """The state, with entries whose features are tuples (the batched path) as columns.

        A checkpoint pickles with the pure-Python pickler (`online_models.checkpoint`),
        which pays per object: a thousand pending tuples of 14 floats cost tens of ms,
        the same entries as six arrays and one string well under one.
        """
        state = {name: getattr(self, name) for name in self.__slots__}
        entries = self._entries
        if entries and all(type(entry[4]) is tuple for entry in entries):
            dues, tick_ids, ts_events, prices, features, y_preds = zip(*entries, strict=True)
            joined = "\n".join(tick_ids)
            state["_entries"] = (
                np.array(dues, dtype=np.int64),
                joined if joined.count("\n") == len(tick_ids) - 1 else list(tick_ids),
                np.array(ts_events, dtype=np.int64),
                np.array(prices, dtype=np.float64),
                as_matrix(features),
                np.array(y_preds, dtype=np.float64),
            )
        return state

    def __setstate__(self, state: Any) -> None:
        """Restore a state from `__getstate__` (or from the default slots pickle)."""
        if isinstance(state, tuple):  # pickled before __getstate__ existed: (None, slots)
            state = state[1]
        for name, value in state.items():
            setattr(self, name, value)
        entries = state["_entries"]
        if isinstance(entries, tuple):
            dues, tick_ids, ts_events, prices, features, y_preds = entries
            ids = tick_ids.split("\n") if isinstance(tick_ids, str) else tick_ids
            self._entries = deque(
                zip(
                    dues.tolist(),
                    ids,
                    ts_events.tolist(),
                    prices.tolist(),
                    map(tuple, features.tolist()),
                    y_preds.tolist(),
                    strict=True,
                )
            )

    def __len__(self) -> int:
        """Return the number of entries still waiting."""
        return len(self._entries)

    def add(
        self,
        tick_id: str,
        ts_event: int,
        price: float,
        features: Features,
        y_pred: float,
    ) -> None:
        """Queue the prediction `y_pred` made at `ts_event` when the price was `price`."""
        entries = self._entries
        if len(entries) >= self.max_pending:
            entries.popleft()
            self.evicted += 1
        due = self._ticks + self.horizon_ticks if self.horizon_ticks else ts_event + self.horizon_ns
        entries.append((due, tick_id, ts_event, price, features, y_pred))

    def resolve(self, ts_event: int, price: float) -> list[Resolved]:
        """Pop and label every entry whose horizon has elapsed at `ts_event`.

        Args:
            ts_event: Event time of the current tick.
            price: Price of the current tick, the first one at/after each horizon.

        Returns:
            The resolved entries, oldest first; empty when none is due.
        """
        entries = self._entries
        resolved: list[Resolved] = []
        now = ts_event
        if self.horizon_ticks:
            self._ticks = now = self._ticks + 1
        while entries and entries[0][0] <= now:
            _, tick_id, ts_then, price_then, features, y_pred = entries.popleft()
            label = 1 if price > price_then else 0
            forward_return = price / price_then - 1.0  # validated ticks have price > 0
            resolved.append(Resolved(tick_id, ts_then, features, y_pred, label, forward_return))
        return resolved
