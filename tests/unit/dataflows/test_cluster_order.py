"""The trading flow on several workers: explicit key placement and one order into the gate."""

from __future__ import annotations

import threading
from decimal import Decimal

import bytewax.operators as op
import pytest
from bytewax.dataflow import Dataflow
from bytewax.testing import TestingSource, cluster_main

from dataflows.flows.routing import assign_keys, key_for, worker_of
from dataflows.flows.sequence import END_NS, Progress, Sequencer
from dataflows.settings import BytewaxSettings
from risk.domain import Signal

KEYS = [f"K{i}" for i in range(30)] + ["AAPL", "MSFT", "paper-1", "pool", "AMZN~3", "x" * 21]


@pytest.mark.parametrize("workers", [2, 3])
def test_worker_of_is_where_bytewax_runs_each_key(workers: int) -> None:
    """Bytewax's own placement (threads of one process, `cluster_main`) groups the keys
    exactly as `worker_of` predicts."""
    seen: dict[str, int] = {}
    flow = Dataflow("placement")
    keyed = op.input("in", flow, TestingSource([(key, 1) for key in KEYS]))
    placed = op.stateful_map("where", keyed, lambda state, value: (None, threading.get_ident()))
    op.inspect("note", placed, lambda step, item: seen.__setitem__(item[0], item[1]))
    cluster_main(flow, [], 0, worker_count_per_proc=workers)
    predicted: dict[int, set[int]] = {}
    for key, thread in seen.items():
        predicted.setdefault(thread, set()).add(worker_of(key, workers))
    assert len(seen) == len(KEYS)
    assert sorted(len(found) for found in predicted.values()) == [1] * workers


def test_assignment_is_balanced_and_one_worker_keeps_the_names() -> None:
    names = ("MSFT", "AAPL", "AMZN", "GOOG", "META")
    keys = assign_keys(names, 2)
    per_worker = [sum(worker_of(key, 2) == w for key in keys.values()) for w in (0, 1)]
    assert per_worker == [3, 2]
    assert [worker_of(keys[name], 2) for name in sorted(names)] == [0, 1, 0, 1, 0]
    assert all(key.split("~")[0] == name for name, key in keys.items())
    assert assign_keys(names, 1) == {name: name for name in names}
    assert worker_of(key_for("paper-1", 0, 3), 3) == 0


def test_cluster_size_from_settings() -> None:
    assert BytewaxSettings().workers() == 1
    assert BytewaxSettings(workers_per_process=2).workers() == 2
    assert (
        BytewaxSettings(process_id=1, addresses=("a:1", "b:1"), workers_per_process=2).workers()
        == 4
    )


def _signal(ts: int, instrument: str) -> Signal:
    """A signal with only what the sequencer reads: its type, time and instrument."""
    fields = {name: None for name in Signal.__dataclass_fields__}
    event = object.__new__(Signal)
    for name, value in {**fields, "ts_init": ts, "instrument": instrument}.items():
        object.__setattr__(event, name, value)
    return event


def test_events_wait_for_every_partition_and_key_then_leave_in_time_order() -> None:
    sequencer = Sequencer(2, ["A", "B"])
    fill = Decimal(1)  # anything that is not an instrument event passes at once
    passed, released = sequencer.add([_signal(20, "B"), fill, Progress(0, "B", 25)])
    assert passed == [fill] and released == []
    _, released = sequencer.add([_signal(10, "A"), Progress(0, "A", 30), Progress(1, "A", 30)])
    assert released == []  # (1, B) has no mark yet
    _, released = sequencer.add([Progress(1, "B", 15)])
    assert [(e.ts_init, e.instrument) for e in released] == [(10, "A")]
    assert not sequencer.all_ended()
    _, released = sequencer.add([Progress(p, k, END_NS) for p in (0, 1) for k in "AB"])
    assert [(e.ts_init, e.instrument) for e in released] == [(20, "B")]
    assert sequencer.all_ended()


def test_the_same_events_in_any_arrival_order_leave_in_one_order() -> None:
    events = [_signal(ts, name) for ts in (5, 7, 7, 9) for name in ("A", "B")]
    ends = [Progress(0, k, END_NS) for k in "AB"]
    orders = []
    for arrival in (events, events[::-1], events[1::2] + events[::2]):
        sequencer = Sequencer(1, ["A", "B"])
        _, first = sequencer.add(list(arrival))
        _, rest = sequencer.add(ends)
        orders.append([(e.ts_init, e.instrument) for e in first + rest])
    assert orders[0] == orders[1] == orders[2]
    assert orders[0] == sorted(orders[0])


def test_a_cluster_process_gets_its_index_and_every_address() -> None:
    from dataclasses import replace
    from pathlib import Path

    from dataflows.ops.process import flow_command
    from dataflows.settings import Settings

    settings = Settings()
    assert "-i" not in flow_command("trading", settings, Path("r"))
    cluster = replace(settings, bytewax=BytewaxSettings(process_id=1, addresses=("a:1", "b:2")))
    command = flow_command("trading", cluster, Path("r"))
    assert command[command.index("-i") + 1] == "1"
    assert command[command.index("-a") + 1] == "a:1;b:2"


def test_a_stalled_watermark_releases_after_the_hold_but_a_moving_one_does_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataflows.flows import sequence

    now = [0]
    monkeypatch.setattr(sequence.time, "monotonic_ns", lambda: now[0])
    sequencer = Sequencer(1, ["A", "B"], max_hold_s=1.0)
    _, out = sequencer.add([_signal(10, "A"), Progress(0, "A", 5)])
    assert out == []
    now[0] = 2 * 10**9  # (0, B) never marked: stalled for 2 s
    _, out = sequencer.add([_signal(11, "A")])
    assert [e.ts_init for e in out] == [10, 11]
    busy = Sequencer(1, ["A"], max_hold_s=1.0)
    for step in range(1, 6):
        now[0] += 10**9  # 1 s between batches, but the watermark moves every time
        _, out = busy.add([_signal(step * 10 + 5, "A"), Progress(0, "A", step * 10)])
        assert [e.ts_init for e in out] == ([] if step == 1 else [step * 10 - 5])
