"""The source's consumer-lag gauge follows the log while the input is idle too."""

from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client import REGISTRY

from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.kafka.source import KafkaSource
from connectors.telemetry.metric import CONSUMER_LAG
from connectors.topic import TopicSpec

pytestmark = pytest.mark.integration

STALE = 99.0


def test_an_idle_reader_that_caught_up_reports_no_lag(kafka_bootstrap: str) -> None:
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    create_topics(kafka_bootstrap, (TopicSpec(name=topic, partitions=1, key="k"),))
    CheckedProducer(kafka_bootstrap).send(
        OutboundRecord(topic, b"k", value) for value in (b"a", b"b", b"c")
    )
    step = f"lag_{uuid.uuid4().hex[:8]}"
    part = KafkaSource(kafka_bootstrap, [topic]).build_part(step, "p0", None)

    def lag() -> float | None:
        return REGISTRY.get_sample_value("hfl_pipeline_consumer_lag_records", {"step": step})

    deadline = time.monotonic() + 120  # guards only: both loops end by what they read
    try:
        read: list[bytes] = []
        while len(read) < 3 and time.monotonic() < deadline:
            read += [record.value for record in part.next_batch()]
        assert read == [b"a", b"b", b"c"]
        CONSUMER_LAG.labels(step).set(STALE)  # what an earlier batch might have left
        while lag() == STALE and time.monotonic() < deadline:
            assert part.next_batch() == []
        assert lag() == 0
    finally:
        part.close()
