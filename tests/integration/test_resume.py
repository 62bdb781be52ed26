"""Our Kafka source on the real broker: recovered offsets must continue the log (fail-closed
resume), and a bounded run ends at its drain file."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from support.loopback import free_port

from connectors.broker import start_broker, stop_broker
from connectors.kafka import source as source_module
from connectors.kafka.admin import create_topics
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.kafka.source import (
    DRAIN_IDLE_S,
    KafkaSource,
    LogLostError,
    ResumeError,
    check_resume,
    consumer_config,
)
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


@pytest.mark.parametrize("recreated_with", [0, 3])
def test_a_running_source_stops_loudly_when_the_broker_lost_its_log(
    tmp_path: Path, recreated_with: int
) -> None:
    """The broker restarted empty under a running source, topics re-created empty or
    with fewer records: the source raises instead of waiting for offsets that the new
    log would reach with other records."""
    port = free_port()
    bootstrap, pid_file, log = f"127.0.0.1:{port}", tmp_path / "b.pid", tmp_path / "b.log"
    start_broker("127.0.0.1", port, pid_file, log)
    try:
        create_topics(bootstrap, prefix="lost.")
        topic = "lost." + TICKS
        send(bootstrap, topic, RECORDS)
        part = KafkaSource(bootstrap, [topic], idle_backoff_s=0).build_part("s", "p0", None)
        deadline = time.monotonic() + 30
        read = 0
        while read < RECORDS:
            read += len(part.next_batch())
            assert time.monotonic() < deadline
        stop_broker(pid_file)
        start_broker("127.0.0.1", port, pid_file, log)
        create_topics(bootstrap, prefix="lost.")
        send(bootstrap, topic, recreated_with)
        with pytest.raises(LogLostError, match=f"{RECORDS} records were already read"):
            while time.monotonic() < deadline:
                assert part.next_batch() == []
                time.sleep(0.05)
        part.close()
    finally:
        stop_broker(pid_file)


def test_source_finishes_at_the_end_of_input_once_its_drain_file_exists(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    """A long idle window (riding out an upstream restart) is not waited out once the
    drain file says every writer finished."""
    drain = tmp_path / "drain"
    source = KafkaSource(kafka_bootstrap, [topic], exit_when_idle_s=600, drain_file=drain)
    part = source.build_part("s", "p0", None)
    deadline = time.monotonic() + 30
    read = 0
    while read < RECORDS:
        read += len(part.next_batch())
        assert time.monotonic() < deadline
    quiet_until = time.monotonic() + 2 * DRAIN_IDLE_S
    while time.monotonic() < quiet_until:  # at the end and quiet, but no drain file yet
        assert part.next_batch() == []
    drain.touch()
    with pytest.raises(StopIteration):
        while time.monotonic() < deadline:
            assert part.next_batch() == []
            time.sleep(0.01)
    part.close()


def test_idle_window_counts_from_the_source_start_not_the_import(
    kafka_bootstrap: str, topic: str
) -> None:
    """A warm standby imports the source long before it runs: that wait is not idleness."""
    source_module._Activity.last_data = time.monotonic() - 3600  # imported an hour ago
    source = KafkaSource(kafka_bootstrap, [topic], exit_when_idle_s=600)
    part = source.build_part("s", "p0", {topic: RECORDS})  # resumed with nothing left
    quiet_until = time.monotonic() + 1.0
    while time.monotonic() < quiet_until:  # at its end, idle far less than 600 s
        assert part.next_batch() == []
        time.sleep(0.01)
    part.close()


def send(bootstrap: str, topic: str, count: int) -> None:
    CheckedProducer(bootstrap).send(OutboundRecord(topic, b"k", b"{}") for _ in range(count))
