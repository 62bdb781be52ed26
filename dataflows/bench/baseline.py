"""The baseline of `hfl bench pipeline --baseline`: the same job, written the obvious way.

A straightforward per-item Bytewax flow, as a user of Bytewax and River would write it
in an afternoon: Bytewax's stock `KafkaSource` (from the start of `md.ticks`, ending at
its end) → `orjson.loads` per record → keyed by instrument → one `stateful_map` per
tick holding the same incremental features (`InstrumentFeatures`, ATR on 1 s bars) and
River `StandardScaler | LogisticRegression` that predicts, then learns every label
that came due (1 s forward return, `PendingLabels`) → a per-instrument position-limit
check → orders as JSON to Kafka through the stock `KafkaSink`. No recovery, no ids,
no events other than orders, no delivery checks.

Run it with `python -m bytewax.run "dataflows.bench.baseline:build_flow()"`; it reads
its broker, topics and where to write its figures from the environment
(`HFL_BASELINE_*`, set by the bench). Its figures are taken inside the process with the
wall clock (a benchmark's own metric, never a decision input): how many warm ticks
(those the model predicted on) it handled, the wall time of the first and the last, and
each warm tick's latency from its `ts_init` to its decision. They are written as JSON
when the process exits.
"""

from __future__ import annotations

import atexit
import os
import time
from dataclasses import dataclass, field
from typing import Any

import bytewax.operators as op
import orjson
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow

from connectors import topic
from online_models.bar import BarBuilder
from online_models.feature import InstrumentFeatures
from online_models.label import PendingLabels
from online_models.pipeline import logistic_pipeline
from risk.domain import Tick, TickKind

NS_PER_S = 1_000_000_000
HORIZON_NS = NS_PER_S  # the bench's HFL_MODEL__HORIZON_S=1
ENTER_LONG, ENTER_SHORT = 0.51, 0.49  # the bench's entry thresholds
ORDER_QTY = 10
POSITION_LIMIT = 100  # units per instrument, long or short
MAX_LATENCIES = 2_000_000


@dataclass(slots=True)
class Figures:
    """What this process measured; written as JSON at exit."""

    path: str
    ticks: int = 0
    warm: int = 0
    orders: int = 0
    denied: int = 0
    first_warm_ns: int = 0
    last_warm_ns: int = 0
    latencies_ns: list[int] = field(default_factory=list)

    def write(self) -> None:
        """Write the figures to `path`."""
        with open(self.path, "wb") as out:
            out.write(
                orjson.dumps(
                    {
                        "ticks": self.ticks,
                        "warm": self.warm,
                        "orders": self.orders,
                        "denied": self.denied,
                        "first_warm_ns": self.first_warm_ns,
                        "last_warm_ns": self.last_warm_ns,
                        "latencies_ns": self.latencies_ns,
                    }
                )
            )


_FIGURES = Figures(path=os.environ.get("HFL_BASELINE_FIGURES", ""))


class InstrumentState:
    """Bars, features, the River model, pending labels and the position of one instrument."""

    def __init__(self, instrument: str) -> None:
        """Start cold."""
        self.bars = BarBuilder(instrument, 1)
        self.features = InstrumentFeatures()
        self.model = logistic_pipeline(seed=0)
        self.pending = PendingLabels(HORIZON_NS)
        self.position = 0


