"""Probes of the broker's own costs, for `hfl bench broker` (no flow involved).

- `idle_fetch_cpu`: `consumers` consumers, each assigned one empty partition, poll as
  the flows' sources do (non-blocking `consume`, `idle_backoff_s` sleep) for
  `seconds`; the caller samples the broker's CPU meanwhile. With nothing to read, the
  broker's work is answering every empty fetch once `fetch.wait.max.ms` ran out.
- `hop_latency`: one producer sends a record every `interval_s` (its `linger_ms`), one
  consumer (its `fetch_wait_ms`) reads them; per record the wall time from the
  produce call to the consumer seeing it. If the broker answered a waiting fetch as
  soon as data arrives, this would not grow with `fetch_wait_ms`.
- `record_costs`: produce `count` records as fast as possible (the given linger), then
  read them all back; wall times of each phase, so the caller can divide the broker's
  CPU of each phase by the records.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer, Producer, TopicPartition

from connectors.codec import loads
from connectors.kafka.producer import producer_config
from connectors.kafka.source import consumer_config


@dataclass(frozen=True, slots=True)
class Phase:
    """Wall-clock bounds of a probe phase, for CPU sampling by the caller."""

    started_ns: int
    ended_ns: int


def idle_fetch_cpu(
    bootstrap: str,
    topic: str,
    *,
    consumers: int,
    fetch_wait_ms: int,
    seconds: float,
    idle_backoff_s: float = 0.001,
) -> Phase:
    """Poll `consumers` empty partitions of `topic` for `seconds`; return the span."""
    stop = threading.Event()
    ready = threading.Barrier(consumers + 1)

    def poll(index: int) -> None:
        consumer = Consumer(
            consumer_config(bootstrap, f"probe-{index}", fetch_wait_ms=fetch_wait_ms)
        )
        consumer.assign([TopicPartition(topic, index, 0)])
        consumer.consume(100, 0.5)  # connect before the measured span
        ready.wait()
        while not stop.is_set():
            if not consumer.consume(2000, 0):
                time.sleep(idle_backoff_s)
        consumer.close()

    threads = [threading.Thread(target=poll, args=(i,), daemon=True) for i in range(consumers)]
    for thread in threads:
        thread.start()
    ready.wait()
    time.sleep(0.5)  # every consumer's first fetch is in flight
    started = time.time_ns()
    time.sleep(seconds)
    ended = time.time_ns()
    stop.set()
    for thread in threads:
        thread.join()
    return Phase(started, ended)


def hop_latency(
    bootstrap: str,
    topic: str,
    *,
    fetch_wait_ms: int,
    linger_ms: float,
    records: int,
    interval_s: float,
) -> list[int]:
    """Produce -> consume latency (ns) of `records` records sent `interval_s` apart."""
    consumer = Consumer(consumer_config(bootstrap, "probe-hop", fetch_wait_ms=fetch_wait_ms))
    consumer.assign([TopicPartition(topic, 0, 0)])
    consumer.consume(100, 0.5)
    producer = Producer(producer_config(bootstrap, linger_ms=linger_ms))
    sent: dict[bytes, int] = {}
    latencies: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set() or len(latencies) < len(sent):
            for message in consumer.consume(100, 0.001):
                value = message.value()
                if message.error() is None and value is not None and value in sent:
                    latencies.append(time.perf_counter_ns() - sent[value])
            if done.is_set() and time.monotonic() > deadline:
                return

    deadline = float("inf")
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    for n in range(records):
        value = f"r{n}".encode()
        sent[value] = time.perf_counter_ns()
        producer.produce(topic, value, partition=0)
        producer.poll(0)
        time.sleep(interval_s)
    producer.flush(10)
    deadline = time.monotonic() + 5.0
    done.set()
    reader.join()
    consumer.close()
    return latencies


def record_costs(
    bootstrap: str, topic: str, *, count: int, linger_ms: float, value_bytes: int = 200
) -> tuple[Phase, Phase]:
    """Produce `count` records to partition 0 of `topic`, then read them back; the spans."""
    producer = Producer(producer_config(bootstrap, linger_ms=linger_ms))
    value = b"x" * value_bytes
    started = time.time_ns()
    for _ in range(count):
        while True:
            try:
                producer.produce(topic, value, partition=0)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    produced = Phase(started, time.time_ns())
    consumer = Consumer(consumer_config(bootstrap, "probe-read", fetch_wait_ms=5))
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = 0
    started = time.time_ns()
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline:
        seen += sum(m.error() is None for m in consumer.consume(2000, 0.1))
    fetched = Phase(started, time.time_ns())
    consumer.close()
    return produced, fetched


@dataclass(frozen=True, slots=True)
class Trickle:
    """A `trickle` phase: its span, the fetch requests its consumers sent in it, and
    each record's produce -> consume latency (ns) at the first consumer."""

    phase: Phase
    fetches: int
    latencies: list[int]


