"""The risk gate's input journal on `hfl.gate_journal` (`risk.fill_sync.InputOrder`).

Journaled (`risk.fill_sync: journal`, and `auto` in a live run; docs/reliability.md)
the gate decides on arrival, never waiting for the gateway's progress markers, and
makes that order reproducible:
per batch it writes one record listing in order the keys of the inputs it applies
(`s<signal_id>`, `f<fill_id>`, `e<event_id>`, `c<command_id>`, `a<alert_id>`,
`d<drift_id>`, `b<instrument>@<interval>@<ts>`): sent before the batch is applied,
acknowledged by the broker (idempotent checked producer) before the batch's effects
leave, so the write overlaps the gate's work and is still durable first (the
operator-command journal, `connectors.kafka.journal`, does the same for commands,
synchronously). A resume
reads the records from the offset its snapshot keeps and applies the inputs Bytewax
delivers again in that order, then goes on live.

Only the gate writes here, keyed by account; a record is about 40 bytes per input.
"""

from __future__ import annotations

import logging

from connectors.codec import encode
from connectors.kafka.journal import JournalTopic, journal_entry
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.topic import GATE_JOURNAL
from risk.command_log import CommandPoint
from risk.domain import AuditEvent, ControlCommand, LimitCommand
from risk.engine.port import Acknowledgement, InputsRead
from risk.fill_sync import JournaledInputs

LOG = logging.getLogger("hfl.trading.gate_journal")


class _Acknowledgement:
    """The gate journal's write in flight: the writer has nothing else outstanding (one
    record per batch, awaited before the next is sent), so its flush is this record's."""

    __slots__ = ("_writer",)

    def __init__(self, writer: CheckedProducer) -> None:
        self._writer = writer

    def wait(self) -> int:
        self._writer.flush()
        return self._writer.last_offset


class KafkaGateJournal(JournalTopic):
    """The input journal of the configured namespace; connects on first use (the
    engine's `risk.engine.port.InputJournal`)."""

    def __init__(self, bootstrap: str, topic_prefix: str, message_timeout_ms: int) -> None:
        super().__init__(
            bootstrap, topic_prefix + GATE_JOURNAL, message_timeout_ms, "hfl-gate-journal"
        )

    def read(self, account: str, start: int) -> InputsRead:
        """The input keys of `account` from offset `start` to the end, in journal order.

        Raises:
            TimeoutError, OSError: the journal could not be read, or lost the records
                from `start`; resuming without it could decide in another order than
                before the crash, so the flow stops.
        """
        records, end = self._records_from(start, "decide in another order than before the crash")
        keys = [key for r in records if r.get("account") == account for key in r["inputs"]]
        if records:
            LOG.info(
                "gate journal: %d records, %d inputs read from offset %d",
                len(records),
                len(keys),
                start,
            )
        return InputsRead(keys, end, len(records))

    def send(self, account: str, keys: list[str]) -> Acknowledgement:
        """Start writing that `account` consumes `keys` in order (queued; librdkafka's
        own thread sends it at once, `linger.ms` 0); `wait()` on the result blocks until
        the broker acknowledged it and returns its offset.

        Raises:
            DeliveryFailedError: refused at once, or an earlier write was not
                acknowledged.
        """
        value = encode(JournaledInputs(account=account, inputs=tuple(keys)))
        writer = self._writer()
        writer.produce(OutboundRecord(self._topic, account.encode(), value))
        return _Acknowledgement(writer)

    def record(self, account: str, keys: list[str]) -> int:
        """Write that `account` consumed `keys` in order; return the offset once
        acknowledged (`send` and wait).

        Raises:
            DeliveryFailedError: not acknowledged; the batch's effects must not leave.
        """
        return self.send(account, keys).wait()

    def applied(
        self, account: str, command: ControlCommand | LimitCommand, point: CommandPoint
    ) -> AuditEvent:
        """The `control_applied` audit event operators wait for (`hfl kill`)."""
        return journal_entry(account, command, point)
