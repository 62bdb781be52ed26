"""The chaos harness: a fixed-seed replay, flows as real processes, faults, comparisons.

A run gets its own topic namespace, recovery stores and chDB directory. The replay is
published once per run as pre-encoded bytes (`ts_init` fixed to `ts_event`), so every
run reads byte-identical input. Results are read back from ClickHouse (`FINAL`, without
the wall-clock `_inserted_at` column) by a child process, because chDB opens one data
directory per process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from connectors.broker import start_broker, stop_broker
from connectors.codec import encode
from connectors.feeds.publisher import publish
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.end import END_KEY, FEED, write_end
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.source import consumer_config
from connectors.topic import PREDICTIONS, TICKS
from dataflows.ops.process import Child, discard, start_flow, stop
from dataflows.settings import Settings, load_settings
from sinks.row import TABLE_BY_TOPIC
from tests.chaos.phases import restart_phases

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "JPM", "XOM", "JNJ", "WMT")
SEED = 2026
EVENT_RATE = 500.0
START_NS = 1_700_000_000_000_000_000
# How long a run's flows may take to finish: a floor, plus time per replay tick (at
# 200,000 ticks under load 10-16 the fault-free trading flow alone took over 15 min).
# Only a guard: a run ends by its data (see `Run`), and a flow still running at this
# deadline fails the test.
FLOW_TIMEOUT_S = 900.0
FLOW_TIMEOUT_S_PER_TICK = 0.01
# The bounded writers of a run (`kafka.end_writers`): the replay's feed, the trading
# flow and the gateway. A run without a gateway must say so, or its readers wait for
# the gateway's markers until their guard fails them.
WRITERS = (FEED, "trading", "gateway")
TABLES = tuple(sorted(set(TABLE_BY_TOPIC.values())))


def chaos_ticks(default: int) -> int:
    """How many replay ticks (`HFL_CHAOS_TICKS`, `make chaos` sets 200,000)."""
    return int(os.environ.get("HFL_CHAOS_TICKS", default))


def replay_lines(ticks: int) -> list[bytes]:
    """The fixed-seed replay: `ticks` simulated ticks of ten instruments, as JSON lines."""
    config = SimulationConfig(
        symbols=SYMBOLS, seed=SEED, ticks_per_second=EVENT_RATE, start_ns=START_NS
    )
    return [encode(record | {"ts_init": record["ts_event"]}) for record in simulate(config, ticks)]


def tick_times(lines: list[bytes]) -> list[int]:
    """Event time of each replay line, by offset in `md.ticks`."""
    return [orjson.loads(line)["ts_event"] for line in lines]


def run_env(
    bootstrap: str, prefix: str, store: Path, ticks: int, writers: Iterable[str] = WRITERS
) -> dict[str, str]:
    """Environment of every process of one run.

    The model settings make signals frequent enough to trade; the paper broker keeps
    every tick of the replay, so an order decided late (the trading flow killed and
    catching up while the gateway ran on) still fills from exactly the ticks it was
    entitled to, as in the fault-free run. Fills are booked in event time
    (`risk.fill_sync`).

    Every run is bounded (`kafka.bounded`): each flow ends at the end-of-stream markers
    of the writers of its inputs (`connectors.kafka.end`), the feed's written by
    `Run.prepare`. No idle window or drain file decides that a run is over, so a
    restarting or late flow ends at the same depth; the gate waits for a killed gateway
    up to the run's guard (`kafka.end_guard_s`), never deciding without its fills.
    """
    return {
        "HFL_KAFKA__BOOTSTRAP": bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": f"chdb://{store}",
        "HFL_TRADING__INSTRUMENTS": ",".join(SYMBOLS),
        "HFL_MODEL__MIN_LABELLED": "20",
        "HFL_MODEL__SIGNAL__ENGINE": "hysteresis",  # chatty thresholds on purpose
        "HFL_MODEL__HORIZON_S": "1",
        "HFL_MODEL__ENTER_LONG": "0.51",
        "HFL_MODEL__ENTER_SHORT": "0.49",
        "HFL_KAFKA__BOUNDED": "1",
        "HFL_KAFKA__END_WRITERS": ",".join(writers),
        "HFL_GATEWAY__TICK_BUFFER_S": str(int(ticks / EVENT_RATE) + 60),
        "HFL_GATEWAY__MAX_BUFFERED_TICKS": str(ticks),
        "HFL_RUN_ID": prefix.rstrip("."),
    }


@dataclass(slots=True)
class Run:
    """One run of the stack: its namespace, store, processes and logs.

    A bounded run (`run_env`): `prepare` publishes the replay and then the feed's
    end-of-stream marker; each flow exits 0 by itself once it read its writers'
    markers; `finish` only waits for that.
    """

    name: str
    bootstrap: str
    directory: Path
    ticks: int
    writers: tuple[str, ...] = WRITERS
    children: dict[str, Child] = field(default_factory=dict)
    standbys: dict[str, Child] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"chaos-{self.name}-{os.getpid()}."

    @property
    def store(self) -> Path:
        return self.directory / "clickhouse"

    @property
    def env(self) -> dict[str, str]:
        return run_env(self.bootstrap, self.prefix, self.store, self.ticks, self.writers)

    @property
    def settings(self) -> Settings:
        return load_settings(ROOT / "config", env={**os.environ, **self.env})

    def prepare(self, lines: list[bytes]) -> None:
        """Create the run's topics, publish the replay, then the feed's end marker (once
        every tick is acknowledged)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        create_topics(self.bootstrap, prefix=self.prefix)
        producer = CheckedProducer(self.bootstrap, linger_ms=20.0)
        publish(lines, producer, self.prefix + TICKS, flush_every=50_000)
        write_end(producer, self.bootstrap, FEED, [self.prefix + TICKS])

    def start(self, name: str, **env: str) -> Child:
        """Start flow `name` (resuming from its recovery store if it has one).

        Without extra `env`, a standby of `name` (`stand_by`) is activated if there is one.
        """
        standby = self.standbys.pop(name, None)
        if standby is not None and not env and standby.activate():
            child = standby
        else:
            if standby is not None:
                discard(standby.process)
            child = start_flow(name, self.settings, self.directory, self.env | env)
        self.children[name] = child
        return child

    def stand_by(self, name: str) -> None:
        """Pre-start flow `name`'s next start: imported and waiting (`dataflows.ops.launch`)."""
        self.standbys[name] = start_flow(
            name, self.settings, self.directory, self.env, standby=True
        )

    def kill(self, name: str) -> None:
        """`kill -9` flow `name` (its whole process group) and reap it."""
        child = self.children[name]
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()

    def finish(
        self, timeout_s: float | None = None, while_waiting: Callable[[], None] = lambda: None
    ) -> dict[str, int | None]:
        """Wait until every flow exited by itself; stop stragglers; return exit codes.

        Each flow ends at its writers' end-of-stream markers, so nothing here tells it
        to: `timeout_s` is only a guard, after which a flow still running is stopped and
        its code is None. `while_waiting` runs between polls.
        """
        if timeout_s is None:
            timeout_s = FLOW_TIMEOUT_S + self.ticks * FLOW_TIMEOUT_S_PER_TICK
        deadline = time.monotonic() + timeout_s
        for child in self.children.values():
            while child.process.poll() is None and time.monotonic() < deadline:
                while_waiting()
                time.sleep(0.02)
        codes = {name: child.process.poll() for name, child in self.children.items()}
        for child in self.children.values():
            stop(child)
        for standby in self.standbys.values():
            discard(standby.process)
        self.standbys.clear()
        return codes

    def logs(self) -> str:
        """The last lines of every flow's log."""
        return "\n".join(f"--- {c.name}\n{c.tail()}" for c in self.children.values())


