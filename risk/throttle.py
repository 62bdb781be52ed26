"""Order-rate throttle over a sliding window of event time."""

from __future__ import annotations

from collections import deque


class SlidingWindowThrottle:
    """Allow at most `limit` events in any `window_ns` of event time.

    Only recorded events count (the gate records approved orders, not denials), and
    the window slides with the data's `ts_event`, never with a clock.

    >>> throttle = SlidingWindowThrottle(2, 1_000)
    >>> for ts in (0, 10):
    ...     throttle.record(ts)
    >>> throttle.allows(999), throttle.allows(1_000)
    (False, True)
    """

    __slots__ = ("_times", "limit", "window_ns")

    def __init__(self, limit: int, window_ns: int) -> None:
        self.limit = limit
        self.window_ns = window_ns
        self._times: deque[int] = deque()

    def count(self, ts_event: int) -> int:
        """Return how many recorded events fall in the window ending at `ts_event`."""
        times = self._times
        start = ts_event - self.window_ns
        while times and times[0] <= start:
            times.popleft()
        return len(times)

    def allows(self, ts_event: int) -> bool:
        """True when one more event at `ts_event` stays within the limit."""
        return self.count(ts_event) < self.limit

    def record(self, ts_event: int) -> None:
        """Count an event at `ts_event`; the deque stays bounded by `limit` entries."""
        self._times.append(ts_event)
