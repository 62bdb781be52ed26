"""Property tests: HistoricalTail's bounds never under-state, its exact figures are exact.

Books are built trade by trade on SP500Stocks daily returns; after any sequence of
trades and checks, `bound` must be at least the figures of the book recomputed from
scratch and `exact` must equal them (within rounding), so a budget decision taken on
a bound is the decision the exact figures would have taken.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from river.datasets import SP500Stocks

from risk import var
from risk.tail import HistoricalTail

REL = 1e-9
CONFIDENCE = 0.99


@pytest.fixture(scope="module")
def columns() -> np.ndarray:
    rows = [list(x.values()) for x, _ in SP500Stocks()]  # type: ignore[no-untyped-call]
    return np.ascontiguousarray((np.asarray(rows)[-250:] / 100.0).T)


def figures(columns: np.ndarray, held: np.ndarray) -> tuple[float, float]:
    return var.historical_var_cvar(held @ columns, CONFIDENCE)


steps = st.lists(
    st.tuples(
        st.sampled_from(["add", "exact_then_add", "exact"]),
        st.integers(min_value=0, max_value=9),
        st.sampled_from([-5_000.0, -300.0, -1.0, 0.0, 2.5, 300.0, 5_000.0]),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(start=st.lists(st.floats(-1e4, 1e4), min_size=10, max_size=10), trades=steps)
def test_bound_covers_and_exact_equals_a_fresh_computation(
    columns: np.ndarray, start: list[float], trades: list[tuple[str, int, float]]
) -> None:
    held = np.asarray(start)
    tail = HistoricalTail(columns, held @ columns, CONFIDENCE)
    for action, index, value in trades:
        after = held.copy()
        after[index] += value
        truth = figures(columns, after)
        bound = tail.bound(index, value)
        slack = REL * (abs(truth[0]) + abs(truth[1]) + 1.0)
        assert bound[0] >= truth[0] - slack
        assert bound[1] >= truth[1] - slack
        if action != "add":
            exact = tail.exact(index, value)
            assert exact == pytest.approx(truth, rel=REL, abs=1e-9)
        if action != "exact":
            tail.add(index, value)
            held = after
    current = tail.exact(0, 0.0)
    assert current == pytest.approx(figures(columns, held), rel=REL, abs=1e-9)


def test_netting_trades_keep_the_bound_at_the_base(columns: np.ndarray) -> None:
    held = np.full(10, 100.0)
    tail = HistoricalTail(columns, held @ columns, CONFIDENCE)
    base = figures(columns, held)

    tail.add(3, 5_000.0)
    tail.add(3, -5_000.0)

    assert tail.bound(3, 0.0) == pytest.approx(base, rel=REL)
