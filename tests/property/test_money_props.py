"""Property test: `at_most` answers float <= Decimal exactly as Python's comparison does."""

from __future__ import annotations

import math
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from risk.domain.money import at_most

limits = st.decimals(allow_nan=False, allow_infinity=False, places=9) | st.decimals(
    min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False
)


@settings(max_examples=2_000, deadline=None)
@given(limit=limits, value=st.floats(allow_nan=False), nudge=st.sampled_from([-1, 0, 1]))
def test_at_most_equals_the_exact_comparison(limit: Decimal, value: float, nudge: int) -> None:
    near = float(limit)
    if nudge:
        near = math.nextafter(near, nudge * math.inf)
    for candidate in (value, near, -near):
        assert at_most(candidate, limit) == (candidate <= limit)
