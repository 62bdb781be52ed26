"""`hfl bench pipeline`: drive a private broker and the trading flow; print the figures.

What runs: a dedicated Tansu broker on a free loopback port (never the configured
one, so a running system is not disturbed), a fresh topic namespace, and the trading
flow as a child process with recovery on. With `risk.fill_sync: event_time` the gate
waits for the gateway's progress markers, so the gateway flow runs beside it and its
round trip is part of "Kafka in → decisions out"; with `journal` or `arrival` the
trading flow runs alone unless `gateway` asks for the gateway too (to compare the
modes on equal CPU: `HFL_RISK__FILL_SYNC=journal hfl bench pipeline --gateway`).
`gate_*_ms` is how long the gate held each decision beyond its tick's batch: its
emission minus that of its tick's prediction, which leaves the same flow, so the load
on the steps before the gate drops out (time spent in the gate within the batch, e.g.
the journal write, delays both alike and shows in `p*_ms`, not here). `auto` is
measured as a live run resolves it: journaled. The persist flow never runs. The flow's
model settings are overridden so decisions are frequent enough to measure
(`MODEL_OVERRIDES`, echoed under "config").

Method, and why it is honest:

- Ticks come from the simulator. Features need about 15 one-second bars of *event*
  time per instrument before the first feature vector, so a warm-up of
  `WARMUP_EVENT_S` seconds of event time is loaded into `md.ticks` first. It is
  never measured: the paced phase starts only after the flow has emitted the
  prediction of the last warm-up tick (its backlog is drained, models are past
  `min_labelled`).
- Paced mode (`--rate R`): ticks are produced at R per second of wall clock for
  `duration_s` (event time advances at real time: the simulator runs at R ticks/s of
  event time and the sender follows its Poisson arrival times, sending whatever is
  due every millisecond). Each tick's `ts_init` is the wall clock at send, recorded
  per tick. Latency is the sink's `hfl-emitted-ns` header of an output minus the
  `ts_init` of the tick that caused it: for decisions, via the signal's `tick_id`;
  for predictions (every warm tick gets a version-0 one), directly. Only ticks sent
  in the measured window count. `ticks_per_s` = measured ticks / (last emission
  caused by a measured tick - first measured send), so a flow that falls behind
  shows a rate below R.
- Max mode (`--rate max`): warm-up plus `MAX_TICKS_PER_DURATION_S * duration_s`
  ticks (event time at `MAX_EVENT_RATE`/s) are loaded *before* the flow starts.
  `ticks_per_s` counts warm ticks (version-0 predictions, the costly path through
  features, model and gate) between the first and last emission batch that carries
  one, excluding the first batch (its work started before the first timestamp).
  Latencies are null there: every tick waited in a backlog, so they would measure
  queueing, not the pipeline; `drain_s` says how long the whole backlog took.
- CPU: `cpu_us_per_tick` is each process's user+system CPU (`/proc/<pid>/stat`,
  sampled every 0.1 s) over the measured window (first to last counted emission)
  divided by the ticks counted in it: trading, gateway, broker; persist is null (it
  never runs here). Start-up, warm-up and the idle tail are outside the window.
- `--baseline`: after the trading run (gateway stopped), `dataflows.bench.baseline`
  (a plain per-item Bytewax flow of the same job, no recovery) reads the same
  `md.ticks` from its start on the same broker; `baseline_ticks_per_s` counts its
  warm ticks (those it predicted on) between the first and the last, and `ratio` is
  `ticks_per_s / baseline_ticks_per_s`. Its CPU per tick is measured the same way.

The outputs are read back from Kafka after the flow has drained and exited, so the
bench's own consumer never competes for the (shared) cores while it measures.
Progress goes to stderr; the result is the JSON object on the last stdout line.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from connectors import topic
from connectors.broker import port_open, start_broker, stop_broker
from connectors.codec import dumps, event_rows, loads
from connectors.feeds.publisher import StampingSender
from connectors.feeds.simulator import SimulationConfig, Simulator
from connectors.kafka.admin import create_topics
from connectors.kafka.end import FEED, write_end
from connectors.kafka.producer import EMITTED_HEADER, CheckedProducer
from connectors.kafka.reader import RawRecord, consumer_from_beginning, read_to_end
from connectors.telemetry.stage import ENV as STAGE_ENV
from dataflows.bench.baseline import CpuSampler, cpu_us_per_tick, run_baseline
from dataflows.bench.persist_run import run_persist
from dataflows.bench.stages import breakdown, read_stages
from dataflows.ops.process import Child, start_cluster, start_flow, stop, wait_all
from dataflows.settings import Settings
from risk.domain.error import HflError
from risk.domain.ids import tick_id
from risk.fill_sync import FillSyncMode

WARMUP_EVENT_S = 20.0
MAX_EVENT_RATE = 5_000.0
MAX_TICKS_PER_DURATION_S = 10_000
MIN_MAX_TICKS = 50_000
# After the trading flow ended, the gateway ends at its end marker within this guard.
GATEWAY_END_S = 120.0
BURST_S = 0.001
PORT_OFFSET = 7
MODEL_OVERRIDES = {
    "HFL_MODEL__MIN_LABELLED": "20",
    "HFL_MODEL__SIGNAL__ENGINE": "hysteresis",  # chatty thresholds on purpose
    "HFL_MODEL__HORIZON_S": "1",
    "HFL_MODEL__ENTER_LONG": "0.51",
    "HFL_MODEL__ENTER_SHORT": "0.49",
    "HFL_MODEL__EXIT_LONG": "0.5",
    "HFL_MODEL__EXIT_SHORT": "0.5",
}
NS_PER_S = 1_000_000_000
_EMITTED = EMITTED_HEADER


def log(message: str) -> None:
    """Progress output on stderr."""
    print(f"[hfl bench] {message}", file=sys.stderr, flush=True)


def percentile_ms(values_ns: list[int], q: float) -> float | None:
    """The `q`-th percentile of nanosecond durations in milliseconds (None if empty).

    >>> percentile_ms([1_000_000, 2_000_000, 3_000_000], 50)
    2.0
    >>> percentile_ms([], 99) is None
    True
    """
    if not values_ns:
        return None
    return round(float(np.percentile(np.asarray(values_ns, dtype=np.float64), q)) / 1e6, 3)


def parse_rate(rate: str) -> float | None:
    """Offered ticks per second, or None for `max`.

    >>> parse_rate("5000"), parse_rate("max")
    (5000.0, None)
    """
    if rate.strip().lower() == "max":
        return None
    value = float(rate)
    if not value > 0:
        raise HflError(f"--rate must be > 0 or 'max', got {rate!r}")
    return value


@dataclass(slots=True)
class Measured:
    """The ticks of the measured window: their ids and wall-clock send times."""

    keys: list[tuple[str, int, int]] = field(default_factory=list)
    sent_ns: list[int] = field(default_factory=list)

    def by_tick(self) -> dict[str, int]:
        """Map tick id to its `ts_init`."""
        return {tick_id(*key): ts for key, ts in zip(self.keys, self.sent_ns, strict=True)}


@dataclass(slots=True)
class Outputs:
    """What the flow emitted, as read back from Kafka."""

    predicted_ns: dict[str, int] = field(default_factory=dict)  # tick id -> v0 emission
    signal_tick: dict[str, str] = field(default_factory=dict)  # signal id -> tick id
    decisions: list[tuple[str, int]] = field(default_factory=list)  # signal id, emission
    first_ns: int | None = None
    last_ns: int | None = None


def bench_pipeline(
    settings: Settings,
    root: Path,
    *,
    rate: str,
    duration_s: float,
    gateway: bool = False,
    baseline: bool = False,
    persist: bool = False,
    processes: int = 1,
    partitions: int | None = None,
    feed_linger_ms: float = 2.0,
) -> dict:
    """Run the pipeline benchmark; print and return its figures (see the module docs).

    `processes` > 1 runs the trading flow as a Bytewax cluster of that many processes
    (`--rate max` only), `partitions` md.ticks partitions (default: one per process).
    `feed_linger_ms`: the paced feed's producer linger (how many ticks share a batch).
    """
    offered = parse_rate(rate)
    partitions = partitions or processes
    if processes > 1 and offered is not None:
        raise HflError("--processes > 1 is measured with --rate max only")
    # `auto` is measured as a live run resolves it (journaled): the bench's own bounded
    # run would otherwise resolve it by whether the gateway runs beside it.
    fill_sync = settings.risk.fill_sync
    if fill_sync is FillSyncMode.AUTO:
        fill_sync = FillSyncMode.JOURNAL
    gateway = gateway or fill_sync is FillSyncMode.EVENT_TIME
    sampler = CpuSampler()
    with private_broker(settings, root, "bench", PORT_OFFSET, ticks_partitions=partitions) as run:
        sampler.watch("broker", run.broker_pid)
        env = {
            **run.env,
            # A bounded run: the flows end at the feed's end-of-stream marker.
            "HFL_KAFKA__BOUNDED": "1",
            "HFL_KAFKA__END_WRITERS": "feed,trading" + (",gateway" if gateway else ""),
            "HFL_RUN_ID": run.run_id,
            "HFL_RISK__FILL_SYNC": str(fill_sync),
            # Per-batch stage timings (`connectors.telemetry.stage`), read back below.
            STAGE_ENV: str(run.run_dir / "stages"),
        }
        with _gateway(run.settings, run.run_dir, env, run_it=gateway, sampler=sampler):
            if offered is None:
                result = _run_max(
                    run.settings, run.run_dir, env, duration_s, sampler, processes=processes
                )
            else:
                result = _run_paced(
                    run.settings, run.run_dir, env, offered, duration_s, sampler, feed_linger_ms
                )
        if persist:
            log("persist: the persist flow over everything the run wrote, alone")
            _persist_figures(result, run.settings, run.run_dir, env, sampler, duration_s)
        if baseline:
            log("baseline: the per-item Bytewax flow over the same md.ticks, alone")
            kafka = run.settings.kafka
            result.update(
                run_baseline(
                    kafka.bootstrap,
                    kafka.topic_prefix + topic.TICKS,
                    run.run_dir,
                    sampler,
                    timeout_s=300.0 + 10 * duration_s,
                )
            )
            ours, theirs = result.get("ticks_per_s"), result.get("baseline_ticks_per_s")
            result["ratio"] = round(ours / theirs, 3) if ours and theirs else None
    sampler.close()
    result["config"] = {
        **{
            name.removeprefix("HFL_MODEL__").lower(): _echo(value)
            for name, value in MODEL_OVERRIDES.items()
        },
        **result.get("config", {}),
        "recovery": True,
        "fill_sync": str(fill_sync),
        "gateway": gateway,
        "broker": run.settings.kafka.bootstrap,
        "instruments": len(settings.trading.instruments),
        "trading_processes": processes,
        "ticks_partitions": partitions,
        "feed_linger_ms": feed_linger_ms,
        "fetch_wait_ms": settings.kafka.fetch_wait_ms,
        "control_fetch_wait_ms": settings.kafka.control_fetch_wait_ms,
    }
    summarize(result)
    print(dumps(result).decode(), flush=True)
    return result


def _echo(value: str) -> object:
    """An override as the figures echo it: a number as a number, a word as itself.

    >>> _echo("0.51"), _echo("hysteresis")
    (0.51, 'hysteresis')
    """
    try:
        return loads(value)
    except ValueError:
        return value


def _persist_figures(  # noqa: PLR0917 - one private call site
    result: dict[str, Any],
    settings: Settings,
    run_dir: Path,
    env: dict[str, str],
    sampler: CpuSampler,
    duration_s: float,
) -> None:
    """Run the persist flow over the run's output; add its figures to `result`."""
    if result["mode"] == "max":
        ticks = result["ticks"]
    else:
        ticks = result["ticks"] + result["config"]["warmup_ticks"]
    figures = run_persist(
        settings, run_dir, env, sampler, ticks=ticks, timeout_s=300.0 + 10 * duration_s
    )
    result.update(figures)
    result["cpu_us_per_tick"]["persist"] = figures["persist_cpu_us_per_tick"]
    offered = result.get("ticks_per_s")
    per_tick, capacity = figures["persist_rows_per_tick"], figures["persist_rows_per_s"]
    result["persist_keeps_up"] = (
        capacity >= per_tick * offered if offered and per_tick and capacity else None
    )


