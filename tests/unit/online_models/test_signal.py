"""Signal hysteresis: thresholds, warm-up, emitted fields and config validation."""

from __future__ import annotations

import pickle

import pytest

from online_models.signal import FLAT, LONG, SHORT, SignalConfig, SignalState, next_direction
from risk.domain.ids import signal_id
from risk.domain.model import Prediction, Signal

CFG = SignalConfig(min_labelled=0)


def prediction(i: int, p: float, *, version: int = 0) -> Prediction:
    return Prediction(
        tick_id=f"t{i}",
        instrument="AAPL",
        model="logistic",
        horizon_ns=5,
        probability_up=p,
        label=None if version == 0 else 1,
        version=version,
        ts_event=1_000 + i,
        ts_init=2_000 + i,
    )


def directions(state: SignalState, probabilities: list[float]) -> list[int | None]:
    out: list[int | None] = []
    for i, p in enumerate(probabilities):
        signal = state.update(prediction(i, p), n_labelled=10_000, reference_price=100.0)
        out.append(None if signal is None else signal.direction)
    return out


@pytest.mark.parametrize(
    ("direction", "p", "expected"),
    [
        (FLAT, 0.55, LONG),
        (FLAT, 0.549, FLAT),
        (FLAT, 0.45, SHORT),
        (FLAT, 0.451, FLAT),
        (LONG, 0.50, LONG),
        (LONG, 0.499, FLAT),
        (LONG, 0.45, SHORT),
        (SHORT, 0.50, SHORT),
        (SHORT, 0.501, FLAT),
        (SHORT, 0.55, LONG),
    ],
)
def test_next_direction_thresholds(direction: int, p: float, expected: int) -> None:
    assert next_direction(direction, p, CFG) == expected


def test_update_emits_only_on_direction_change() -> None:
    state = SignalState(CFG)

    got = directions(state, [0.5, 0.56, 0.58, 0.52, 0.49, 0.48, 0.40, 0.47, 0.51, 0.6])

    assert got == [None, LONG, None, None, FLAT, None, SHORT, None, FLAT, LONG]
    assert state.direction == LONG


def test_update_signal_fields_come_from_prediction_and_reference_price() -> None:
    state = SignalState(CFG)

    signal = state.update(prediction(3, 0.7), n_labelled=1, reference_price=123.5)

    assert signal == Signal(
        signal_id=signal_id("AAPL", "t3", "logistic"),
        tick_id="t3",
        instrument="AAPL",
        model="logistic",
        direction=LONG,
        probability_up=0.7,
        reference_price=123.5,
        ts_event=1_003,
        ts_init=2_003,
    )


def test_update_before_min_labelled_emits_nothing_then_signals_when_warm() -> None:
    state = SignalState(SignalConfig(min_labelled=200))

    cold = state.update(prediction(0, 0.9), n_labelled=199, reference_price=1.0)
    warm = state.update(prediction(1, 0.9), n_labelled=200, reference_price=1.0)

    assert cold is None
    assert warm is not None and warm.direction == LONG


def test_update_ignores_labelled_predictions() -> None:
    state = SignalState(CFG)

    assert state.update(prediction(0, 0.9, version=1), n_labelled=1, reference_price=1.0) is None
    assert state.direction == FLAT


def test_pickle_round_trip_keeps_direction_and_config() -> None:
    state = SignalState(CFG)
    directions(state, [0.3])

    restored = pickle.loads(pickle.dumps(state))

    assert (restored.direction, restored.config) == (SHORT, CFG)
    assert directions(restored, [0.6]) == [LONG]


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"enter_long": 1.2}, "enter_long=1.2 is outside [0, 1]"),
        ({"enter_short": -0.1}, "enter_short=-0.1 is outside [0, 1]"),
        ({"enter_long": 0.48}, "enter_long=0.48 < exit_long=0.5"),
        ({"exit_long": 0.4}, "exit_long=0.4 < exit_short=0.5"),
        ({"enter_short": 0.52}, "exit_short=0.5 < enter_short=0.52"),
        ({"min_labelled": -1}, "min_labelled=-1 is negative"),
        ({"exit_long": float("nan")}, "exit_long=nan is outside [0, 1]"),
    ],
)
def test_config_invalid_raises_value_error_naming_problem(
    kwargs: dict[str, float], problem: str
) -> None:
    with pytest.raises(ValueError, match="invalid SignalConfig") as info:
        SignalConfig(**kwargs)  # type: ignore[arg-type]

    assert problem in str(info.value)


def test_config_lists_every_problem_at_once() -> None:
    with pytest.raises(ValueError) as info:
        SignalConfig(enter_long=2.0, enter_short=-1.0, min_labelled=-5)

    assert str(info.value).count(";") >= 2


def test_config_defaults_are_valid() -> None:
    assert SignalConfig().problems() == []
