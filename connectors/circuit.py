"""A circuit breaker for I/O to a dependency (ClickHouse, a venue gateway).

After `threshold` consecutive failures the circuit opens: calls fail at once with
`CircuitOpenError` for `cooldown_s`, instead of piling retries onto a dependency that
is down. Then one trial call is let through (half-open): success closes the circuit,
failure opens it again. The clock is injectable so tests need not wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from risk.domain.error import RecoverableError

T = TypeVar("T")


class CircuitState(StrEnum):
    """Whether calls go through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpenError(RecoverableError):
    """The dependency failed repeatedly; calls are refused until the cooldown ends."""


class CircuitBreaker:
    """Count consecutive failures of calls to one dependency; refuse calls while open.

    >>> now = [0.0]
    >>> breaker = CircuitBreaker("db", threshold=2, cooldown_s=5.0, clock=lambda: now[0])
    >>> for _ in range(2):
    ...     breaker.record_failure()
    >>> breaker.state.value
    'open'
    >>> now[0] = 5.0
    >>> breaker.state.value
    'half_open'
    >>> breaker.record_success()
    >>> breaker.state.value
    'closed'
    """

    def __init__(
        self,
        name: str,
        *,
        threshold: int = 5,
        cooldown_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.name = name
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> CircuitState:
        """Closed, open, or half-open once the cooldown has passed."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._clock() - self._opened_at >= self._cooldown_s:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def check(self) -> None:
        """Raise `CircuitOpenError` while the circuit is open."""
        if self.state is CircuitState.OPEN:
            assert self._opened_at is not None
            left = self._cooldown_s - (self._clock() - self._opened_at)
            msg = (
                f"{self.name}: circuit open after {self._failures} consecutive failures; "
                f"next trial in {left:.1f}s"
            )
            raise CircuitOpenError(msg)

    def record_success(self) -> None:
        """A call succeeded: close the circuit."""
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        """A call failed: open the circuit at the threshold (or again after a failed trial)."""
        self._failures += 1
        if self._failures >= self._threshold or self._opened_at is not None:
            self._opened_at = self._clock()

    def call(self, action: Callable[[], T], failures: tuple[type[BaseException], ...]) -> T:
        """Run `action` unless the circuit is open; count exceptions of type `failures`."""
        self.check()
        try:
            result = action()
        except failures:
            self.record_failure()
            raise
        self.record_success()
        return result
