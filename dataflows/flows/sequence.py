"""The trading flow on several Bytewax workers: one order into the account gate.

With one `md.ticks` partition on one worker, the model step sees the ticks in log order
and hands the gate each batch's events sorted by their tick's time, so the gate sees
the same sequence on every run. With several partitions or several workers (processes
of a Bytewax cluster), each instrument's models run on the worker its key is assigned
to (`dataflows.flows.routing.assign_keys`), and the events of different instruments
reach the gate's worker in whatever order the workers happen to run: cross-instrument
limits (gross exposure, correlation, self-match against working orders) would then
depend on timing. The gate stays in one place (worker 0), and this module gives it
one deterministic order again:

- The tick decoder sends, after each batch, a `Progress` mark per `md.ticks` partition
  it read to every model key: "everything of partition p up to tick time t has been
  sent to you". At a partition's end (the feed's end-of-stream marker, read in band,
  `connectors.kafka.source.EndHooks.in_band`) the mark is `END_NS`.
- The model step passes each mark on after the events of the ticks before it; Bytewax
  keeps items in order between two workers, so a mark reaches the gate after them.
- `Sequenced` wraps the gate's step: it holds instrument events (signals, 1 s bars,
  drift) and releases, in (tick time, instrument, arrival) order, those at or below the
  lowest mark over every (partition, model key) pair. Fills, order events, control and
  alerts pass straight through (the gate books them in event time, `risk.fill_sync`).
  Once every pair is at `END_NS`, all is released and the run's market data has ended
  (`dataflows.flows.run_end.RunEnd.market_data_ended`) — known in the gate's process,
  wherever the ticks were read.

Assumption: tick time (`ts_init`) does not decrease within a partition (one producer
per partition does that). A partition that stays empty holds the gate until it ends;
outside a bounded run, when the watermark has not moved for `max_hold_s` of wall time
while events are held, they are released anyway (the same fallback as the fill sync's
for a failing gateway; order then follows arrival until the watermark moves again).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bytewax.operators import StatefulBatchLogic

from risk.domain import Bar, DriftDetected, Signal

END_NS = 2**63 - 1
InstrumentEvent = Signal | Bar | DriftDetected


@dataclass(frozen=True, slots=True)
class Progress:
    """Model key `key` has been sent every tick of `md.ticks` partition `partition` up
    to tick time `through_ns` (`END_NS`: the partition ended)."""

    partition: int
    key: str
    through_ns: int


@dataclass(slots=True)
class SequencerState:
    """What the sequencer holds: marks per (partition, key) and the held events."""

    marks: dict[tuple[int, str], int] = field(default_factory=dict)
    held: list[tuple[int, str, int, Any]] = field(default_factory=list)
    arrivals: int = 0
    ended: bool = False


class Sequencer:
    """Release instrument events in one order whatever the workers' timing (module docs).

    Args:
        partitions: the `md.ticks` partitions (all of them, in every process).
        keys: the model step's keys (one per instrument, or the pooled key).
        max_hold_s: wall time after which a held event is released anyway; 0: never.
    """

    def __init__(
        self,
        partitions: int,
        keys: Iterable[str],
        max_hold_s: float = 0.0,
        state: SequencerState | None = None,
    ) -> None:
        self.pairs = frozenset((p, k) for p in range(partitions) for k in keys)
        self.state = state or SequencerState()
        self._max_hold_ns = int(max_hold_s * 1e9)
        self._mark = -1
        self._moved_at = time.monotonic_ns()

    def watermark(self) -> int:
        """The lowest mark over every (partition, key) pair; -1 while one has none."""
        marks = self.state.marks
        if len(marks) < len(self.pairs):
            return -1
        return min(marks[pair] for pair in self.pairs)

    def add(self, items: list[Any]) -> tuple[list[Any], list[Any]]:
        """Take a batch; return (items to pass now, instrument events released in order)."""
        state = self.state
        passed: list[Any] = []
        for item in items:
            kind = type(item)
            if kind is Progress:
                pair = (item.partition, item.key)
                if item.through_ns > state.marks.get(pair, -1):
                    state.marks[pair] = item.through_ns
            elif kind is Signal or kind is Bar or kind is DriftDetected:
                state.arrivals += 1
                heapq.heappush(state.held, (item.ts_init, item.instrument, state.arrivals, item))
            else:
                passed.append(item)
        return passed, self._release()

    def _release(self) -> list[Any]:
        state = self.state
        mark = self.watermark()
        out = []
        held = state.held
        while held and held[0][0] <= mark:
            out.append(heapq.heappop(held)[-1])
        if self._max_hold_ns:
            # A stall, not a busy stream: the fallback fires only when the watermark has
            # not moved for `max_hold_s` while something is held.
            now = time.monotonic_ns()
            if mark != self._mark or not held:
                self._mark, self._moved_at = mark, now
            elif now - self._moved_at > self._max_hold_ns:
                out.extend(heapq.heappop(held)[-1] for _ in range(len(held)))
                self._moved_at = now
        return out

    def all_ended(self) -> bool:
        """True once every partition ended for every key (nothing more will come)."""
        return self.watermark() == END_NS

    def drain(self) -> list[Any]:
        """Everything still held, in order (end of input)."""
        held = self.state.held
        return [heapq.heappop(held)[-1] for _ in range(len(held))]


class Sequenced(StatefulBatchLogic[Any, Any, Any]):
    """The gate's step behind a `Sequencer`; its snapshot holds both states."""

    def __init__(
        self,
        inner: StatefulBatchLogic[Any, Any, Any],
        sequencer: Sequencer,
        ended: Callable[[], None],
    ) -> None:
        self._inner = inner
        self._sequencer = sequencer
        self._ended = ended
        self._told = False

    def on_batch(self, values: list[Any]) -> tuple[Iterable[Any], bool]:
        passed, released = self._sequencer.add(values)
        out: list[Any] = []
        batch = passed + released
        if batch:
            produced, _ = self._inner.on_batch(batch)
            out.extend(produced)
        if not self._told and self._sequencer.all_ended():
            self._told = True
            self._ended()
        return out, False

    def on_eof(self) -> tuple[Iterable[Any], bool]:
        out: list[Any] = []
        rest = self._sequencer.drain()
        if rest:
            produced, _ = self._inner.on_batch(rest)
            out.extend(produced)
        produced, discard = self._inner.on_eof()
        out.extend(produced)
        return out, discard

    def snapshot(self) -> Any:
        return (self._inner.snapshot(), self._sequencer.state)


def sequenced_gate(
    build: Callable[[Any], StatefulBatchLogic[Any, Any, Any]],
    partitions: int,
    keys: Iterable[str],
    ended: Callable[[], None],
    max_hold_s: float = 0.0,
) -> Callable[[Any], Sequenced]:
    """Wrap the `stateful_batch` builder `build` of the gate in a `Sequenced` step."""
    keys = tuple(keys)

    def builder(resume_state: Any) -> Sequenced:
        inner_state, state = (None, None) if resume_state is None else resume_state
        sequencer = Sequencer(partitions, keys, max_hold_s, state)
        return Sequenced(build(inner_state), sequencer, ended)

    return builder
