"""Pieces the three flows share: sources, sinks, decoding of our own topics."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from connectors.codec import Rejected, decode_event, failure
from connectors.kafka.record import KafkaRecord, OutboundRecord
from connectors.kafka.sink import KafkaSink
from connectors.kafka.source import KafkaSource
from dataflows.routing import to_outbound
from dataflows.settings import Settings
from risk.domain import DecodeFailure

T = TypeVar("T")


def kafka_input(
    step_id: str, flow: Dataflow, settings: Settings, *topics: str
) -> Stream[KafkaRecord]:
    """Read `topics` (namespaced by the configured prefix) as one stream."""
    kafka = settings.kafka
    source = KafkaSource(
        kafka.bootstrap,
        [kafka.topic_prefix + name for name in topics],
        batch_size=kafka.batch_size,
        idle_backoff_s=kafka.idle_backoff_ms / 1000,
        exit_when_idle_s=kafka.exit_when_idle_s,
    )
    return op.input(step_id, flow, source)


def kafka_output(step_id: str, events: Stream[object], settings: Settings) -> None:
    """Route every event to its topic and produce it with checked delivery."""
    records: Stream[OutboundRecord] = op.flat_map_batch(
        f"{step_id}_route", events, to_outbound(settings.kafka.topic_prefix)
    )
    op.output(
        step_id,
        records,
        KafkaSink(settings.kafka.bootstrap, message_timeout_ms=settings.kafka.message_timeout_ms),
    )


def decoder(cls: type[T]) -> Callable[[list[KafkaRecord]], list[T | DecodeFailure]]:
    """Batch decoder for records our own flows wrote; bad ones become dead letters."""

    def decode(records: list[KafkaRecord]) -> list[T | DecodeFailure]:
        out: list[T | DecodeFailure] = []
        for record in records:
            try:
                out.append(decode_event(cls, record.value))
            except Rejected as rejected:
                out.append(dead_letter(record, rejected))
        return out

    return decode


def dead_letter(record: KafkaRecord, rejected: Rejected) -> DecodeFailure:
    """The DLQ event for a record that failed validation."""
    return failure(
        record.value,
        rejected.reason,
        rejected.detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        ts_init=record.timestamp_ns,
    )
