"""`hfl bench risk`: what one gate decision costs, and how fast a kill reaches the orders.

Two measurements; progress on stderr, the JSON object on the last stdout line.

- `us_per_decision`: the configured gate (config/risk.yaml, every control on) in this
  process. Its portfolio risk model is warmed with `WARM_SAMPLES` one-second closes of
  the simulated instruments (so VaR, CVaR, beta, volatility and correlation checks are
  live, not skipped for lack of history) and recomputed on its event-time schedule while
  the decisions run. Signals cycle long/flat/short on the simulator's prices, 50 per
  second of event time (below the order-rate throttle); approved orders are filled at
  once so the book, not the working-order list, grows. Only `on_signal` is timed, twice
  per call: CPU time of this thread (`us_per_decision`: what a decision costs, unmoved
  by other processes preempting this one on a shared machine) and wall time
  (`wall_us_per_decision`, `decision_p99_us`: what it took, preemption included). The
  median over `REPEATS` runs of fresh gates is reported, with the outcome counts so it
  is clear which paths were measured. The scheduled recompute is timed apart
  (`recompute_ms`), and so are the scheduled recomputes during the decisions
  (`recompute_loaded_ms`, median: a populated book and, with portfolio sizing, the
  instruments' views, so the optimizer's rebalance is included). `decisions_sha256`
  digests every decision and order of the run as the flow would publish them (codec
  JSON), outside the timed part: equal digests prove that a change to the gate decides
  exactly as before on this stream.
- `kill_p99_ms`: a private broker and the trading flow as a child process with recovery
  on. Warm-up ticks make the gate send orders; with no gateway running they stay
  working. Then `kills` times: `publish_control(KILL)` and wait for the cancel of every
  working order on `hfl.orders`. Latency = the flow's `hfl-emitted-ns` header of the
  last cancel of that kill minus the wall clock at publish (the command's `ts_event`).
  The gate books fills on arrival there; `kill_event_time_p99_ms` is the same with the
  default event-time booking, where each command is journaled synchronously before
  its cancels leave (the bench publishes the progress markers a gateway would, once,
  covering the warm-up: orders are decided and stay working).
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import orjson

from connectors import codec, topic
from connectors.codec import is_progress_marker
from connectors.feeds.publisher import StampingSender
from connectors.feeds.simulator import SimulationConfig, Simulator
from connectors.kafka.producer import EMITTED_HEADER, CheckedProducer
from connectors.kafka.reader import consumer_from_beginning
from connectors.keyfile import save_keys
from dataflows.bench.pipeline import (
    PORT_OFFSET,
    _load,
    _ticks,
    log,
    percentile_ms,
    private_broker,
)
from dataflows.flows.account import make_account_state
from dataflows.flows.routing import to_outbound
from dataflows.ops.control import publish_control
from dataflows.ops.process import start_flow, stop
from dataflows.settings import Secret, Settings
from risk.access import Role, new_key
from risk.domain import ControlAction, Fill, FillsThrough, Order, OrderEventsThrough, Signal, ids
from risk.domain.error import HflError
from risk.fill_sync import FillSyncMode
from risk.gate import AccountGate

NS_PER_S = 1_000_000_000
WARM_SAMPLES = 300
REPEATS = 5
KILL_WARMUP_EVENT_S = 40.0
KILL_TICKS_PER_S = 250.0
KILL_TIMEOUT_S = 30.0


def bench_risk(settings: Settings, root: Path, *, decisions: int, kills: int) -> dict[str, Any]:
    """Run both measurements; print and return the figures."""
    cost = decision_cost(settings, decisions)
    kill = kill_latency(settings, root, kills)
    event_time = kill_latency(settings, root, kills, FillSyncMode.EVENT_TIME)
    result = {
        **cost,
        **kill,
        "kill_event_time_p50_ms": event_time["kill_p50_ms"],
        "kill_event_time_p99_ms": event_time["kill_p99_ms"],
    }
    print(orjson.dumps(result).decode(), flush=True)
    return result


# -- decision cost ---------------------------------------------------------------------


def _prices(settings: Settings, count: int, interval_ns: int) -> tuple[list[str], np.ndarray]:
    """`count` rows of simulated prices per instrument, one row per `interval_ns`."""
    names = list(settings.trading.instruments)
    config = SimulationConfig(
        symbols=tuple(names), seed=settings.feed.seed, start_ns=0, ticks_per_second=200.0
    )
    last = dict.fromkeys(names, 0.0)
    rows, boundary = [], interval_ns
    for record in Simulator(config):
        if record["ts_event"] >= boundary and all(last.values()):
            rows.append([last[name] for name in names])
            boundary += interval_ns
            if len(rows) == count:
                break
        last[record["instrument"]] = float(record["price"])
    return names, np.asarray(rows)


def _warm_gate(settings: Settings, names: list[str], closes: np.ndarray, t0: int) -> AccountGate:
    gate = make_account_state(settings).gate
    for second, row in enumerate(closes):
        for name, price in zip(names, row, strict=True):
            gate.mark(name, float(price), t0 + second * NS_PER_S)
        gate.risk_metrics(t0 + second * NS_PER_S, 0)
    return gate


def _signals(names: list[str], prices: np.ndarray, t0: int, count: int) -> list[Signal]:
    out = []
    for n in range(count):
        column = n % len(names)
        row = prices[(n // len(names)) % len(prices)]
        ts = t0 + n * 20_000_000  # 50 decisions per second of event time
        tick = ids.tick_id(names[column], n, ts)
        out.append(
            Signal(
                signal_id=ids.signal_id(names[column], tick, "bench"),
                tick_id=tick,
                instrument=names[column],
                model="bench",
                direction=(1, 0, -1)[(n // len(names)) % 3],
                probability_up=0.5,
                reference_price=float(row[column]),
                ts_event=ts,
                ts_init=ts,
            )
        )
    return out


class DecisionRun(NamedTuple):
    """One run of the decisions: per-decision CPU and wall ns, outcomes, digest, recomputes."""

    cpu: list[int]
    wall: list[int]
    outcomes: Counter[str]
    digest: str
    recompute_ns: list[int]


def _run_decisions(gate: AccountGate, signals: list[Signal]) -> DecisionRun:
    """Time each `on_signal` (CPU, wall; ns); fill approvals at once; keep the schedule.

    Also digests every decision and order, encoded as the flow sends them, and times
    (wall) each scheduled recompute that ran.
    """
    cpu: list[int] = []
    wall: list[int] = []
    recompute_ns: list[int] = []
    outcomes: Counter[str] = Counter()
    digest = hashlib.sha256()
    cpu_clock, wall_clock = time.thread_time_ns, time.perf_counter_ns
    for n, signal in enumerate(signals):
        cpu_started, wall_started = cpu_clock(), wall_clock()
        decision, order = gate.on_signal(signal)
        wall.append(wall_clock() - wall_started)
        cpu.append(cpu_clock() - cpu_started)
        outcomes[str(getattr(decision, "reason", "approved"))] += 1
        digest.update(codec.encode(decision))
        if order is not None:
            digest.update(codec.encode(order))
            gate.on_fill(_fill(order, signal))
        gate.mark(signal.instrument, signal.reference_price, signal.ts_event)
        if n % 50 == 49:  # once per second of event time, as the 1 s bars do
            gate.snapshot_pnl(signal.ts_event)
            started = wall_clock()
            if gate.risk_metrics(signal.ts_event, signal.ts_init):
                recompute_ns.append(wall_clock() - started)
    return DecisionRun(cpu, wall, outcomes, digest.hexdigest(), recompute_ns)


def _fill(order: Order, signal: Signal) -> Fill:
    """The whole of `order` filled at the signal's reference price."""
    return Fill(
        fill_id=ids.fill_id(order.client_order_id, 1),
        client_order_id=order.client_order_id,
        account=order.account,
        instrument=order.instrument,
        side=order.side,
        quantity=order.quantity,
        price=Decimal(repr(signal.reference_price)),
        fee=Decimal(0),
        leaves_quantity=Decimal(0),
        tick_id=signal.tick_id,
        ts_event=signal.ts_event,
        ts_init=signal.ts_init,
    )


