"""Pieces the three flows share: sources, sinks, decoding of our own topics."""

from __future__ import annotations

import ctypes
import gc
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
from connectors.kafka.end import awaited, topics_written_by
from connectors.kafka.record import KafkaRecord, OutboundRecord
from connectors.kafka.sink import KafkaSink
from connectors.kafka.source import EndHooks, KafkaSource
from connectors.telemetry.log import configure_logging, log_event, process_age_s
from connectors.telemetry.metric import start_process_metrics
from dataflows.flows.routing import to_outbound
from dataflows.flows.run_end import gave_up
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
        await_ends: bool = True,
    ) -> Stream[KafkaRecord]:
        """Read `topics` as one stream of records; in a bounded run, `end` ties the
        input's end to the rest of the flow and, with `await_ends`, the input ends at
        the end-of-stream markers of the topics' writers."""
        ...

    def output(self, step_id: str, events: Stream[object]) -> None:
        """Deliver every event to its destination."""
        ...


@dataclass(frozen=True, slots=True)
class KafkaIO:
    """The production `FlowIO`: our Kafka source and checked-delivery sink.

    In a bounded run (`kafka.bounded`) inputs end at their writers' end-of-stream
    markers, and the output of flow `writer` writes its own markers when it closes.
    """

    settings: Settings
    writer: str = ""

    def input(
        self,
        step_id: str,
        flow: Dataflow,
        *topics: str,
        fetch_wait_ms: int | None = None,
        end: EndHooks | None = None,
        await_ends: bool = True,
    ) -> Stream[KafkaRecord]:
        """Read `topics` (namespaced by the configured prefix) as one stream."""
        kafka = self.settings.kafka
        ends = awaited(topics, kafka.end_writers, kafka.topic_prefix) if await_ends else {}
        source = KafkaSource(
            kafka.bootstrap,
            [kafka.topic_prefix + name for name in topics],
            batch_size=kafka.batch_size,
            idle_backoff_s=kafka.idle_backoff_ms / 1000,
            exit_when_idle_s=kafka.exit_when_idle_s,
            drain_file=Path(kafka.drain_file) if kafka.drain_file else None,
            fetch_wait_ms=kafka.fetch_wait_ms if fetch_wait_ms is None else fetch_wait_ms,
            end=end,
            bounded=kafka.bounded,
            ends=ends,
            end_guard_s=kafka.end_guard_s,
        )
        return op.input(step_id, flow, source)

    def output(self, step_id: str, events: Stream[object]) -> None:
        """Route every event to its topic and produce it with checked delivery."""
        kafka = self.settings.kafka
        records: Stream[tuple[str, OutboundRecord]] = op.flat_map_batch(
            f"{step_id}_route", events, to_outbound(kafka.topic_prefix)
        )
        writes_ends = kafka.bounded and self.writer in kafka.end_writers
        sink = KafkaSink(
            kafka.bootstrap,
            alerts_topic=kafka.topic_prefix + topic.ALERTS,
            message_timeout_ms=kafka.message_timeout_ms,
            end_writer=self.writer if writes_ends else None,
            end_topics=tuple(topics_written_by(self.writer, kafka.topic_prefix)),
            end_complete=lambda: not gave_up(),
        )
        op.output(step_id, records, sink)


# Young-generation collections every 50,000 net allocations instead of 700: the hot
# path allocates a few containers per tick (events, dicts) that die within the batch, so
# fewer collections find them already freed; older generations as rarely as before
# relative to it. Measured on the trading flow's per-tick step: 24 µs of 120 per tick in
# the collector by default, none with this and `gc.freeze`.
GC_THRESHOLDS = (50_000, 20, 100)
# glibc returns the top of the heap to the OS once 128 kB of it is free, and a batch's
# records (1,000 encoded events of ~0.3-1 kB, read and written per batch) are freed
# together: the next batch then page-faults the same memory back in. Keeping 64 MB
# (and growing by 16 MB) measured 5.1 → 1.8 µs per encoded event kept until the batch
# ends, which is what a sink does.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
MALLOC_TRIM_THRESHOLD_BYTES = 64 << 20
MALLOC_TOP_PAD_BYTES = 16 << 20


def settle_heap() -> None:
    """Freeze what start-up built, collect young objects less often, keep freed heap.

    Called once a flow is built: the modules, settings and warm-started models it
    made stay alive for the whole run, and `gc.freeze` takes them out of every
    future collection (a full collection walked 300k objects, 140 ms). Then glibc
    is told to keep freed memory instead of trimming it (see above); elsewhere
    (another C library) that step is skipped.
    """
    if gc.get_threshold() == GC_THRESHOLDS:
        return  # settled already: a process that builds flows again (tests) freezes once
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD_BYTES)
        libc.mallopt(_M_TOP_PAD, MALLOC_TOP_PAD_BYTES)
    except (OSError, AttributeError):
        return


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
