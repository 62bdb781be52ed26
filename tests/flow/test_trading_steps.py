"""The trading flow's steps under Bytewax: dead letters, determinism, recovery, kill switch."""

from __future__ import annotations

import pickle
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import abort_and_resume
from support.gate_flow import run_gate

from connectors.codec import encode
from connectors.kafka.record import KafkaRecord
from dataflows.flows.account import AccountState, handle_account, make_account_state
from dataflows.flows.trading import (
    InstrumentState,
    decode_ticks,
    handle_ticks,
    to_account,
)
from dataflows.flows.wiring import topic_decoder
from dataflows.settings import Settings
from dataflows.settings_domain import model_spec
from online_models.instrument import explode
from risk.domain import (
    Approved,
    Bar,
    ControlAction,
    ControlCommand,
    DecodeFailure,
    DecodeReason,
    DenialReason,
    Denied,
    DriftDetected,
    FeatureVector,
    Order,
    Prediction,
    Signal,
    TradingState,
    TradingStateChanged,
)

BATCH_SIZE = 500  # the `run_trading` default: resume points must fall on batch edges
INSTRUMENT_EVENTS = (Bar, FeatureVector, Prediction, Signal)
RunTrading = Callable[..., list[object]]


def encoded(events: Sequence[object]) -> list[bytes]:
    """Encode every event, in order, as the Kafka sink would."""
    return [encode(event) for event in events]


def instrument_events(events: Sequence[object]) -> list[object]:
    """Bars, features, predictions (columnar records exploded into rows) and signals,
    in emitted order."""
    return [event for event in explode(list(events)) if isinstance(event, INSTRUMENT_EVENTS)]


@pytest.fixture(scope="module")
def bad_events(run_trading: RunTrading, bad_stream: Any) -> list[object]:
    """The trading steps' output for the stream with bad records spliced in."""
    return run_trading(bad_stream.records)


def test_bad_records_each_yield_one_dead_letter_with_its_reason(
    bad_events: list[object], bad_stream: Any, trading_events: list[object]
) -> None:
    failures = [event for event in bad_events if isinstance(event, DecodeFailure)]

    assert {f.offset: f.reason for f in failures} == bad_stream.expected
    assert len(failures) == len(bad_stream.expected)
    assert sum(isinstance(event, FeatureVector) for event in explode(bad_events)) > 0
    # Bad records are skipped, not half-applied: per-instrument output is unchanged.
    assert Counter(encoded(instrument_events(bad_events))) == Counter(
        encoded(instrument_events(trading_events))
    )


def test_oversized_dead_letter_keeps_size_but_truncates_raw(bad_events: list[object]) -> None:
    failures = [event for event in bad_events if isinstance(event, DecodeFailure)]

    oversized = next(f for f in failures if f.raw_size > 64 * 1024)
    assert len(oversized.raw) <= 4 * 1024
    assert all(f.topic == "md.ticks" and f.failure_id for f in failures)


def test_same_seeded_stream_twice_yields_identical_orders_and_bytes(
    run_trading: RunTrading, tick_records: list[KafkaRecord], trading_events: list[object]
) -> None:
    again = run_trading(tick_records)

    first_orders = [e for e in trading_events if isinstance(e, Order)]
    second_orders = [e for e in again if isinstance(e, Order)]
    assert len(first_orders) > 0
    assert {o.client_order_id for o in first_orders} == {o.client_order_id for o in second_orders}
    assert first_orders == second_orders
    assert encoded(again) == encoded(trading_events)


def test_bytewax_abort_and_resume_equals_uninterrupted_run(
    run_trading: RunTrading, tick_records: list[KafkaRecord], tmp_path: Path
) -> None:
    full, before, after = abort_and_resume(run_trading, tick_records, tmp_path)

    assert 0 < len(before) < len(full)
    assert before == full[: len(before)]
    # The resumed run replays from the last snapshot: it is a suffix of the full run,
    # and together the two runs cover all of it.
    assert after == full[len(full) - len(after) :]
    assert len(before) + len(after) >= len(full)
    assert sum(b.startswith(b'{"client_order_id"') for b in full) > 0


class Driver:
    """The trading steps called directly, batch by batch, as the flow would call them."""

    def __init__(self, settings: Settings) -> None:
        self.spec = model_spec(settings)
        self.decode = decode_ticks(frozenset(settings.trading.instruments))
        self.select = to_account(settings.trading.account)
        self.gate = handle_account
        self.instruments: dict[str, InstrumentState] = {}
        self.account: AccountState = make_account_state(settings)

    def run(self, records: Sequence[KafkaRecord]) -> list[object]:
        out: list[object] = []
        for start in range(0, len(records), BATCH_SIZE):
            by_instrument: dict[str, list[Any]] = {}
            for item in self.decode(list(records[start : start + BATCH_SIZE])):
                assert not isinstance(item, DecodeFailure)
                by_instrument.setdefault(item[0], []).append(item[1])
            events: list[object] = []
            for name in sorted(by_instrument):
                state = self.instruments.setdefault(name, InstrumentState(self.spec))
                events.extend(handle_ticks(state, by_instrument[name]))
            out.extend(events)
            out.extend(self.gate(self.account, [value for _, value in self.select(events)]))
        return out

    def restored(self) -> Driver:
        """A copy whose states went through pickle, as a Bytewax snapshot does."""
        copy = object.__new__(Driver)
        copy.spec, copy.decode, copy.select, copy.gate = (
            self.spec,
            self.decode,
            self.select,
            self.gate,
        )
        copy.instruments = pickle.loads(pickle.dumps(self.instruments))
        copy.account = pickle.loads(pickle.dumps(self.account))
        return copy


