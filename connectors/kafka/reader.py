"""Read a whole one-partition topic: operator tools, reconciliation and the command journal."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.kafka.end import END_KEY
from connectors.kafka.security import admin_config
from connectors.kafka.source import consumer_config

Record = dict[str, Any]
_POLL_S = 0.1


def read_log(
    bootstrap: str, topic: str, timeout_s: float = 30.0, start: int = OFFSET_BEGINNING
) -> list[Record]:
    """Every record of a one-partition topic, decoded, from offset `start` (default:
    the beginning) to its end; end-of-stream markers (`connectors.kafka.end`) aside.

    Raises `TimeoutError` when `timeout_s` passes without a record or the end of the log,
    `OSError` when it cannot be read (e.g. `start` is beyond the end: the log was lost).
    """
    consumer = Consumer(consumer_config(bootstrap, "hfl-reconcile"))
    consumer.assign([TopicPartition(topic, 0, start)])
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            messages = consumer.consume(5000, _POLL_S)
            if messages:
                deadline = time.monotonic() + timeout_s
            elif time.monotonic() > deadline:
                raise TimeoutError(f"no end of {topic} within {timeout_s}s")
            for message in messages:
                error = message.error()
                if error is None:
                    if message.key() != END_KEY:
                        records.append(orjson.loads(message.value()))
                elif error.code() == KafkaError._PARTITION_EOF:
                    return records
                else:
                    raise OSError(f"reading {topic}: {error}")
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as read: topic, value bytes and headers (name -> bytes)."""

    topic: str
    value: bytes
    headers: dict[str, bytes]


def consumer_from_beginning(bootstrap: str, topics: list[str]) -> Consumer:
    """A consumer (no group offsets) assigned every partition of `topics` from offset 0."""
    metadata = AdminClient(admin_config(bootstrap)).list_topics(timeout=10)
    parts = [
        TopicPartition(name, partition, OFFSET_BEGINNING)
        for name in topics
        for partition in sorted(metadata.topics[name].partitions)
    ]
    consumer = Consumer(consumer_config(bootstrap, f"hfl-tail-{time.time_ns()}"))
    consumer.assign(parts)
    return consumer


def read_to_end(
    bootstrap: str, topics: list[str], *, timeout_s: float = 300.0
) -> Iterator[RawRecord]:
    """Every record of every partition of `topics`, from the beginning to each partition's
    end at the time of reading.

    Raises `TimeoutError` when the ends are not reached within `timeout_s`, `OSError` when
    a partition cannot be read.
    """
    consumer = consumer_from_beginning(bootstrap, topics)
    open_parts = len(consumer.assignment())
    deadline = time.monotonic() + timeout_s
    try:
        while open_parts:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no end of {', '.join(topics)} within {timeout_s}s")
            for message in consumer.consume(10_000, 1.0):
                error = message.error()
                if error is None:
                    headers = {k: bytes(v or b"") for k, v in message.headers() or ()}
                    yield RawRecord(message.topic(), message.value(), headers)
                elif error.code() == KafkaError._PARTITION_EOF:
                    open_parts -= 1
                else:
                    raise OSError(f"reading {message.topic()}: {error}")
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """The end offset (high watermark) of partition 0 of each topic."""
    consumer = Consumer(consumer_config(bootstrap, "hfl-end-offsets"))
    try:
        return {
            name: int(consumer.get_watermark_offsets(TopicPartition(name, 0), timeout=10.0)[1])
            for name in topics
        }
    finally:
        consumer.close()


def wait_for_record(
    bootstrap: str, topic: str, start: int, match: Callable[[bytes], bool], timeout_s: float
) -> bool:
    """Whether a record of partition 0 of `topic` at or after offset `start` matches
    within `timeout_s` (an operator command's acknowledgement, say)."""
    consumer = Consumer(consumer_config(bootstrap, f"hfl-ack-{time.time_ns()}"))
    consumer.assign([TopicPartition(topic, 0, start)])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.2):
                if message.error() is None and match(message.value()):
                    return True
        return False
    finally:
        consumer.close()
