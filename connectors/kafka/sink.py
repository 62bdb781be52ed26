"""A Bytewax sink that produces `OutboundRecord`s and checks every delivery report."""

from __future__ import annotations

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord


class _Partition(StatelessSinkPartition[OutboundRecord]):
    def __init__(self, producer: CheckedProducer) -> None:
        self._producer = producer

    def write_batch(self, items: list[OutboundRecord]) -> None:
        # Blocking until the batch is acknowledged means an epoch's snapshot can
        # never be taken while its output is still in flight.
        self._producer.send(items)

    def close(self) -> None:
        self._producer.flush()


class KafkaSink(DynamicSink[OutboundRecord]):
    """Write records to Kafka; a failed delivery crashes the flow (it then replays)."""

    def __init__(self, bootstrap: str, *, message_timeout_ms: int = 30_000) -> None:
        self._bootstrap = bootstrap
        self._message_timeout_ms = message_timeout_ms

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Partition:
        return _Partition(
            CheckedProducer(self._bootstrap, message_timeout_ms=self._message_timeout_ms)
        )