@dataclass(frozen=True, slots=True)
class PrivateRun:
    """A benchmark run's own broker, topic namespace and directory."""

    run_id: str
    run_dir: Path
    settings: Settings  # pointed at the private broker and namespace
    env: dict[str, str]  # the same for child processes, with the benchmark's model settings
    broker_pid: int


@contextmanager
def private_broker(
    settings: Settings, root: Path, name: str, port_offset: int, *, ticks_partitions: int = 1
) -> Iterator[PrivateRun]:
    """Start a broker on a free loopback port with fresh topics; stop it and drop recovery."""
    host = settings.broker.host
    port = free_port(host, settings.broker.port + port_offset)
    bootstrap = f"{host}:{port}"
    run_id = f"{name}-{time.time_ns() // 1_000_000}"
    run_dir = root / "var" / "bench" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = root / "var" / "bench" / f"broker-{port}.pid"
    prefix = f"{run_id}."
    kafka = replace(settings.kafka, bootstrap=bootstrap, topic_prefix=prefix)
    env = {**MODEL_OVERRIDES, "HFL_KAFKA__BOOTSTRAP": bootstrap, "HFL_KAFKA__TOPIC_PREFIX": prefix}
    log(f"run {run_id}: private broker {bootstrap}, logs in {run_dir}")
    try:
        broker_pid = start_broker(host, port, pid_file, run_dir / "broker.log")
        create_topics(bootstrap, prefix=prefix, partitions={topic.TICKS: ticks_partitions})
        yield PrivateRun(run_id, run_dir, replace(settings, kafka=kafka), env, broker_pid)
    finally:
        stop_broker(pid_file)
        shutil.rmtree(run_dir / "recovery", ignore_errors=True)


