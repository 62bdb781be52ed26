"""The float screen of the gross-exposure check never passes what the Decimal check denies."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from risk.domain.money import quantize
from risk.pretrade import gross_surely_within

names = st.sampled_from(["A", "B", "C", "D", "E", "F"])
quantities = st.decimals(min_value=-(10**7), max_value=10**7, places=9)
prices = st.floats(min_value=1e-4, max_value=1e6, allow_nan=False, allow_infinity=False)
nudges = st.sampled_from([Decimal(0), Decimal("1e-9"), Decimal("-1e-9"), Decimal("1e-6")])


@given(
    book=st.dictionaries(names, st.tuples(quantities, prices), min_size=1, max_size=6),
    after=st.decimals(min_value=0, max_value=10**7, places=9),
    nudge=nudges,
    scale=st.sampled_from([Decimal(1), Decimal("0.999999999"), Decimal("1.000000001")]),
)
def test_float_screen_passes_only_what_the_decimal_sum_passes(
    book: dict[str, tuple[Decimal, float]], after: Decimal, nudge: Decimal, scale: Decimal
) -> None:
    instrument = next(iter(book))
    held = {name: float(net) for name, (net, _) in book.items() if net}
    references = {name: price for name, (_, price) in book.items()}
    exact = after * quantize(references[instrument]) + sum(
        (abs(net) * quantize(price) for name, (net, price) in book.items() if name != instrument),
        Decimal(0),
    )
    limit = exact * scale + nudge
    if limit <= 0:
        return
    if gross_surely_within(held, references, instrument, float(after), limit):
        assert exact <= limit


def test_far_below_the_limit_the_screen_decides() -> None:
    held = {"A": 100.0, "B": -50.0}
    references = {"A": 10.0, "B": 20.0}
    assert gross_surely_within(held, references, "A", 200.0, Decimal(3_001))
    assert not gross_surely_within(held, references, "A", 200.0, Decimal(3_000))


def test_an_instrument_without_a_price_leaves_it_to_the_decimal_check() -> None:
    assert not gross_surely_within({"A": 1.0, "B": 1.0}, {"A": 1.0}, "A", 1.0, Decimal(10**9))
