"""The risk gate's input journal on `hfl.gate_journal` (`risk.fill_sync.InputOrder`).

Journaled (`risk.fill_sync: journal`, the live default) the gate decides on arrival,
never waiting for the gateway's progress markers, and makes that order reproducible:
per batch, before the batch's effects leave, it writes one record listing in order
the keys of the inputs it applied (`s<signal_id>`, `f<fill_id>`, `e<event_id>`,
`c<command_id>`, `a<alert_id>`, `d<drift_id>`, `b<instrument>@<interval>@<ts>`),
synchronously, acknowledged by the broker through an idempotent checked producer, as
the operator-command journal (`connectors.kafka.journal`) does for commands. A resume
reads the records from the offset its snapshot keeps and applies the inputs Bytewax
delivers again in that order, then goes on live.

Only the gate writes here, keyed by account; a record is about 40 bytes per input.
"""

from __future__ import annotations

import logging

from confluent_kafka import Consumer, TopicPartition

from connectors.codec import encode
from connectors.kafka.journal import journal_entry
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from connectors.kafka.source import consumer_config
from connectors.topic import GATE_JOURNAL
from risk.command_log import CommandPoint
from risk.domain import AuditEvent, ControlCommand, LimitCommand
from risk.engine.port import InputsRead
from risk.fill_sync import JournaledInputs

LOG = logging.getLogger("hfl.trading.gate_journal")

_TIMEOUT_S = 10.0


class KafkaGateJournal:
    """The input journal of the configured namespace; connects on first use (the
    engine's `risk.engine.port.InputJournal`)."""

    def __init__(self, bootstrap: str, topic_prefix: str, message_timeout_ms: int) -> None:
        self._bootstrap = bootstrap
        self._topic = topic_prefix + GATE_JOURNAL
        self._timeout_ms = message_timeout_ms
        self._producer: CheckedProducer | None = None

    def connect(self) -> None:
        """Open the writer now: an idempotent producer first needs a producer id from
        the broker (about 0.5 s on Tansu), which must not delay the first batch."""
        self._writer()

    def _writer(self) -> CheckedProducer:
        if self._producer is None:
            self._producer = CheckedProducer(
                self._bootstrap, message_timeout_ms=self._timeout_ms, linger_ms=0, idempotent=True
            )
        return self._producer

    def end(self) -> int:
        """The offset the next record will get.

        Raises:
            KafkaException: the broker did not answer.
        """
        consumer = Consumer(consumer_config(self._bootstrap, "hfl-gate-journal"))
        try:
            partition = TopicPartition(self._topic, 0)
            return int(consumer.get_watermark_offsets(partition, timeout=_TIMEOUT_S)[1])
        finally:
            consumer.close()

    def read(self, account: str, start: int) -> InputsRead:
        """The input keys of `account` from offset `start` to the end, in journal order.

        Raises:
            TimeoutError, OSError: the journal could not be read, or lost the records
                from `start`; resuming without it could decide in another order than
                before the crash, so the flow stops.
        """
        from connectors.kafka.reader import read_log  # only a resume pays for its imports

        end = self.end()
        if start > end:
            msg = (
                f"{self._topic} ends at offset {end}, but the snapshot needs its records from"
                f" {start}: the broker lost the journal, so a resume could decide in another"
                " order than before the crash (after a lost broker log: `hfl recover --confirm`)"
            )
            raise OSError(msg)
        if start == end:
            return InputsRead([], end, 0)
        records = read_log(self._bootstrap, self._topic, timeout_s=_TIMEOUT_S, start=start)
        keys = [key for r in records if r.get("account") == account for key in r["inputs"]]
        LOG.info(
            "gate journal: %d records, %d inputs read from offset %d",
            len(records),
            len(keys),
            start,
        )
        return InputsRead(keys, end, len(records))

    def record(self, account: str, keys: list[str]) -> int:
        """Write that `account` consumed `keys` in order; return the offset once
        acknowledged.

        Raises:
            DeliveryFailedError: not acknowledged; the batch's effects must not leave.
        """
        value = encode(JournaledInputs(account=account, inputs=tuple(keys)))
        return self._writer().deliver(OutboundRecord(self._topic, account.encode(), value))

    def applied(
        self, account: str, command: ControlCommand | LimitCommand, point: CommandPoint
    ) -> AuditEvent:
        """The `control_applied` audit event operators wait for (`hfl kill`)."""
        return journal_entry(account, command, point)
