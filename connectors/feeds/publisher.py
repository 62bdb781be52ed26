"""Send feed records to `md.ticks`, stamping `ts_init` with the send time."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from connectors.codec import encode
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord

FeedRecord = dict[str, Any] | bytes

# A feed trickles records; 10 ms of linger groups them into broker batches (the local
# broker slows down as stored batches pile up) at a bounded cost in latency.
FEED_LINGER_MS = 10.0


def outbound(record: FeedRecord, topic: str) -> OutboundRecord:
    """Encode one feed record keyed by instrument, `ts_init` set to now.

    Raw bytes (recorded JSON lines) pass through untouched so the trading flow's
    validation sees exactly what the file held.
    """
    if isinstance(record, bytes):
        return OutboundRecord(topic, b"", record)
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
