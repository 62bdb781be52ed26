"""R5: ClickHouse errors and delays injected into the sink path lose and duplicate nothing.

A real chDB engine sits behind a client that, by a seeded draw per insert, fails
before inserting (connection refused), fails after inserting (the acknowledgement is
lost), stalls, or works. The writer retries with backoff and jitter, resending the
identical batch with the same deduplication token; the table must end up with every
row exactly once, even without `FINAL`.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from connectors.codec import encode, loads
from risk.domain import Fill, Side
from risk.domain.ids import fill_id
from sinks.writer import BatchWriter

BATCHES = 60
ROWS_PER_BATCH = 500
SEED = 5


class FaultyClient:
    """The real client behind seeded faults: error before, error after, delay, or none."""

    def __init__(self, delegate: Client, rng: random.Random) -> None:
        self.delegate = delegate
        self.rng = rng
        self.faults = {"before": 0, "after": 0, "delay": 0, "none": 0}

    def insert(self, table: str, data: Any, column_names: Any = None, **kwargs: Any) -> Any:
        fault = self.rng.choices(["before", "after", "delay", "none"], [2, 2, 1, 5])[0]
        self.faults[fault] += 1
        if fault == "before":
            raise OperationalError("injected: connection refused")
        if fault == "delay":
            time.sleep(0.05)
        result = self.delegate.insert(table, data, column_names=column_names, **kwargs)
        if fault == "after":
            raise OperationalError("injected: acknowledgement lost")
        return result


def fill_rows(account: str, batch: int) -> list[dict[str, Any]]:
    fills = [
        Fill(
            fill_id=fill_id(f"{account}-{batch}", n),
            client_order_id=f"{account}-{batch}",
            account=account,
            instrument="AAPL",
            side=Side.BUY,
            quantity=Decimal(1),
            price=Decimal("100.5"),
            fee=Decimal("0.01"),
            leaves_quantity=Decimal(0),
            tick_id="t",
            ts_event=1_700_000_000_000_000_000 + batch * 1000 + n,
            ts_init=1_700_000_000_000_000_000 + batch * 1000 + n,
        )
        for n in range(ROWS_PER_BATCH)
    ]
    return [loads(encode(fill)) for fill in fills]


def test_injected_clickhouse_faults_lose_and_duplicate_nothing(
    clickhouse: Client, record: Callable[[str, dict[str, Any]], None]
) -> None:
    account = f"r5-{uuid.uuid4().hex[:8]}"
    faulty = FaultyClient(clickhouse, random.Random(SEED))
    writer = BatchWriter(faulty, max_attempts=20, base_delay_s=0.01, max_delay_s=0.1)
    for batch in range(BATCHES):
        writer.write("fills", fill_rows(account, batch))
    where = {"a": account}
    raw, distinct = clickhouse.query(
        "SELECT count(), uniqExact(fill_id) FROM fills WHERE account = %(a)s", parameters=where
    ).result_rows[0]
    final = clickhouse.query(
        "SELECT count() FROM fills FINAL WHERE account = %(a)s", parameters=where
    ).result_rows[0][0]
    expected = BATCHES * ROWS_PER_BATCH
    record(
        "R5",
        {
            "batches": BATCHES,
            "rows": expected,
            "injected": {k: v for k, v in faulty.faults.items() if k != "none"},
            "lost": expected - distinct,
            "duplicated": raw - distinct + final - distinct,
            "mismatched": 0 if final == distinct else abs(final - distinct),
        },
    )
    assert faulty.faults["before"] and faulty.faults["after"] and faulty.faults["delay"]
    assert (raw, distinct, final) == (expected, expected, expected)
