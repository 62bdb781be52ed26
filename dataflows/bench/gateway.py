"""`hfl bench gateway`: how heavy the gateway's recovery snapshots are.

Bytewax pickles every paper book (`dataflows.flows.gateway.BookState`) at the end of every
epoch (`recovery.snapshot_interval_s`), and a restarted gateway unpickles them all
before it reads on. The bench runs the gateway step `handle` in this process (no
broker) over the chaos suite's replay (ten instruments, 500 ticks per second of event
time, the chaos run's paper broker that may buffer every tick of the replay) and the
orders of a gate that trails the tick stream by `lead_s` of event time: one market
order every `ORDER_EVERY` ticks of an instrument, and after every `PROMISE_EVERY`
ticks the gate's promise `OrdersSent` up to the last tick it decided on. Every
`SNAPSHOT_EVERY_S` of the gate's event time every book is pickled as the flow does.

It runs twice on the same input interleaving:
- `trimmed`: with the promises, which let each book drop the ticks no order still to
  come can trade on (`InstrumentBook.orders_sent`);
- `full`: without them (the books buffer as before the promise trimmed them, and
  emit no progress markers).

Per run: snapshot size (all books together, kB) and the time to pickle it (ms), p50
and max, the time to unpickle the largest (a restart's resume), and the most ticks a
book held. `outputs_identical` says both runs emitted exactly the same order events
and fills; `outputs_sha256` digests them (codec JSON) so a change can show it fills
exactly as before. The JSON object is the last stdout line; progress goes to stderr.
"""

from __future__ import annotations

import hashlib
import pickle
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connectors.codec import dumps, encode, tick_from_object
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.gateway import PaperBrokerConfig, TickColumns
from dataflows.bench.pipeline import log
from dataflows.flows.gateway import BookState, GatewayInput, TickBatch, handle
from risk.domain import Fill, FillsThrough, Order, OrderEvent, OrdersSent, OrderType, Side, Tick

SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META", "NVDA", "JPM", "XOM", "JNJ", "WMT")
EVENT_RATE = 500.0  # ticks per second of event time, as the chaos replay
START_NS = 1_700_000_000_000_000_000
SEED = 2026
NS_PER_S = 1_000_000_000
ORDER_EVERY = 30  # ticks of an instrument per order: about the chaos runs' order rate
PROMISE_EVERY = 100  # ticks per gate batch, each ending with its promise
TICK_BATCH = 2_000  # records per Kafka poll (`kafka.batch_size`)
SNAPSHOT_EVERY_S = 2.0
ACCOUNT = "bench"


@dataclass(slots=True)
class Figures:
    """What one run measured."""

    sizes: list[int] = field(default_factory=list)
    pickle_ns: list[int] = field(default_factory=list)
    largest: list[bytes] = field(default_factory=list)  # the largest snapshot's pickles
    buffered_max: int = 0

    def summary(self) -> dict[str, Any]:
        started = time.perf_counter_ns()
        for blob in self.largest:
            pickle.loads(blob)
        unpickle_ns = time.perf_counter_ns() - started
        return {
            "snapshot_kb_p50": round(statistics.median(self.sizes) / 1024, 1),
            "snapshot_kb_max": round(max(self.sizes) / 1024, 1),
            "pickle_ms_p50": round(statistics.median(self.pickle_ns) / 1e6, 2),
            "pickle_ms_max": round(max(self.pickle_ns) / 1e6, 2),
            "unpickle_ms_largest": round(unpickle_ns / 1e6, 2),
            "buffered_ticks_max": self.buffered_max,
        }


def replay_ticks(count: int) -> list[Tick]:
    """The chaos suite's replay, decoded as the gateway decodes it."""
    config = SimulationConfig(
        symbols=SYMBOLS, seed=SEED, ticks_per_second=EVENT_RATE, start_ns=START_NS
    )
    records = simulate(config, count)
    return [tick_from_object(r | {"ts_init": r["ts_event"]}, None) for r in records]


def gate_output(ticks: list[Tick]) -> list[tuple[int, Order | OrdersSent]]:
    """What a gate deciding on `ticks` sends, each with the tick index it decided up to."""
    out: list[tuple[int, Order | OrdersSent]] = []
    seen: dict[str, int] = defaultdict(int)
    for index, tick in enumerate(ticks):
        seen[tick.instrument] += 1
        count = seen[tick.instrument]
        if count % ORDER_EVERY == 0:
            out.append((index, _order(tick, count)))
        if (index + 1) % PROMISE_EVERY == 0:
            out.append((index, _promise(tick.ts_event)))
    return out


def _order(tick: Tick, count: int) -> Order:
    side = Side.BUY if count // ORDER_EVERY % 2 else Side.SELL
    coid = f"{tick.instrument}-{count}"
    return Order(
        client_order_id=coid,
        signal_id=coid,
        account=ACCOUNT,
        instrument=tick.instrument,
        side=side,
        quantity=Decimal(10),
        order_type=OrderType.MARKET,
        limit_price=None,
        ts_event=tick.ts_event,
        ts_init=tick.ts_event,
    )