def decision_cost(settings: Settings, decisions: int) -> dict[str, Any]:
    """Median microseconds per gate decision with every control on (see module docs)."""
    names, prices = _prices(settings, WARM_SAMPLES + 400, NS_PER_S)
    closes, later = prices[:WARM_SAMPLES], prices[WARM_SAMPLES:]
    t0 = 1_700_000_000 * NS_PER_S
    start = t0 + WARM_SAMPLES * NS_PER_S
    cpu_runs, wall_runs, every, outcomes = [], [], [], Counter[str]()
    recompute_s: list[float] = []
    loaded_ns: list[int] = []
    for _ in range(REPEATS):
        gate = _warm_gate(settings, names, closes, t0)
        started = time.perf_counter()
        gate.risk_metrics(start + 5 * NS_PER_S, 0)
        recompute_s.append(time.perf_counter() - started)
        signals = _signals(names, later, start + 6 * NS_PER_S, decisions)
        run = _run_decisions(gate, signals)
        cpu_runs.append(sum(run.cpu) / len(run.cpu))
        wall_runs.append(sum(run.wall) / len(run.wall))
        every.extend(run.wall)
        loaded_ns.extend(run.recompute_ns)
        outcomes, digest = run.outcomes, run.digest
    log(f"decisions: {decisions:,} x {REPEATS} runs; outcomes of the last run {dict(outcomes)}")
    return {
        "us_per_decision": round(statistics.median(cpu_runs) / 1e3, 2),
        "wall_us_per_decision": round(statistics.median(wall_runs) / 1e3, 2),
        "decision_p99_us": round(float(np.percentile(every, 99)) / 1e3, 2),
        "recompute_ms": round(statistics.median(recompute_s) * 1e3, 3),
        "recompute_loaded_ms": round(statistics.median(loaded_ns) / 1e6, 3),
        "decisions": decisions,
        "outcomes": dict(outcomes),
        "decisions_sha256": digest,
    }


# -- kill latency ------------------------------------------------------------------------


