"""The one `StatefulBatchLogic` the flows use: it only delegates to a pure state object."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from bytewax.operators import StatefulBatchLogic

S = TypeVar("S")
V = TypeVar("V")
W = TypeVar("W")


class Delegate(StatefulBatchLogic[V, W, S], Generic[V, W, S]):
    """Hand each batch of values to `handle(state, values)` and emit what it returns.

    The state object itself is the snapshot: it is plain, picklable and bounded, and
    it is rebuilt only from the resume state Bytewax passes to the builder.
    """

    def __init__(
        self,
        state: S,
        handle: Callable[[S, list[V]], Iterable[W]],
        finish: Callable[[S], Iterable[W]] | None = None,
    ) -> None:
        self._state = state
        self._handle = handle
        self._finish = finish

    def on_batch(self, values: list[V]) -> tuple[Iterable[W], bool]:
        return self._handle(self._state, values), StatefulBatchLogic.RETAIN

    def on_eof(self) -> tuple[Iterable[W], bool]:
        """At the end of a bounded input, emit what `finish` still held back."""
        done = () if self._finish is None else self._finish(self._state)
        return done, StatefulBatchLogic.RETAIN

    def snapshot(self) -> S:
        return self._state


def delegate(
    make: Callable[[], S], handle: Callable[[S, list[V]], Iterable[W]]
) -> Callable[[S | None], Delegate[V, W, S]]:
    """Build a `stateful_batch` builder: fresh state from `make`, or the resumed one."""

    def build(resume_state: S | None) -> Delegate[V, W, S]:
        return Delegate(make() if resume_state is None else resume_state, handle)

    return build
