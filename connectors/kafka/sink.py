"""A Bytewax sink that produces `OutboundRecord`s and checks every delivery report."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.codec import encode
from connectors.kafka.end import write_end
from connectors.kafka.producer import CheckedProducer, DeliveryFailedError
from connectors.kafka.record import OutboundRecord
from connectors.telemetry import stage
from connectors.telemetry.metric import RECORDS_OUT, count_batch
from risk.domain import Alert, AlertSeverity
from risk.domain.ids import stable_id

# The alert about a failed delivery must not wait as long as the delivery did.
ALERT_TIMEOUT_MS = 5_000


def delivery_alert(step_id: str, error: DeliveryFailedError, now_ns: int) -> Alert:
    """The `delivery_failure` alert (the risk gate HALTs trading on it).

    >>> alert = delivery_alert("trading.events_out", DeliveryFailedError("x: timed out"), 5)
    >>> alert.name, alert.severity.value, alert.subject
    ('delivery_failure', 'critical', 'trading.events_out')
    """
    return Alert(
        alert_id=stable_id("delivery_failure", step_id, now_ns),
        name="delivery_failure",
        severity=AlertSeverity.CRITICAL,
        source=step_id,
        subject=step_id,
        message=str(error),
        ts_event=now_ns,
        ts_init=now_ns,
    )


class _Partition(StatefulSinkPartition[OutboundRecord, None]):
    def __init__(
        self, producer: CheckedProducer, alarm: _Alarm, step: str, end: _End | None = None
    ) -> None:
        self._producer = producer
        self._alarm = alarm
        self._step = step
        self._end = end

    def write_batch(self, values: list[OutboundRecord]) -> None:
        # Queue without waiting: librdkafka sends within `linger.ms`, so output leaves
        # at once and in few, large broker batches. Failures already reported raise here.
        started = stage.now()
        with self._alarm:
            self._producer.produce_batch(values)
        stage.record(f"{self._step}.produce", started, stage.now(), len(values))
        count_batch(RECORDS_OUT, self._step, len(values))

    def snapshot(self) -> None:
        # Every record of the epoch is acknowledged before Bytewax records the epoch's
        # input offsets; a failed delivery crashes the flow, which then replays.
        with self._alarm:
            self._producer.flush()

    def close(self) -> None:
        # Bytewax closes a sink only when its flow finished on finite input: every
        # record is acknowledged, then this writer's end markers follow them.
        with self._alarm:
            self._producer.flush()
            if self._end is not None and self._end.complete():
                write_end(self._producer, self._end.bootstrap, self._end.writer, self._end.topics)


def _always() -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _End:
    bootstrap: str
    writer: str
    topics: tuple[str, ...]
    complete: Callable[[], bool] = _always


class _Alarm:
    """Context that turns a failed delivery into a `delivery_failure` alert, then re-raises.

    The flow stops loudly (non-zero exit; the supervisor restarts it and it replays from
    its snapshot); the alert tells the risk gate to HALT meanwhile. If the alert cannot
    be delivered either (broker unreachable), that is written to stderr as well.
    """

    def __init__(self, bootstrap: str, topic: str, step_id: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._step_id = step_id

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, error: BaseException | None, tb: object) -> None:
        if not isinstance(error, DeliveryFailedError):
            return
        alert = delivery_alert(self._step_id, error, time.time_ns())
        print(f"[{self._step_id}] delivery failed, flow stops: {error}", file=sys.stderr)
        try:
            CheckedProducer(self._bootstrap, message_timeout_ms=ALERT_TIMEOUT_MS).send(
                [OutboundRecord(self._topic, alert.name.encode(), encode(alert))]
            )
        except DeliveryFailedError as also:
            print(
                f"[{self._step_id}] the delivery_failure alert failed too: {also}", file=sys.stderr
            )


class KafkaSink(FixedPartitionedSink[OutboundRecord, None]):
    """Write records to Kafka; every delivery is confirmed before each snapshot.

    Items arrive keyed by topic. One sink partition per flow owns the producer (a
    producer batches for all topics itself). A failed delivery raises an alert on
    `alerts_topic` and stops the flow. With `end_writer` (a bounded run), closing the
    sink at the end of finite input writes that writer's end-of-stream markers to
    `end_topics` once everything before them is acknowledged (`connectors.kafka.end`),
    unless `end_complete()` says the flow ended without finishing its work (a guard
    fired): a marker says "all of it", so such a flow writes none.
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        alerts_topic: str,
        message_timeout_ms: int = 30_000,
        end_writer: str | None = None,
        end_topics: tuple[str, ...] = (),
        end_complete: Callable[[], bool] = _always,
    ) -> None:
        self._bootstrap = bootstrap
        self._alerts_topic = alerts_topic
        self._message_timeout_ms = message_timeout_ms
        self._end = (
            None if end_writer is None else _End(bootstrap, end_writer, end_topics, end_complete)
        )

    def list_parts(self) -> list[str]:
        return ["kafka"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Partition:
        return _Partition(
            CheckedProducer(self._bootstrap, message_timeout_ms=self._message_timeout_ms),
            _Alarm(self._bootstrap, self._alerts_topic, step_id),
            step_id,
            self._end,
        )
