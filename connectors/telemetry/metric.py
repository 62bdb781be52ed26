"""Prometheus metrics the flows update themselves: pipeline, persistence, model, process.

Every family is named ``hfl_<component>_<quantity>_<unit>`` and carries only bounded
labels: Bytewax step ids, table names, dead-letter reasons, component names. Flows
update them once per batch, never per item.

Flows run as separate processes; with ``PROMETHEUS_MULTIPROC_DIR`` set (the demo and
`hfl dashboard` agree on one directory) each process writes its values to memory-mapped
files there and the dashboard serves them all from one ``/metrics`` (see
`multiprocess_registry`). Gauges keep the most recent write across processes, so a
restarted flow replaces the values of the one it succeeds. Without it the values stay
in the process (tests, benchmarks).
Trading, risk and model-score metrics are derived from the persisted events by the
dashboard instead (`dashboard.exporter`).
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Up to minutes: a flow far behind (a replay, a loaded machine) must show its latency,
# not the top bucket's bound.
_LATENCY_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
)
_BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10_000)
_MODEL_BUCKETS_S = (1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 5e-3)

RECORDS_IN = Counter(
    "hfl_pipeline_records_in_total", "Kafka records read, by source step.", ["step"]
)
RECORDS_OUT = Counter(
    "hfl_pipeline_records_out_total", "Records produced to Kafka, by sink step.", ["step"]
)
BATCH_SIZE = Histogram(
    "hfl_pipeline_batch_size_records",
    "Records per source poll or sink write, by step.",
    ["step"],
    buckets=_BATCH_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "hfl_pipeline_consumer_lag_records",
    "Records between a source's position and the partitions' high watermarks.",
    ["step"],
    multiprocess_mode="mostrecent",
)
TICK_TO_DECISION = Histogram(
    "hfl_pipeline_tick_to_decision_seconds",
    "Causing tick's ingest time (feed wall clock) to the risk gate's decision on its signal.",
    buckets=_LATENCY_BUCKETS_S,
)
DEAD_LETTERS = Counter(
    "hfl_pipeline_dead_letters_total", "Records dead-lettered to hfl.dlq, by reason.", ["reason"]
)
PERSIST_ROWS = Counter("hfl_persist_rows_total", "Rows written to ClickHouse, by table.", ["table"])
PERSIST_LAG = Gauge(
    "hfl_persist_lag_seconds",
    "Wall clock at a ClickHouse write minus the newest written tick's ingest time.",
    multiprocess_mode="mostrecent",
)
MODEL_UPDATE = Histogram(
    "hfl_model_update_seconds",
    "Predict-then-learn time per tick (batch time / ticks), features and signal included.",
    buckets=_MODEL_BUCKETS_S,
)
PROCESS_CPU = Gauge(
    "hfl_process_cpu_seconds",
    "CPU time (user + system) used by a component's process.",
    ["component"],
    multiprocess_mode="mostrecent",
)
PROCESS_MEMORY = Gauge(
    "hfl_process_resident_memory_bytes",
    "Resident memory of a component's process.",
    ["component"],
    multiprocess_mode="mostrecent",
)
PROCESS_HEARTBEAT = Gauge(
    "hfl_process_heartbeat_seconds",
    "Wall-clock time (Unix seconds) a component's process last sampled itself (every 1 s).",
    ["component"],
    multiprocess_mode="mostrecent",
)
PROCESS_STARTS = Counter(
    "hfl_process_starts_total",
    "Process starts by component; more than one means restarts.",
    ["component"],
)

FEED_EVENTS = Counter(
    "hfl_feed_events_total",
    "Live venue feed: frames read, ticks kept, duplicates dropped, gaps, missing trades, "
    "reconnects, stale streams, unreadable frames; by venue and kind.",
    ["venue", "kind"],
)
FEED_LAG = Gauge(
    "hfl_feed_lag_seconds",
    "Venue event time to our receive time over the recent ticks, by venue and quantile.",
    ["venue", "quantile"],
    multiprocess_mode="mostrecent",
)
_FEED_KINDS = (
    "messages", "ticks", "duplicates", "gaps", "missing_trades", "reconnects", "stale",
    "unreadable",
)  # fmt: skip
_feed_seen: dict[tuple[str, str], int] = {}

_SAMPLE_INTERVAL_S = 1.0
_MAX_PENDING_SIGNALS = 10_000
_started: set[str] = set()
_signal_ingest_ns: dict[str, int] = {}


def count_batch(counter: Counter, step: str, size: int) -> None:
    """Count one batch of `size` records for `step` and record its size."""
    if size:
        counter.labels(step).inc(size)
        BATCH_SIZE.labels(step).observe(size)


def count_reasons(counter: Counter, reasons: Iterable[str]) -> None:
    """Add a batch of reason codes to a counter labelled by reason."""
    for reason, count in Tally(reasons).items():
        counter.labels(reason).inc(count)


def note_signals(events: Iterable[object], ingest_ns: int) -> None:
    """Remember when the tick behind any signal among `events` entered the system.

    Only signals are kept (a small share of events), until their decision is observed;
    a flow whose gate runs in another process simply never observes them, and the
    table is cleared if it ever fills, so it stays bounded.
    """
    for event in events:
        signal_id = getattr(event, "signal_id", None)
        if signal_id is not None:
            if len(_signal_ingest_ns) >= _MAX_PENDING_SIGNALS:
                _signal_ingest_ns.clear()
            _signal_ingest_ns[signal_id] = ingest_ns


def observe_decision(signal_id: str) -> None:
    """Record tick ingest → now for the decision just made on `signal_id`."""
    ingest_ns = _signal_ingest_ns.pop(signal_id, None)
    if ingest_ns is not None:
        TICK_TO_DECISION.observe((time.time_ns() - ingest_ns) / 1e9)


def observe_feed(snapshot: dict[str, object]) -> None:
    """Export one venue's `FeedMetrics.snapshot()` (counters grow by what is new)."""
    venue = str(snapshot["venue"])
    for kind in _FEED_KINDS:
        value = int(snapshot.get(kind, 0))  # type: ignore[call-overload]
        previous = _feed_seen.get((venue, kind), 0)
        if value > previous:
            FEED_EVENTS.labels(venue, kind).inc(value - previous)
            _feed_seen[(venue, kind)] = value
    lag = snapshot.get("lag_ms") or {}
    for quantile, millis in lag.items():  # type: ignore[attr-defined]
        FEED_LAG.labels(venue, quantile).set(millis / 1000.0)