def free_port(host: str, start: int, tries: int = 50) -> int:
    """The first port from `start` on which nothing listens."""
    for port in range(start, start + tries):
        if not port_open(host, port):
            return port
    raise HflError(f"no free port in {start}..{start + tries - 1} on {host}")


def _ticks(settings: Settings, event_rate: float, start_ns: int) -> Iterator[dict[str, Any]]:
    instruments = settings.trading.instruments
    config = SimulationConfig(
        symbols=instruments, seed=settings.feed.seed, start_ns=start_ns, ticks_per_second=event_rate
    )
    return iter(Simulator(config))


def _load(sender: StampingSender, ticks: Iterator[dict[str, Any]], count: int, label: str) -> str:
    """Send `count` ticks as fast as possible; return the id of the last one."""
    started = time.monotonic()
    last = ("", 0, 0)
    for _ in range(count):
        record = next(ticks)
        sender.send(record)
        last = (record["instrument"], record["seq"], record["ts_event"])
    sender.flush()
    elapsed = time.monotonic() - started
    log(f"{label}: {count:,} ticks loaded in {elapsed:.1f}s ({count / elapsed:,.0f}/s)")
    return tick_id(*last)


def _run_paced(  # noqa: PLR0917 - one private call site
    settings: Settings,
    run_dir: Path,
    env: dict[str, str],
    rate: float,
    duration_s: float,
    sampler: CpuSampler,
    feed_linger_ms: float,
) -> dict[str, Any]:
    bootstrap, prefix = settings.kafka.bootstrap, settings.kafka.topic_prefix
    warmup = int(rate * WARMUP_EVENT_S)
    ticks = _ticks(settings, rate, time.time_ns() - int(WARMUP_EVENT_S * NS_PER_S))
    sender = StampingSender.to(bootstrap, prefix + topic.TICKS, linger_ms=feed_linger_ms)
    last_warm = _load(sender, ticks, warmup, "warm-up")
    child = start_flow("trading", settings, run_dir, env, recovery=True)
    sampler.watch("trading", child.process.pid)
    log(f"trading flow started (pid {child.process.pid}); waiting for it to drain the warm-up")
    try:
        _await_prediction(bootstrap, prefix, last_warm, child, timeout_s=120.0 + warmup / 1000)
        log(f"warm; pacing {rate:g} ticks/s for {duration_s:g}s")
        feed_cpu = time.process_time()
        measured = _pace(sender, ticks, rate, duration_s)
        feed_cpu = time.process_time() - feed_cpu
        _end_feed(bootstrap, prefix)
        log(f"sent {len(measured.sent_ns):,} measured ticks; waiting for the flow to drain")
        drained = _await_exit(child, 60.0 + duration_s, bootstrap, prefix)
    finally:
        stop(child)
    outputs = collect(bootstrap, prefix)
    result = paced_figures(measured, outputs, rate, duration_s)
    result["drained"] = drained
    window = result.pop("window_ns")
    result["cpu_us_per_tick"] = _cpu_figures(sampler, window, result["ticks"])
    result["stages"] = _stages(run_dir, window)
    result["cpu_us_per_tick"]["feed"] = _per_tick(feed_cpu, len(measured.sent_ns))
    result["config"] = {"warmup_ticks": warmup, "event_ticks_per_s": rate}
    return result


