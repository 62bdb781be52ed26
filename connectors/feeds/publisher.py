"""Send feed records to `md.ticks`, stamping `ts_init` with the send time."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Producer

from connectors.codec import encode
from connectors.kafka.producer import CheckedProducer, producer_config
from connectors.kafka.record import OutboundRecord
from risk.domain.error import HflError

FeedRecord = dict[str, Any] | bytes

# A feed trickles records; 10 ms of linger groups them into broker batches (the local
# broker slows down as stored batches pile up) at a bounded cost in latency.
FEED_LINGER_MS = 10.0


_INSTRUMENT = re.compile(rb'"instrument"\s*:\s*"([^"\\]{1,64})"')


def outbound(record: FeedRecord, topic: str) -> OutboundRecord:
    """Encode one feed record keyed by instrument, `ts_init` set to now.

    Raw bytes (recorded JSON lines) pass through untouched so the trading flow's
    validation sees exactly what the file held; they are keyed by the instrument named
    in them, so each instrument's ticks stay in one `md.ticks` partition, in order (a
    line naming none gets an empty key: it is a dead letter anyway).

    >>> outbound(b'{"instrument": "AAPL", "seq": 1}', "md.ticks").key
    b'AAPL'
    """
    if isinstance(record, bytes):
        found = _INSTRUMENT.search(record)
        return OutboundRecord(topic, found.group(1) if found else b"", record)
    record = {**record, "ts_init": time.time_ns()}
    return OutboundRecord(topic, str(record.get("instrument", "")).encode(), encode(record))


def publish(
    records: Iterable[FeedRecord], producer: CheckedProducer, topic: str, *, flush_every: int = 5000
) -> int:
    """Produce `records` as they come, checking deliveries every `flush_every`.

    Each record is handed to the producer at once (so a paced feed is not delayed by
    batching); `flush` waits for the acknowledgements and raises on any failure.
    """
    sent = 0
    for record in records:  # the producer's linger batches paced records for the broker
        producer.produce(outbound(record, topic))
        sent += 1
        if sent % flush_every == 0:
            producer.flush()
    producer.flush()
    return sent


@dataclass(slots=True)
class StampingSender:
    """Produces tick records to `md.ticks`, stamping `ts_init`; counts failed deliveries."""

    producer: Producer
    topic: str
    failures: list[str] = field(default_factory=list)

    @classmethod
    def to(cls, bootstrap: str, topic: str, *, linger_ms: float = 2.0) -> StampingSender:
        """A sender with a fresh producer (benchmarks: the fastest path, no checks per record).

        `linger_ms` sets how many ticks share a broker batch: the local broker's cost of
        every fetch grows with the batches a partition stores (docs/benchmarks.md).
        """
        return cls(Producer(producer_config(bootstrap, linger_ms=linger_ms)), topic)

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is not None:
            self.failures.append(str(error))

    def send(self, record: dict[str, Any]) -> int:
        """Stamp `record` with the wall clock, produce it, return the stamp."""
        ts_init = time.time_ns()
        record["ts_init"] = ts_init
        value = encode(record)
        while True:
            try:
                self.producer.produce(
                    self.topic, value, record["instrument"], on_delivery=self._on_delivery
                )
                return ts_init
            except BufferError:
                self.producer.poll(0.005)

    def flush(self) -> None:
        """Wait for every delivery; raise if any failed."""
        if self.producer.flush(30.0) or self.failures:
            raise HflError(f"tick deliveries failed: {self.failures[:1] or 'timeout'}")