def run_clean(run: Run, lines: list[bytes], flows: Iterable[str] = ("persist", "gateway")) -> None:
    """Publish the replay and run trading, gateway and persist without faults."""
    run.prepare(lines)
    for name in (*flows, "trading"):
        run.start(name)
    codes = run.finish()
    assert all(code == 0 for code in codes.values()), f"{codes}\n{run.logs()}"


_DUMP = """
import sys, orjson
from sinks.client import open_client
# A test's own dump of a store nobody serves: a direct read-only session, not the
# guarded console (which admits no system table).
url, tables = sys.argv[1], sys.argv[2].split(",")
client = open_client(url, readonly=True)
keys = client.query(
    "SELECT name, sorting_key FROM system.tables WHERE database = currentDatabase()"
).result_rows
out = {"keys": dict(keys), "tables": {}}
for table in tables:
    result = client.query(f"SELECT * EXCEPT (_inserted_at) FROM {table} FINAL")
    out["tables"][table] = [dict(zip(result.column_names, row)) for row in result.result_rows]
sys.stdout.buffer.write(orjson.dumps(out, default=str))
"""


@dataclass(frozen=True, slots=True)
class Dump:
    """Every table of a store (after `FINAL`) and each table's sorting key."""

    keys: dict[str, tuple[str, ...]]
    tables: dict[str, list[dict[str, Any]]]

    def keyed(self, table: str) -> tuple[dict[tuple[Any, ...], dict[str, Any]], int]:
        """Rows of `table` by sorting key, and how many rows shared a key."""
        names = self.keys[table]
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        repeated = 0
        for row in self.tables[table]:
            key = tuple(row[name] for name in names)
            repeated += key in rows
            rows[key] = row
        return rows, repeated


