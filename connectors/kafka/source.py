"""A Bytewax Kafka source that never skips data silently.

Unlike Bytewax's stock source it sets `auto.offset.reset=error` (a resume whose
offset is gone fails loudly instead of jumping to the end), polls without blocking
so one idle input never stalls the worker, can stop once its partitions are drained
and idle (bounded runs: demo, backtests, tests), and reads partition *i* of every
topic it is given through one consumer, which keeps the number of connections (and
idle fetches the broker must answer) small.

A bounded input (`bounded=True`) ends by its data: each partition finishes once the
end-of-stream markers of every writer it waits for (`ends`, see `connectors.kafka.end`)
are in, and its other topics are at their end. Markers never reach the flow; which ones
were read is part of the partition's resume state. A wall-time guard (`end_guard_s`
without any record while markers are missing) fails loudly, naming what is missing.

A bounded input's end can be tied to the rest of its process (`EndHooks`): one input
announces that it ended, another ends only once its process says it may, e.g. the
trading flow's fills end only after its market data ended and its risk gate holds
nothing back (`dataflows.flows.run_end`).

The older end (`exit_when_idle_s`: at the end of the log and the whole process idle for
that long, or quiet with a drain file) remains for callers that do not run bounded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from connectors.kafka.end import END_KEY, EndGuardError, marker_writer
from connectors.kafka.record import KafkaRecord
from connectors.kafka.security import admin_config, with_security
from connectors.telemetry import stage
from connectors.telemetry.log import log_event, process_age_s
from connectors.telemetry.metric import CONSUMER_LAG, RECORDS_IN, count_batch
from risk.domain.error import HflError, RecoverableError

Offsets = dict[str, int]
# Resume-state key recording that `writer` ended `topic` on this partition.
_ENDED = "{topic}|end|{writer}"
logger = logging.getLogger("hfl.source")
LAG_INTERVAL_S = 1.0
# With a drain file present, quiet this long at the end of every input finishes the flow.
DRAIN_IDLE_S = 0.5
_GONE = (KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART)


def _nothing() -> None:
    return None


@dataclass(frozen=True, slots=True)
class EndHooks:
    """How a bounded input's end ties to the rest of its process.

    `ended` runs once every partition of the input (in this process) finished. With
    `may_end`, a partition finishes when `may_end(at_end)` says so, instead of after
    the idle window or drain file; `at_end` tells whether it is at the end of every
    one of its topics. It is asked whenever the partition is idle, at its end or not:
    a topic the broker lost never reports its end again.
    """

    ended: Callable[[], None] = _nothing
    may_end: Callable[[bool], bool] | None = None
    # In band: a bounded partition that has every awaited marker of a topic (now, or
    # already when it resumed) emits one record with key `END_KEY` and offset -1 for
    # it, after all of its data, so steps downstream (in any process of a Bytewax
    # cluster) learn where its data ends.
    in_band: bool = False


class _Activity:
    """When any partition of any source in this process last saw data.

    A bounded run ends when the whole flow is idle, not when one input is: an input
    that is quiet at first (orders before the model is warm) must keep waiting while
    the others still bring data.
    """

    last_data = time.monotonic()


def _note_activity() -> None:
    _Activity.last_data = time.monotonic()


def consumer_config(bootstrap: str, group: str, *, fetch_wait_ms: int = 5) -> dict[str, object]:
    """Consumer settings shared by every reader: no auto-commit, fail-closed resets, the
    process's declared transport security."""
    return with_security(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "error",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": fetch_wait_ms,
            "socket.nagle.disable": True,
        }
    )


def partition_counts(
    bootstrap: str, topics: Iterable[str], timeout_s: float = 10.0
) -> dict[str, int]:
    """Return how many partitions each of `topics` has.

    Raises:
        HflError: when a topic does not exist (create topics with `hfl topics create`).
    """
    admin = AdminClient(admin_config(bootstrap))
    metadata = admin.list_topics(timeout=timeout_s)
    counts = {}
    for topic in topics:
        meta = metadata.topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            msg = f"topic {topic!r} does not exist on {bootstrap}; run `hfl topics create`"
            raise HflError(msg)
        counts[topic] = len(meta.partitions)
    return counts


