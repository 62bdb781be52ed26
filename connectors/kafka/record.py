"""What the Kafka source emits and the sink consumes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    """One record read from Kafka, with where and when it was logged.

    `timestamp_ns` is the record's Kafka timestamp: stored in the log, so it is the
    same on every replay (unlike the wall clock at consumption).
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ns: int


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    """One record to produce: topic, key and encoded value."""

    topic: str
    key: bytes
    value: bytes
