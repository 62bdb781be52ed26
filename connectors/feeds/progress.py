"""A one-line progress reporter for feeds: records done, rate and percentage on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Rewrite one stderr line at most every `interval_s` with count, rate and % done.

    The rate is measured over the last interval, so a paced replay shows its live pace.
    """

    def __init__(
        self,
        total: int | None = None,
        *,
        label: str = "records",
        stream: TextIO | None = None,
        interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self._label = label
        self._stream = stream if stream is not None else sys.stderr
        self._interval_s = interval_s
        self._clock = clock
        self._last_s = self._started_s = clock()
        self._last_done = 0
        self._closed = False

    def advance(self, count: int = 1) -> None:
        """Count `count` more records; redraw the line when the interval has passed."""
        self.done += count
        now = self._clock()
        if now - self._last_s >= self._interval_s:
            self._draw(now)

    def close(self) -> None:
        """Draw the final figures (average rate over the whole run) and end the line.

        Closing twice (a `tracked` loop inside a `with`) prints the line once.
        """
        if self._closed:
            return
        self._closed = True
        now = self._clock()
        elapsed = now - self._started_s
        rate = self.done / elapsed if elapsed > 0 else 0.0
        self._stream.write("\r" + line(self._label, self.done, rate, self.total) + "\n")
        self._stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self, now: float) -> None:
        elapsed = now - self._last_s
        rate = (self.done - self._last_done) / elapsed if elapsed > 0 else 0.0
        self._stream.write("\r" + line(self._label, self.done, rate, self.total))
        self._stream.flush()
        self._last_s, self._last_done = now, self.done


def line(label: str, done: int, rate: float, total: int | None) -> str:
    """Format one progress line.

    >>> line("ticks", 1500, 2000.0, 3000)
    'ticks: 1,500 done, 2,000/s, 50.0%   '
    >>> line("ticks", 10, 4.0, None)
    'ticks: 10 done, 4/s   '
    """
    text = f"{label}: {done:,} done, {rate:,.0f}/s"
    if total:
        text += f", {100.0 * done / total:.1f}%"
    return text + "   "  # overwrite the tail of a longer previous line


def tracked(items: Iterable[T], progress: Progress) -> Iterator[T]:
    """Yield `items`, advancing `progress` once per item and closing it at the end."""
    with progress:
        for item in items:
            yield item
            progress.advance()
