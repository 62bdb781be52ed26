"""Building the gate's approval outputs in a third of the usual time.

A frozen dataclass's `__init__` sets every field through `object.__setattr__(self,
"name", value)`, which looks the name up each time: about 1.4 us for an `Order` or an
`Approved`, and the gate builds both for every approved signal (of a 20 us budget).
These functions make the very same objects by calling each slot's descriptor
directly, as `__init__` ends up doing, skipping the name lookups. The objects are
indistinguishable (equal, same hash, pickle and codec form; `tests/unit/
test_fast_build.py`), and still frozen: only these functions set them, once.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from typing import Any

from risk.domain.decision import Approved
from risk.domain.enums import OrderType, Side
from risk.domain.order import Order


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    """Each slot's descriptor `__set__`, in `names` order, which must be every field's.

    Checked at import, so a field added to the class cannot be left unset here.
    """
    declared = tuple(field.name for field in fields(cls))
    if names != declared:
        msg = f"fast_build for {cls.__name__} sets {names}, the class declares {declared}"
        raise TypeError(msg)
    return tuple(cls.__dict__[name].__set__ for name in names)


_ORDER = _setters(
    Order,
    (
        "client_order_id",
        "signal_id",
        "account",
        "instrument",
        "side",
        "quantity",
        "order_type",
        "limit_price",
        "ts_event",
        "ts_init",
        "expire_ns",
    ),
)
_APPROVED = _setters(
    Approved,
    (
        "signal_id",
        "account",
        "instrument",
        "side",
        "quantity",
        "reference_price",
        "client_order_id",
        "outcome",
        "ts_event",
        "ts_init",
    ),
)


def order(
    *,
    client_order_id: str,
    signal_id: str,
    account: str,
    instrument: str,
    side: Side,
    quantity: Decimal,
    order_type: OrderType,
    limit_price: Decimal | None,
    ts_event: int,
    ts_init: int,
    expire_ns: int | None,
) -> Order:
    """Return `Order(...)` with the same fields."""
    built = object.__new__(Order)
    (
        set_client_order_id,
        set_signal_id,
        set_account,
        set_instrument,
        set_side,
        set_quantity,
        set_order_type,
        set_limit_price,
        set_ts_event,
        set_ts_init,
        set_expire_ns,
    ) = _ORDER
    set_client_order_id(built, client_order_id)
    set_signal_id(built, signal_id)
    set_account(built, account)
    set_instrument(built, instrument)
    set_side(built, side)
    set_quantity(built, quantity)
    set_order_type(built, order_type)
    set_limit_price(built, limit_price)
    set_ts_event(built, ts_event)
    set_ts_init(built, ts_init)
    set_expire_ns(built, expire_ns)
    return built


def approved(
    *,
    signal_id: str,
    account: str,
    instrument: str,
    side: Side,
    quantity: Decimal,
    reference_price: float | None,
    client_order_id: str,
    ts_event: int,
    ts_init: int,
) -> Approved:
    """Return `Approved(...)` with the same fields."""
    decision = object.__new__(Approved)
    (
        set_signal_id,
        set_account,
        set_instrument,
        set_side,
        set_quantity,
        set_reference_price,
        set_client_order_id,
        set_outcome,
        set_ts_event,
        set_ts_init,
    ) = _APPROVED
    set_signal_id(decision, signal_id)
    set_account(decision, account)
    set_instrument(decision, instrument)
    set_side(decision, side)
    set_quantity(decision, quantity)
    set_reference_price(decision, reference_price)
    set_client_order_id(decision, client_order_id)
    set_outcome(decision, "approved")
    set_ts_event(decision, ts_event)
    set_ts_init(decision, ts_init)
    return decision
