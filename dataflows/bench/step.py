"""`hfl bench step`: the trading flow's per-tick work in one process, no broker.

Simulated ticks, encoded as the feed encodes them, go through the trading flow's own
step functions in batches of `BATCH` records, as the Kafka source hands them over:
`decode_ticks` → the per-instrument `handle_ticks` (bars, features, River predict and
learn, prequential metrics, signals) → `to_account` (what the risk gate would get) →
`to_outbound` (every event encoded and routed). The gate itself, Bytewax and Kafka are
left out, so the figure is the cost of the instrument path alone and moves with the
code, not with the broker or the other flows.

The first `warmup` ticks are not measured (features need ~15 s of event time, models
their first labels). Then `ticks` more are timed with the process's CPU clock; the
collector's own time is summed through `gc.callbacks` (wall clock, so it is inflated
on a loaded machine). `outputs_sha256` hashes every row the routed records hold (a
columnar record of features or predictions gives its rows, `connectors.codec.event_rows`),
per topic in order, except model checkpoints (pickles, whose bytes follow the classes'
layout): equal hashes mean equal outputs, however the rows are packed into records.
`records_per_tick` and `bytes_per_tick` count records and their value bytes by topic;
counting and hashing are left out of the timings. With `settle` the heap is settled as
the flows settle it once built (`dataflows.flows.wiring.settle_heap`), after the warm-up.
"""

from __future__ import annotations

import gc
import hashlib
import time
from typing import Any

from connectors.codec import encode, event_rows, loads
from connectors.feeds.simulator import SimulationConfig, Simulator
from connectors.kafka.record import KafkaRecord
from dataflows.bench.pipeline import MODEL_OVERRIDES
from dataflows.flows.routing import to_outbound
from dataflows.flows.trading import (
    InstrumentState,
    decode_ticks,
    handle_ticks,
    model_spec,
    to_account,
)
from dataflows.settings import Settings

BATCH = 1_000
START_NS = 1_700_000_000_000_000_000
NS_PER_S = 1_000_000_000


def _simulated(
    instruments: tuple[str, ...], count: int, event_rate: float
) -> list[tuple[bytes, bytes, int]]:
    """`count` simulated ticks as (key, encoded record, event time)."""
    simulator = iter(
        Simulator(
            SimulationConfig(
                symbols=instruments, seed=1, start_ns=START_NS, ticks_per_second=event_rate
            )
        )
    )
    raw = []
    for _ in range(count):
        record = next(simulator)
        record["ts_init"] = record["ts_event"]
        raw.append((record["instrument"].encode(), encode(record), record["ts_event"]))
    return raw


class _Tally:
    """Records and bytes by topic, and each topic's rows hashed in order."""

    def __init__(self) -> None:
        self.records: dict[str, int] = {}
        self.bytes: dict[str, int] = {}
        self.digests: dict[str, Any] = {}
        self.cpu_s = 0.0  # what counting and hashing took, left out of the figures
        self.wall_s = 0.0

    def add(self, records: list[tuple[str, Any]]) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        for name, out in records:
            self.records[name] = self.records.get(name, 0) + 1
            self.bytes[name] = self.bytes.get(name, 0) + len(out.value)
            if "checkpoint" in name:
                continue
            digest = self.digests.get(name)
            if digest is None:
                digest = self.digests[name] = hashlib.sha256()
            for row in event_rows(name, loads(out.value)):
                digest.update(encode(row))
        self.cpu_s += time.process_time() - cpu
        self.wall_s += time.perf_counter() - wall

    def figures(self, ticks: int) -> dict[str, Any]:
        digests = self.digests
        return {
            "records_per_tick": {
                name: round(count / ticks, 3) for name, count in sorted(self.records.items())
            },
            "bytes_per_tick": {
                name: round(count / ticks, 1) for name, count in sorted(self.bytes.items())
            },
            "outputs_sha256": hashlib.sha256(
                b"".join(name.encode() + digests[name].digest() for name in sorted(digests))
            ).hexdigest(),
        }


def bench_step(
    settings: Settings,
    *,
    ticks: int,
    warmup: int,
    event_rate: float,
    settle: bool,
) -> dict[str, Any]:
    """Time the instrument path over `ticks` warm ticks; print and return the figures."""
    instruments = settings.trading.instruments
    raw = _simulated(instruments, warmup + ticks, event_rate)
    decode = decode_ticks(frozenset(instruments))
    spec = model_spec(settings, "bench")
    states: dict[str, InstrumentState] = {}
    select = to_account(settings.trading.account)
    route = to_outbound("")
    tally = _Tally()

    def run(start: int, end: int, *, measured: bool) -> None:
        chunk = [
            KafkaRecord("md.ticks", 0, start + i, key, value, ts)
            for i, (key, value, ts) in enumerate(raw[start:end])
        ]
        by_key: dict[str, list[Any]] = {}
        for item in decode(chunk):
            key, tick = item  # type: ignore[misc]  # simulated ticks are all valid
            by_key.setdefault(key, []).append(tick)
        events: list[object] = []
        for key, batch in by_key.items():
            state = states.get(key)
            if state is None:
                state = states[key] = InstrumentState(spec)
            events.extend(handle_ticks(state, batch))
        select(events)
        records = route(events)
        if measured:
            tally.add(records)

    for start in range(0, warmup, BATCH):
        run(start, min(start + BATCH, warmup), measured=False)
    if settle:
        # Imported here: trees from before settle_heap existed still run this bench.
        from dataflows.flows.wiring import settle_heap

        settle_heap()
    collecting = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(on_gc)
    try:
        cpu = time.process_time()
        wall = time.perf_counter()
        for start in range(warmup, warmup + ticks, BATCH):
            run(start, min(start + BATCH, warmup + ticks), measured=True)
        cpu = time.process_time() - cpu - tally.cpu_s
        wall = time.perf_counter() - wall - tally.wall_s
    finally:
        gc.callbacks.remove(on_gc)
    figures = {
        "us_per_tick": round(cpu * 1e6 / ticks, 2),
        "wall_us_per_tick": round(wall * 1e6 / ticks, 2),
        "gc_wall_us_per_tick": round(collecting[0] * 1e6 / ticks, 2),
        "ticks": ticks,
        "warmup": warmup,
        "event_ticks_per_s": event_rate,
        "settle": settle,
        **tally.figures(ticks),
        "model": {
            name.removeprefix("HFL_MODEL__").lower(): v for name, v in MODEL_OVERRIDES.items()
        },
    }
    print(encode(figures).decode(), flush=True)
    return figures
