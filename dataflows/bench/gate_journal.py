"""The journaled risk gate in this process: what the input journal adds per batch.

`python -m dataflows.bench.gate_journal [--batches N] [--batch-size B]`; progress on
stderr, the JSON object on the last stdout line.

A private broker (`dataflows.bench.pipeline.private_broker`) holds `hfl.gate_journal`.
The configured gate (config/risk.yaml) takes `batches` batches of `batch_size` signals
(`dataflows.bench.risk` makes them: the simulator's prices, long/flat/short, 50 per
second of event time) through `risk.engine.account.AccountEngine.handle`, the step
the trading flow runs, three ways on fresh gates, interleaved run by run so drift in
the machine's speed hits all three alike:

- `unjournaled`: `risk.fill_sync: arrival`, the gate's own work and nothing else;
- `sync`: journaled, each batch's record written and acknowledged before the batch is
  applied (`KafkaGateJournal.record`: produce, then flush), what the gate did before
  the write was overlapped;
- `overlapped`: journaled as the flow runs it, the record sent before the batch is
  applied and its acknowledgement awaited after (`KafkaGateJournal.send`).

Per way: wall microseconds per signal (the whole `handle` call over the batch, p50 and
p99 over batches), CPU microseconds per signal of the whole process (librdkafka's
threads included), and `held_ms`: p50/p99 per batch of the time `handle` spends
blocked on the journal (queueing the record plus waiting for the acknowledgement;
overlapped, `wait_ms_p50` is the wait alone, after the batch was applied).
The decisions are the same three ways (`same_decisions`): the journal changes when
they leave, never what they are.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from connectors import codec
from connectors.kafka.gate_journal import KafkaGateJournal
from dataflows.bench.pipeline import PORT_OFFSET, log, private_broker
from dataflows.bench.risk import NS_PER_S, _prices, _signals
from dataflows.flows.account import account_engine, make_account_state
from dataflows.settings import Settings, load_settings
from risk.domain import Signal
from risk.domain.decision import RiskDecision
from risk.engine.port import Acknowledgement, InputsRead
from risk.fill_sync import FillSyncMode

REPEATS = 3
WAYS = ("unjournaled", "sync", "overlapped")


class _Done:
    """An acknowledgement already in (`sync`: the write finished before the batch)."""

    __slots__ = ("_offset",)

    def __init__(self, offset: int) -> None:
        self._offset = offset

    def wait(self) -> int:
        return self._offset


class _Timed:
    """The Kafka input journal, written `sync` or `overlapped`, with the time `handle`
    spends blocked in it per batch (`held_ns`)."""

    def __init__(self, journal: KafkaGateJournal, *, overlapped: bool) -> None:
        self._journal = journal
        self._overlapped = overlapped
        self.held_ns: list[int] = []
        self.wait_ns: list[int] = []

    def read(self, account: str, start: int) -> InputsRead:
        return self._journal.read(account, start)

    def applied(self, account: str, command: Any, point: Any) -> Any:
        return self._journal.applied(account, command, point)

    def send(self, account: str, keys: list[str]) -> Acknowledgement:
        started = time.perf_counter_ns()
        if not self._overlapped:
            offset = self._journal.record(account, keys)
            self.held_ns.append(time.perf_counter_ns() - started)
            return _Done(offset)
        ack = self._journal.send(account, keys)
        sent_ns = time.perf_counter_ns() - started
        return _Waited(ack, sent_ns, self.held_ns, self.wait_ns)


class _Waited:
    __slots__ = ("_ack", "_held", "_sent_ns", "_waits")

    def __init__(
        self, ack: Acknowledgement, sent_ns: int, held: list[int], waits: list[int]
    ) -> None:
        self._ack, self._sent_ns, self._held, self._waits = ack, sent_ns, held, waits

    def wait(self) -> int:
        started = time.perf_counter_ns()
        offset = self._ack.wait()
        waited = time.perf_counter_ns() - started
        self._held.append(self._sent_ns + waited)
        self._waits.append(waited)
        return offset


def _one_run(
    settings: Settings, way: str, batches: list[list[Signal]], journal: KafkaGateJournal
) -> tuple[list[int], float, list[int], list[int], list[bytes]]:
    """Wall ns per batch, CPU ns of the process, held ns per batch, ns waited for the
    acknowledgement after the batch (overlapped), decisions encoded."""
    mode = FillSyncMode.ARRIVAL if way == "unjournaled" else FillSyncMode.JOURNAL
    run_settings = replace(settings, risk=replace(settings.risk, fill_sync=mode))
    inputs = None if way == "unjournaled" else _Timed(journal, overlapped=way == "overlapped")
    state = make_account_state(run_settings, journal.end())
    engine = account_engine(None, inputs)
    wall: list[int] = []
    decided: list[bytes] = []
    cpu_started = time.process_time_ns()
    for batch in batches:
        started = time.perf_counter_ns()
        out = engine.handle(state, list(batch))
        wall.append(time.perf_counter_ns() - started)
        decided.extend(codec.encode(o) for o in out if isinstance(o, RiskDecision))
    cpu = time.process_time_ns() - cpu_started
    if inputs is None:
        return wall, cpu, [], [], decided
    return wall, cpu, inputs.held_ns, inputs.wait_ns, decided


def bench_gate_journal(
    settings: Settings, root: Path, *, batches: int, batch_size: int
) -> dict[str, Any]:
    """Run the three ways `REPEATS` times each, interleaved; print and return the figures."""
    names, prices = _prices(settings, 400, NS_PER_S)
    t0 = 1_700_000_000 * NS_PER_S
    signals = _signals(names, prices, t0, batches * batch_size)
    chunks = [signals[i : i + batch_size] for i in range(0, len(signals), batch_size)]
    figures: dict[str, dict[str, list[float]]] = {w: {} for w in WAYS}
    decisions: dict[str, list[bytes]] = {}
    with private_broker(settings, root, "gatejournal", PORT_OFFSET + 3) as run:
        kafka = run.settings.kafka
        journal = KafkaGateJournal(kafka.bootstrap, kafka.topic_prefix, kafka.message_timeout_ms)
        journal.connect()
        journal.record("warm-up", ["-"])  # the producer id and the topic's metadata
        for repeat in range(REPEATS):
            for way in WAYS:
                wall, cpu, held, waits, decided = _one_run(run.settings, way, chunks, journal)
                per = figures[way]
                per.setdefault("wall_us_per_signal_p50", []).append(
                    float(np.percentile(wall, 50)) / batch_size / 1e3
                )
                per.setdefault("wall_us_per_signal_p99", []).append(
                    float(np.percentile(wall, 99)) / batch_size / 1e3
                )
                per.setdefault("cpu_us_per_signal", []).append(cpu / len(signals) / 1e3)
                if held:
                    per.setdefault("held_ms_p50", []).append(float(np.percentile(held, 50)) / 1e6)
                    per.setdefault("held_ms_p99", []).append(float(np.percentile(held, 99)) / 1e6)
                if waits:
                    per.setdefault("wait_ms_p50", []).append(float(np.percentile(waits, 50)) / 1e6)
                decisions[way] = decided
                log(f"run {repeat + 1}/{REPEATS} {way}: {statistics.median(wall) / 1e6:.2f} ms")
    result: dict[str, Any] = {
        way: {name: round(statistics.median(values), 2) for name, values in per.items()}
        for way, per in figures.items()
    }
    result.update(
        batches=batches,
        batch_size=batch_size,
        repeats=REPEATS,
        same_decisions=len({b"".join(d) for d in decisions.values()}) == 1,
    )
    print(codec.dumps(result).decode(), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    bench_gate_journal(
        load_settings(), Path.cwd(), batches=args.batches, batch_size=args.batch_size
    )


if __name__ == "__main__":
    main()