def dump(store: Path, tables: Iterable[str] = TABLES) -> Dump:
    """Read `tables` of the chDB store at `store` in a child process."""
    done = subprocess.run(
        [sys.executable, "-c", _DUMP, f"chdb://{store}", ",".join(tables)],
        cwd=ROOT,
        capture_output=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    raw = orjson.loads(done.stdout)
    keys = {
        name: tuple(part.strip() for part in key.split(",")) for name, key in raw["keys"].items()
    }
    return Dump(keys=keys, tables=raw["tables"])


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """How a table of a run differs from the golden run's."""

    rows: int
    lost: int
    duplicated: int
    extra: int
    mismatched: int

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.extra or self.mismatched)


def compare(golden: Dump, other: Dump, table: str) -> Difference:
    """Lost, duplicated (rows sharing a key after FINAL), extra and mismatched rows."""
    expected, _ = golden.keyed(table)
    got, repeated = other.keyed(table)
    shared = expected.keys() & got.keys()
    return Difference(
        rows=len(expected),
        lost=len(expected.keys() - got.keys()),
        duplicated=repeated,
        extra=len(got.keys() - expected.keys()),
        mismatched=sum(expected[key] != got[key] for key in shared),
    )


def compare_tables(golden: Dump, other: Dump) -> tuple[dict[str, Any], list[str]]:
    """Figures of every table against golden, and the tables that differ.

    Rows a run has and golden lacks count as duplicated.
    """
    strict = {t: compare(golden, other, t) for t in TABLES}
    figures = {
        "rows": sum(d.rows for d in strict.values()),
        "lost": sum(d.lost for d in strict.values()),
        "duplicated": sum(d.duplicated + d.extra for d in strict.values()),
        "mismatched": sum(d.mismatched for d in strict.values()),
        "mismatched_by_table": {t: d.mismatched for t, d in strict.items() if d.mismatched},
    }
    return figures, sorted(t for t, d in strict.items() if not d.clean)


