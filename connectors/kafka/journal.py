"""The risk gate's operator-command journal on `hfl.command_journal` (`risk.command_log`).

The gate writes each entry (a `control_applied` audit event: after how many decisions
and at which event time it applied a command) synchronously, acknowledged by the broker
with an idempotent producer, before any effect of the command leaves the gate. Only the
gate writes here, so a resume reads only the entries from the offset its snapshot keeps
(`CommandLog.journal_from`): those of commands applied after the snapshot.

Tansu (the local broker) keeps every record: its in-memory storage does not enforce
`cleanup.policy=compact`, so the bound comes from the offset, not from compaction.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from connectors.codec import encode, loads
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.kafka.source import consumer_config
from connectors.topic import COMMAND_JOURNAL
from risk.command_log import CommandPoint
from risk.domain import AuditEvent, ControlCommand, LimitCommand
from risk.domain.ids import stable_id
from risk.engine.port import JournalRead  # re-exported: readers of the journal use it

LOG = logging.getLogger("hfl.trading.journal")

CONTROL_APPLIED = "control_applied"
_TIMEOUT_S = 10.0


def journal_entry(
    account: str, command: ControlCommand | LimitCommand, point: CommandPoint
) -> AuditEvent:
    """The audit event saying where the gate applied `command`."""
    what = (
        command.action
        if isinstance(command, ControlCommand)
        else f"max_position {command.max_position} on {command.instrument}"
    )
    detail = {
        "command_id": point.command_id,
        "after_decisions": point.after_decisions,
        "effective_ns": point.effective_ns,
    }
    return AuditEvent(
        audit_id=stable_id("audit", CONTROL_APPLIED, command.command_id),
        actor="trading.risk_gate",
        action=CONTROL_APPLIED,
        subject=account,
        reason=f"{what} by {command.actor}: {command.reason}",
        detail=encode(detail).decode(),
        ts_event=point.effective_ns,
        ts_init=point.effective_ns,
    )


def entry_point(entry: dict[str, str]) -> CommandPoint:
    """The point a decoded journal entry records."""
    detail = loads(entry["detail"].encode())
    return CommandPoint(detail["command_id"], detail["after_decisions"], detail["effective_ns"])


class JournalTopic:
    """A one-partition journal only the gate writes: an idempotent, acknowledged writer
    (connected on first use) and reads from an offset a snapshot kept. The operator-
    command journal and the gate's input journal (`connectors.kafka.gate_journal`)."""

    def __init__(self, bootstrap: str, topic: str, message_timeout_ms: int, group: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout_ms = message_timeout_ms
        self._group = group
        self._producer: CheckedProducer | None = None

    def connect(self) -> None:
        """Open the writer now: an idempotent producer first needs a producer id from
        the broker (about 0.5 s on Tansu), which must not delay the first write."""
        self._writer()

    def _writer(self) -> CheckedProducer:
        if self._producer is None:
            self._producer = CheckedProducer(
                self._bootstrap, message_timeout_ms=self._timeout_ms, linger_ms=0, idempotent=True
            )
        return self._producer

    def start(self) -> int:
        """The offset of the first record the broker still holds (0 unless retention
        dropped some).

        Raises:
            KafkaException: the broker did not answer.
        """
        return self._watermarks()[0]

    def end(self) -> int:
        """The offset the next record will get.

        Raises:
            KafkaException: the broker did not answer.
        """
        return self._watermarks()[1]

    def _watermarks(self) -> tuple[int, int]:
        consumer = Consumer(consumer_config(self._bootstrap, self._group))
        try:
            partition = TopicPartition(self._topic, 0)
            low, high = consumer.get_watermark_offsets(partition, timeout=_TIMEOUT_S)
            return max(int(low), 0), int(high)
        finally:
            consumer.close()

    def _records_from(self, start: int, lost: str) -> tuple[list[dict[str, Any]], int]:
        """The decoded records from offset `start` to the end, and that end.

        Raises:
            TimeoutError, OSError: the journal could not be read, or lost the records
                from `start` (`lost` says what a resume would then get wrong).
        """
        from connectors.kafka.reader import read_log  # only a resume pays for its imports

        end = self.end()
        if start > end:
            msg = (
                f"{self._topic} ends at offset {end}, but the snapshot needs its records from"
                f" {start}: the broker lost the journal, so a resume could {lost}"
                " (after a lost broker log: `hfl recover --confirm`)"
            )
            raise OSError(msg)
        if start == end:
            return [], end
        return read_log(self._bootstrap, self._topic, timeout_s=_TIMEOUT_S, start=start), end


class KafkaJournal(JournalTopic):
    """The journal topic of the configured namespace; connects on first use."""

    def __init__(self, bootstrap: str, topic_prefix: str, message_timeout_ms: int) -> None:
        super().__init__(
            bootstrap, topic_prefix + COMMAND_JOURNAL, message_timeout_ms, "hfl-journal"
        )

    def read(self, account: str, start: int) -> JournalRead:
        """The points of `account` from offset `start` to the end, in journal order.

        Raises:
            TimeoutError, OSError: the journal could not be read, or lost the entries
                from `start`; resuming without it could place a command elsewhere than
                before the crash, so the flow stops.
        """
        records, end = self._records_from(
            start, "place operator commands elsewhere than before the crash"
        )
        points = [
            entry_point(r)
            for r in records
            if r["action"] == CONTROL_APPLIED and r["subject"] == account
        ]
        LOG.info("command journal: %d records read from offset %d", len(records), start)
        return JournalRead(points, end, len(records))

    def write(self, command_id: str, entry: AuditEvent) -> int:
        """Write `entry`, keyed by `command_id`; return its offset once acknowledged.

        Raises:
            DeliveryFailedError: not acknowledged; the command's effects must not leave.
        """
        record = OutboundRecord(self._topic, command_id.encode(), encode(entry))
        return self._writer().deliver(record)
