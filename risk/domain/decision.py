"""The risk gate's outcome for one order intent."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from risk.domain.enums import DenialReason, Side


@dataclass(frozen=True, slots=True, kw_only=True)
class Approved:
    """The intent passed every check and became order `client_order_id`."""

    signal_id: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    reference_price: float | None
    client_order_id: str
    outcome: Literal["approved"] = "approved"
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Denied:
    """The intent failed the check named by `reason`; `detail` says by how much."""

    signal_id: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    reference_price: float | None
    reason: DenialReason
    detail: str
    outcome: Literal["denied"] = "denied"
    ts_event: int
    ts_init: int


RiskDecision = Approved | Denied
