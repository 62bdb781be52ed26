"""What the engine needs from the outside world, as small Protocols.

The Bytewax step passes real adapters (the system clock, the Kafka journal, logs and
metrics); tests pass fakes implementing the same Protocols.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from risk.command_log import CommandPoint
from risk.domain import AuditEvent, ControlCommand, LimitCommand, Signal
from risk.domain.decision import RiskDecision

Command = ControlCommand | LimitCommand
"""Operator commands: applied at once, at a journaled point in event time."""


class Clock(Protocol):
    """Wall time, read only by the timer that stops waiting for a failed gateway."""

    def now_ns(self) -> int:
        """Nanoseconds since the epoch."""
        ...


@dataclass(frozen=True, slots=True)
class JournalRead:
    """The points of one account read from an offset, the end, and how many records."""

    points: list[CommandPoint]
    end: int
    records: int


class CommandJournal(Protocol):
    """Where the gate journals the points at which it applied operator commands."""

    def read(self, account: str, start: int) -> JournalRead:
        """`account`'s points from offset `start` on."""
        ...

    def record(self, account: str, command: Command, point: CommandPoint) -> tuple[int, AuditEvent]:
        """Write durably that `account` applied `command` at `point`; return the
        entry's offset and the audit event written.

        Raises:
            DeliveryFailedError: not acknowledged; the command's effects must not leave.
        """
        ...


@dataclass(frozen=True, slots=True)
class InputsRead:
    """The keys of one account's consumed inputs read from an offset, in order, and the end."""

    keys: list[str]
    end: int
    records: int


class Acknowledgement(Protocol):
    """A journal write in flight (`InputJournal.send`)."""

    def wait(self) -> int:
        """Block until the write is durable; return its offset.

        Raises:
            DeliveryFailedError: not acknowledged; the batch's effects must not leave.
        """
        ...


class InputJournal(Protocol):
    """Where the gate journals, per batch, the order in which it consumed its inputs
    (`risk.fill_sync.InputOrder`)."""

    def read(self, account: str, start: int) -> InputsRead:
        """`account`'s input keys from offset `start` on, in journal order."""
        ...

    def send(self, account: str, keys: list[str]) -> Acknowledgement:
        """Start writing that `account` consumes `keys`, in order, without waiting: the
        gate sends a batch's order before applying it and waits for the acknowledgement
        only before the batch's effects leave, so the write overlaps the work.

        Raises:
            DeliveryFailedError: refused at once, or an earlier write failed.
        """
        ...

    def applied(self, account: str, command: Command, point: CommandPoint) -> AuditEvent:
        """The audit event saying `account` applied `command` (what operators wait for)."""
        ...


class Telemetry(Protocol):
    """Logs and metrics of the engine's work (never read back: no decision depends on them)."""

    def decided(self, signal: Signal, decision: RiskDecision) -> None:
        """A decision was made on `signal`."""
        ...

    def note(self, message: str, *events: object, **fields: object) -> None:
        """Something routine happened to `events` (a fill booked, a command applied)."""
        ...

    def warn(self, message: str) -> None:
        """Something an operator should see happened (a lag, a start halt)."""
        ...
