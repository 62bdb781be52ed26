"""The gate's view of each order's life: a transition table and the orders that may fill.

An order the gate approved is WORKING until its first fill (PARTIALLY_FILLED) or a
terminal report from the gateway (FILLED, CANCELED, REJECTED, EXPIRED). Fills and
order events travel on two topics, so a terminal report may come before the fills it
counts: an ended order stays in the ledger, and may still take fills, until
everything it reported filled has arrived. `TRANSITIONS` is the whole life; a
(state, input) pair not in it is impossible and raises `InvariantViolation`.

>>> next_status(OrderStatus.WORKING, FILL)
<OrderStatus.PARTIALLY_FILLED: 'partially_filled'>
>>> next_status(OrderStatus.PARTIALLY_FILLED, OrderEventKind.EXPIRED)
<OrderEventKind.EXPIRED: 'expired'>
>>> next_status(OrderEventKind.CANCELED, OrderEventKind.FILLED)
Traceback (most recent call last):
...
risk.book.InvariantViolation: order canceled cannot take filled
"""

from __future__ import annotations

from collections import deque
from collections.abc import ItemsView
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal

from risk.book import ZERO, InvariantViolation
from risk.domain.enums import OrderEventKind, Side
from risk.domain.order import Fill, OrderEvent

__all__ = [
    "FILL",
    "TRANSITIONS",
    "LifecycleInput",
    "OrderLedger",
    "OrderStatus",
    "Status",
    "WorkingOrder",
    "is_ended",
    "next_status",
]


class OrderStatus(StrEnum):
    """Where a live approved order is in its life, as far as the gate knows.

    An ended order's status is the terminal `OrderEventKind` that ended it (FILLED,
    CANCELED, REJECTED, EXPIRED): see `Status`.
    """

    WORKING = "working"
    PARTIALLY_FILLED = "partially_filled"


Status = OrderStatus | OrderEventKind
"""A live `OrderStatus`, or the terminal report that ended the order."""

_BUY = Side.BUY  # read per signal: cheaper as a module global (see risk.gate)
_LIVE = frozenset({OrderStatus.WORKING, OrderStatus.PARTIALLY_FILLED})
_ENDED = tuple(kind for kind in OrderEventKind if kind.is_terminal)

FILL: Final = "fill"
"""The input a fill makes (a fill is not an `OrderEventKind`: it travels apart)."""

LifecycleInput = OrderEventKind | Literal["fill"]


def is_ended(status: Status) -> bool:
    """True once the gateway said the order can no longer fill (fills may be due)."""
    return status not in _LIVE


def _table() -> dict[tuple[Status, LifecycleInput], Status]:
    table: dict[tuple[Status, LifecycleInput], Status] = {}
    for live in _LIVE:
        table[live, FILL] = OrderStatus.PARTIALLY_FILLED
        # Non-terminal reports say nothing the fills do not: the status stays.
        table[live, OrderEventKind.ACCEPTED] = live
        table[live, OrderEventKind.PARTIALLY_FILLED] = live
        for kind in _ENDED:
            table[live, kind] = kind
    for ended in _ENDED:
        # Fills the terminal report counts may still arrive; a gateway that restarts
        # replays its reports, so the same terminal report and earlier non-terminal
        # ones may come again. A different terminal report contradicts the first.
        for received in (FILL, OrderEventKind.ACCEPTED, OrderEventKind.PARTIALLY_FILLED, ended):
            table[ended, received] = ended
    return table


TRANSITIONS: Final = _table()
"""(status, input) -> next status; every pair not listed is impossible."""


def next_status(status: Status, received: LifecycleInput) -> Status:
    """Return the status after `received`; raise `InvariantViolation` if impossible."""
    following = TRANSITIONS.get((status, received))
    if following is None:
        msg = f"order {status} cannot take {received}"
        raise InvariantViolation(msg)
    return following


class WorkingOrder:
    """An approved order that may still fill; `leaves` is what may still fill."""

    __slots__ = ("filled", "instrument", "limit_price", "quantity", "released", "side", "status")

    def __init__(
        self, instrument: str, side: Side, quantity: Decimal, limit_price: Decimal | None
    ) -> None:
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.limit_price = limit_price
        self.filled = ZERO
        # Quantity the gateway will never fill (canceled, rejected or expired remainder).
        self.released = ZERO
        self.status: Status = OrderStatus.WORKING

    @property
    def leaves(self) -> Decimal:
        return self.quantity - self.filled - self.released


