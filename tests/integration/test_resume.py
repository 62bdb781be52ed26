"""Fail-closed resume on the real broker: recovered offsets must continue the log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer

from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.kafka.source import ResumeError, check_resume, consumer_config
from connectors.topic import TICKS

pytestmark = pytest.mark.integration

RECORDS = 10


@pytest.fixture(scope="module")
def topic(kafka_bootstrap: str) -> str:
    prefix = f"resume-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix=prefix)
    CheckedProducer(kafka_bootstrap).send(
        OutboundRecord(prefix + TICKS, b"k", b"{}") for _ in range(RECORDS)
    )
    return prefix + TICKS


@pytest.fixture
def consumer(kafka_bootstrap: str) -> Iterator[Consumer]:
    consumer = Consumer(consumer_config(kafka_bootstrap, "resume-test"))
    yield consumer
    consumer.close()


@pytest.mark.parametrize("offset", [1, 5, RECORDS])
def test_resume_inside_the_log_is_accepted(consumer: Consumer, topic: str, offset: int) -> None:
    check_resume(consumer, 0, [topic], {topic: offset})


def test_fresh_start_without_offsets_is_accepted(consumer: Consumer, topic: str) -> None:
    check_resume(consumer, 0, [topic], {})


def test_resume_beyond_the_end_of_the_log_is_refused(consumer: Consumer, topic: str) -> None:
    with pytest.raises(ResumeError, match=f"resume at offset {RECORDS + 5}"):
        check_resume(consumer, 0, [topic], {topic: RECORDS + 5})


def test_resume_missing_a_topic_offset_is_refused(consumer: Consumer, topic: str) -> None:
    with pytest.raises(ResumeError, match="no recovered offset"):
        check_resume(consumer, 0, [topic, topic + ".other"], {topic: 3})
