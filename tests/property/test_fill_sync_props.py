"""Property tests: booking in event time does not depend on when fills arrived."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from risk.domain import Fill, FillsThrough, Side
from risk.fill_sync import FillSync

INSTRUMENTS = ("AAA", "BBB")
FOREVER = 10**9


def fill(n: int, instrument: str, ts: int, coid: str, leaves: int) -> Fill:
    return Fill(
        fill_id=f"f{n}",
        client_order_id=coid,
        account="acct",
        instrument=instrument,
        side=Side.BUY,
        quantity=Decimal(1),
        price=Decimal(100),
        fee=Decimal(0),
        leaves_quantity=Decimal(leaves),
        tick_id="t",
        ts_event=ts,
        ts_init=ts,
    )


def marker(instrument: str, through: int) -> FillsThrough:
    return FillsThrough(
        progress_id=f"{instrument}{through}",
        account="acct",
        instrument=instrument,
        through_ns=through,
        ts_event=through,
        ts_init=through,
    )


fills_strategy = st.lists(
    st.tuples(
        st.sampled_from(INSTRUMENTS),
        st.integers(0, 50),
        st.sampled_from(["o1", "o2", "o3"]),
        st.integers(0, 5),
    ),
    max_size=25,
).map(lambda rows: [fill(n, *row) for n, row in enumerate(rows)])


@st.composite
def gateway_streams(draw: st.DrawFn, fills: list[Fill]) -> list[Fill | FillsThrough]:
    """Fills in any emission order, each instrument's markers only behind what they cover."""
    order = draw(st.permutations(fills))
    stream: list[Fill | FillsThrough] = []
    for position, emitted in enumerate(order):
        stream.append(emitted)
        if draw(st.booleans()):
            instrument = draw(st.sampled_from(INSTRUMENTS))
            rest = [f.ts_event for f in order[position + 1 :] if f.instrument == instrument]
            stream.append(marker(instrument, min(rest, default=FOREVER)))
    return stream + [marker(name, FOREVER) for name in INSTRUMENTS]


def book(
    items: list[int], reports: list[Fill | FillsThrough], picks: list[bool], delay: int
) -> list[Fill | str]:
    """Feed items (at their times) and the gateway stream in the interleaving `picks`."""
    sync = FillSync[str](INSTRUMENTS, delay_ns=delay, max_wait_ns=FOREVER, markers=(FillsThrough,))
    out: list[Fill | str] = []
    i = r = 0
    for take_item in [*picks, *[True] * len(items), *[False] * len(reports)]:
        if take_item and i < len(items):
            sync.hold(f"item@{items[i]}#{i}", items[i])
            i += 1
        elif r < len(reports):
            report = reports[r]
            sync.mark(report) if isinstance(report, FillsThrough) else sync.add_report(report)
            r += 1
        out += sync.release(now_ns=0)
    return out


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    fills=fills_strategy,
    items=st.lists(st.integers(0, 60), max_size=12).map(sorted),
    picks=st.tuples(st.lists(st.booleans(), max_size=60), st.lists(st.booleans(), max_size=60)),
    delay=st.integers(0, 20),
)
def test_same_items_and_fills_book_the_same_whatever_the_arrival(
    data: st.DataObject,
    fills: list[Fill],
    items: list[int],
    picks: tuple[list[bool], list[bool]],
    delay: int,
) -> None:
    one = book(items, data.draw(gateway_streams(fills)), picks[0], delay)
    other = book(items, data.draw(gateway_streams(fills)), picks[1], delay)
    assert one == other
    assert [entry for entry in one if isinstance(entry, str)] == [
        f"item@{at}#{n}" for n, at in enumerate(items)
    ]
    # Before each item exactly the fills `delay` earlier were booked, in (time, order) order.
    booked: list[Fill] = []
    for entry in one:
        if isinstance(entry, Fill):
            booked.append(entry)
            continue
        at = int(entry.split("@")[1].split("#")[0])
        expected = {f.fill_id for f in fills if f.ts_event < at - delay}
        assert {f.fill_id for f in booked} == expected
    keys = [(f.ts_event, f.client_order_id, -f.leaves_quantity) for f in booked]
    assert keys == sorted(keys)
