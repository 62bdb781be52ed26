"""The circuit breaker, alone and around the ClickHouse writer (with a fake client)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.exceptions import OperationalError

from connectors.circuit import CircuitBreaker, CircuitOpenError, CircuitState
from connectors.codec import encode, loads
from risk.domain import Fill, Side
from sinks.writer import BatchWriter

ROWS = [
    loads(
        encode(
            Fill(
                fill_id="f1",
                client_order_id="o1",
                account="acct",
                instrument="AAPL",
                side=Side.BUY,
                quantity=Decimal(1),
                price=Decimal(100),
                fee=Decimal(0),
                leaves_quantity=Decimal(0),
                tick_id="t",
                ts_event=1,
                ts_init=1,
            )
        )
    )
]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class DownClient:
    """An `Inserter` whose server is down: every insert raises, and is counted."""

    def __init__(self) -> None:
        self.calls = 0

    def insert(self, table: str, data: Any, column_names: Any = None, **kwargs: Any) -> Any:
        self.calls += 1
        raise OperationalError("connection refused")


def test_breaker_opens_at_threshold_and_refuses_calls() -> None:
    breaker = CircuitBreaker("db", threshold=3, cooldown_s=10.0, clock=Clock())
    for _ in range(2):
        breaker.record_failure()
    breaker.check()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    with pytest.raises(CircuitOpenError, match="3 consecutive failures"):
        breaker.check()


def test_breaker_failed_trial_after_cooldown_opens_again() -> None:
    clock = Clock()
    breaker = CircuitBreaker("db", threshold=1, cooldown_s=10.0, clock=clock)
    breaker.record_failure()
    clock.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    with pytest.raises(OSError):
        breaker.call(lambda: (_ for _ in ()).throw(OSError("still down")), (OSError,))
    assert breaker.state is CircuitState.OPEN


def test_writer_with_open_circuit_fails_fast_without_calling_clickhouse() -> None:
    client = DownClient()
    breaker = CircuitBreaker("clickhouse", threshold=4, cooldown_s=60.0, clock=Clock())
    writer = BatchWriter(client, max_attempts=2, sleep=lambda _: None, breaker=breaker)
    for _ in range(2):
        with pytest.raises(Exception, match="failed 2 times"):
            writer.write("fills", ROWS)
    assert client.calls == 4
    with pytest.raises(CircuitOpenError):
        writer.write("fills", ROWS)
    assert client.calls == 4