def decide(state: InstrumentState | None, record: dict[str, Any]) -> tuple[InstrumentState, Any]:
    """One tick: features, predict, learn what came due, position-limit check, maybe an order."""
    instrument = record["instrument"]
    if state is None:
        state = InstrumentState(instrument)
    figures = _FIGURES
    figures.ticks += 1
    tick = Tick(
        tick_id="",
        instrument=instrument,
        seq=record["seq"],
        kind=TickKind(record["kind"]),
        price=float(record["price"]),
        size=float(record.get("size") or 0.0),
        ts_event=record["ts_event"],
        ts_init=record["ts_init"],
    )
    bar = state.bars.update(tick)
    if bar is not None:
        state.features.on_bar(bar)
    x = state.features.update(tick)
    for resolved in state.pending.resolve(tick.ts_event, tick.price):
        state.model.learn_one(resolved.features, bool(resolved.label))
    if x is None:
        return state, None
    p_up = state.model.predict_proba_one(x).get(True, 0.5)
    state.pending.add("", tick.ts_event, tick.price, x, p_up)
    order = None
    side = 1 if p_up > ENTER_LONG else -1 if p_up < ENTER_SHORT else 0
    if side:
        target = state.position + side * ORDER_QTY
        if abs(target) <= POSITION_LIMIT:
            state.position = target
            order = {
                "client_order_id": f"{instrument}-{tick.seq}",
                "instrument": instrument,
                "side": "buy" if side > 0 else "sell",
                "quantity": ORDER_QTY,
                "ts_event": tick.ts_event,
            }
            figures.orders += 1
        else:
            figures.denied += 1
    now = time.time_ns()
    if not figures.warm:
        figures.first_warm_ns = now
    figures.warm += 1
    figures.last_warm_ns = now
    if len(figures.latencies_ns) < MAX_LATENCIES:
        figures.latencies_ns.append(now - tick.ts_init)
    return state, order


def _to_message(item: tuple[str, Any]) -> KafkaSinkMessage[bytes, bytes] | None:
    instrument, order = item
    if order is None:
        return None
    return KafkaSinkMessage(key=instrument.encode(), value=orjson.dumps(order))


def _parse(message: Any) -> Any:
    return orjson.loads(message.value)


def build_flow() -> Dataflow:
    """The baseline flow, configured by `HFL_BASELINE_BOOTSTRAP`, `_TICKS`, `_ORDERS`."""
    bootstrap = os.environ["HFL_BASELINE_BOOTSTRAP"]
    if _FIGURES.path:
        atexit.register(_FIGURES.write)
    flow = Dataflow("baseline")
    source = KafkaSource(
        [bootstrap],
        [os.environ["HFL_BASELINE_TICKS"]],
        tail=False,  # end at the end of the topic; the default start is the beginning
    )
    messages = op.input("ticks_in", flow, source)
    records = op.map("parse", messages, _parse)
    # The feed's end-of-stream markers share md.ticks; a tick is what names an instrument.
    ticks = op.filter("ticks", records, lambda record: "instrument" in record)
    keyed = op.key_on("by_instrument", ticks, lambda record: record["instrument"])
    decided = op.stateful_map("decide", keyed, decide)
    orders = op.filter_map("orders", decided, _to_message)
    op.output("orders_out", orders, KafkaSink([bootstrap], os.environ["HFL_BASELINE_ORDERS"]))
    return flow


# --- the bench side: run the baseline, sample processes' CPU -------------------------

CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SAMPLE_INTERVAL_S = 0.1


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds `pid` used so far (None once it is gone).

    Read from `/proc/<pid>/stat` (fields 14 and 15, after the command's parenthesis).
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS_PER_S


class CpuSampler:
    """Samples the CPU time of named processes every `SAMPLE_INTERVAL_S` in a thread.

    `used_s(name, start_ns, end_ns)` is the CPU a process used between two wall-clock
    instants, interpolated between the samples around them: the bench asks for its
    measured window only, so start-up, warm-up and the idle tail are left out.
    """

    def __init__(self) -> None:
        """Sample nothing yet; `watch` adds processes."""
        import threading

        self._pids: dict[str, int] = {}
        self._samples: dict[str, list[tuple[int, float]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)
        self._thread.start()

    def watch(self, name: str, pid: int) -> None:
        """Start sampling `pid` as `name`."""
        with self._lock:
            self._pids[name] = pid
            self._samples.setdefault(name, [])
        self._sample_one(name, pid)

    def _sample_one(self, name: str, pid: int) -> None:
        used = cpu_seconds(pid)
        if used is not None:
            self._samples[name].append((time.time_ns(), used))

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            with self._lock:
                watched = list(self._pids.items())
            for name, pid in watched:
                self._sample_one(name, pid)

    def close(self) -> None:
        """Stop sampling."""
        self._stop.set()
        self._thread.join()

    def used_s(self, name: str, start_ns: int, end_ns: int) -> float | None:
        """CPU seconds `name` used between two wall-clock instants (None if not sampled)."""
        samples = self._samples.get(name) or []
        if len(samples) < 2 or end_ns <= start_ns:
            return None
        return _at(samples, end_ns) - _at(samples, start_ns)


def _at(samples: list[tuple[int, float]], when_ns: int) -> float:
    """CPU seconds at `when_ns`, interpolated linearly between the samples around it."""
    before = samples[0]
    for sample in samples:
        if sample[0] >= when_ns:
            span = sample[0] - before[0]
            if span <= 0:
                return sample[1]
            return before[1] + (sample[1] - before[1]) * (when_ns - before[0]) / span
        before = sample
    return samples[-1][1]


def cpu_us_per_tick(
    sampler: CpuSampler, names: list[str], start_ns: int, end_ns: int, ticks: int
) -> dict[str, float | None]:
    """CPU µs per tick of each named process over a window in which `ticks` went through."""
    figures: dict[str, float | None] = {}
    for name in names:
        used = sampler.used_s(name, start_ns, end_ns)
        figures[name] = round(used * 1e6 / ticks, 1) if used is not None and ticks else None
    return figures


def run_baseline(
    bootstrap: str,
    ticks_topic: str,
    run_dir: Any,
    sampler: CpuSampler,
    *,
    timeout_s: float,
) -> dict[str, Any]:
    """Run the baseline flow over `ticks_topic` from its start to its end; its figures.

    Sampled as `baseline` (and the broker, watched by the caller as `broker`).
    """
    import subprocess
    import sys

    import numpy as np

    from connectors.kafka.admin import create_topics
    from connectors.topic import TopicSpec

    orders = ticks_topic.removesuffix(topic.TICKS) + "baseline.orders"
    create_topics(bootstrap, (TopicSpec(name=orders, partitions=1, key="instrument"),))
    figures_path = run_dir / "baseline.json"
    env = {
        **os.environ,
        "HFL_BASELINE_BOOTSTRAP": bootstrap,
        "HFL_BASELINE_TICKS": ticks_topic,
        "HFL_BASELINE_ORDERS": orders,
        "HFL_BASELINE_FIGURES": str(figures_path),
    }
    command = [sys.executable, "-m", "bytewax.run", "dataflows.bench.baseline:build_flow()"]
    with (run_dir / "baseline.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    sampler.watch("baseline", process.pid)
    try:
        code = process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return {"baseline_error": f"baseline did not finish within {timeout_s:.0f}s"}
    if code != 0 or not figures_path.exists():
        return {"baseline_error": f"baseline exited with {code}; see {run_dir}/baseline.log"}
    got = orjson.loads(figures_path.read_bytes())
    span_ns = got["last_warm_ns"] - got["first_warm_ns"]
    rate = round((got["warm"] - 1) * NS_PER_S / span_ns, 1) if span_ns > 0 else None
    latencies = np.asarray(got["latencies_ns"], dtype=np.float64) / 1e6
    cpu = cpu_us_per_tick(
        sampler, ["baseline", "broker"], got["first_warm_ns"], got["last_warm_ns"], got["warm"]
    )
    return {
        "baseline_ticks_per_s": rate,
        "baseline_warm_ticks": got["warm"],
        "baseline_orders": got["orders"],
        "baseline_cpu_us_per_tick": {"baseline": cpu["baseline"], "broker": cpu["broker"]},
        "baseline_in_process_p99_ms": (
            round(float(np.percentile(latencies, 99)), 3) if latencies.size else None
        ),
    }
