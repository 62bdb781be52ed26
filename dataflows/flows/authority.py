"""Verify signed operator commands before anything else sees them (DESIGN §8).

Records of `hfl.control` and `hfl.models.control` are signed envelopes
(`risk.access`). The trading flow's command steps run `CommandCheck`: the envelope's
signature, key, freshness (against the record's log time, so a replay of the log
decides the same) and nonce (the window is the step's snapshotted state), then the
command's own decoding, then the key's role against what the command does. A command
that passes carries its key's name as `actor` (never the sender's free text) and gets
an audit row `command_verified`; one that fails is a dead letter with the refusal as
its reason plus an audit row `command_refused` naming the key (when one was found)
and the reason. Records of other topics are decoded as before.

The key file is re-read when it changes, so a revocation applies without a restart;
a replay after a revocation therefore refuses what it accepted before.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import bytewax.operators as op
from bytewax.dataflow import Stream

from connectors.codec import failure
from connectors.kafka.record import KafkaRecord
from dataflows.flows.shim import delegate
from risk.access import (
    KeyRing,
    NonceWindow,
    Permission,
    Refusal,
    Refused,
    Signed,
    allows,
    control_permission,
    verify,
)
from risk.domain import DecodeFailure, DecodeReason
from risk.domain.control import AuditEvent, ControlCommand, LimitCommand
from risk.domain.ids import stable_id
from risk.domain.model import ModelCommand

COMMAND_CHECK_VERSION = 1

Decode = Callable[[list[KafkaRecord]], list[Any]]


@dataclass(slots=True)
class CommandCheckState:
    """The nonces seen within the freshness window: the only state, bounded by it."""

    window: NonceWindow


def permission_for(command: object) -> Permission | None:
    """What a decoded command needs (None for something that is not a command).

    >>> from risk.domain.enums import ControlAction
    >>> permission_for(LimitCommand.__new__(LimitCommand))
    <Permission.LIMITS: 'limits'>
    """
    match command:
        case ControlCommand():
            return control_permission(command.action)
        case LimitCommand():
            return Permission.LIMITS
        case ModelCommand():
            return Permission.MODELS
    return None


class CommandCheck:
    """Verify, decode and authorise one batch of records (see the module docstring).

    `signed_topics` are the full topic names whose records must be signed; `decode`
    the flow's decoder for every topic of the input (it turns bad records into dead
    letters); `ring()` the current keys.
    """

    def __init__(
        self, signed_topics: frozenset[str], decode: Decode, ring: Callable[[], KeyRing]
    ) -> None:
        """Check records of `signed_topics` with `ring()`, decode all with `decode`."""
        self._signed = signed_topics
        self._decode = decode
        self._ring = ring

    def __call__(self, state: CommandCheckState, records: list[KafkaRecord]) -> list[Any]:
        """The decoded events, dead letters and audit rows of `records`, in their order."""
        out: list[Any] = []
        ring: KeyRing | None = None
        for record in records:
            if record.topic not in self._signed:
                out.extend(self._decode([record]))
                continue
            ring = ring or self._ring()
            outcome = verify(
                record.value,
                topic=record.topic,
                ring=ring,
                now_ns=record.timestamp_ns,
                window=state.window,
            )
            if isinstance(outcome, Refused):
                out.extend(_refused(record, outcome.refusal, outcome.detail, outcome.key_name))
                continue
            out.extend(self._authorise(record, outcome))
        return out

    def _authorise(self, record: KafkaRecord, signed: Signed) -> Iterable[Any]:
        inner = KafkaRecord(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            signed.payload,
            record.timestamp_ns,
        )
        decoded = self._decode([inner])
        command = decoded[0] if len(decoded) == 1 else None
        if isinstance(command, DecodeFailure):
            return [replace(command, raw=record.value[:4096].decode("utf-8", "replace"))]
        needed = permission_for(command)
        if command is None or needed is None:
            return _refused(record, Refusal.FORBIDDEN, "not a command", signed.key.name)
        if not allows(signed.key.role, needed):
            detail = f"key {signed.key.name} ({signed.key.role}) may not {needed}"
            return _refused(record, Refusal.FORBIDDEN, detail, signed.key.name)
        verified = replace(command, actor=signed.key.name)  # type: ignore[type-var]
        audit = _audit(
            record,
            "command_verified",
            signed.key.name,
            str(needed),
            {"key_id": signed.key.key_id, "command_id": getattr(command, "command_id", "")},
        )
        return [verified, audit]


def _refused(record: KafkaRecord, refusal: Refusal, detail: str, key_name: str) -> list[Any]:
    dead = failure(
        record.value,
        DecodeReason(refusal.value),
        detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        ts_init=record.timestamp_ns,
    )
    audit = _audit(
        record, "command_refused", key_name or "unknown", refusal.value, {"detail": detail}
    )
    return [dead, audit]


def _audit(
    record: KafkaRecord, action: str, actor: str, reason: str, detail: dict[str, object]
) -> AuditEvent:
    where = {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    return AuditEvent(
        audit_id=stable_id("command_check", record.topic, record.partition, record.offset),
        actor=actor,
        action=action,
        subject=record.topic,
        reason=reason,
        detail=json.dumps(where | detail, separators=(",", ":")),
        ts_event=record.timestamp_ns,
        ts_init=record.timestamp_ns,
    )


def new_state(window_s: float) -> CommandCheckState:
    """A fresh state for a freshness window of `window_s` seconds."""
    return CommandCheckState(NonceWindow(int(window_s * 1e9)))


def checked(
    step_id: str,
    records: Stream[KafkaRecord],
    check: CommandCheck,
    *,
    window_s: float,
) -> tuple[Stream[Any], Stream[AuditEvent]]:
    """Run `check` over `records` as one stateful step; split off the audit rows.

    All records go to one key: the control topics have one partition and one account,
    and the nonce window must see every command.
    """
    keyed = op.key_on(f"{step_id}_key", records, lambda _: "commands")
    checked_events = op.key_rm(
        f"{step_id}_events",
        op.stateful_batch(
            step_id,
            keyed,
            delegate(
                lambda: new_state(window_s),
                check,
                step=f"trading.{step_id}",
                version=COMMAND_CHECK_VERSION,
            ),
        ),
    )
    branches = op.branch(
        f"{step_id}_audit", checked_events, lambda item: not isinstance(item, AuditEvent)
    )
    return branches.trues, branches.falses  # type: ignore[return-value]