def _pace(
    sender: StampingSender, ticks: Iterator[dict[str, Any]], rate: float, duration_s: float
) -> Measured:
    """Send ticks at their event-time offsets (real time), due ones every millisecond."""
    measured = Measured()
    keys, sent_ns = measured.keys, measured.sent_ns
    send, poll = sender.send, sender.producer.poll
    pending = next(ticks)
    first_event = pending["ts_event"]
    start = time.monotonic_ns()
    end = start + int(duration_s * NS_PER_S)
    next_report = start + NS_PER_S
    while (now := time.monotonic_ns()) < end:
        due = first_event + (now - start)
        while pending["ts_event"] <= due:
            sent_ns.append(send(pending))
            keys.append((pending["instrument"], pending["seq"], pending["ts_event"]))
            pending = next(ticks)
        poll(0)
        if now >= next_report:
            elapsed = (now - start) / NS_PER_S
            log(f"  {elapsed:4.1f}s: {len(sent_ns):,} sent ({len(sent_ns) / elapsed:,.0f}/s)")
            next_report += NS_PER_S
        time.sleep(BURST_S)
    sender.flush()
    return measured


def _run_max(
    settings: Settings,
    run_dir: Path,
    env: dict[str, str],
    duration_s: float,
    sampler: CpuSampler,
    *,
    processes: int = 1,
) -> dict[str, Any]:
    bootstrap, prefix = settings.kafka.bootstrap, settings.kafka.topic_prefix
    warmup = int(MAX_EVENT_RATE * WARMUP_EVENT_S)
    count = max(MIN_MAX_TICKS, int(MAX_TICKS_PER_DURATION_S * duration_s))
    ticks = _ticks(settings, MAX_EVENT_RATE, time.time_ns())
    sender = StampingSender.to(bootstrap, prefix + topic.TICKS)
    feed_cpu = time.process_time()
    _load(sender, ticks, warmup + count, "backlog")
    feed_cpu = time.process_time() - feed_cpu
    _end_feed(bootstrap, prefix)
    if processes > 1:
        addresses = [
            f"127.0.0.1:{free_port('127.0.0.1', 21100 + 10 * i)}" for i in range(processes)
        ]
        children = start_cluster("trading", settings, run_dir, env, addresses)
    else:
        children = [start_flow("trading", settings, run_dir, env, recovery=True)]
    names = ["trading"] + [f"trading-{i}" for i in range(1, processes)]
    for name, each in zip(names, children, strict=True):
        sampler.watch(name, each.process.pid)
    child = children[0]
    log(f"trading flow started ({processes} process(es)); draining {warmup + count:,} ticks")
    try:
        drained = _await_exit(child, 120.0 + 10 * duration_s, bootstrap, prefix)
        codes = wait_all(children, 30.0)
        if any(code not in (0, None) for code in codes.values()):
            raise HflError(f"trading cluster exited with {codes}; last log:\n{children[-1].tail()}")
    finally:
        for each in children:
            stop(each)
    outputs = collect(bootstrap, prefix)
    result = max_figures(outputs, warmup + count, duration_s)
    result["drained"] = drained
    window = result.pop("window_ns")
    result["cpu_us_per_tick"] = _cpu_figures(sampler, window, result.pop("window_ticks"), names)
    result["stages"] = _stages(run_dir, window)
    result["cpu_us_per_tick"]["feed"] = _per_tick(feed_cpu, warmup + count)
    result["config"] = {"warmup_ticks": warmup, "event_ticks_per_s": MAX_EVENT_RATE}
    return result