def fill(bootstrap: str, topic: str, *, batches: int) -> None:
    """Store `batches` one-record batches in partition 0 of `topic` (as a trickling
    producer would leave them: `batch.num.messages=1`)."""
    producer = Producer(producer_config(bootstrap, linger_ms=0) | {"batch.num.messages": 1})
    for n in range(batches):
        while True:
            try:
                producer.produce(topic, f"f{n}".encode(), partition=0)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)


def trickle(
    bootstrap: str,
    topic: str,
    *,
    fetch_wait_ms: int,
    seconds: float,
    rate: float = 1000.0,
    linger_ms: float = 0.0,
    consumers: int = 1,
    read: bool = True,
    idle_backoff_s: float = 0.001,
) -> Trickle:
    """Send `rate` records/s to the end of partition 0 of `topic` (whatever it already
    stores; due records every millisecond, as the pipeline bench's feed), produced with
    `linger_ms`; `consumers` consumers read from the end as the flows' sources do.
    Without `read` they are paused: the broker only stores the trickle."""
    fetches: dict[int, int] = {}
    latencies: list[int] = []
    done = threading.Event()

    def reader(index: int) -> None:
        def on_stats(raw: str) -> None:
            brokers = loads(raw).get("brokers", {}).values()
            fetches[index] = sum(b.get("req", {}).get("Fetch", 0) for b in brokers)

        config = consumer_config(bootstrap, f"probe-trickle-{index}", fetch_wait_ms=fetch_wait_ms)
        consumer = Consumer(config | {"statistics.interval.ms": 100, "stats_cb": on_stats})
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        consumer.assign([TopicPartition(topic, 0, high)])
        if not read:
            consumer.pause([TopicPartition(topic, 0)])
        ready.wait()
        while not done.is_set():
            messages = consumer.consume(2000, 0)
            if not messages:
                time.sleep(idle_backoff_s)
                continue
            now = time.perf_counter_ns()
            if index == 0:  # only this phase's records: earlier ones carry no send time
                latencies.extend(
                    now - int(value[1:])
                    for m in messages
                    if m.error() is None
                    and (value := m.value() or b"").startswith(b"t")
                    and int(value[1:]) >= start
                )
        consumer.close()

    start = time.perf_counter_ns()
    ready = threading.Barrier(consumers + 1)
    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(consumers)]
    for thread in threads:
        thread.start()
    producer = Producer(producer_config(bootstrap, linger_ms=linger_ms))
    ready.wait()
    time.sleep(0.5)  # connected, statistics flowing
    before = sum(fetches.values())
    started = time.time_ns()
    start = time.perf_counter_ns()  # the readers count records sent from here on
    end = start + int(seconds * 1e9)
    sent = 0
    while (now := time.perf_counter_ns()) < end:
        due = int((now - start) * rate / 1e9)
        while sent < due:
            producer.produce(topic, b"t%d" % time.perf_counter_ns(), partition=0)
            sent += 1
        producer.poll(0)
        time.sleep(0.001)
    ended = time.time_ns()
    after = sum(fetches.values())
    producer.flush(10)
    time.sleep(0.2)
    done.set()
    for thread in threads:
        thread.join()
    return Trickle(Phase(started, ended), after - before, latencies)
