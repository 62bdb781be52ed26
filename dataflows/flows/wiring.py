"""Pieces the three flows share: sources, sinks, decoding of our own topics."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import bytewax.operators as op
from bytewax.dataflow import Dataflow, Stream

from connectors import topic
from connectors.codec import Rejected, decode_event, failure
from connectors.kafka.record import KafkaRecord, OutboundRecord
from connectors.kafka.sink import KafkaSink
from connectors.kafka.source import EndHooks, KafkaSource
from connectors.telemetry.log import configure_logging, log_event, process_age_s
from connectors.telemetry.metric import start_process_metrics
from dataflows.flows.routing import to_outbound
from dataflows.settings import Settings
from risk.domain import DecodeFailure, DecodeReason

T = TypeVar("T")


class FlowIO(Protocol):
    """Where a flow reads records and writes events: Kafka in production, lists in tests."""

    def input(
        self,
        step_id: str,
        flow: Dataflow,
        *topics: str,
        fetch_wait_ms: int | None = None,
        end: EndHooks | None = None,
    ) -> Stream[KafkaRecord]:
        """Read `topics` as one stream of records; in a bounded run, `end` ties the
        input's end to the rest of the flow."""
        ...

    def output(self, step_id: str, events: Stream[object]) -> None:
        """Deliver every event to its destination."""
        ...


@dataclass(frozen=True, slots=True)
class KafkaIO:
    """The production `FlowIO`: our Kafka source and checked-delivery sink."""

    settings: Settings

    def input(
        self,
        step_id: str,
        flow: Dataflow,
        *topics: str,
        fetch_wait_ms: int | None = None,
        end: EndHooks | None = None,
    ) -> Stream[KafkaRecord]:
        """Read `topics` (namespaced by the configured prefix) as one stream."""
        kafka = self.settings.kafka
        source = KafkaSource(
            kafka.bootstrap,
            [kafka.topic_prefix + name for name in topics],
            batch_size=kafka.batch_size,
            idle_backoff_s=kafka.idle_backoff_ms / 1000,
            exit_when_idle_s=kafka.exit_when_idle_s,
            drain_file=Path(kafka.drain_file) if kafka.drain_file else None,
            fetch_wait_ms=kafka.fetch_wait_ms if fetch_wait_ms is None else fetch_wait_ms,
            end=end,
        )
        return op.input(step_id, flow, source)

    def output(self, step_id: str, events: Stream[object]) -> None:
        """Route every event to its topic and produce it with checked delivery."""
        kafka = self.settings.kafka
        records: Stream[tuple[str, OutboundRecord]] = op.flat_map_batch(
            f"{step_id}_route", events, to_outbound(kafka.topic_prefix)
        )
        sink = KafkaSink(
            kafka.bootstrap,
            alerts_topic=kafka.topic_prefix + topic.ALERTS,
            message_timeout_ms=kafka.message_timeout_ms,
        )
        op.output(step_id, records, sink)


def observe_process(component: str) -> None:
    """JSON logs and process metrics (CPU, memory, starts) for the flow of this process.

    Logs `flow starting` with the process's age: interpreter start and imports.
    """
    configure_logging(component)
    start_process_metrics(component)
    log_event(logging.getLogger(f"hfl.{component}"), "flow starting", since_start_s=process_age_s())


def topic_decoder(
    cls_for_topic: Callable[[str], type[T] | Callable[[bytes], T]],
    *,
    account: str | None = None,
) -> Callable[[list[KafkaRecord]], list[T | DecodeFailure]]:
    """Batch decoder choosing the type (or, for a topic of several, a decoder) by topic;
    bad records become dead letters.

    With `account`, records for any other account are dead-lettered too: a state
    built for one account must never see another's fills or commands. Types without
    an account (alerts) pass; their consumer decides whom they concern.
    """

    def decode(records: list[KafkaRecord]) -> list[T | DecodeFailure]:
        out: list[T | DecodeFailure] = []
        for record in records:
            try:
                how = cls_for_topic(record.topic)
                event = (
                    decode_event(how, record.value) if isinstance(how, type) else how(record.value)
                )
                owner = getattr(event, "account", account)
                if account is not None and owner != account:
                    detail = f"{owner!r} is not {account!r}"
                    raise Rejected(DecodeReason.UNKNOWN_ACCOUNT, detail)
            except Rejected as rejected:
                out.append(dead_letter(record, rejected))
            else:
                out.append(event)
        return out

    return decode


def split_dead_letters(
    step_id: str, stream: Stream[T | DecodeFailure]
) -> tuple[Stream[T], Stream[DecodeFailure]]:
    """Split decoded items from dead letters in one pass over the stream."""
    branches = op.branch(step_id, stream, lambda item: not isinstance(item, DecodeFailure))
    return branches.trues, branches.falses  # type: ignore[return-value]


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


def code_version() -> str:
    """The git commit of the running code, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"