def _stages(run_dir: Path, window: tuple[int, int] | None) -> dict[str, Any]:
    """The per-stage breakdown over the measured window (`dataflows.bench.stages`)."""
    if window is None:
        return {}
    return breakdown(read_stages(run_dir), window[0], window[1])


def _per_tick(cpu_s: float, ticks: int) -> float | None:
    """CPU µs per tick.

    >>> _per_tick(0.5, 100_000)
    5.0
    """
    return round(cpu_s * 1e6 / ticks, 1) if ticks else None


def _cpu_figures(
    sampler: CpuSampler,
    window: tuple[int, int] | None,
    ticks: int,
    trading: list[str] | None = None,
) -> dict[str, float | None]:
    """CPU µs per tick of the flows and the broker over the measured window (persist
    runs after it, with `--persist`; the feed is this process, measured by the caller)."""
    names = [*(trading or ["trading"]), "gateway", "broker"]
    if window is None:
        return dict.fromkeys([*names, "persist", "feed"])
    return {**cpu_us_per_tick(sampler, names, window[0], window[1], ticks), "persist": None}


@contextmanager
def _gateway(
    settings: Settings, run_dir: Path, env: dict[str, str], *, run_it: bool, sampler: CpuSampler
) -> Iterator[None]:
    """Run the gateway flow while the block runs, if asked to."""
    if not run_it:
        yield
        return
    gateway = start_flow("gateway", settings, run_dir, env, recovery=True)
    sampler.watch("gateway", gateway.process.pid)
    log(f"gateway flow started (pid {gateway.process.pid}): the gate waits for its markers")
    try:
        yield
    except BaseException:
        stop(gateway)
        raise
    code = wait_all([gateway], GATEWAY_END_S)["gateway"]
    stop(gateway)
    if code != 0:
        state = "did not end" if code is None else f"exited with {code}"
        msg = f"gateway flow {state} after the trading flow ended; last log:\n{gateway.tail()}"
        raise HflError(msg)