def kill_latency(
    settings: Settings, root: Path, kills: int, fill_sync: FillSyncMode = FillSyncMode.ARRIVAL
) -> dict[str, Any]:
    """Control message -> last cancel emitted, over `kills` kills (see module docs)."""
    with private_broker(settings, root, "bench-risk", PORT_OFFSET + 1) as run:
        kafka = run.settings.kafka
        sender = StampingSender.to(kafka.bootstrap, kafka.topic_prefix + topic.TICKS)
        count = int(KILL_WARMUP_EVENT_S * KILL_TICKS_PER_S)
        start_ns = time.time_ns() - int(KILL_WARMUP_EVENT_S * NS_PER_S)
        _load(sender, _ticks(run.settings, KILL_TICKS_PER_S, start_ns), count, "warm-up")
        # No gateway runs here (working orders stay working, which a kill must cancel):
        # the gate books fills on arrival, or in event time behind markers sent here.
        if fill_sync is FillSyncMode.EVENT_TIME:
            _mark_reported(run.settings, through_ns=time.time_ns() + 3_600 * NS_PER_S)
        signed = _bench_key(run.settings, run.run_dir)
        env = run.env | {
            "HFL_RISK__FILL_SYNC": str(fill_sync),
            "HFL_SECURITY__KEYS_FILE": signed.security.keys_file,
        }
        child = start_flow("trading", run.settings, run.run_dir, env, recovery=True)
        try:
            latencies = _kills(signed, kills)
        finally:
            stop(child)
    return {
        "kill_p50_ms": percentile_ms(latencies, 50),
        "kill_p99_ms": percentile_ms(latencies, 99),
        "kills": len(latencies),
    }


def _mark_reported(settings: Settings, through_ns: int) -> None:
    """Publish a silent gateway's progress markers: every report before `through_ns`
    of every instrument is in (there are none)."""
    account = settings.trading.account
    markers = [
        kind(
            progress_id=f"bench-{instrument}",
            account=account,
            instrument=instrument,
            through_ns=through_ns,
            ts_event=through_ns,
            ts_init=through_ns,
        )
        for instrument in settings.trading.instruments
        for kind in (FillsThrough, OrderEventsThrough)
    ]
    kafka = settings.kafka
    CheckedProducer(kafka.bootstrap).send(
        record for _, record in to_outbound(kafka.topic_prefix)(list(markers))
    )


def _bench_key(settings: Settings, run_dir: Path) -> Settings:
    """`settings` signing with a fresh trader key of this run's own key file."""
    key, token = new_key("hfl-bench", Role.TRADER, created_ns=time.time_ns())
    path = run_dir / "keys.json"
    save_keys(path, [key])
    security = replace(settings.security, keys_file=str(path), api_key=Secret(str(token)))
    return replace(settings, security=security)


def _kills(settings: Settings, kills: int) -> list[int]:
    """Publish `kills` kills; return each one's publish -> last cancel latency (ns)."""
    orders = consumer_from_beginning(
        settings.kafka.bootstrap, [settings.kafka.topic_prefix + topic.ORDERS]
    )
    working: set[str] = set()
    latencies: list[int] = []
    try:
        _read(orders, working, {}, deadline=time.monotonic() + 120.0, until=lambda: bool(working))
        time.sleep(2.0)  # let the gate finish the warm-up backlog
        _read(orders, working, {}, deadline=time.monotonic() + 1.0, until=lambda: False)
        log(f"{len(working)} working orders; sending {kills} kills")
        for n in range(kills):
            command = publish_control(settings, ControlAction.KILL, f"bench {n}", "hfl-bench")
            emitted = _await_cancels(orders, working, f"kill: {command.reason}")
            if len(emitted) < len(working):
                raise HflError(f"kill {n}: {len(emitted)} of {len(working)} cancels seen")
            latencies.append(max(emitted) - command.ts_event)
    finally:
        orders.close()
    return latencies


def _await_cancels(consumer: Any, working: set[str], reason: str) -> list[int]:
    """Emission times of the cancels with `reason` (one kill's), once all arrived.

    (Not by `ts_event`: in event time a command takes effect at the gate's clock.)
    """
    seen: dict[str, list[int]] = {}
    _read(
        consumer,
        working,
        seen,
        deadline=time.monotonic() + KILL_TIMEOUT_S,
        until=lambda: len(seen.get(reason, ())) >= len(working),
    )
    return seen.get(reason, [])


def _read(
    consumer: Any,
    working: set[str],
    cancels: dict[str, list[int]],
    *,
    deadline: float,
    until: Any,
) -> None:
    """Consume `hfl.orders`: orders join `working`, cancels' emission times by reason."""
    while time.monotonic() < deadline and not until():
        for message in consumer.consume(1_000, 0.05):
            if message.error() is not None:
                continue
            record = orjson.loads(message.value())
            if is_progress_marker(record):
                continue
            if "cancel_id" not in record:
                working.add(record["client_order_id"])
                continue
            emitted = next(int(v) for k, v in message.headers() or () if k == EMITTED_HEADER)
            cancels.setdefault(record["reason"], []).append(emitted)
