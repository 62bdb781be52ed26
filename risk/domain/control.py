"""Operator commands, audit events, alerts, and what the system says about bad input."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from risk.domain.enums import AlertSeverity, ControlAction, DecodeReason, TradingState


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlCommand:
    """A kill-switch, resume or reduce command for `account`, with who and why.

    `instrument` empty means the whole account; `flatten` (kill only) also sends
    orders that close the filled positions it covers.
    """

    command_id: str
    account: str
    action: ControlAction
    reason: str
    actor: str
    instrument: str = ""
    flatten: bool = False
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitCommand:
    """An operator's new position limit for one instrument of `account`, with who and
    why (`hfl limits set`): it applies from the next decision; working orders stay."""

    command_id: str
    account: str
    instrument: str
    max_position: Decimal
    reason: str
    actor: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeFailure:
    """A record that failed validation; it goes to `hfl.dlq`, never to logic.

    `raw` keeps at most the first 4 KiB of the record (decoded leniently);
    `raw_size` is its full length in bytes.
    """

    failure_id: str
    topic: str
    partition: int
    offset: int
    reason: DecodeReason
    detail: str
    raw: str
    raw_size: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """A record of who did what, when and why: control actions, promotions, limit changes.

    `subject` is what was acted on (an account, a model, an instrument); `detail` is a
    JSON object as text with anything action-specific.
    """

    audit_id: str
    actor: str
    action: str
    subject: str
    reason: str
    detail: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Alert:
    """A condition that needs attention (stale data, lag, drawdown, delivery failure).

    `name` is a bounded identifier (safe as a metric label); `source` the component that
    raised it; `subject` what it is about (an account, an instrument, a topic).
    """

    alert_id: str
    name: str
    severity: AlertSeverity
    source: str
    subject: str
    message: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingStateChanged:
    """The trading state of `account` (or of one `instrument` when it is not empty) changed.

    `trigger` is a bounded name of what caused it (a control action such as "kill", or an
    automatic trigger such as "drawdown", "drift", "stale_data"); `reason` the human text.
    """

    event_id: str
    account: str
    instrument: str
    state: TradingState
    previous: TradingState
    trigger: str
    reason: str
    ts_event: int
    ts_init: int