def _end_feed(bootstrap: str, prefix: str) -> None:
    """The feed's end-of-stream marker, after every tick is acknowledged: the flows end
    once they carried all of it (`connectors.kafka.end`)."""
    write_end(CheckedProducer(bootstrap), bootstrap, FEED, [prefix + topic.TICKS])


def _await_prediction(
    bootstrap: str, prefix: str, wanted: str, child: Child, timeout_s: float
) -> None:
    """Block until a version-0 prediction of tick `wanted` shows up."""
    needle = f'"{wanted}"'.encode()
    consumer = consumer_from_beginning(bootstrap, [prefix + topic.PREDICTIONS])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            if child.process.poll() is not None:
                raise HflError(f"trading flow exited early; last log lines:\n{child.tail()}")
            for message in consumer.consume(10_000, 0.2):
                value = message.value()
                if message.error() is None and needle in value and _predicted(value, wanted):
                    return
    finally:
        consumer.close()
    raise HflError(f"warm-up not drained after {timeout_s:.0f}s; last log:\n{child.tail()}")


def _predicted(value: bytes, wanted: str) -> bool:
    """True when the predictions record `value` (columnar or single) holds the fresh
    (version 0) prediction of tick `wanted`."""
    rows = event_rows(topic.PREDICTIONS, loads(value))
    return any(row["tick_id"] == wanted and row["version"] == 0 for row in rows)


