"""End-of-stream markers: how a bounded run ends by its data, not by a timer.

Every bounded writer of a topic (the feed, the trading and gateway flows) writes one
marker to every partition of each topic it writes, once everything it wrote before is
acknowledged. A bounded reader knows which writers it waits for on which topic
(`connectors.topic.END_WRITERS`, limited to the writers of its run) and finishes a
partition once all their markers are in (`connectors.kafka.source`).

A marker is a record keyed `END_KEY` whose value names its writer, topic and partition.
It holds no wall time, so a writer that replays after a crash writes the identical
marker again. Its value carries a `progress_id`, so every reader that skips flow-control
progress records (`connectors.codec.is_progress_marker`) skips it as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.topic import END_WRITERS
from risk.domain.error import HflError

END_KEY = b"\x00hfl.end"
FEED = "feed"


class EndGuardError(HflError):
    """A bounded run's input did not reach its end before the wall-time guard fired."""


def end_value(writer: str, topic: str, partition: int) -> bytes:
    """The marker's value: deterministic, so a replayed writer repeats it byte for byte.

    >>> end_value("feed", "md.ticks", 0)
    b'{"progress_id":"end:feed:md.ticks:0","end_of_stream":"feed","topic":"md.ticks","partition":0}'
    """
    return orjson.dumps(
        {
            "progress_id": f"end:{writer}:{topic}:{partition}",
            "end_of_stream": writer,
            "topic": topic,
            "partition": partition,
        }
    )


def marker_writer(value: bytes) -> str:
    """The writer a marker's value names ('' when it names none)."""
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ""
    writer = decoded.get("end_of_stream") if isinstance(decoded, dict) else None
    return writer if isinstance(writer, str) else ""


def partitions_of(bootstrap: str, topics: Iterable[str], timeout_s: float = 10.0) -> dict[str, int]:
    """How many partitions each topic has.

    Raises:
        HflError: a topic does not exist or the broker did not answer.
    """
    try:
        metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise HflError(f"cannot list topics on {bootstrap}: {exc}") from exc
    counts = {}
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise HflError(f"topic {topic!r} does not exist on {bootstrap}")
        counts[topic] = len(meta.partitions)
    return counts


def write_end(producer: CheckedProducer, bootstrap: str, writer: str, topics: Iterable[str]) -> int:
    """Flush `producer` (everything before is acknowledged), then write `writer`'s marker
    to every partition of `topics` and flush again; return the markers written.

    Raises:
        DeliveryFailedError: a record before the markers, or a marker, was not acknowledged.
    """
    producer.flush()
    written = 0
    for topic, count in partitions_of(bootstrap, topics).items():
        for partition in range(count):
            record = OutboundRecord(topic, END_KEY, end_value(writer, topic, partition))
            producer.produce(record, [], partition=partition)  # no emission stamp
            written += 1
    producer.flush()
    return written


def topics_written_by(writer: str, prefix: str = "") -> list[str]:
    """The (prefixed) topics whose readers wait for `writer`'s marker.

    >>> topics_written_by("gateway")
    ['hfl.order_events', 'hfl.fills', 'hfl.dlq']
    """
    return [prefix + topic for topic, writers in END_WRITERS.items() if writer in writers]


def awaited(
    topics: Iterable[str], writers: Iterable[str], prefix: str = ""
) -> Mapping[str, frozenset[str]]:
    """For each (prefixed) topic, the writers of this run whose markers a reader waits for.

    Topics with none (operator-written ones, or whose writers do not run) are left out.

    >>> dict(awaited(["md.ticks", "hfl.control", "hfl.dlq"], ["feed", "trading"], "x."))
    {'x.md.ticks': frozenset({'feed'}), 'x.hfl.dlq': frozenset({'trading'})}
    """
    present = frozenset(writers)
    out = {}
    for topic in topics:
        wanted = frozenset(END_WRITERS.get(topic, ())) & present
        if wanted:
            out[prefix + topic] = wanted
    return out
