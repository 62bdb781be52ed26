"""Operator control: publish kill, reduce, resume and limit-change commands with their
audit events.

`hfl kill`, `hfl resume` and the dashboard call `publish_control`, `hfl limits set`
calls `publish_limit`, so every control action reaches `hfl.control` together with an
`AuditEvent` on `hfl.audit` saying who asked, when and why.
"""

from __future__ import annotations

import time
from decimal import Decimal

from connectors.codec import encode
from connectors.kafka.producer import CheckedProducer
from dataflows.flows.routing import to_outbound
from dataflows.settings import Settings
from risk.domain import AuditEvent, ControlAction, ControlCommand, LimitCommand
from risk.domain.ids import stable_id


def control_events(
    account: str,
    action: ControlAction,
    reason: str,
    actor: str,
    *,
    instrument: str = "",
    flatten: bool = False,
    ts_event: int,
) -> tuple[ControlCommand, AuditEvent]:
    """Build the command and its audit event, both stamped `ts_event`."""
    command = ControlCommand(
        command_id=stable_id("control", account, action, instrument, actor, ts_event),
        account=account,
        action=action,
        reason=reason,
        actor=actor,
        instrument=instrument,
        flatten=flatten,
        ts_event=ts_event,
        ts_init=ts_event,
    )
    detail = {"instrument": instrument, "flatten": flatten}
    return command, _audit(command, action.value, detail)


def publish_control(
    settings: Settings,
    action: ControlAction,
    reason: str,
    actor: str,
    *,
    account: str | None = None,
    instrument: str = "",
    flatten: bool = False,
) -> ControlCommand:
    """Publish a control command (default account from settings) and its audit event.

    Blocks until the broker acknowledged both; raises `DeliveryFailedError` otherwise.
    """
    command, audit = control_events(
        account or settings.trading.account,
        action,
        reason,
        actor,
        instrument=instrument,
        flatten=flatten,
        ts_event=time.time_ns(),
    )
    _publish(settings, command, audit)
    return command


def limit_events(
    account: str,
    instrument: str,
    max_position: Decimal,
    reason: str,
    actor: str,
    *,
    ts_event: int,
) -> tuple[LimitCommand, AuditEvent]:
    """Build a position-limit change and its audit event, both stamped `ts_event`."""
    command = LimitCommand(
        command_id=stable_id("limits", account, instrument, str(max_position), actor, ts_event),
        account=account,
        instrument=instrument,
        max_position=max_position,
        reason=reason,
        actor=actor,
        ts_event=ts_event,
        ts_init=ts_event,
    )
    detail = {"instrument": instrument, "max_position": str(max_position)}
    return command, _audit(command, "set_limits", detail)


def _audit(
    command: ControlCommand | LimitCommand, action: str, detail: dict[str, object]
) -> AuditEvent:
    """The audit event of an operator's `command`: who, when, why and what."""
    return AuditEvent(
        audit_id=stable_id("audit", command.command_id),
        actor=command.actor,
        action=action,
        subject=command.account,
        reason=command.reason,
        detail=encode({"command_id": command.command_id, **detail}).decode(),
        ts_event=command.ts_event,
        ts_init=command.ts_event,
    )


def publish_limit(
    settings: Settings,
    instrument: str,
    max_position: Decimal,
    reason: str,
    actor: str,
    *,
    account: str | None = None,
) -> LimitCommand:
    """Publish a new position limit for `instrument` and its audit event (blocks until
    both are acknowledged; raises `DeliveryFailedError` otherwise)."""
    command, audit = limit_events(
        account or settings.trading.account,
        instrument,
        max_position,
        reason,
        actor,
        ts_event=time.time_ns(),
    )
    _publish(settings, command, audit)
    return command


def _publish(settings: Settings, *events: object) -> None:
    kafka = settings.kafka
    records = to_outbound(kafka.topic_prefix)(list(events))
    producer = CheckedProducer(kafka.bootstrap, message_timeout_ms=kafka.message_timeout_ms)
    producer.send(record for _, record in records)
