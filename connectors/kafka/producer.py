"""A confluent-kafka producer that checks every delivery report."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from connectors.kafka.record import OutboundRecord
from connectors.kafka.security import with_security
from risk.domain.error import RecoverableError

EMITTED_HEADER = "hfl-emitted-ns"


def producer_config(
    bootstrap: str,
    *,
    message_timeout_ms: int = 30_000,
    linger_ms: float = 2.0,
    idempotent: bool = False,
) -> dict[str, object]:
    """Producer settings: acks from all replicas, small linger, bounded delivery time;
    `idempotent`: retries never write a record twice. Carries the process's declared
    transport security (`connectors.kafka.security.use`)."""
    return with_security(
        {
            "bootstrap.servers": bootstrap,
            "acks": "all",
            "enable.idempotence": idempotent,
            # A few ms of linger turns per-item output into few, large broker batches;
            # the local broker's fetch cost grows with the number of batches it stores.
            "linger.ms": linger_ms,
            "message.timeout.ms": message_timeout_ms,
            "queue.buffering.max.messages": 1_000_000,
            "socket.nagle.disable": True,
        }
    )


class DeliveryFailedError(RecoverableError):
    """At least one record was not acknowledged by the broker."""


class CheckedProducer:
    """Produce records and surface every failed delivery report as an error.

    `produce_batch` queues without waiting and raises if an earlier delivery failed;
    `flush` (and `send`) block until every queued record is acknowledged, raising
    `DeliveryFailedError` naming the first failure, so nothing is dropped silently.
    Each record carries the wall-clock emission time in the `hfl-emitted-ns` header
    (for latency measurement; payloads stay deterministic).
    """

    def __init__(
        self,
        bootstrap: str,
        *,
        message_timeout_ms: int = 30_000,
        linger_ms: float = 2.0,
        idempotent: bool = False,
    ) -> None:
        self._producer = Producer(
            producer_config(
                bootstrap,
                message_timeout_ms=message_timeout_ms,
                linger_ms=linger_ms,
                idempotent=idempotent,
            )
        )
        self._timeout_s = message_timeout_ms / 1000 + 5
        self._failures: list[str] = []
        self._last_offset = -1

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error}")
        else:
            self._last_offset = message.offset() or 0

    def send(self, records: Iterable[OutboundRecord]) -> int:
        """Produce `records` and block until all are acknowledged; return the count."""
        count = self.produce_batch(records)
        self.flush()
        return count

    def deliver(self, record: OutboundRecord) -> int:
        """Produce `record` alone and block until it is acknowledged; return its offset."""
        self.produce(record)
        self.flush()
        return self._last_offset

    @property
    def last_offset(self) -> int:
        """Offset of the last record acknowledged (after `flush`); -1 before any."""
        return self._last_offset

    def produce_batch(self, records: Iterable[OutboundRecord]) -> int:
        """Queue `records` without waiting; raise if an earlier delivery failed."""
        headers = [(EMITTED_HEADER, str(time.time_ns()).encode())]
        count = 0
        for record in records:
            self.produce(record, headers)
            count += 1
        self._producer.poll(0)
        self._raise_failures()
        return count

    def produce(
        self,
        record: OutboundRecord,
        headers: list[tuple[str, bytes]] | None = None,
        *,
        partition: int | None = None,
    ) -> None:
        """Queue one record without waiting (to `partition`, or by its key); `flush`
        later reports its delivery."""
        if headers is None:
            headers = [(EMITTED_HEADER, str(time.time_ns()).encode())]
        where = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    record.value,
                    record.key,
                    on_delivery=self._on_delivery,
                    headers=headers,
                    **where,
                )
                return
            except BufferError:
                self._producer.poll(0.005)
            except KafkaException as exc:
                # Refused before queueing (e.g. over `message.max.bytes`): never retried.
                msg = f"{record.topic}: {len(record.value)} bytes refused: {exc}"
                raise DeliveryFailedError(msg) from exc

    def flush(self) -> None:
        """Wait for every outstanding delivery report; raise on any failure."""
        remaining = self._producer.flush(self._timeout_s)
        if remaining:
            self._failures.append(f"{remaining} records unacknowledged after {self._timeout_s}s")
        self._raise_failures()

    def _raise_failures(self) -> None:
        if self._failures:
            failures, self._failures = self._failures, []
            msg = f"{len(failures)} deliveries failed, first: {failures[0]}"
            raise DeliveryFailedError(msg)
