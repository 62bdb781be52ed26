"""R6: silent-loss probes on our Kafka sink: every failed delivery surfaces.

An order record over the producer's size limit, and a broker that never answers within
`message.timeout.ms`: the sink raises (the flow stops with a non-zero exit), a
`delivery_failure` alert goes to `hfl.alerts` when the broker is reachable, and no
record is dropped without an error naming it.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from support.loopback import free_port

from connectors.kafka.admin import create_topics
from connectors.kafka.producer import DeliveryFailedError
from connectors.kafka.record import OutboundRecord
from connectors.kafka.sink import KafkaSink
from connectors.kafka.source import consumer_config
from connectors.topic import ALERTS, ORDERS

RECORDS = 100


def topic_values(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer(consumer_config(bootstrap, "r6-check"))
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while len(values) < high and time.monotonic() < deadline:
            values += [m.value() for m in consumer.consume(1000, 1.0) if m.error() is None]
        return values
    finally:
        consumer.close()


def test_order_over_size_limit_raises_and_alerts(
    kafka_bootstrap: str, record: Callable[[str, dict[str, Any]], None]
) -> None:
    prefix = f"r6-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix=prefix)
    sink = KafkaSink(kafka_bootstrap, alerts_topic=prefix + ALERTS)
    part = sink.build_part("trading.events_out", "kafka", None)
    good = [OutboundRecord(prefix + ORDERS, b"acct", b'{"n":%d}' % i) for i in range(RECORDS)]
    huge = OutboundRecord(prefix + ORDERS, b"acct", b'{"pad":"' + b"x" * 2_000_000 + b'"}')
    with pytest.raises(DeliveryFailedError, match="bytes refused"):
        part.write_batch([*good, huge])
    part.snapshot()  # what was queued before the refused record is delivered
    delivered = len(topic_values(kafka_bootstrap, prefix + ORDERS))
    alerts = [orjson.loads(v) for v in topic_values(kafka_bootstrap, prefix + ALERTS)]
    surfaced = 1
    record(
        "R6-oversized",
        {
            "sent": RECORDS + 1,
            "delivered": delivered,
            "surfaced_errors": surfaced,
            "alerts": [a["name"] for a in alerts],
            "lost": RECORDS + 1 - delivered - surfaced,
        },
    )
    assert delivered == RECORDS
    assert [a["name"] for a in alerts] == ["delivery_failure"]
    assert alerts[0]["severity"] == "critical"


def test_unreachable_broker_beyond_message_timeout_raises(
    record: Callable[[str, dict[str, Any]], None],
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    sink = KafkaSink(nowhere, alerts_topic="r6." + ALERTS, message_timeout_ms=2_000)
    part = sink.build_part("trading.events_out", "kafka", None)
    part.write_batch([OutboundRecord("r6." + ORDERS, b"a", b"{}") for _ in range(RECORDS)])
    started = time.monotonic()
    with pytest.raises(DeliveryFailedError) as failure:
        part.snapshot()
    surfaced = int(re.match(r"(\d+) deliveries failed", str(failure.value)).group(1))  # type: ignore[union-attr]
    record(
        "R6-unreachable",
        {
            "sent": RECORDS,
            "surfaced_errors": surfaced,
            "lost": RECORDS - surfaced,
            "raised_after_s": round(time.monotonic() - started, 3),
        },
    )
    assert surfaced == RECORDS