def topic_offsets(state: Offsets) -> Offsets:
    """The next offset per topic of a partition's resume state, without the record of
    which end markers it read.

    >>> topic_offsets({"md.ticks": 5, "md.ticks|end|feed": 1})
    {'md.ticks': 5}
    """
    return {key: offset for key, offset in state.items() if "|end|" not in key}


class ResumeError(HflError):
    """Recovered offsets do not fit the topics: resuming would skip or re-read silently."""


def check_resume_at(bootstrap: str, index: int, topics: list[str], offsets: Offsets) -> None:
    """`check_resume` with a consumer of its own (operator tools: `hfl recover`)."""
    consumer = Consumer(consumer_config(bootstrap, "hfl-recover"))
    try:
        check_resume(consumer, index, topics, offsets)
    finally:
        consumer.close()


def check_resume(consumer: Consumer, index: int, topics: list[str], offsets: Offsets) -> None:
    """Fail closed unless every topic has a recovered offset that continues its log.

    A recovery store that names none of the topics is a fresh start. One that misses
    some of them (topics renamed or added), or whose last consumed record (the one
    before the recovered offset) is no longer in the log (topic deleted and recreated,
    broker lost its data, retention removed records), cannot be resumed without losing
    or duplicating input. The records themselves are fetched, all topics at once: the
    local broker reports the high watermark of its last batch, not of its last record.

    Raises:
        ResumeError: naming every problem found.
    """
    if not offsets:
        return
    problems = [f"{topic}#{index}: no recovered offset" for topic in topics if topic not in offsets]
    last = {
        topic: offset - 1
        for topic in topics
        if (offset := offsets.get(topic, OFFSET_BEGINNING)) not in (OFFSET_BEGINNING, 0)
    }  # offset 0 or none: nothing was read from it yet, the beginning is right
    problems += _last_consumed_problems(consumer, index, last)
    consumer.unassign()
    if problems:
        msg = (
            "refusing to resume, the recovery store does not match the broker ("
            + "; ".join(problems)
            + "). Nothing was read or sent. Restore the topics, or start over with a new "
            "recovery store deliberately (`hfl recover`)."
        )
        raise ResumeError(msg)


def _last_consumed_problems(
    consumer: Consumer, index: int, last: dict[str, int], timeout_s: float = 10.0
) -> list[str]:
    """Fetch the record at `last[topic]` of every topic; describe those not in the log."""
    missing = {t for t in last if not _partition_exists(consumer, TopicPartition(t, index))}
    problems = [
        f"{topic}#{index}: resume at offset {last[topic] + 1}, but the topic does not exist"
        for topic in sorted(missing)
    ]
    pending = {topic: offset for topic, offset in last.items() if topic not in missing}
    consumer.assign([TopicPartition(topic, index, offset) for topic, offset in pending.items()])
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        for message in consumer.consume(len(pending), 0.5):
            topic = message.topic()
            if topic not in pending:
                continue  # a later record of a topic already checked
            offset = pending.pop(topic)
            error = message.error()
            where = f"{topic}#{index}: resume at offset {offset + 1}, but"
            if error is None:
                if message.offset() != offset:
                    problems.append(
                        f"{where} the log has offset {message.offset()} where {offset} was read"
                    )
            elif error.code() == KafkaError._PARTITION_EOF:
                problems.append(f"{where} the log ends before offset {offset}")
            else:
                problems.append(f"{where} offset {offset} is not in the log ({error.str()})")
        problems += _ended_before(consumer, index, pending)
    problems += [
        f"{topic}#{index}: resume at offset {offset + 1}, but offset {offset} could not be "
        f"read within {timeout_s}s"
        for topic, offset in pending.items()
    ]
    return problems


def _ended_before(consumer: Consumer, index: int, pending: dict[str, int]) -> list[str]:
    """Take out of `pending` the topics whose last fetch says the log ends before them.

    A fetch beyond the end of a (re-created) log brings no record and no error from
    the local broker, only the high watermark.
    """
    problems = []
    for topic, offset in list(pending.items()):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, index), cached=True)
        if 0 <= high <= offset:
            del pending[topic]
            problems.append(
                f"{topic}#{index}: resume at offset {offset + 1}, but the log ends at {high}"
            )
    return problems


def _partition_exists(consumer: Consumer, partition: TopicPartition) -> bool:
    """False when the broker says the partition does not exist (not when it is slow)."""
    try:
        consumer.get_watermark_offsets(partition, timeout=5.0)
    except KafkaException as exc:
        return exc.args[0].code() not in _GONE
    return True


