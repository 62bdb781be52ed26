"""What the dashboard writes to Kafka: kill/resume commands, their audit trail, alerts."""

from __future__ import annotations

import time
from collections.abc import Sequence

from connectors import topic
from connectors.codec import encode
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.record import OutboundRecord
from risk.domain.control import Alert, AuditEvent, ControlCommand
from risk.domain.enums import ControlAction
from risk.domain.ids import stable_id

Published = ControlCommand | AuditEvent | Alert


def outbound(prefix: str, event: Published) -> OutboundRecord:
    """The record of `event`: its topic under `prefix`, keyed as DESIGN.md §3 says."""
    match event:
        case ControlCommand():
            name, key = topic.CONTROL, event.account
        case AuditEvent():
            name, key = topic.AUDIT, event.subject
        case Alert():
            name, key = topic.ALERTS, event.name
    return OutboundRecord(prefix + name, key.encode(), encode(event))


class Publisher:
    """Produce dashboard events with checked delivery (each call waits for the acks)."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self._producer = CheckedProducer(bootstrap, message_timeout_ms=10_000)
        self._prefix = prefix

    def publish(self, events: Sequence[Published]) -> None:
        """Send `events` and return once the broker acknowledged all of them."""
        self._producer.send([outbound(self._prefix, event) for event in events])


def control_events(
    account: str, action: ControlAction, reason: str, actor: str, now_ns: int | None = None
) -> tuple[ControlCommand, AuditEvent]:
    """The command for the risk gate and the audit record of who sent it and why.

    >>> command, audit = control_events("paper-1", ControlAction.KILL, "test", "ann", 5)
    >>> (command.action, audit.action, audit.subject, audit.ts_event)
    (<ControlAction.KILL: 'kill'>, 'kill', 'paper-1', 5)
    """
    now_ns = time.time_ns() if now_ns is None else now_ns
    command_id = stable_id("control", account, action, actor, now_ns)
    command = ControlCommand(
        command_id=command_id,
        account=account,
        action=action,
        reason=reason,
        actor=actor,
        ts_event=now_ns,
        ts_init=now_ns,
    )
    audit = AuditEvent(
        audit_id=stable_id("audit", command_id),
        actor=actor,
        action=str(action),
        subject=account,
        reason=reason,
        detail=encode({"command_id": command_id, "source": "dashboard"}).decode(),
        ts_event=now_ns,
        ts_init=now_ns,
    )
    return command, audit
