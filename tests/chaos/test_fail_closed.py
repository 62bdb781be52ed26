"""R7: a resume whose recovered offsets do not fit the broker fails closed.

The trading flow runs a short replay with recovery on; then either the broker loses its
data (restarted: memory storage, topics re-created, a shorter replay published) or the
flow is pointed at other topics. Resuming must exit non-zero with a clear message and
send no order.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka.source import consumer_config
from connectors.topic import ORDERS
from tests.chaos.harness import PrivateBroker, Run

REPLAY_TICKS = 15_000


def orders_sent(bootstrap: str, prefix: str) -> int:
    consumer = Consumer(consumer_config(bootstrap, "r7-check"))
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(prefix + ORDERS, 0), timeout=10)
        return high - low
    finally:
        consumer.close()


@pytest.mark.parametrize("fault", ["broker_lost_data", "other_topics"])
def test_resume_that_does_not_fit_the_broker_exits_nonzero_without_orders(
    private_broker: PrivateBroker,
    tmp_path: Path,
    lines: list[bytes],
    fault: str,
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    bootstrap = private_broker.bootstrap
    first = Run("r7", bootstrap, tmp_path / "run", REPLAY_TICKS)
    first.prepare(lines[:REPLAY_TICKS])
    # No persist flow: the writers are the feed, trading and the gateway, as by default.
    first.start("gateway")  # the trading flow's gate settles on the gateway's fills
    first.start("trading")
    assert first.finish() == {"gateway": 0, "trading": 0}, first.logs()
    assert orders_sent(bootstrap, first.prefix) > 0

    if fault == "broker_lost_data":
        private_broker.restart_empty()
        resumed = first
    else:
        resumed = Run("r7-other", bootstrap, tmp_path / "run", REPLAY_TICKS)
    resumed.prepare(lines[: REPLAY_TICKS // 10])
    shutil.copy(first.children["trading"].log, tmp_path / "first-trading.log")
    first.children["trading"].log.unlink()
    resumed.start("trading")
    codes = resumed.finish(timeout_s=120)
    log = resumed.children["trading"].tail(60)
    orders = orders_sent(bootstrap, resumed.prefix)
    record(
        f"R7-{fault}",
        {"exit_code": codes["trading"], "orders": orders, "clear_message": "refusing" in log},
    )
    assert codes["trading"] not in (0, None)
    assert "refusing to resume" in log
    assert orders == 0