def _await_exit(child: Child, timeout_s: float, bootstrap: str, prefix: str) -> bool:
    """Wait for the flow to drain and exit, logging its progress; False on timeout.

    Raises:
        HflError: when the flow crashed.
    """
    consumer = consumer_from_beginning(bootstrap, [prefix + topic.PREDICTIONS])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and child.process.poll() is None:
            wait_all([child], min(5.0, max(0.0, deadline - time.monotonic())))
            written = sum(
                consumer.get_watermark_offsets(part, 5.0)[1] for part in consumer.assignment()
            )
            log(f"  draining: {written:,} prediction records written so far")
    finally:
        consumer.close()
    code = child.process.poll()
    if code is None:
        log(f"flow did not drain within {timeout_s:.0f}s; stopping it, reporting what it emitted")
        return False
    if code != 0:
        raise HflError(f"trading flow exited with {code}; last log lines:\n{child.tail()}")
    return True


def collect(bootstrap: str, prefix: str) -> Outputs:
    """Read predictions, signals and decisions from the start to the end of each partition."""
    names = [prefix + topic.PREDICTIONS, prefix + topic.SIGNALS, prefix + topic.DECISIONS]
    outputs = Outputs()
    started = time.monotonic()
    try:
        for record in read_to_end(bootstrap, names):
            _take(outputs, record)
    except (OSError, TimeoutError) as exc:
        raise HflError(f"reading outputs failed: {exc}") from exc
    log(
        f"read back {len(outputs.predicted_ns):,} predictions, {len(outputs.signal_tick):,} "
        f"signals, {len(outputs.decisions):,} decisions in {time.monotonic() - started:.1f}s"
    )
    return outputs


def _take(outputs: Outputs, record: RawRecord) -> None:
    stamp = record.headers.get(_EMITTED)
    if stamp is None:
        return
    emitted = int(stamp)
    if outputs.first_ns is None or emitted < outputs.first_ns:
        outputs.first_ns = emitted
    if outputs.last_ns is None or emitted > outputs.last_ns:
        outputs.last_ns = emitted
    event = loads(record.value)
    name = record.topic
    if name.endswith(topic.PREDICTIONS):
        for row in event_rows(topic.PREDICTIONS, event):
            if row["version"] == 0:
                outputs.predicted_ns[row["tick_id"]] = emitted
    elif name.endswith(topic.SIGNALS):
        outputs.signal_tick[event["signal_id"]] = event["tick_id"]
    else:
        outputs.decisions.append((event["signal_id"], emitted))


def paced_figures(
    measured: Measured, outputs: Outputs, rate: float, duration_s: float
) -> dict[str, Any]:
    """Latency and sustained rate of the measured window.

    The rate counts measured ticks the flow processed (each gets a version-0
    prediction once warm), so a flow stopped before draining is not flattered.
    """
    sent = measured.by_tick()
    predicted = [
        (emitted, emitted - sent[tid])
        for tid, emitted in outputs.predicted_ns.items()
        if tid in sent
    ]
    decided = []
    # How long the gate held a decision beyond its tick's batch: its emission minus its
    # tick's prediction's (both leave the same flow), so the load before the gate drops out.
    gate_ns = []
    for signal, emitted in outputs.decisions:
        tid = outputs.signal_tick.get(signal)
        if tid is not None and tid in sent:
            decided.append((emitted, emitted - sent[tid]))
            if (predicted_at := outputs.predicted_ns.get(tid)) is not None:
                gate_ns.append(emitted - predicted_at)
    last = max((e for e, _ in predicted + decided), default=None)
    first_sent = min(measured.sent_ns, default=None)
    span_ns = (last - first_sent) if last is not None and first_sent is not None else 0
    decision_ns = [lat for _, lat in decided]
    prediction_ns = [lat for _, lat in predicted]
    return {
        "mode": "paced",
        "ticks_per_s": round(len(predicted) / (span_ns / NS_PER_S), 1) if span_ns > 0 else None,
        "p50_ms": percentile_ms(decision_ns, 50),
        "p99_ms": percentile_ms(decision_ns, 99),
        "p999_ms": percentile_ms(decision_ns, 99.9),
        "max_ms": round(max(decision_ns) / 1e6, 3) if decision_ns else None,
        "window_ns": (first_sent, last) if span_ns > 0 else None,
        "rate": rate,
        "duration_s": duration_s,
        "ticks": len(sent),
        "decisions": len(decided),
        "predictions": len(predicted),
        "prediction_p50_ms": percentile_ms(prediction_ns, 50),
        "prediction_p99_ms": percentile_ms(prediction_ns, 99),
        "prediction_p999_ms": percentile_ms(prediction_ns, 99.9),
        "prediction_max_ms": round(max(prediction_ns) / 1e6, 3) if prediction_ns else None,
        "gate_p50_ms": percentile_ms(gate_ns, 50),
        "gate_p99_ms": percentile_ms(gate_ns, 99),
        "gate_p999_ms": percentile_ms(gate_ns, 99.9),
        "gate_max_ms": round(max(gate_ns) / 1e6, 3) if gate_ns else None,
    }