class LogLostError(HflError):
    """A topic's log became shorter than what was already read: the broker lost data."""


class _KafkaPartition(StatefulSourcePartition[KafkaRecord, Offsets]):
    """Partition number `index` of several topics, read by one consumer."""

    def __init__(
        self,
        bootstrap: str,
        topics: list[str],
        index: int,
        offsets: Offsets,
        *,
        batch_size: int,
        idle_backoff_s: float,
        exit_when_idle_s: float,
        drain_file: Path | None,
        group: str,
        fetch_wait_ms: int,
        step: str,
        may_end: Callable[[bool], bool] | None,
        stopped: Callable[[], None],
        bounded: bool = False,
        ends: Mapping[str, frozenset[str]] | None = None,
        end_guard_s: float = 600.0,
        in_band: bool = False,
    ) -> None:
        self._index = index
        self._in_band = in_band
        self._ends_due: list[str] = []
        self._step = step
        self._lag_at = 0.0
        self._log_checked_at = time.monotonic()
        self._next_offsets = {topic: offsets.get(topic, OFFSET_BEGINNING) for topic in topics}
        self._bounded = bounded
        self._end_guard_s = end_guard_s
        awaited = ends or {}
        self._waiting = {
            topic: set(awaited[topic])
            - {w for w in awaited[topic] if _ENDED.format(topic=topic, writer=w) in offsets}
            for topic in topics
            if topic in awaited
        }
        self._ended = {
            key: 1
            for topic in topics
            for writer in awaited.get(topic, ())
            if (key := _ENDED.format(topic=topic, writer=writer)) in offsets
        }
        self._batch_size = batch_size
        self._idle_backoff = timedelta(seconds=idle_backoff_s)
        self._exit_when_idle_s = exit_when_idle_s
        self._drain_file = drain_file
        self._may_end = may_end
        self._stopped = stopped
        self._at_eof = {topic: False for topic in topics}
        self._awake: datetime | None = None
        self._consumer = Consumer(consumer_config(bootstrap, group, fetch_wait_ms=fetch_wait_ms))
        # The idle window counts from the start, not from the import: a warm standby
        # imports this module long before it runs.
        _note_activity()
        checked_at = time.monotonic()
        check_resume(self._consumer, index, topics, offsets)
        self._first = True
        self._marked = False
        log_event(
            logger,
            "source resumed",
            step=step,
            check_s=round(time.monotonic() - checked_at, 3),
            since_start_s=process_age_s(),
        )
        self._consumer.assign(
            [TopicPartition(topic, index, offset) for topic, offset in self._next_offsets.items()]
        )
        if bounded:
            for topic, writers in self._waiting.items():
                if not writers:
                    self._complete(topic)

    def next_batch(self) -> list[KafkaRecord]:
        batch = []
        for message in self._consumer.consume(self._batch_size, 0):
            error = message.error()
            topic = message.topic()
            if error is None:
                if self._waiting.get(topic) == set():
                    continue  # past every awaited marker: not this run's data
                offset = message.offset()
                self._at_eof[topic] = False
                self._next_offsets[topic] = offset + 1
                if message.key() == END_KEY:
                    self._on_marker(topic, marker_writer(message.value()))
                    continue
                batch.append(
                    KafkaRecord(
                        topic,
                        self._index,
                        offset,
                        message.key(),
                        message.value(),
                        message.timestamp()[1] * 1_000_000,
                    )
                )
            elif error.code() == KafkaError._PARTITION_EOF:
                self._at_eof[topic] = True
            else:
                msg = f"kafka source {topic}#{self._index} failed: {error}"
                raise RecoverableError(msg)
        if self._ends_due:
            batch += [KafkaRecord(t, self._index, -1, END_KEY, b"", 0) for t in self._ends_due]
            self._ends_due.clear()
        if batch or self._marked:
            self._marked = False
            _note_activity()
        if batch:
            if stage.enabled():
                polled = stage.now()
                age = polled - sum(r.timestamp_ns for r in batch) // len(batch)
                stage.record(f"{self._step}.source", polled, polled, len(batch), age)
            if self._first:
                self._first = False
                log_event(logger, "first records", step=self._step, since_start_s=process_age_s())
            self._awake = None
            count_batch(RECORDS_IN, self._step, len(batch))
            self._report_lag()
            return batch
        # Idle polls report the lag too: a reader the broker stopped answering with
        # records (see docs/benchmarks.md, the local broker) shows a lag that grows,
        # one that caught up shows 0, instead of the last figure of its last batch.
        self._report_lag()
        self._check_log_kept()
        self._stop_if_drained()
        self._awake = datetime.now(UTC) + self._idle_backoff
        return batch

    def _check_log_kept(self) -> None:
        """Stop loudly, once a second while idle, if the log now ends before what was read.

        A broker that lost its data (the local one keeps topics in memory) comes back
        with new, empty topics (re-created by `hfl up`, or auto-created by the first
        producer) and sends consumers no error: they would wait for offsets the new
        log reaches only with other records, silently skipping them. The high
        watermark of the last fetch shows it (the local broker's watermark query
        reports its last batch, not its last record, and a live query waits out a
        paused broker, so only the cached one is read). (Deleting a topic under a
        running consumer crashes librdkafka 2.16 with the local broker: the process
        dies, which is loud too.)
        """
        now = time.monotonic()
        if now - self._log_checked_at < LAG_INTERVAL_S:
            return
        self._log_checked_at = now
        for topic, read in self._next_offsets.items():
            partition = TopicPartition(topic, self._index)
            _, high = self._consumer.get_watermark_offsets(partition, cached=True)
            if 0 <= high < read:
                self._log_lost(f"{topic}#{self._index} now ends at offset {high}", read)

    def _log_lost(self, what: str, read: int) -> None:
        msg = (
            f"{what}, but {read} records were already read: the broker lost its log. "
            "Stopping without reading on; see `hfl recover`."
        )
        raise LogLostError(msg)

    def _on_marker(self, topic: str, writer: str) -> None:
        """Note `writer`'s end marker on `topic`; stop reading the topic once all are in."""
        self._marked = True
        waiting = self._waiting.get(topic)
        if not self._bounded or waiting is None or writer not in waiting:
            return  # not awaited here (unbounded, or a writer not of this run)
        waiting.discard(writer)
        self._ended[_ENDED.format(topic=topic, writer=writer)] = 1
        log_event(
            logger,
            "end of stream",
            step=self._step,
            topic=topic,
            partition=self._index,
            writer=writer,
            offset=self._next_offsets[topic] - 1,
        )
        if not waiting:
            self._complete(topic)

    def _complete(self, topic: str) -> None:
        """Every awaited writer ended `topic`: read nothing more of it."""
        self._consumer.pause([TopicPartition(topic, self._index)])
        self._at_eof[topic] = True
        if self._in_band:
            self._ends_due.append(topic)

    def _missing(self) -> list[str]:
        return [
            f"{topic}#{self._index} from {writer}"
            for topic, writers in self._waiting.items()
            for writer in sorted(writers)
        ]

    def _stop_if_ended(self) -> None:
        """Bounded: finish once every awaited marker is in and the other topics are at
        their end (and the process agrees); fail loudly when the guard fires."""
        # Runs on every idle poll (each millisecond): name what is missing only for the error.
        missing = any(self._waiting.values())
        at_end = not missing and all(self._at_eof.values())
        if self._may_end is not None:
            if self._may_end(at_end):
                self._stop()
        elif at_end:
            self._stop()
        if not missing:
            return
        idle_s = time.monotonic() - _Activity.last_data
        if idle_s >= self._end_guard_s:
            msg = (
                f"{self._step}: no end of stream after {idle_s:.0f}s without any record "
                f"(kafka.end_guard_s); still waiting for the end marker of "
                + ", ".join(self._missing())
                + ": that writer did not finish (see its log)"
            )
            raise EndGuardError(msg)

    def _stop_if_drained(self) -> None:
        if self._bounded:
            self._stop_if_ended()
            return
        if self._exit_when_idle_s <= 0:
            return
        at_end = all(self._at_eof.values())
        if self._may_end is not None:
            if self._may_end(at_end):
                self._stop()
            return
        if not at_end:
            return
        idle_s = time.monotonic() - _Activity.last_data
        if idle_s >= self._exit_when_idle_s or (idle_s >= DRAIN_IDLE_S and self._draining()):
            self._stop()

    def _stop(self) -> None:
        self._stopped()
        raise StopIteration

    def _draining(self) -> bool:
        return self._drain_file is not None and self._drain_file.exists()

    def _report_lag(self) -> None:
        # Cached watermarks come with every fetch response: no broker round trip.
        now = time.monotonic()
        if now - self._lag_at < LAG_INTERVAL_S:
            return
        self._lag_at = now
        lag = 0
        for topic, offset in self._next_offsets.items():
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, self._index), cached=True
            )
            if high >= 0 and offset >= 0:
                lag += max(0, high - offset)
        CONSUMER_LAG.labels(self._step).set(lag)

    def next_awake(self) -> datetime | None:
        return self._awake

    def snapshot(self) -> Offsets:
        return self._next_offsets | self._ended

    def close(self) -> None:
        self._consumer.close()