class OrderLedger:
    """The account's working orders, their totals per side, and the ids recently used.

    Working orders leave when nothing of them may fill any more; the last
    `recent_order_ids` client order ids are remembered so that reuse and late reports
    of finished orders are recognised.
    """

    __slots__ = ("_orders", "_recent_ids", "_recent_set", "account", "buy", "sell")

    def __init__(self, account: str, recent_order_ids: int) -> None:
        self.account = account
        self._orders: dict[str, WorkingOrder] = {}
        # Working quantity per instrument and side, only where it is not zero.
        self.buy: dict[str, Decimal] = {}
        self.sell: dict[str, Decimal] = {}
        self._recent_ids: deque[str] = deque(maxlen=recent_order_ids)
        self._recent_set: set[str] = set()

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, client_order_id: str) -> WorkingOrder | None:
        """Return the working order `client_order_id`, if it may still fill."""
        return self._orders.get(client_order_id)

    def items(self) -> ItemsView[str, WorkingOrder]:
        """Every working order by client order id, in the order they were sent."""
        return self._orders.items()

    def used(self, client_order_id: str) -> bool:
        """True when `client_order_id` is working or recently finished."""
        return client_order_id in self._recent_set or client_order_id in self._orders

    def finished(self, client_order_id: str) -> bool:
        """True when `client_order_id` is remembered (it may also still be working)."""
        return client_order_id in self._recent_set

    def working_quantity(self, instrument: str) -> Decimal:
        """Return working buys minus working sells on `instrument`."""
        return self.buy.get(instrument, ZERO) - self.sell.get(instrument, ZERO)

    def crosses_own_order(self, instrument: str, side: Side, limit_price: Decimal) -> bool:
        """True when a limit order on `side` at `limit_price` could trade against one of
        our orders that may still rest on the other side.

        Only limit orders rest, and only until the gateway ends them; a buy crosses a
        resting sell priced at or below its limit, a sell a resting buy at or above.
        """
        buy = side is _BUY
        opposite = self.sell if buy else self.buy
        if instrument not in opposite:
            return False
        for order in self._orders.values():
            resting = order.limit_price
            if (
                resting is not None
                and order.instrument == instrument
                and order.side is not side
                and not is_ended(order.status)
                and (resting <= limit_price if buy else resting >= limit_price)
            ):
                return True
        return False

    def open(
        self,
        client_order_id: str,
        instrument: str,
        side: Side,
        quantity: Decimal,
        limit_price: Decimal | None,
        *,
        signal_id: str,
    ) -> None:
        """Start `client_order_id`'s life as WORKING.

        Raises:
            InvariantViolation: If the id is in use (a signal seen twice).
        """
        if self.used(client_order_id):
            msg = (
                f"risk gate {self.account}: client order id {client_order_id} reused "
                f"(signal {signal_id} seen twice)"
            )
            raise InvariantViolation(msg)
        recent = self._recent_ids
        if recent.maxlen is not None and len(recent) == recent.maxlen:
            self._recent_set.discard(recent[0])
        recent.append(client_order_id)
        self._recent_set.add(client_order_id)
        self._orders[client_order_id] = WorkingOrder(instrument, side, quantity, limit_price)
        self._add(instrument, side, quantity)

    def order_for_fill(self, fill: Fill) -> WorkingOrder:
        """Return the working order `fill` fills, checked, before anything is booked.

        Raises:
            InvariantViolation: If the order is unknown or finished, the fill does not
                match its instrument or side, or it fills more than is working.
        """
        order = self._orders.get(fill.client_order_id)
        problem = ""
        if order is None:
            problem = "fill for an unknown or finished order"
        elif fill.instrument != order.instrument or fill.side is not order.side:
            problem = f"fill {fill.instrument}/{fill.side} does not match the order"
        elif fill.quantity > order.leaves:
            problem = f"overfill: {fill.quantity} > leaves {order.leaves}"
        if problem or order is None:
            msg = f"risk gate {self.account}: {problem} ({fill.client_order_id})"
            raise InvariantViolation(msg)
        return order

    def apply_fill(self, order: WorkingOrder, fill: Fill) -> None:
        """Move `fill` (checked by `order_for_fill`) out of `order`'s working quantity."""
        order.status = next_status(order.status, FILL)
        order.filled += fill.quantity
        self._add(order.instrument, order.side, -fill.quantity)
        if not order.leaves:
            del self._orders[fill.client_order_id]

    def apply_event(self, event: OrderEvent) -> WorkingOrder | None:
        """Apply a gateway report; return the order when it released quantity.

        A terminal report states the cumulative quantity filled; whatever of it has not
        reached us as fills stays working until those fills arrive. Reports of orders
        already finished change nothing.

        Raises:
            InvariantViolation: If the order was never sent by this gate (as far as it
                remembers), the report contradicts the fills already applied, or it is
                an impossible transition (`TRANSITIONS`).
        """
        order = self._orders.get(event.client_order_id)
        if order is None:
            if event.client_order_id in self._recent_set:
                return None
            msg = f"risk gate {self.account}: event for unknown order {event.client_order_id}"
            raise InvariantViolation(msg)
        try:
            status = next_status(order.status, event.kind)
        except InvariantViolation as exc:
            msg = f"risk gate {self.account}: {exc} ({event.client_order_id})"
            raise InvariantViolation(msg) from exc
        if is_ended(order.status) or not event.kind.is_terminal:
            return None
        if not order.filled <= event.filled_quantity <= order.quantity:
            msg = (
                f"risk gate {self.account}: {event.kind} event says filled "
                f"{event.filled_quantity} but {order.filled} of {order.quantity} already "
                f"filled ({event.client_order_id})"
            )
            raise InvariantViolation(msg)
        order.status = status
        order.released = order.quantity - event.filled_quantity
        if order.released:
            self._add(order.instrument, order.side, -order.released)
        if not order.leaves:
            del self._orders[event.client_order_id]
        return order if order.released else None

    def _add(self, instrument: str, side: Side, quantity: Decimal) -> None:
        totals = self.buy if side is _BUY else self.sell
        remaining = totals.get(instrument, ZERO) + quantity
        if remaining:
            totals[instrument] = remaining
        else:
            # Drop zero entries so the dicts only hold instruments with live orders.
            del totals[instrument]
