"""Portfolio sizing in the risk gate step of a Bytewax flow: views → targets → deltas → orders.

One-second bars feed the gate's risk model; signals set each instrument's view. On the
risk model's schedule the gate builds the target book from the views with the
configured optimizer; the next signal on an instrument sends the whole-lot difference
between its target and its position counting working orders (no fills come back here,
so that is the sum of its approved orders). The expected targets are built from the
bar closes with `risk.optimizer` directly.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest
from support.gate_flow import run_gate

from dataflows.flows.account import AccountInput
from dataflows.settings import Settings, SizingSettings
from risk import optimizer
from risk.domain import Approved, Bar, DenialReason, Denied, Order, Signal, ids
from risk.sizing import SizingMethod

NS = 1_000_000_000
VIEWS = {"AAPL": 1, "MSFT": 1, "XOM": -1}
FLIPPED = {"AAPL": 1, "MSFT": 0, "XOM": 1}
SECONDS = 71  # bars at 0..70 s: recomputes at 60 (no views yet), 65 and 70


def closes_by_second(instruments: tuple[str, ...]) -> np.ndarray:
    """Independent seeded random walks for the viewed instruments; the rest never trade."""
    rng = np.random.default_rng(11)
    steps = rng.normal(0.0, 0.0001, size=(SECONDS, len(VIEWS)))  # about 75 % a year
    walks = 100.0 * np.cumprod(1.0 + steps, axis=0)
    closes = np.zeros((SECONDS, len(instruments)))
    for column, name in enumerate(VIEWS):
        closes[:, instruments.index(name)] = walks[:, column]
    return closes


def bars(closes: np.ndarray, instruments: tuple[str, ...], seconds: range) -> list[Bar]:
    return [
        Bar(
            instrument=name,
            interval_s=1,
            open=float(closes[second, column]),
            high=float(closes[second, column]),
            low=float(closes[second, column]),
            close=float(closes[second, column]),
            volume=1.0,
            vwap=float(closes[second, column]),
            trade_count=1,
            ts_event=second * NS,
            ts_init=second * NS,
        )
        for second in seconds
        for column, name in enumerate(instruments)
        if closes[second, column] > 0
    ]


def signals(views: dict[str, int], prices: dict[str, float], ts_event: int) -> list[Signal]:
    out = []
    for name, direction in views.items():
        tick = ids.tick_id(name, ts_event, ts_event)
        out.append(
            Signal(
                signal_id=ids.signal_id(name, tick, "flow"),
                tick_id=tick,
                instrument=name,
                model="flow",
                direction=direction,
                probability_up=0.5,
                reference_price=prices[name],
                ts_event=ts_event,
                ts_init=ts_event,
            )
        )
    return out


def expected_targets(
    settings: Settings, closes: np.ndarray, at_second: int, views: dict[str, int]
) -> dict[str, Decimal]:
    """What the gate's rebalance at `at_second` must hold, from first principles.

    The risk model samples one return per second, closing a sample when the next
    second's first price arrives: at a recompute on the bar of second T its window
    holds the returns up to second T - 1. Prices are the signals' references (the
    closes of second 60 here).
    """
    instruments = settings.trading.instruments
    returns = np.zeros((at_second - 1, len(instruments)))
    for name in VIEWS:
        column = instruments.index(name)
        returns[:, column] = closes[1:at_second, column] / closes[: at_second - 1, column] - 1.0
    directions = np.array([views.get(name, 0) for name in instruments], dtype=np.float64)
    method = settings.risk.sizing.method
    weights = optimizer.portfolio_weights(method, directions, returns)
    model = settings.risk.model
    capital = optimizer.portfolio_capital(
        weights,
        returns,
        model.periods_per_day * 252.0,
        equity=float(settings.trading.initial_cash),
        volatility_target=settings.risk.volatility_target_pct / 100,
        cap=settings.risk.sizing.gross_notional or Decimal(0),
    )
    prices = {name: float(closes[60, instruments.index(name)]) for name in VIEWS}
    chosen = {name: float(w) for name, w in zip(instruments, weights, strict=True) if w}
    return optimizer.target_positions(chosen, capital, prices, settings.trading.lot_size)


def signed(order: Order) -> Decimal:
    return order.side.sign * order.quantity


@pytest.mark.parametrize(
    "method", [SizingMethod.INVERSE_VOL, SizingMethod.RISK_PARITY, SizingMethod.MEAN_VARIANCE]
)
def test_views_become_target_positions_and_orders_are_the_deltas(
    settings: Settings, method: SizingMethod
) -> None:
    # The flow tests' settings book fills on arrival: no gateway runs here.
    sizing = SizingSettings(method=method, gross_notional=Decimal(100_000))
    settings = replace(settings, risk=replace(settings.risk, sizing=sizing))
    instruments = settings.trading.instruments
    closes = closes_by_second(instruments)
    prices = {name: float(closes[60, instruments.index(name)]) for name in VIEWS}
    inputs: list[AccountInput] = [
        *bars(closes, instruments, range(61)),
        *signals(VIEWS, prices, 60 * NS + NS // 2),  # views only: no targets yet
        *bars(closes, instruments, range(61, 66)),
        *signals(VIEWS, prices, 65 * NS + NS // 2),  # trade to the targets
        *signals(FLIPPED, prices, 65 * NS + 3 * NS // 4),  # new views: wait for the schedule
        *bars(closes, instruments, range(66, SECONDS)),
        *signals(FLIPPED, prices, 70 * NS + NS // 2),  # trade the differences
    ]

    out = run_gate(settings, inputs)

    decisions = [e for e in out if isinstance(e, Approved | Denied)]
    orders = [e for e in out if isinstance(e, Order)]
    first = expected_targets(settings, closes, 65, VIEWS)
    second = expected_targets(settings, closes, 70, FLIPPED)
    waiting = decisions[: len(VIEWS)] + decisions[2 * len(VIEWS) : 3 * len(VIEWS)]
    assert all(isinstance(d, Denied) and d.reason is DenialReason.ZERO_QUANTITY for d in waiting)
    assert first and set(first) == set(VIEWS)
    assert {o.instrument: signed(o) for o in orders if o.ts_event < 66 * NS} == first
    # The differences, unless another control stops them: every control still applies.
    limit = settings.risk.limits.max_order_notional
    deltas = {name: second.get(name, Decimal(0)) - first[name] for name in VIEWS}
    sent = {o.instrument: signed(o) for o in orders if o.ts_event > 70 * NS}
    stopped = {d.instrument: d for d in decisions[3 * len(VIEWS) :] if isinstance(d, Denied)}
    assert sent
    for name, delta in deltas.items():
        if name in stopped and stopped[name].reason is DenialReason.SELF_MATCH:
            # No gateway runs here, so the first orders still rest: a delta the other
            # way would trade against ours.
            assert delta * first[name] < 0
        elif name in stopped:
            assert stopped[name].reason is DenialReason.MAX_ORDER_NOTIONAL
            assert abs(delta) * Decimal(repr(prices[name])) > limit
        else:
            assert sent.get(name, Decimal(0)) == delta
    assert all(o.quantity == o.quantity.to_integral_value() for o in orders)  # whole lots
    gross = sum(abs(q) * Decimal(repr(prices[n])) for n, q in first.items())
    assert gross <= sizing.gross_notional
