"""Read a whole one-partition topic: operator tools, reconciliation and the command journal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.kafka.source import consumer_config

Record = dict[str, Any]
_POLL_S = 0.1


def read_log(
    bootstrap: str, topic: str, timeout_s: float = 30.0, start: int = OFFSET_BEGINNING
) -> list[Record]:
    """Every record of a one-partition topic, decoded, from offset `start` (default:
    the beginning) to its end.

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
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
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
