"""The risk gate step in a real Bytewax flow, booking in event time (`risk.fill_sync`)."""

from __future__ import annotations

from dataclasses import replace

from gate_flow import run_gate

from dataflows.settings import Settings
from risk.domain import FillsThrough, Order, OrderEventsThrough, PnlSnapshot, Position
from risk.fill_sync import FillSyncMode
from tests.unit.test_gate import TS, D, make_fill, make_signal


def event_time(settings: Settings) -> Settings:
    risk = replace(settings.risk, fill_sync=FillSyncMode.EVENT_TIME, fill_sync_delay_ms=1_000)
    return replace(settings, risk=risk, trading=replace(settings.trading, instruments=("AAPL",)))


def marker(ts: int) -> list[FillsThrough]:
    """The gateway's markers on both its topics: every report before `ts` is in."""
    return [
        kind(
            progress_id=f"p{ts}",
            account="acc",
            instrument="AAPL",
            through_ns=ts,
            ts_event=ts,
            ts_init=ts,
        )
        for kind in (FillsThrough, OrderEventsThrough)
    ]


def test_fills_in_the_last_second_are_booked_at_the_end_of_input(settings: Settings) -> None:
    settings = replace(settings, trading=replace(settings.trading, account="acc"))
    settings = event_time(settings)
    signal = make_signal(1, 100.0)
    first = run_gate(settings, [signal, *marker(TS + 1)])
    (order,) = [o for o in first if isinstance(o, Order)]
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))  # 1 ns after the order
    last = make_signal(1, 100.0, ts=TS + 500_000_000)  # within the 1 s delay of the fill

    out = run_gate(settings, [signal, *marker(TS + 1), fill, last, *marker(TS + 10**9)])

    positions = [o for o in out if isinstance(o, Position)]
    assert [p.quantity for p in positions] == [D(40)]
    assert out.index(positions[0]) > max(
        i for i, o in enumerate(out) if type(o).__name__ in ("Approved", "Denied")
    )
    assert isinstance(out[-1], PnlSnapshot) and out[-1].ts_event == fill.ts_event