class Tail:
    """Follow a one-partition output topic: records seen (end markers aside) and the
    latest event time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._partition = TopicPartition(topic, 0)
        self._consumer = self._connect(OFFSET_BEGINNING)
        self.offset = 0
        self.max_ts = 0
        self.values: list[bytes] = []

    def _connect(self, offset: int) -> Consumer:
        consumer = Consumer(consumer_config(self._bootstrap, f"chaos-tail-{os.getpid()}"))
        consumer.assign([TopicPartition(self._partition.topic, 0, offset)])
        return consumer

    def reconnect(self) -> None:
        """A new consumer from where this one stopped (after the broker was paused)."""
        self._consumer.close()
        self._consumer = self._connect(self.offset)

    def advance(self, timeout_s: float = 0.05) -> None:
        """Read what arrived."""
        for message in self._consumer.consume(5000, timeout_s):
            error = message.error()
            if error is None:
                self.offset = message.offset() + 1
                if message.key() == END_KEY:
                    continue  # the writer's end-of-stream marker: no record of it
                value = message.value()
                self.values.append(value)
                self.max_ts = max(self.max_ts, orjson.loads(value)["ts_event"])
            elif error.code() != KafkaError._PARTITION_EOF:
                raise AssertionError(str(error))

    def advance_past(self, ts: int, deadline: float, failure: Callable[[], str]) -> None:
        """Read until a record later than event time `ts`; fail with `failure()` at `deadline`."""
        while self.max_ts <= ts:
            self.advance()
            assert time.monotonic() < deadline, failure()

    def max_ts_from(self, index: int) -> int:
        """The latest event time among `values[index:]` (-1: none)."""
        return max((orjson.loads(value)["ts_event"] for value in self.values[index:]), default=-1)

    def drain(self) -> None:
        """Read up to the current end of the partition."""
        _, high = self._consumer.get_watermark_offsets(self._partition, timeout=10.0)
        while self.offset < high:
            self.advance()

    def close(self) -> None:
        self._consumer.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class Kill:
    """One `kill -9`: where, and how long until the restarted flow caught up (if measured)."""

    tick_offset: int
    output_offset: int  # how many output records (`Tail.values`) preceded the kill
    recovery_s: float | None
    phases: dict[str, float] | None = None


def kill_points(ticks: int, kills: int, seed: int) -> list[int]:
    """`kills` distinct seeded tick offsets between 10 % and 95 % of the replay, sorted."""
    rng = np.random.default_rng(seed)
    low, high = int(ticks * 0.10), int(ticks * 0.95)
    return sorted(int(x) for x in rng.choice(np.arange(low, high), kills, replace=False))


def kill_and_restart(
    run: Run,
    name: str,
    progress: Tail,
    tick_offset: int,
    *,
    at_ts: int,
    output: Tail | None,
    timeout_s: float = 600.0,
) -> Kill:
    """Kill flow `name` once `progress` shows output for event time `at_ts`; restart it
    from its warm standby, then pre-start the next standby.

    With `output` (a topic the killed flow writes), recovery is timed: restarted and
    caught up means the restarted flow emitted output for the latest event time the
    killed one had reached (again, from its replayed epoch, or later). Not a strictly
    later one: the killed flow may already have emitted its output for the replay's
    last tick.
    """
    deadline = time.monotonic() + timeout_s
    while progress.max_ts < at_ts:
        progress.advance()
        child = run.children[name]
        assert child.process.poll() is None, f"{name} exited early\n{child.tail()}"
        assert time.monotonic() < deadline, f"{name} never reached {at_ts}\n{run.logs()}"
    run.kill(name)
    killed_at, killed_wall = time.monotonic(), time.time()
    log_offset = run.children[name].log.stat().st_size
    if output is None:
        run.start(name)
        run.stand_by(name)
        return Kill(tick_offset=tick_offset, output_offset=-1, recovery_s=None)
    output.drain()
    reached_ts, output_offset = output.max_ts, len(output.values)
    run.start(name)
    caught_up_ts, seen = -1, output_offset
    while caught_up_ts < reached_ts:
        output.advance()
        caught_up_ts, seen = max(caught_up_ts, output.max_ts_from(seen)), len(output.values)
        child = run.children[name]
        code = child.process.poll()
        assert code is None, f"{name} died after restart (exit {code})\n{child.tail()}"
        assert time.monotonic() < deadline, f"{name} did not catch up\n{child.tail()}"
    recovered_at = time.monotonic()
    phases = restart_phases(run.children[name].log, log_offset, killed_wall, time.time())
    run.stand_by(name)
    return Kill(
        tick_offset=tick_offset,
        output_offset=output_offset,
        recovery_s=round(recovered_at - killed_at, 3),
        phases=phases,
    )


def reemitted_per_kill(values: list[bytes], kills: list[Kill]) -> list[int]:
    """Records re-emitted after each kill: byte-identical repeats, by output offset."""
    bounds = [kill.output_offset for kill in kills]
    counts = Counter[int]()
    seen: set[bytes] = set()
    for offset, value in enumerate(values):
        if value in seen:
            counts[int(np.searchsorted(bounds, offset, side="right")) - 1] += 1
        seen.add(value)
    return [counts[index] for index in range(len(kills))]


def percentile_s(values: list[float], q: float) -> float:
    """Percentile `q` of durations in seconds, rounded to milliseconds."""
    return round(float(np.percentile(values, q)), 3)


def kill_repeatedly(
    run: Run, name: str, lines: list[bytes], kills: int, *, seed: int, output_topic: str | None
) -> tuple[list[Kill], list[int]]:
    """Run the stack, `kill -9` flow `name` at seeded replay offsets, restart it each time.

    Progress is read from `output_topic`, written by the killed flow, or else from the
    predictions topic (one per warm tick, emitted by the trading flow): the kill at
    tick offset *k* happens once that topic has a record for the tick at *k*.
    `output_topic` also times each recovery and counts raw re-emitted records per kill
    (byte-identical repeats).

    The killed flow's own progress spreads the kills over its run. The gateway's
    (`hfl.order_events`) trails the predictions far behind: the gate holds decisions
    for the gateway's markers, the instrument steps run through the published replay
    at full speed. Timed by predictions, all kills came within the gateway's first
    seconds, each restarted gateway was killed again before its first epoch closed
    (so it wrote no snapshot), every restart resumed from the first execution's
    epoch and re-emitted everything since: the re-emitted counts grew with each kill.
    """
    times = tick_times(lines)
    progress = Tail(run.bootstrap, run.prefix + (output_topic or PREDICTIONS))
    output = None if output_topic is None else progress
    run.stand_by(name)
    try:
        done = [
            kill_and_restart(run, name, progress, offset, at_ts=times[offset], output=output)
            for offset in kill_points(len(lines), kills, seed)
        ]
        codes = run.finish()
        assert all(code == 0 for code in codes.values()), f"{codes}\n{run.logs()}"
        if output is None:
            return done, []
        output.drain()
        return done, reemitted_per_kill(output.values, done)
    except BaseException:
        run.finish(timeout_s=0)  # no flow of a failed run lingers until its guard
        raise
    finally:
        progress.close()


@dataclass(frozen=True, slots=True)
class PrivateBroker:
    """A local broker of one test's own: its address and pid file."""

    bootstrap: str
    port: int
    pid_file: Path
    log: Path

    def pid(self) -> int:
        return int(self.pid_file.read_text())

    def restart_empty(self) -> None:
        """Stop it and start a fresh one on the same port (memory storage: no data)."""
        stop_broker(self.pid_file)
        start_broker("127.0.0.1", self.port, self.pid_file, self.log)
