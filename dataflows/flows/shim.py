"""The one `StatefulBatchLogic` the flows use: it only delegates to a pure state object.

Snapshots are versioned. Each stateful step declares a state version, bumped whenever
the shape of its state changes; a snapshot is `(version, pickled state)`, so Bytewax
only ever unpickles an int and bytes. On resume the version is compared *before* the
state is unpickled: a store written by code with another state layout fails closed
with `StateVersionError` naming the step and both versions, instead of an obscure
unpickling or attribute error deep in the state, or worse, a state that loads but
means something else.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from bytewax.operators import StatefulBatchLogic

from connectors.telemetry import stage
from risk.domain.error import HflError

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")

Snapshot = tuple[int, bytes]


class StateVersionError(HflError):
    """A recovery snapshot holds state of another version than this code's."""


class Delegate(StatefulBatchLogic[V, W, Snapshot], Generic[V, W, S]):
    """Hand each batch of values to `handle(state, values)` and emit what it returns.

    The state object is plain, picklable and bounded; the snapshot is its pickle,
    tagged with `version`.
    """

    def __init__(
        self,
        state: S,
        handle: Callable[[S, list[V]], Iterable[W]],
        version: int,
        finish: Callable[[S], Iterable[W]] | None = None,
        step: str = "",
    ) -> None:
        self._state = state
        self._handle = handle
        self._version = version
        self._finish = finish
        self._step = step

    def on_batch(self, values: list[V]) -> tuple[Iterable[W], bool]:
        if not stage.enabled():
            return self._handle(self._state, values), StatefulBatchLogic.RETAIN
        started = stage.now()
        out = self._handle(self._state, values)
        stage.record(self._step, started, stage.now(), len(values))
        return out, StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[W], bool]:
        """At the end of a bounded input, emit what `finish` still held back."""
        done = () if self._finish is None else self._finish(self._state)
        return done, StatefulBatchLogic.RETAIN

    def snapshot(self) -> Snapshot:
        started = stage.now()
        blob = pickle.dumps(self._state, pickle.HIGHEST_PROTOCOL)
        stage.record(self._step + ".snapshot", started, stage.now(), 1)
        return self._version, blob


def restore(snapshot: object, step: str, version: int) -> object:
    """The state in `snapshot` of `step`, if it has state version `version`.

    Raises:
        StateVersionError: the snapshot has another version, or none (written before
            snapshots were versioned); nothing is unpickled then.
    """
    stored: object = "none (unversioned)"
    if isinstance(snapshot, tuple) and len(snapshot) == 2 and isinstance(snapshot[1], bytes):
        stored, blob = snapshot
        if stored == version:
            return pickle.loads(blob)
    msg = (
        f"recovery snapshot of step {step!r} has state version {stored}, this code expects"
        f" {version}: the store was written by code whose state of this step has another"
        f" shape, and resuming from it is refused. To start over, stop the flows and move"
        f" their recovery stores (under var/recovery by default) aside: `hfl up` creates"
        f" fresh ones and the flows replay their input from the start of the log, the"
        f" store absorbing rows it already has (`hfl recover --confirm` does this after a"
        f" lost broker log). Models can warm start from a checkpoint"
        f" (model.warm_start: latest)."
    )
    raise StateVersionError(msg)


def delegate(
    make: Callable[[], S],
    handle: Callable[[S, list[V]], Iterable[W]],
    *,
    step: str,
    version: int,
    finish: Callable[[S], Iterable[W]] | None = None,
) -> Callable[[Snapshot | None], Delegate[V, W, S]]:
    """Build a `stateful_batch` builder: fresh state from `make`, or the resumed one.

    `step` ("flow.step_id") and `version` (the state version of this code) identify
    the snapshots; a resumed snapshot of another version raises `StateVersionError`.
    `finish(state)` is what the step emits at the end of a bounded input.
    """

    def build(resume_state: Snapshot | None) -> Delegate[V, W, S]:
        if resume_state is None:
            return Delegate(make(), handle, version, finish, step=step)
        state: S = restore(resume_state, step, version)  # type: ignore[assignment]
        return Delegate(state, handle, version, finish, step=step)

    return build
