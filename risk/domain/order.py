"""Orders, what happens to them at the gateway, and the fills they produce."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from risk.domain.enums import OrderEventKind, OrderType, Side


class OrderIntent(NamedTuple):
    """What the gate is asked to send: the delta from current to target position.

    A named tuple rather than a frozen dataclass: the gate builds one per signal, only
    to check it, and a named tuple costs less than half as much to build. Never sent.
    """

    signal_id: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    reference_price: float | None
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """An approved order on its way to the gateway.

    `expire_ns` is its time in force (good till, event time): what has not filled by
    then expires (`OrderEventKind.EXPIRED`); None is good till canceled.
    """

    client_order_id: str
    signal_id: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    order_type: OrderType
    limit_price: Decimal | None
    ts_event: int
    ts_init: int
    expire_ns: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder:
    """A request to the gateway to cancel working order `client_order_id`.

    Travels on `hfl.orders` beside the orders; `cancel_id` tells the two apart.
    """

    cancel_id: str
    client_order_id: str
    account: str
    instrument: str
    reason: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEvent:
    """A state change of an order reported by the gateway."""

    event_id: str
    client_order_id: str
    account: str
    instrument: str
    kind: OrderEventKind
    filled_quantity: Decimal
    leaves_quantity: Decimal
    reason: str = ""
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Fill:
    """An execution of (part of) an order."""

    fill_id: str
    client_order_id: str
    account: str
    instrument: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    leaves_quantity: Decimal
    tick_id: str
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrdersSent:
    """The risk gate's promise on `hfl.orders`: every order with `ts_event < through_ns` was sent.

    Orders reach the gateway later than the ticks they were decided on, so without this
    the gateway could never say that no more fills before a time will come
    (`FillsThrough`). `progress_id` tells it apart from orders and cancel requests.
    """

    progress_id: str
    account: str
    through_ns: int
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FillsThrough:
    """The gateway's progress marker on `hfl.fills`, behind the fills it covers.

    Every fill on `instrument` with `ts_event < through_ns` was emitted before this
    record, so a reader of the one-partition topic that has read up to it has all of
    them. The account step waits for these before booking in event time.
    """

    progress_id: str
    account: str
    instrument: str
    through_ns: int
    ts_event: int
    ts_init: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderEventsThrough(FillsThrough):
    """The same progress marker on `hfl.order_events`, behind the order events it covers.

    Fills and order events travel on two topics, and a reader gets no order across
    them, so each carries its own marker; the account step waits for both.
    """
