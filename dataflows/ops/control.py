"""Operator control: publish kill, reduce, resume and limit-change commands with their
audit events.

`hfl kill`, `hfl resume` and the dashboard call `publish_control`, `hfl limits set`
calls `publish_limit`, so every control action reaches `hfl.control` together with an
`AuditEvent` on `hfl.audit` saying who asked, when and why. The command is signed with
the caller's API key (`dataflows.ops.signing`) and its actor is that key's name.
"""

from __future__ import annotations

import time
from decimal import Decimal

from connectors import topic
from connectors.codec import encode
from connectors.kafka.journal import CONTROL_APPLIED
from connectors.kafka.producer import CheckedProducer
from connectors.kafka.reader import end_offsets, wait_for_record
from dataflows.flows.routing import to_outbound
from dataflows.ops.signing import Signer, caller_name, caller_token
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
    token: str | None = None,
) -> ControlCommand:
    """Publish a control command (default account from settings) and its audit event,
    signed with `token` (default: the configured API key), whose name is the actor.

    Blocks until the broker acknowledged both; raises `DeliveryFailedError` otherwise.
    `actor` is only used when it names the key (kept for callers' signatures).
    """
    caller = caller_token(settings, token)
    actor = caller_name(settings, caller)
    signer = Signer(settings, caller)  # scrypt once, before the command's time is taken
    command, audit = control_events(
        account or settings.trading.account,
        action,
        reason,
        actor,
        instrument=instrument,
        flatten=flatten,
        ts_event=time.time_ns(),
    )
    _publish(settings, signer, command, audit)
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
    token: str | None = None,
) -> LimitCommand:
    """Publish a new position limit for `instrument` and its audit event, signed like
    `publish_control` (blocks until both are acknowledged; raises
    `DeliveryFailedError` otherwise)."""
    caller = caller_token(settings, token)
    actor = caller_name(settings, caller)
    signer = Signer(settings, caller)
    command, audit = limit_events(
        account or settings.trading.account,
        instrument,
        max_position,
        reason,
        actor,
        ts_event=time.time_ns(),
    )
    _publish(settings, signer, command, audit)
    return command


def audit_offset(settings: Settings) -> int:
    """Where the audit topic ends now: an acknowledgement comes after it."""
    name = settings.kafka.topic_prefix + topic.AUDIT
    return end_offsets(settings.kafka.bootstrap, [name])[name]


def await_applied(settings: Settings, command_id: str, start: int, timeout_s: float) -> bool:
    """Whether the risk gate acknowledged `command_id` (its `control_applied` audit row,
    written when it applied the command) at or after audit offset `start` within
    `timeout_s`."""
    wanted = (f'"action":"{CONTROL_APPLIED}"'.encode(), command_id.encode())
    return wait_for_record(
        settings.kafka.bootstrap,
        settings.kafka.topic_prefix + topic.AUDIT,
        start,
        lambda value: all(part in value for part in wanted),
        timeout_s,
    )


def _publish(settings: Settings, signer: Signer, *events: object) -> None:
    kafka = settings.kafka
    records = to_outbound(kafka.topic_prefix)(list(events))
    producer = CheckedProducer(kafka.bootstrap, message_timeout_ms=kafka.message_timeout_ms)
    producer.send(signer.sign(record for _, record in records))
