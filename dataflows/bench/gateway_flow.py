"""`hfl bench gateway-flow`: the gateway flow's CPU per tick, as a process, over Kafka.

What runs: a private broker (as `hfl bench pipeline`), the gateway flow as a child
process with recovery on (`-s 2` snapshots), and this process as the feed and the
gate: the chaos suite's replay (`dataflows.bench.gateway`: ten instruments, 500 ticks
per second of event time) is produced to `md.ticks` in polls of `TICK_BATCH`, and after
each poll what a gate deciding on those ticks sends to `hfl.orders`: with `--orders`
one market order every `ORDER_EVERY` ticks of an instrument, and always its promise
`OrdersSent` every `PROMISE_EVERY` ticks (so the books trim and the progress markers
move, as in a run). Then the feed's and the trading flow's end markers, and the
gateway ends by its data.

Measured: the gateway's user+system CPU (`/proc/<pid>/stat`) from just before the first
tick is sent (the flow is started and both inputs read by then, so imports and start-up
are left out) to its exit, per tick; the wall time of the same span; the broker's CPU over the
same span; the records the gateway wrote; and `outputs_sha256` over its order events
and fills (progress and end markers excluded), sorted, so a change can show it emits exactly
the same. With `--ticks 0` it measures the idle flow instead: its CPU and the broker's
while the flow waits on empty inputs for `IDLE_S`. The JSON object is the last stdout
line; progress goes to stderr.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

from connectors import topic
from connectors.codec import dumps, encode
from connectors.kafka.end import FEED, write_end
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.reader import read_to_end
from connectors.kafka.record import OutboundRecord
from dataflows.bench.baseline import CpuSampler
from dataflows.bench.gateway import SYMBOLS, TICK_BATCH, gate_output, replay_ticks
from dataflows.bench.pipeline import PORT_OFFSET, log, private_broker
from dataflows.ops.process import Child, start_flow, stop, wait_all
from dataflows.settings import Settings
from risk.domain import Order
from risk.domain.error import HflError

IDLE_S = 10.0
SETTLE_TIMEOUT_S = 300.0  # imports alone take minutes on a loaded machine
TRADING = "trading"  # the writer of hfl.orders whose end marker the gateway awaits


def bench_gateway_flow(
    settings: Settings, root: Path, *, ticks: int, orders: bool
) -> dict[str, Any]:
    """Run the gateway flow over `ticks` replay ticks; print and return its figures."""
    replay = replay_ticks(ticks)
    gate = [(i, item) for i, item in gate_output(replay) if orders or not isinstance(item, Order)]
    sampler = CpuSampler()
    with private_broker(settings, root, "gwflow", PORT_OFFSET + 3) as run:
        sampler.watch("broker", run.broker_pid)
        prefix, bootstrap = run.settings.kafka.topic_prefix, run.settings.kafka.bootstrap
        env = {
            **run.env,
            "HFL_KAFKA__BOUNDED": "1",
            "HFL_KAFKA__END_WRITERS": "feed,trading,gateway",
            "HFL_RUN_ID": run.run_id,
            # The replay's instruments, not the configured ones.
            "HFL_TRADING__INSTRUMENTS": ",".join(sorted(SYMBOLS)),
        }
        child = start_flow("gateway", run.settings, run.run_dir, env, recovery=True)
        sampler.watch("gateway", child.process.pid)
        log(f"gateway flow started (pid {child.process.pid}); waiting for its inputs to read")
        try:
            _await_ready(child)
            idle = _idle_figures(sampler) if not replay else {}
            started = time.time_ns()
            producer = CheckedProducer(bootstrap)
            _send(producer, prefix, replay, gate)
            write_end(producer, bootstrap, FEED, [prefix + topic.TICKS])
            write_end(producer, bootstrap, TRADING, [prefix + topic.ORDERS])
            sent_s = (time.time_ns() - started) / 1e9
            log(f"sent {len(replay):,} ticks and {len(gate):,} gate records in {sent_s:.1f}s")
            code = wait_all([child], 120.0 + len(replay) / 1000)["gateway"]
            ended = time.time_ns()
        finally:
            stop(child)
        if code != 0:
            state = "did not end" if code is None else f"exited with {code}"
            raise HflError(f"gateway flow {state}; last log:\n{child.tail()}")
        outputs = [
            record.value
            for record in read_to_end(
                bootstrap, [prefix + topic.FILLS, prefix + topic.ORDER_EVENTS]
            )
            if b"through_ns" not in record.value and b"end_of_stream" not in record.value
        ]
    sampler.close()
    used = sampler.used_s("gateway", started, ended)
    broker = sampler.used_s("broker", started, ended)
    result = {
        **idle,
        "ticks": len(replay),
        "gate_records": len(gate),
        "orders": orders,
        "wall_s": round((ended - started) / 1e9, 2),
        "gateway_cpu_s": round(used, 3) if used is not None else None,
        "gateway_us_per_tick": _per_tick(used, len(replay)),
        "broker_us_per_tick": _per_tick(broker, len(replay)),
        "outputs": len(outputs),
        "fills": sum(b'"fill_id"' in value for value in outputs),
        "outputs_sha256": hashlib.sha256(b"".join(sorted(outputs))).hexdigest(),
    }
    dump = os.environ.get("HFL_BENCH_DUMP")
    if dump:
        Path(dump).write_bytes(b"\n".join(sorted(outputs)))
    print(dumps(result).decode(), flush=True)
    return result


def _per_tick(used_s: float | None, ticks: int) -> float | None:
    return round(used_s * 1e6 / ticks, 2) if used_s is not None and ticks else None


def _idle_figures(sampler: CpuSampler) -> dict[str, float | None]:
    """With no ticks: the gateway's and the broker's CPU while the flow waits on its two
    empty inputs for `IDLE_S` (idle polling: the flow's own 1 ms backoff, the broker's
    fetch waits), as a share of one core."""
    started = time.time_ns()
    time.sleep(IDLE_S)
    ended = time.time_ns()
    figures: dict[str, float | None] = {}
    for name in ("gateway", "broker"):
        used = sampler.used_s(name, started, ended)
        figures[f"idle_{name}_core_pct"] = (
            round(100 * used * 1e9 / (ended - started), 2) if used is not None else None
        )
    return figures


def _await_ready(child: Child, inputs: int = 2) -> None:
    """Return once both of the flow's inputs are reading (each logs "source resumed")."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise HflError(f"gateway flow exited while starting; last log:\n{child.tail()}")
        if child.log.exists() and child.log.read_text().count("source resumed") >= inputs:
            time.sleep(0.5)
            return
        time.sleep(0.2)
    raise HflError(f"gateway flow not reading {SETTLE_TIMEOUT_S:.0f}s after its start")


def _send(producer: CheckedProducer, prefix: str, replay: list[Any], gate: list[Any]) -> None:
    """Ticks in polls of `TICK_BATCH`, each followed by what the gate decided on it."""
    ticks_topic, orders_topic = prefix + topic.TICKS, prefix + topic.ORDERS
    next_gate = 0
    for start in range(0, len(replay), TICK_BATCH):
        end = start + TICK_BATCH
        records = [
            OutboundRecord(ticks_topic, tick.instrument.encode(), encode(tick))
            for tick in replay[start:end]
        ]
        while next_gate < len(gate) and gate[next_gate][0] < end:
            item = gate[next_gate][1]
            records.append(OutboundRecord(orders_topic, item.account.encode(), encode(item)))
            next_gate += 1
        producer.produce_batch(records)
        producer.flush()
