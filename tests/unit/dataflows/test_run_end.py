"""The end condition of a bounded trading flow (`dataflows.flows.run_end`), on a real FillSync."""

from __future__ import annotations

import logging

import pytest

from dataflows.flows import run_end
from dataflows.flows.run_end import RunEnd
from risk.fill_sync import FillSync
from tests.unit.dataflows.test_account import through


@pytest.fixture(autouse=True)
def _fresh_outcome(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_end._Outcome, "gave_up", False)


def holding(at_ns: int) -> FillSync[str]:
    sync = FillSync[str](("AAPL",), delay_ns=5, max_wait_ns=10**18)
    sync.hold("signal", at_ns)
    return sync


def mark(sync: FillSync[str], through_ns: int) -> None:
    for marker in through(through_ns):
        sync.mark(marker)


def test_never_ends_before_the_market_data_did() -> None:
    end = RunEnd(give_up_s=0.0)
    end.note_gate(None)
    assert not end.may_end(at_end=True)


def test_ends_once_the_markers_passed_the_last_decision() -> None:
    end = RunEnd(give_up_s=3600.0)
    sync = holding(15)
    end.note_gate(sync)
    end.market_data_ended()
    assert not end.may_end(at_end=True)
    mark(sync, 10)
    assert sync.release(now_ns=0) == ["signal"]
    end.note_gate(sync)
    assert not end.may_end(at_end=True)  # released, but a report before it may still come
    mark(sync, 15)
    end.note_gate(sync)
    assert not end.may_end(at_end=False)  # settled, but fills and commands are unread
    assert end.may_end(at_end=True)
    assert not run_end.gave_up()


def test_a_gate_booking_in_arrival_order_holds_nothing() -> None:
    end = RunEnd(give_up_s=3600.0)
    end.note_gate(None)
    end.market_data_ended()
    assert end.may_end(at_end=True)


@pytest.mark.parametrize("at_end", [True, False])
def test_gives_up_loudly_when_the_gate_makes_no_progress(
    caplog: pytest.LogCaptureFixture, at_end: bool
) -> None:
    # Not at the end too: a topic the broker lost (R4, nobody re-created it) never
    # reports its end again, and the run must still stop rather than wait for ever.
    end = RunEnd(give_up_s=0.0)
    end.note_gate(holding(15))
    end.market_data_ended()
    with caplog.at_level(logging.ERROR, logger="hfl.trading.end"):
        assert end.may_end(at_end)
    assert run_end.gave_up()
    assert "WITHOUT the gateway: 1 held" in caplog.text
