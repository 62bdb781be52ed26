"""A Bytewax sink that produces `OutboundRecord`s and checks every delivery report."""

from __future__ import annotations

from bytewax.outputs import FixedPartitionedSink, StatefulSinkPartition

from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from sinks.metric import RECORDS_OUT, count_batch


class _Partition(StatefulSinkPartition[OutboundRecord, None]):
    def __init__(self, producer: CheckedProducer, step: str) -> None:
        self._producer = producer
        self._step = step

    def write_batch(self, values: list[OutboundRecord]) -> None:
        # Queue without waiting: librdkafka sends within `linger.ms`, so output leaves
        # at once and in few, large broker batches. Failures already reported raise here.
        self._producer.produce_batch(values)
        count_batch(RECORDS_OUT, self._step, len(values))

    def snapshot(self) -> None:
        # Every record of the epoch is acknowledged before Bytewax records the epoch's
        # input offsets; a failed delivery crashes the flow, which then replays.
        self._producer.flush()

    def close(self) -> None:
        self._producer.flush()


class KafkaSink(FixedPartitionedSink[OutboundRecord, None]):
    """Write records to Kafka; every delivery is confirmed before each snapshot.

    Items arrive keyed by topic. One sink partition per flow owns the producer (a
    producer batches for all topics itself).
    """

    def __init__(self, bootstrap: str, *, message_timeout_ms: int = 30_000) -> None:
        self._bootstrap = bootstrap
        self._message_timeout_ms = message_timeout_ms

    def list_parts(self) -> list[str]:
        return ["kafka"]

    def part_fn(self, item_key: str) -> int:
        return 0

    def build_part(self, step_id: str, for_part: str, resume_state: None) -> _Partition:
        return _Partition(
            CheckedProducer(self._bootstrap, message_timeout_ms=self._message_timeout_ms),
            step_id,
        )
