"""Write batches of decoded records to ClickHouse, idempotently and with bounded retries."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from hashlib import blake2b
from typing import Any, Protocol

from clickhouse_connect.driver.exceptions import (
    DatabaseError,
    DataError,
    NotSupportedError,
    ProgrammingError,
)

from connectors.circuit import CircuitBreaker
from connectors.codec import encode
from risk.domain.error import RecoverableError
from sinks.row import Rows, columns_for

logger = logging.getLogger(__name__)

# A bad statement or bad data fails the same way every time: retrying only hides it.
_PERMANENT = (ProgrammingError, DataError, NotSupportedError)
_TRANSIENT = (DatabaseError, OSError)


class Inserter(Protocol):
    """The part of `clickhouse_connect` `Client` the writer needs."""

    def insert(
        self,
        table: str,
        data: Any,
        column_names: Any = ...,
        *,
        column_oriented: bool = ...,
        settings: dict[str, Any] | None = ...,
    ) -> Any:
        """Insert `data` into `table`."""


def batch_token(table: str, rows: Rows) -> str:
    """Return the deduplication token of a batch: a digest of its exact encoded rows.

    Replaying the same records in the same batches yields the same token, so
    ClickHouse absorbs the repeat instead of writing a second part.

    >>> batch_token("t", [{"a": 1}]) == batch_token("t", [{"a": 1}])
    True
    >>> batch_token("t", [{"a": 1}]) == batch_token("t", [{"a": 2}])
    False
    """
    digest = blake2b(table.encode(), digest_size=16)
    digest.update(b"\x1f")
    digest.update(encode(rows))
    return digest.hexdigest()


class BatchWriter:
    """Insert one columnar batch per call, retrying transient failures with backoff.

    Permanent errors (bad SQL, bad data) propagate at once; transient ones are retried
    `max_attempts` times in all, then raised as `RecoverableError` so the flow crashes
    and replays from its last snapshot. Rows are never dropped. Every attempt goes
    through a circuit breaker: once ClickHouse failed `breaker`'s threshold of attempts
    in a row, writes fail at once (`CircuitOpenError`) until its cooldown has passed.
    """

    def __init__(
        self,
        client: Inserter,
        *,
        max_attempts: int = 5,
        base_delay_s: float = 0.2,
        max_delay_s: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        """Wrap `client`; `sleep`, `rng` and `breaker` are injectable so tests need not wait."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._client = client
        self._max_attempts = max_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random(0)
        self._breaker = breaker or CircuitBreaker("clickhouse", threshold=2 * max_attempts)

    def write(self, table: str, rows: Rows, *, token: str | None = None) -> int:
        """Insert `rows` into `table` as one batch and return how many were written.

        Args:
            table: destination table.
            rows: decoded records (see `sinks.row.columns_for`).
            token: deduplication token; defaults to `batch_token(table, rows)`.
                Pass one derived from source offsets to skip hashing the batch.

        Raises:
            RecoverableError: every attempt failed with a transient error.
        """
        if not rows:
            return 0
        names, data = columns_for(table, rows)
        settings = {"insert_deduplication_token": token or batch_token(table, rows)}
        for attempt in range(1, self._max_attempts + 1):
            self._breaker.check()
            try:
                self._client.insert(
                    table, data, column_names=names, column_oriented=True, settings=settings
                )
            except _PERMANENT:
                raise
            except _TRANSIENT as exc:
                self._breaker.record_failure()
                if attempt == self._max_attempts:
                    msg = (
                        f"insert into {table} of {len(rows)} rows failed "
                        f"{attempt} times; last error: {exc}"
                    )
                    raise RecoverableError(msg) from exc
                delay_s = self._delay_s(attempt)
                logger.warning(
                    "insert into %s failed (attempt %d/%d), retrying in %.2fs: %s",
                    table,
                    attempt,
                    self._max_attempts,
                    delay_s,
                    exc,
                )
                self._sleep(delay_s)
            else:
                self._breaker.record_success()
                return len(rows)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay_s(self, attempt: int) -> float:
        # Equal jitter: at least half the exponential step, so retries from many
        # writers spread out without ever collapsing to zero wait.
        step = min(self._max_delay_s, self._base_delay_s * (1 << (attempt - 1)))
        return step * (0.5 + 0.5 * self._rng.random())