def _promise(through_ns: int) -> OrdersSent:
    return OrdersSent(
        progress_id=f"sent-{through_ns}",
        account=ACCOUNT,
        through_ns=through_ns,
        ts_event=through_ns,
        ts_init=through_ns,
    )


def arrivals(
    ticks: list[Tick], gate: list[tuple[int, Order | OrdersSent]], lead_ns: int
) -> Iterator[list[Order | OrdersSent | Tick]]:
    """The gateway's input in arrival order: tick polls while the tick stream is less
    than `lead_ns` ahead of the gate, else the gate's next batch up to its promise."""
    next_tick = 0
    batch: list[Order | OrdersSent | Tick] = []
    for index, item in gate:
        decided_ns = ticks[index].ts_event
        while next_tick < len(ticks) and ticks[next_tick].ts_event <= decided_ns + lead_ns:
            yield list(ticks[next_tick : next_tick + TICK_BATCH])
            next_tick += TICK_BATCH
        batch.append(item)
        if isinstance(item, OrdersSent):
            yield batch
            batch = []
    if rest := [*batch, *ticks[next_tick:]]:
        yield rest


def run(
    ticks: list[Tick], gate: list[tuple[int, Order | OrdersSent]], lead_ns: int, *, promises: bool
) -> tuple[list[OrderEvent | Fill], Figures]:
    """Feed the arrivals to one `BookState` per instrument; snapshot them as Bytewax does."""
    config = PaperBrokerConfig(
        tick_buffer_ns=int((len(ticks) / EVENT_RATE + 60) * NS_PER_S),
        max_buffered_ticks=len(ticks),
    )
    states: dict[str, BookState] = {name: BookState(config) for name in SYMBOLS}
    outputs: list[OrderEvent | Fill] = []
    figures = Figures()
    next_snapshot_ns = START_NS + int(SNAPSHOT_EVERY_S * NS_PER_S)
    for batch in arrivals(ticks, gate, lead_ns):
        for name, items in _by_instrument(batch, promises).items():
            produced = handle(states[name], items)
            outputs += [o for o in produced if not isinstance(o, FillsThrough)]
        if isinstance(batch[-1], OrdersSent) and batch[-1].through_ns >= next_snapshot_ns:
            next_snapshot_ns += int(SNAPSHOT_EVERY_S * NS_PER_S)
            _snapshot(states, figures)
    return outputs, figures


def _by_instrument(
    batch: list[Order | OrdersSent | Tick], promises: bool
) -> dict[str, list[GatewayInput]]:
    """Key a batch as the flow does: ticks in one batch per instrument with the poll's
    clock, the promise to every book."""
    keyed: dict[str, list[GatewayInput]] = defaultdict(list)
    ticks: dict[str, list[Tick]] = defaultdict(list)
    clock = None
    for item in batch:
        if isinstance(item, OrdersSent):
            if promises:
                for name in SYMBOLS:
                    keyed[name].append(item)
            continue
        if isinstance(item, Tick):
            ticks[item.instrument].append(item)
            clock = item.ts_event if clock is None else max(clock, item.ts_event)
        else:
            keyed[item.instrument].append(item)
    if clock is not None:
        for name in SYMBOLS:
            keyed[name].append(TickBatch(name, clock, TickColumns.of(name, ticks[name])))
    return keyed


def _snapshot(states: dict[str, BookState], figures: Figures) -> None:
    started = time.perf_counter_ns()
    blobs = [pickle.dumps(state, pickle.HIGHEST_PROTOCOL) for state in states.values()]
    figures.pickle_ns.append(time.perf_counter_ns() - started)
    size = sum(map(len, blobs))
    figures.sizes.append(size)
    if size >= max(figures.sizes):
        figures.largest = blobs
    held = (s.book.buffered_tick_count() for s in states.values() if s.book is not None)
    figures.buffered_max = max([figures.buffered_max, *held])


def bench_gateway(*, ticks: int, lead_s: float) -> dict[str, Any]:
    """Measure snapshots with and without the gate's promises; print the JSON last."""
    replay = replay_ticks(ticks)
    gate = gate_output(replay)
    lead_ns = int(lead_s * NS_PER_S)
    orders = sum(isinstance(item, Order) for _, item in gate)
    log(f"{len(replay)} ticks, {orders} orders, the ticks {lead_s} s ahead of the gate")
    results: dict[str, Any] = {"ticks": len(replay), "lead_s": lead_s}
    emitted = {}
    for name, promises in (("full", False), ("trimmed", True)):
        outputs, figures = run(replay, gate, lead_ns, promises=promises)
        emitted[name] = outputs
        results[name] = figures.summary() | {"snapshots": len(figures.sizes)}
        log(f"{name}: {results[name]}")
    digest = hashlib.sha256(b"".join(encode(o) for o in emitted["trimmed"])).hexdigest()
    results |= {
        "fills": sum(isinstance(o, Fill) for o in emitted["trimmed"]),
        "outputs_identical": emitted["full"] == emitted["trimmed"],
        "outputs_sha256": digest,
    }
    print(dumps(results).decode())
    return results
