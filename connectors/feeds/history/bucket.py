"""A token bucket: at most `rate_per_s` tokens a second on average, bursts up to `capacity`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Blocks each caller until its cost in tokens is available.

    Starts full. `penalize` empties it (a venue answered "rate limited": whatever we
    believed about its budget, it is spent). Clock and sleep are injectable for tests.
    """

    def __init__(
        self,
        rate_per_s: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0 or capacity <= 0:
            raise ValueError("a token bucket needs a positive rate and capacity")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._at = clock()
        self._lock = threading.Lock()
        self.waited_s = 0.0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate_per_s)
        self._at = now

    def acquire(self, cost: float = 1.0) -> float:
        """Take `cost` tokens, sleeping until they are there; returns the time waited."""
        if cost > self.capacity:
            raise ValueError(f"cost {cost} exceeds the bucket's capacity {self.capacity}")
        waited = 0.0
        with self._lock:
            while True:
                self._refill()
                if self._tokens >= cost:
                    self._tokens -= cost
                    self.waited_s += waited
                    return waited
                need_s = (cost - self._tokens) / self.rate_per_s
                self._sleep(need_s)
                waited += need_s

    def penalize(self) -> None:
        """Empty the bucket: the next request waits a full refill of its cost."""
        with self._lock:
            self._refill()
            self._tokens = 0.0
