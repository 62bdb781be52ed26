"""Operator commands and what the system says about undecodable input."""

from __future__ import annotations

from dataclasses import dataclass

from risk.domain.enums import ControlAction, DecodeReason


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlCommand:
    """A kill-switch or resume command for `account`, with who and why."""

    command_id: str
    account: str
    action: ControlAction
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
