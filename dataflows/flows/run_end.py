"""When a bounded trading flow may end: its market data is at its end, and its risk gate
holds nothing back.

Bytewax ends a dataflow once every partition of every input has finished (raised
`StopIteration`); a stateful step then gets `on_eof`. The trading flow's risk gate
holds decisions (in event time, `risk.fill_sync`) until the gateway's progress
markers on `hfl.fills` and `hfl.order_events` pass them, and the markers follow the
gate's own promises (`OrdersSent`), so they come only after the market data that
caused the decisions. Ending the flow when all inputs were idle for a window made the
end depend on how fast the gateway answered: a slow or restarting gateway left
decisions held at the end, and the end of input decided them without their fills.

So the end waits for the right thing instead of for a time:

1. The market-data input (`md.ticks`) ends at the feed's end-of-stream marker
   (`kafka.bounded`, `connectors.kafka.end`; the older idle end remains for callers
   that set `kafka.exit_when_idle_s`) and says so (`market_data_ended`). Model commands
   are read to their end at that point (`after_market_data`).
2. The gate reports after every batch whether its fill sync is settled: nothing held,
   and every marker past the last decision (`FillSync.settled`), so every report
   before the gate's last decision has been booked in event time. Journaled
   (`risk.fill_sync: journal`) the gate holds nothing for the gateway: it is settled
   unless a resume still replays its journal (`InputOrder.settled`), and the flow ends
   at its market-data marker once its inbound topics are at their end.
3. The inbound input (fills, order events, control, alerts) finishes at the end of its
   topics only once both hold (`may_end`); with it the flow ends, and `on_eof` books
   what is still in the fill sync.

The decisions, orders, positions and P&L therefore do not depend on when the
gateway's markers arrived, only on the input. If the gate makes no progress for the
run's guard (`kafka.end_guard_s` in a bounded run, else `risk.fill_sync_max_wait_ms`) of
wall time after the market data ended, the flow gives up, at the end of its inbound
topics or not: the gateway is gone, or the broker lost its log and nobody re-created
the inbound topics, which then never report their end again. It logs an error naming
what was still held, ends (its `on_eof` decides the held items without their fills, as
the gate does mid-run when the gateway lags) and `dataflows.ops.launch` exits with
`GAVE_UP_EXIT`, never 0.

What the end does not wait for: a report the gateway makes only after its markers
passed the gate's last decision, i.e. a fill of one of the last orders from a tick of
its instrument the gateway had not read yet when it marked. In a bounded replay the
gateway reads the ticks far ahead of the trading flow's models, so that does not
happen (200,000-tick chaos replays: the same 6,671 orders and 14,990 fills, every
table equal); should it, the fill is in `hfl.fills` and ClickHouse, but this run's
last positions and P&L do not book it. Closing that gap needs the gateway to mark
past the end of the market data, which it cannot know.

This is a signal inside one process: the gate's step and both inputs must run in the
same process, as every flow here does (one worker, `dataflows.ops.process`). The race
this leaves is nil in practice: the market-data input ends only after its whole
process saw no data for the idle window, by when the single worker has long carried
the last records through the model step to the gate.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from connectors.telemetry.log import log_event

LOG = logging.getLogger("hfl.trading.end")
GAVE_UP_EXIT = 3


class _Outcome:
    """Whether a run in this process ended by giving up (read by `dataflows.ops.launch`)."""

    gave_up = False


def gave_up() -> bool:
    """True when this process's bounded run ended without its gate settling."""
    return _Outcome.gave_up


class Settling(Protocol):
    """What the gate reports after a batch: a `risk.fill_sync.FillSync` (event time) or
    `InputOrder` (journaled; settled once a resume's replay is done)."""

    def __len__(self) -> int:
        """Items waiting."""
        ...

    def settled(self) -> bool:
        """True when nothing is held back."""
        ...


class RunEnd:
    """The end condition of one bounded trading flow (see the module docs).

    Args:
        give_up_s: wall time without progress of the gate, after the market data
            ended, after which the run ends anyway, loudly.
    """

    def __init__(self, give_up_s: float) -> None:
        self._give_up_s = give_up_s
        self._ended_at: float | None = None
        self._settled = True
        self._waiting = 0
        self._progress_at = time.monotonic()

    def market_data_ended(self) -> None:
        """The market-data input finished: no further decision will come from it."""
        self._ended_at = time.monotonic()
        log_event(LOG, "market data ended", settled=self._settled, waiting=self._waiting)

    def note_gate(self, sync: Settling | None) -> None:
        """Record the gate's fill sync or journal replay after a batch
        (`AccountState.settling`; None: it books in arrival order)."""
        waiting = 0 if sync is None else len(sync)
        if waiting != self._waiting:
            self._progress_at = time.monotonic()
        self._waiting = waiting
        self._settled = sync is None or sync.settled()

    def after_market_data(self, at_end: bool) -> bool:
        """True once the market data ended and the input is at its end (inputs that
        only steer the run, e.g. model commands)."""
        return self._ended_at is not None and at_end

    def may_end(self, at_end: bool) -> bool:
        """True once the market data ended and the gate settled with the inbound topics
        read to their end (`at_end`), or the gate stalled for `give_up_s`."""
        if self._ended_at is None:
            return False
        if self._settled and at_end:
            log_event(LOG, "run ends: market data ended and the gate holds nothing back")
            return True
        stalled_s = time.monotonic() - max(self._ended_at, self._progress_at)
        if stalled_s < self._give_up_s:
            return False
        _Outcome.gave_up = True
        LOG.error(
            "run ends WITHOUT the gateway: %d held items and reports waited %.1f s after the"
            " market data ended with no progress (risk.fill_sync_max_wait_ms); the held"
            " decisions are made without their fills and the flow exits %d",
            self._waiting,
            stalled_s,
            GAVE_UP_EXIT,
        )
        return True
