"""The risk gate step in a real Bytewax flow, booking in event time (`risk.fill_sync`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import orjson
from bytewax.recovery import init_db_dir
from bytewax.testing import TestingSource
from gate_flow import run_gate

from dataflows.settings import Settings
from risk.command_log import CommandPoint
from risk.domain import (
    AuditEvent,
    ControlAction,
    Denied,
    Order,
    OrdersSent,
    PnlSnapshot,
    Position,
)
from risk.fill_sync import FillSyncMode
from tests.unit.test_account import command, through
from tests.unit.test_gate import TS, D, make_fill, make_signal


def event_time(settings: Settings) -> Settings:
    risk = replace(settings.risk, fill_sync=FillSyncMode.EVENT_TIME, fill_sync_delay_ms=1_000)
    return replace(settings, risk=risk, trading=replace(settings.trading, instruments=("AAPL",)))


def test_fills_in_the_last_second_are_booked_at_the_end_of_input(settings: Settings) -> None:
    settings = replace(settings, trading=replace(settings.trading, account="acc"))
    settings = event_time(settings)
    signal = make_signal(1, 100.0)
    first = run_gate(settings, [signal, *through(TS + 1)])
    (order,) = [o for o in first if isinstance(o, Order)]
    fill = replace(make_fill(order, 40), leaves_quantity=D(60))  # 1 ns after the order
    last = make_signal(1, 100.0, ts=TS + 500_000_000)  # within the 1 s delay of the fill

    out = run_gate(settings, [signal, *through(TS + 1), fill, last, *through(TS + 10**9)])

    positions = [o for o in out if isinstance(o, Position)]
    assert [p.quantity for p in positions] == [D(40)]
    assert out.index(positions[0]) > max(
        i for i, o in enumerate(out) if type(o).__name__ in ("Approved", "Denied")
    )
    assert isinstance(out[-1], PnlSnapshot) and out[-1].ts_event == fill.ts_event


def decisions(out: list[object]) -> list[object]:
    """Outputs without the gate's promises (they follow batching) and its journal."""
    return [o for o in out if not isinstance(o, OrdersSent | AuditEvent)]


def test_crash_replay_applies_commands_where_the_journal_says_in_any_interleaving(
    settings: Settings, tmp_path: Path
) -> None:
    settings = event_time(replace(settings, trading=replace(settings.trading, account="acc")))
    signals = [make_signal((-1) ** n, 100.0 + n, ts=TS + 10 * n) for n in range(9)]
    kill, resume, reduce = (command(a, n) for n, a in enumerate(ControlAction))
    before = [signals[0], *through(TS)]  # what the snapshot holds
    after = [
        *signals[1:3],
        *through(TS + 20),
        kill,
        *signals[3:6],
        *through(TS + 50),
        resume,
        reduce,
        *signals[6:],
        *through(TS + 80),
    ]
    uninterrupted = run_gate(settings, [*before, *after], batch_size=1)
    journal = [
        CommandPoint(**orjson.loads(a.detail))
        for a in uninterrupted
        if isinstance(a, AuditEvent) and a.action == "control_applied"
    ]
    assert len(journal) == 3
    assert any(isinstance(d, Denied) for d in uninterrupted)

    commands = [kill, resume, reduce]
    items = [a for a in after if a not in commands]
    for n, replayed in enumerate(
        (
            [*commands, *items],  # read again before every item...
            [*items, *reversed(commands)],  # ...after every item and marker
            [*items[:3], reduce, resume, *items[3:7], kill, *items[7:]],
        )
    ):
        store = tmp_path / str(n)
        store.mkdir()
        init_db_dir(store, 1)
        # The crashed run got past the commands; its last snapshot did not. (One list:
        # an ABORT triggers once.)
        inputs = [*before, TestingSource.ABORT(), *replayed]
        first = run_gate(settings, inputs, recovery_dir=store, batch_size=1)
        resumed = run_gate(
            settings, inputs, recovery_dir=store, batch_size=1, journal=lambda _: journal
        )
        assert decisions(first) + decisions(resumed) == decisions(uninterrupted)
