"""Operator commands at a reproducible point among the gate's decisions.

The rule (booking in event time): the gate numbers the items it decides (signals,
bars, drift events, released in event-time order). A command read live is applied at
once, before every decision not yet made, so a kill is immediate; the gate journals
where it applied it (`CommandPoint`: after how many decisions, at which event time)
beside the command's effects. A replay after a crash knows those points from the
journal (`replay`) and applies each command after the same number of decisions and
at the same event time, however early or late the command is read again: decisions
up to the point wait for it (`limit`), a command read early waits for its point
(`due`). Commands the snapshot already holds are not replayed by Bytewax, and are
remembered so their journal entries are skipped. A live command read while replayed
ones still wait is applied right after the last of them (`waiting`): decisions up to
that point may have left before the crash, so no new command may come before it.

The journal must be durable before any effect of a live command leaves the gate (the
caller writes it synchronously, `written`); otherwise a crash could leave effects
downstream and no point to replay them at.

Bounded resume: `journal_from` is the journal offset below which every entry is for a
command this state has applied. A resume reads the journal only from there: entries
below belong to commands the snapshot holds, those above to commands applied after
it, the only ones a replay must place. It moves on when the gate writes an entry and
no replayed command is still waiting, and when the last waiting one is applied.

>>> log = CommandLog[str]()
>>> log.replay([CommandPoint("k1", after_decisions=2, effective_ns=50)], end=1)
>>> log.limit(), log.arrive("k1", "kill 1"), log.journal_from
(2, False, 0)
>>> log.count(2)
>>> log.due()
[('kill 1', CommandPoint(command_id='k1', after_decisions=2, effective_ns=50))]
>>> log.journal_from
1
>>> log.limit(), log.arrive("k2", "kill 2"), log.applied("k2", 60)
(None, True, CommandPoint(command_id='k2', after_decisions=2, effective_ns=60))
>>> log.written(offset=1)
>>> log.arrive("k2", "kill 2 again"), log.journal_from
(False, 2)

A live command read while a replayed one waits for its point comes after it:

>>> log.replay([CommandPoint("k3", 3, 70)], end=3)
>>> log.arrive("k4", "kill 4"), log.waiting()
(False, [])
>>> log.arrive("k3", "kill 3"), log.count(1), [c for c, _ in log.due()], log.waiting()
(False, None, ['kill 3'], ['kill 4'])

A resumed snapshot skips the journal's points from before it:

>>> log.replay([CommandPoint("k0", 1, 40), CommandPoint("k2", 2, 60)], end=2)
>>> log.limit()
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

C = TypeVar("C")


@dataclass(frozen=True, slots=True)
class CommandPoint:
    """Where a command took effect: after `after_decisions` items, at `effective_ns`."""

    command_id: str
    after_decisions: int
    effective_ns: int


class CommandLog(Generic[C]):
    """The gate's decision count, the commands it applied and those a replay must place.

    Bounded: it remembers the last `remember` applied command ids (operator commands
    come at human rates), and only replay points after the snapshot. `journal_from`
    starts at the journal's end when the gate is new (see the module docs).
    """

    __slots__ = (
        "_applied",
        "_parked",
        "_points",
        "_read_end",
        "_waiting",
        "decided",
        "journal_from",
    )

    def __init__(self, remember: int = 1_000, journal_from: int = 0) -> None:
        self.decided = 0
        self.journal_from = journal_from
        self._read_end = journal_from
        self._applied: deque[str] = deque(maxlen=remember)
        self._points: dict[str, CommandPoint] = {}
        self._parked: dict[str, C] = {}
        self._waiting: dict[str, C] = {}

    def count(self, decisions: int) -> None:
        """Note that `decisions` more items were decided."""
        self.decided += decisions

    def replay(self, points: Iterable[CommandPoint], end: int) -> None:
        """Take the journal's points read from `journal_from` up to offset `end`, in the
        order the commands were applied; those of commands already applied are skipped."""
        applied, decided = set(self._applied), self.decided
        self._points = {
            p.command_id: p
            for p in points
            # Before the snapshot: a point behind its decisions, or a command it holds.
            if p.after_decisions >= decided and p.command_id not in applied
        }
        self._read_end = max(self._read_end, end)
        self._advance()

    def written(self, offset: int) -> None:
        """Note that the entry of the command applied last is durable at `offset`."""
        self._read_end = max(self._read_end, offset + 1)
        self._advance()

    def _advance(self) -> None:
        # Every entry read or written is applied once no replayed command waits.
        if not self._points:
            self.journal_from = self._read_end

    def limit(self) -> int | None:
        """How many items may still be decided before the next replayed command; None: any."""
        if not self._points:
            return None
        first = next(iter(self._points.values()))
        return first.after_decisions - self.decided

    def arrive(self, command_id: str, command: C) -> bool:
        """True to apply `command` now (a live one); False when it is a replayed one,
        parked for `due`, a live one that must wait for them (`waiting`), or one
        applied already."""
        if command_id in self._points:
            self._parked[command_id] = command
            return False
        if command_id in self._applied:
            return False
        if self._points:
            self._waiting[command_id] = command
            return False
        return True

    def waiting(self) -> list[C]:
        """Return (and forget) the live commands read while replayed ones waited, in
        arrival order, once none waits any more; apply them live."""
        if self._points:
            return []
        live, self._waiting = list(self._waiting.values()), {}
        return live

    def due(self) -> list[tuple[C, CommandPoint]]:
        """Return (and forget) the parked commands whose point the decisions reached, in
        the journal's order, up to the first one not read yet."""
        ready = []
        for command_id, point in self._points.items():
            if point.after_decisions > self.decided or command_id not in self._parked:
                break
            ready.append(command_id)
        self._applied.extend(ready)
        due = [(self._parked.pop(c), self._points.pop(c)) for c in ready]
        self._advance()
        return due

    def applied(self, command_id: str, effective_ns: int) -> CommandPoint:
        """Record a command applied live now; return the point to journal."""
        self._applied.append(command_id)
        return CommandPoint(command_id, self.decided, effective_ns)