def max_figures(outputs: Outputs, total: int, duration_s: float) -> dict[str, Any]:
    """Throughput of warm ticks through the backlog; latencies are queueing, so null."""
    batches: dict[int, int] = {}
    for emitted in outputs.predicted_ns.values():
        batches[emitted] = batches.get(emitted, 0) + 1
    stamps = sorted(batches)
    ticks_per_s = None
    counted = 0
    if len(stamps) >= 2:
        counted = sum(batches[s] for s in stamps[1:])
        ticks_per_s = round(counted * NS_PER_S / (stamps[-1] - stamps[0]), 1)
    drain_s = None
    if outputs.first_ns is not None and outputs.last_ns is not None:
        drain_s = round((outputs.last_ns - outputs.first_ns) / NS_PER_S, 3)
    return {
        "mode": "max",
        "ticks_per_s": ticks_per_s,
        "p50_ms": None,
        "p99_ms": None,
        "p999_ms": None,
        "max_ms": None,
        "rate": "max",
        "duration_s": duration_s,
        "ticks": total,
        "warm_ticks": len(outputs.predicted_ns),
        "decisions": len(outputs.decisions),
        "prediction_p50_ms": None,
        "prediction_p99_ms": None,
        "drain_s": drain_s,
        "all_ticks_per_s": round(total / drain_s, 1) if drain_s else None,
        "window_ns": (stamps[0], stamps[-1]) if len(stamps) >= 2 else None,
        "window_ticks": counted,
    }


def summarize(result: dict[str, Any]) -> None:
    """The figures for a reader, on stderr (the JSON line stays the last stdout line)."""
    lines = [
        f"ticks/s {result.get('ticks_per_s')}  baseline {result.get('baseline_ticks_per_s')}"
        f"  ratio {result.get('ratio')}  drained {result.get('drained')}",
        f"tick -> decision ms: p50 {result.get('p50_ms')}  p99 {result.get('p99_ms')}"
        f"  p99.9 {result.get('p999_ms')}  max {result.get('max_ms')}",
        f"gate hold (decision - its tick's prediction) ms: p50 {result.get('gate_p50_ms')}"
        f"  p99 {result.get('gate_p99_ms')}  p99.9 {result.get('gate_p999_ms')}"
        f"  max {result.get('gate_max_ms')}",
        "CPU us per tick: "
        + "  ".join(f"{k} {v}" for k, v in (result.get("cpu_us_per_tick") or {}).items()),
    ]
    if "persist_rows_per_s" in result:
        lines.append(
            f"persist: {result['persist_rows_per_s']} rows/s ({result['persist_rows_per_tick']}"
            f" rows per tick), keeps up: {result.get('persist_keeps_up')}"
        )
    stages = result.get("stages") or {}
    if stages:
        lines.append("stage: latency share per tick p50 / p99 ms, wall us per item, input age")
        for name, fig in stages.items():
            age = (
                f"  age p50 {fig['age_p50_ms']} p99 {fig['age_p99_ms']} ms"
                if "age_p50_ms" in fig
                else ""
            )
            lines.append(
                f"  {name:40} {fig['p50_ms']!s:>9} {fig['p99_ms']!s:>9}"
                f" {fig['us_per_item']!s:>9} us{age}"
            )
    for line in lines:
        log(line)
