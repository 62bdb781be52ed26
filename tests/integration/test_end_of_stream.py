"""A bounded Kafka input ends at its writers' end markers, on the real broker: never by
an idle window, always at the same depth, also when resumed after reading a marker."""

from __future__ import annotations

import time
import uuid

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSink, run_main

from connectors.kafka.admin import create_topics
from connectors.kafka.end import EndGuardError, write_end
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.kafka.source import KafkaSource
from connectors.topic import TopicSpec

pytestmark = pytest.mark.integration


def _topic(bootstrap: str, partitions: int = 1) -> str:
    name = f"eos-{uuid.uuid4().hex[:8]}"
    create_topics(bootstrap, (TopicSpec(name=name, partitions=partitions, key="k"),))
    return name


def _send(producer: CheckedProducer, topic: str, values: list[bytes]) -> None:
    producer.send(OutboundRecord(topic, b"k", value) for value in values)


def _read(source: KafkaSource) -> list[bytes]:
    flow = Dataflow("eos")
    out: list[bytes] = []
    op.output(
        "out", op.map("value", op.input("in", flow, source), lambda r: r.value), TestingSink(out)
    )
    run_main(flow)
    return out


def test_bounded_input_ends_at_the_marker_and_not_after(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap, partitions=2)
    producer = CheckedProducer(kafka_bootstrap)
    _send(producer, topic, [b"a", b"b", b"c"])
    write_end(producer, kafka_bootstrap, "feed", [topic])
    _send(producer, topic, [b"after"])  # another run's data: never read

    values = _read(
        KafkaSource(kafka_bootstrap, [topic], bounded=True, ends={topic: frozenset({"feed"})})
    )

    assert sorted(values) == [b"a", b"b", b"c"]


def test_bounded_input_waits_for_a_late_writer_of_the_same_topic(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    producer = CheckedProducer(kafka_bootstrap)
    _send(producer, topic, [b"x"])
    write_end(producer, kafka_bootstrap, "gateway", [topic])
    _send(producer, topic, [b"y"])  # the trading flow writes on after the gateway ended
    write_end(producer, kafka_bootstrap, "trading", [topic])

    ends = {topic: frozenset({"gateway", "trading"})}
    values = _read(KafkaSource(kafka_bootstrap, [topic], bounded=True, ends=ends))

    assert values == [b"x", b"y"]


def test_missing_marker_fails_loudly_naming_the_writer(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    _send(CheckedProducer(kafka_bootstrap), topic, [b"x"])
    source = KafkaSource(
        kafka_bootstrap, [topic], bounded=True, ends={topic: frozenset({"feed"})}, end_guard_s=1.0
    )

    with pytest.raises(Exception) as raised:  # Bytewax wraps it: look at the chain
        _read(source)
    chain = []
    error: BaseException | None = raised.value
    while error is not None:
        chain.append(error)
        error = error.__cause__
    guard = next(e for e in chain if isinstance(e, EndGuardError))
    assert f"{topic}#0 from feed" in str(guard)


def test_resumed_partition_remembers_the_markers_it_read(kafka_bootstrap: str) -> None:
    topic = _topic(kafka_bootstrap)
    producer = CheckedProducer(kafka_bootstrap)
    _send(producer, topic, [b"x"])
    write_end(producer, kafka_bootstrap, "feed", [topic])
    source = KafkaSource(kafka_bootstrap, [topic], bounded=True, ends={topic: frozenset({"feed"})})
    part = source.build_part("eos", "p0", None)
    deadline = time.monotonic() + 120  # a guard: it ends at the marker
    read: list[bytes] = []
    try:
        while time.monotonic() < deadline:
            read += [r.value for r in part.next_batch()]
    except StopIteration:
        pass
    state = part.snapshot()
    part.close()
    assert read == [b"x"]
    assert state[topic] == 2  # past the marker

    resumed = source.build_part("eos", "p0", state)
    try:
        with pytest.raises(StopIteration):
            for _ in range(1000):
                assert resumed.next_batch() == []
    finally:
        resumed.close()