def observe_model_batch(seconds: float, ticks: int) -> None:
    """Record a pipeline batch's time per tick (predict, learn, features, signal)."""
    if ticks:
        MODEL_UPDATE.observe(seconds / ticks)


def resident_memory_bytes() -> int:
    """This process's resident set size (Linux ``/proc``, else the peak from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def sample_process(component: str) -> None:
    """Set this process's CPU, memory and heartbeat gauges for `component` once."""
    PROCESS_HEARTBEAT.labels(component).set(time.time())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    PROCESS_CPU.labels(component).set(usage.ru_utime + usage.ru_stime)
    PROCESS_MEMORY.labels(component).set(resident_memory_bytes())


def start_process_metrics(component: str) -> None:
    """Count a start of `component` and sample its CPU and memory every second.

    Idempotent per process: the sampler is a daemon thread that reads two counters
    and sleeps, so it costs nothing measurable next to a flow.
    """
    if component in _started:
        return
    _started.add(component)
    PROCESS_STARTS.labels(component).inc()

    def sample_forever() -> None:
        while True:
            sample_process(component)
            time.sleep(_SAMPLE_INTERVAL_S)

    threading.Thread(target=sample_forever, name=f"hfl-metrics-{component}", daemon=True).start()


def multiprocess_registry(directory: str) -> CollectorRegistry:
    """A registry serving every process's values written under `directory`."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return registry


def serve_metrics(host: str, port: int) -> int:
    """Serve this process's metrics on `http://host:port/metrics` from a daemon thread.

    Docker mode: each container is its own process with no multiprocess directory to
    share, so each flow serves its own values and Prometheus scrapes each one. Returns
    the bound port (`port` 0 picks a free one).
    """
    from prometheus_client import REGISTRY, start_http_server

    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    return int(server.server_address[1])
