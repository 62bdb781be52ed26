"""A Bytewax Kafka source that never skips data silently.

Unlike Bytewax's stock source it sets `auto.offset.reset=error` (a resume whose
offset is gone fails loudly instead of jumping to the end), polls without blocking
so one idle input never stalls the worker, and can stop once its partitions are
drained and idle (bounded runs: demo, backtests, tests).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.kafka.record import KafkaRecord
from risk.domain.error import HflError, RecoverableError


def consumer_config(bootstrap: str, group: str) -> dict[str, object]:
    """Consumer settings shared by every reader: no auto-commit, fail-closed resets."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "error",
        "enable.partition.eof": True,
        "fetch.wait.max.ms": 5,
        "socket.nagle.disable": True,
    }


def list_partitions(bootstrap: str, topics: Iterable[str], timeout_s: float = 10.0) -> list[str]:
    """Return `topic#partition` names for every partition of `topics`.

    Raises:
        HflError: when a topic does not exist (create topics with `hfl topics create`).
    """
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s)
    parts = []
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            msg = f"topic {topic!r} does not exist on {bootstrap}; run `hfl topics create`"
            raise HflError(msg)
        parts.extend(f"{topic}#{p}" for p in sorted(meta.partitions))
    return parts


class _KafkaPartition(StatefulSourcePartition[KafkaRecord, int]):
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        partition: int,
        offset: int | None,
        *,
        batch_size: int,
        idle_backoff_s: float,
        exit_when_idle_s: float,
        group: str,
    ) -> None:
        self._topic = topic
        self._partition = partition
        self._next_offset = OFFSET_BEGINNING if offset is None else offset
        self._batch_size = batch_size
        self._idle_backoff = timedelta(seconds=idle_backoff_s)
        self._exit_when_idle_s = exit_when_idle_s
        self._last_data = time.monotonic()
        self._at_eof = False
        self._awake: datetime | None = None
        self._consumer = Consumer(consumer_config(bootstrap, group))
        self._consumer.assign([TopicPartition(topic, partition, self._next_offset)])

    def next_batch(self) -> list[KafkaRecord]:
        messages = self._consumer.consume(self._batch_size, 0)
        batch = []
        for message in messages:
            error = message.error()
            if error is None:
                self._at_eof = False
                batch.append(
                    KafkaRecord(
                        self._topic,
                        self._partition,
                        message.offset(),
                        message.key(),
                        message.value(),
                        message.timestamp()[1] * 1_000_000,
                    )
                )
            elif error.code() == KafkaError._PARTITION_EOF:
                self._at_eof = True
            else:
                msg = f"kafka source {self._topic}#{self._partition} failed: {error}"
                raise RecoverableError(msg)
        if batch:
            self._next_offset = batch[-1].offset + 1
            self._last_data = time.monotonic()
            self._awake = None
            return batch
        self._stop_if_drained()
        self._awake = datetime.now(UTC) + self._idle_backoff
        return batch

    def _stop_if_drained(self) -> None:
        idle = time.monotonic() - self._last_data
        if self._exit_when_idle_s > 0 and self._at_eof and idle >= self._exit_when_idle_s:
            raise StopIteration

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> int:
        return self._next_offset

    def close(self) -> None:
        self._consumer.close()


class KafkaSource(FixedPartitionedSource[KafkaRecord, int]):
    """Read `topics` from the beginning (or the recovered offsets), in batches.

    Args:
        bootstrap: broker list.
        topics: topics to read; every partition is one Bytewax source partition.
        batch_size: max records per poll.
        idle_backoff_s: sleep of an idle partition before it polls again.
        exit_when_idle_s: > 0 makes the source finish once every partition reached
            its end and saw nothing new for this long; 0 reads forever.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: list[str],
        *,
        batch_size: int = 2000,
        idle_backoff_s: float = 0.001,
        exit_when_idle_s: float = 0.0,
    ) -> None:
        self._bootstrap = bootstrap
        self._topics = topics
        self._batch_size = batch_size
        self._idle_backoff_s = idle_backoff_s
        self._exit_when_idle_s = exit_when_idle_s

    def list_parts(self) -> list[str]:
        return list_partitions(self._bootstrap, self._topics)

    def build_part(self, step_id: str, for_part: str, resume_state: int | None) -> _KafkaPartition:
        topic, _, partition = for_part.rpartition("#")
        return _KafkaPartition(
            self._bootstrap,
            topic,
            int(partition),
            resume_state,
            batch_size=self._batch_size,
            idle_backoff_s=self._idle_backoff_s,
            exit_when_idle_s=self._exit_when_idle_s,
            group=f"hfl-{step_id}",
        )