class KafkaSource(FixedPartitionedSource[KafkaRecord, Offsets]):
    """Read `topics` from the beginning (or the recovered offsets), in batches.

    Bytewax partition `p<i>` holds Kafka partition *i* of every topic that has it;
    its resume state maps each topic to the next offset to read.

    Args:
        bootstrap: broker list.
        topics: topics to read.
        batch_size: max records per poll.
        idle_backoff_s: sleep of an idle partition before it polls again.
        exit_when_idle_s: > 0 makes each partition finish once it reached its end and
            no source of this process saw data for this long; 0 reads forever.
        drain_file: with `exit_when_idle_s` > 0, once this file exists a partition
            finishes as soon as it is at its end and the process saw no data for
            `DRAIN_IDLE_S`. Whoever runs a bounded run creates it once every writer
            of these topics finished, instead of waiting out the idle window (which
            must be long enough to ride out an upstream flow's restart).
        fetch_wait_ms: how long the broker may hold an empty fetch; the local broker
            does not answer early when data arrives, so this bounds added latency.
        end: in a bounded input (or with `exit_when_idle_s` > 0), ties this input's
            end to its process (`EndHooks`).
        bounded: end by data: each partition finishes once the markers `ends` awaits
            are in and its other topics are at their end (`exit_when_idle_s` and
            `drain_file` are then unused).
        ends: (prefixed) topic -> writers whose end markers a bounded partition waits for.
        end_guard_s: a bounded partition still missing markers after this long without
            any record in its process raises `EndGuardError` naming them.
    """

    def __init__(
        self,
        bootstrap: str,
        topics: list[str],
        *,
        batch_size: int = 2000,
        idle_backoff_s: float = 0.001,
        exit_when_idle_s: float = 0.0,
        drain_file: Path | None = None,
        fetch_wait_ms: int = 5,
        end: EndHooks | None = None,
        bounded: bool = False,
        ends: Mapping[str, frozenset[str]] | None = None,
        end_guard_s: float = 600.0,
    ) -> None:
        self._bounded = bounded
        self._ends = dict(ends or {})
        self._end_guard_s = end_guard_s
        self._bootstrap = bootstrap
        self._topics = topics
        self._batch_size = batch_size
        self._idle_backoff_s = idle_backoff_s
        self._exit_when_idle_s = exit_when_idle_s
        self._drain_file = drain_file
        self._fetch_wait_ms = fetch_wait_ms
        self._end = end or EndHooks()
        self._running: set[int] = set()

    def list_parts(self) -> list[str]:
        counts = partition_counts(self._bootstrap, self._topics)
        return [f"p{index}" for index in range(max(counts.values()))]

    def build_part(
        self, step_id: str, for_part: str, resume_state: Offsets | None
    ) -> _KafkaPartition:
        index = int(for_part.removeprefix("p"))
        counts = partition_counts(self._bootstrap, self._topics)
        topics = [topic for topic, count in counts.items() if index < count]
        self._running.add(index)
        return _KafkaPartition(
            self._bootstrap,
            topics,
            index,
            resume_state or {},
            batch_size=self._batch_size,
            idle_backoff_s=self._idle_backoff_s,
            exit_when_idle_s=self._exit_when_idle_s,
            drain_file=self._drain_file,
            group=f"hfl-{step_id}",
            fetch_wait_ms=self._fetch_wait_ms,
            step=step_id,
            may_end=self._end.may_end,
            stopped=lambda: self._stopped(index),
            bounded=self._bounded,
            ends={topic: writers for topic, writers in self._ends.items() if topic in topics},
            end_guard_s=self._end_guard_s,
            in_band=self._end.in_band,
        )

    def _stopped(self, index: int) -> None:
        self._running.discard(index)
        if not self._running:
            self._end.ended()
