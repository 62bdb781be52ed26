"""The gate's fast constructors make objects indistinguishable from the dataclasses'."""

from __future__ import annotations

import dataclasses
import pickle
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors import codec
from risk.domain.decision import Approved
from risk.domain.enums import OrderType, Side
from risk.domain.fast_build import approved, order
from risk.domain.order import Order

texts = st.text(min_size=1, max_size=12)
quantities = st.decimals(min_value=0, max_value=10**9, places=9)
times = st.integers(min_value=0, max_value=2**63 - 1)


def _same(built: object, reference: object) -> None:
    assert built == reference
    assert hash(built) == hash(reference)
    assert repr(built) == repr(reference)
    assert codec.encode(built) == codec.encode(reference)
    assert pickle.loads(pickle.dumps(built)) == reference


@given(
    ids=st.tuples(texts, texts, texts, texts),
    side=st.sampled_from(Side),
    q=quantities,
    limit=st.none() | st.decimals(min_value=0, max_value=10**9, places=9),
)
def test_order_equals_the_dataclass(
    ids: tuple[str, str, str, str], side: Side, q: Decimal, limit: Decimal | None
) -> None:
    client, signal, account, instrument = ids
    values = {
        "client_order_id": client,
        "signal_id": signal,
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": q,
        "ts_event": 7,
        "ts_init": 8,
    }
    # A market order, or a limit order good till an event time.
    values |= {
        "order_type": OrderType.MARKET if limit is None else OrderType.LIMIT,
        "limit_price": limit,
        "expire_ns": None if limit is None else 9,
    }
    _same(order(**values), Order(**values))  # type: ignore[arg-type]


@given(
    ids=st.tuples(texts, texts, texts, texts),
    side=st.sampled_from(Side),
    q=quantities,
    price=st.none() | st.floats(min_value=1e-6, max_value=1e9),
    ts=st.tuples(times, times),
)
def test_approved_equals_the_dataclass(
    ids: tuple[str, str, str, str],
    side: Side,
    q: Decimal,
    price: float | None,
    ts: tuple[int, int],
) -> None:
    signal, account, instrument, client = ids
    values = {
        "signal_id": signal,
        "account": account,
        "instrument": instrument,
        "side": side,
        "quantity": q,
        "reference_price": price,
        "client_order_id": client,
        "ts_event": ts[0],
        "ts_init": ts[1],
    }
    _same(approved(**values), Approved(**values))  # type: ignore[arg-type]


def test_built_objects_stay_frozen() -> None:
    built = order(
        client_order_id="c",
        signal_id="s",
        account="a",
        instrument="X",
        side=Side.BUY,
        quantity=Decimal(1),
        order_type=OrderType.MARKET,
        limit_price=None,
        ts_event=1,
        ts_init=1,
        expire_ns=None,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.quantity = Decimal(2)  # type: ignore[misc]