def test_states_pickled_at_half_and_resumed_equal_uninterrupted_run(
    settings: Settings, tick_records: list[KafkaRecord]
) -> None:
    half = len(tick_records) // 2 // BATCH_SIZE * BATCH_SIZE
    uninterrupted = Driver(settings).run(tick_records)

    first = Driver(settings)
    outputs = first.run(tick_records[:half])
    outputs += first.restored().run(tick_records[half:])

    assert sum(isinstance(event, Order) for event in uninterrupted) > 0
    assert encoded(outputs) == encoded(uninterrupted)


def control(settings: Settings, action: ControlAction, ts_event: int) -> ControlCommand:
    return ControlCommand(
        command_id=f"cmd-{action}-{ts_event}",
        account=settings.trading.account,
        action=action,
        reason="flow test",
        actor="pytest",
        ts_event=ts_event,
        ts_init=ts_event,
    )


def test_kill_switch_denies_every_signal_until_resume_then_orders_flow(
    settings: Settings, trading_events: list[object]
) -> None:
    inputs: list[Any] = [value for _, value in to_account(settings.trading.account)(trading_events)]
    signals = [i for i, event in enumerate(inputs) if isinstance(event, Signal)]
    kill_at, resume_at = signals[len(signals) // 10], signals[len(signals) // 2]
    kill = control(settings, ControlAction.KILL, inputs[kill_at].ts_event)
    resume = control(settings, ControlAction.RESUME, inputs[resume_at].ts_event)
    stream = [*inputs[:kill_at], kill, *inputs[kill_at:resume_at], resume, *inputs[resume_at:]]

    out = run_gate(settings, stream)

    decisions = [event for event in out if isinstance(event, Approved | Denied)]
    assert len(decisions) == len(signals)
    killed = decisions[len(signals) // 10 : len(signals) // 2]
    assert killed
    assert all(isinstance(d, Denied) and d.reason is DenialReason.KILL_SWITCH for d in killed)
    after = decisions[len(signals) // 2 :]
    assert any(isinstance(d, Approved) for d in after)
    resumed_orders = [o for o in out if isinstance(o, Order) and o.ts_event >= resume.ts_event]
    assert resumed_orders


def test_orders_independent_of_source_batch_size(
    run_trading: RunTrading, tick_records: list[KafkaRecord], trading_events: list[object]
) -> None:
    other = run_trading(tick_records, batch_size=137)

    assert [e for e in other if isinstance(e, Order)] == [
        e for e in trading_events if isinstance(e, Order)
    ]


def test_control_for_unknown_account_is_dead_lettered_not_crashing(
    settings: Settings, make_records: Callable[..., list[KafkaRecord]]
) -> None:
    command = replace(control(settings, ControlAction.KILL, 1), account="no-such-account")
    decode = topic_decoder(lambda topic: ControlCommand, account=settings.trading.account)

    (event,) = decode(make_records([encode(command)], "hfl.control"))

    assert isinstance(event, DecodeFailure)
    assert event.reason is DecodeReason.UNKNOWN_ACCOUNT


def test_drift_detection_reaches_the_gate_and_only_reducing_orders_follow(
    settings: Settings, trading_events: list[object]
) -> None:
    inputs: list[Any] = [value for _, value in to_account(settings.trading.account)(trading_events)]
    signals = [i for i, event in enumerate(inputs) if isinstance(event, Signal)]
    at = signals[len(signals) // 3]
    instrument = inputs[at].instrument
    drift = DriftDetected(
        drift_id="d1",
        instrument=instrument,
        model="m",
        detector="adwin",
        stream="error",
        value=0.4,
        ts_event=inputs[at].ts_event,
        ts_init=inputs[at].ts_init,
    )
    [(_, selected)] = to_account(settings.trading.account)([drift])
    assert selected is drift

    out = run_gate(settings, [*inputs[:at], drift, *inputs[at:]])

    [change] = [e for e in out if isinstance(e, TradingStateChanged)]
    assert (change.instrument, change.state, change.trigger) == (
        instrument,
        TradingState.REDUCING,
        "drift",
    )
    # No fills come back here: the position if every working order fills is the sum of
    # the approved orders, and after the change only orders reducing it pass.
    start = out.index(change)
    net = sum(
        e.side.sign * e.quantity
        for e in out[:start]
        if isinstance(e, Approved) and e.instrument == instrument
    )
    after = [e for e in out[start:] if getattr(e, "instrument", "") == instrument]
    for approved in (e for e in after if isinstance(e, Approved)):
        moved = net + approved.side.sign * approved.quantity
        assert abs(moved) < abs(net) and moved * net >= 0
        net = moved
    assert [e for e in after if isinstance(e, Denied) and e.reason is DenialReason.REDUCE_ONLY]
