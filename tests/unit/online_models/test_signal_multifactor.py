"""The multi-factor signal engine: factors, learning, cost gate, hold, turnover, emission."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from connectors.codec import decode_tick, encode
from connectors.feeds.simulator import SimulationConfig, simulate
from dataflows.settings import load_settings
from dataflows.settings_domain import model_spec
from online_models.instrument import InstrumentPipeline
from online_models.signal import SignalConfig, SignalState, signal_engine
from online_models.signal_multifactor import (
    FACTORS,
    FLAT,
    LONG,
    SHORT,
    MultiFactorConfig,
    MultiFactorEngine,
)
from risk.domain.model import Prediction, Signal

CONFIG = Path(__file__).resolve().parents[3] / "config"
# Edge = 100 bps per unit of champion score (2p - 1): p = 0.6 -> +20 bps.
CHAMPION_ONLY = (0.0, 100.0, 0.0, 0.0, 0.0, 0.0)


def configured(**kwargs: object) -> MultiFactorConfig:
    base: dict[str, object] = {
        "weights": CHAMPION_ONLY,
        "min_labelled": 0,
        "min_learned": 0,
        "min_hold_ticks": 0,
        "cost_bps": 1.0,
    }
    return MultiFactorConfig(**{**base, **kwargs})  # type: ignore[arg-type]


def run(engine: MultiFactorEngine, probabilities: list[float]) -> list[int | None]:
    return [engine.step(100.0, p, 0.0, 10**6) for p in probabilities]


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


def test_cost_gate_trades_only_an_edge_above_the_round_trip_cost() -> None:
    # Round trip 2 x 1 bps x edge_multiple 2 = 4 bps: 0.515 -> 3 bps stays flat.
    engine = MultiFactorEngine(configured(edge_multiple=2.0))
    assert run(engine, [0.515, 0.515, 0.525, 0.525]) == [None, None, LONG, None]
    assert engine.edge == pytest.approx(5.0)


def test_held_position_kept_while_the_edge_keeps_its_sign_and_flat_when_it_turns() -> None:
    engine = MultiFactorEngine(configured())
    assert run(engine, [0.6, 0.505, 0.501, 0.499, 0.3]) == [LONG, None, None, FLAT, SHORT]


def test_minimum_hold_counts_ticks_not_time() -> None:
    engine = MultiFactorEngine(configured(min_hold_ticks=3))
    assert run(engine, [0.6, 0.3, 0.3, 0.3, 0.3]) == [LONG, None, None, SHORT, None]


def test_turnover_budget_keeps_room_for_the_exit() -> None:
    # Budget 3 units per 100 ticks: enter (1, +1 reserved for the exit) fits; the flip
    # (2 more, +1 reserved) would not, so it goes flat (1, always fits); no new entry.
    engine = MultiFactorEngine(configured(max_turnover=3.0, turnover_window_ticks=100))
    assert run(engine, [0.6, 0.3, 0.3, 0.6, 0.3]) == [LONG, FLAT, None, None, None]


def test_turnover_budget_frees_up_after_its_window() -> None:
    engine = MultiFactorEngine(configured(max_turnover=2.0, turnover_window_ticks=3))
    assert run(engine, [0.6, 0.4, 0.6, 0.6, 0.6]) == [LONG, FLAT, None, None, LONG]


def test_nothing_before_the_models_labels_or_the_learned_samples() -> None:
    engine = MultiFactorEngine(configured(min_labelled=5))
    assert [engine.step(100.0, 0.9, 0.0, n) for n in range(7)] == [None] * 5 + [LONG, None]
    learned = MultiFactorEngine(MultiFactorConfig(min_labelled=0, min_learned=50))
    assert all(learned.step(100.0 + i, 0.9, 0.0, 10**6) is None for i in range(40))


def test_learned_weights_find_a_factor_that_predicts_the_forward_return() -> None:
    # The champion's score is the sign of the return over the next 5 ticks: the
    # regression must put a positive weight on it and trade with it.
    rng = np.random.default_rng(3)
    returns = rng.normal(0.0, 0.001, 3_000)
    prices = 100.0 * np.exp(np.cumsum(returns))
    ahead = np.append(np.log(prices[5:] / prices[:-5]), np.zeros(5))
    engine = MultiFactorEngine(
        MultiFactorConfig(
            horizon_ticks=5, min_labelled=0, min_hold_ticks=5, cost_bps=0.5, max_turnover=1e9
        )
    )
    pnl, held = 0.0, FLAT
    for i, price in enumerate(prices):
        p = 0.6 if ahead[i] > 0 else 0.4
        target = engine.step(float(price), p, 0.0, 10**6)
        if i:
            pnl += held * math.log(price / prices[i - 1])
        held = target if target is not None else held
    assert engine.weights["champion"] > 0
    assert max(engine.weights.items(), key=lambda kv: abs(kv[1]))[0] == "champion"
    assert pnl > 0.5  # of ~1.1 for perfect foresight over 5 ticks


def test_update_builds_the_signal_from_the_prediction_and_ignores_labelled_rows() -> None:
    engine = MultiFactorEngine(configured())
    assert engine.update(prediction(0, 0.9, version=1), 10, 100.0) is None
    signal = engine.update(prediction(1, 0.6), 10, 101.0, peers=[0.7, 0.5])
    assert isinstance(signal, Signal)
    assert (signal.direction, signal.tick_id, signal.reference_price) == (LONG, "t1", 101.0)
    assert (signal.probability_up, signal.ts_event, signal.ts_init) == (0.6, 1_001, 2_001)


def test_challenger_scores_are_a_factor() -> None:
    weights = (0.0, 0.0, 100.0, 0.0, 0.0, 0.0)
    engine = MultiFactorEngine(configured(weights=weights))
    assert engine.update(prediction(0, 0.5), 10, 100.0, peers=[0.6, 0.7]) is not None
    assert engine.edge == pytest.approx(30.0)  # mean(0.2, 0.4) x 100


def test_step_many_equals_step_by_step_and_pickles_mid_stream() -> None:
    rng = np.random.default_rng(5)
    prices = (100.0 * np.exp(np.cumsum(rng.normal(0, 0.002, 600)))).tolist()
    probs = rng.uniform(0.3, 0.7, 600).tolist()
    cfg = MultiFactorConfig(min_labelled=0, min_learned=50, min_hold_ticks=3, horizon_ticks=4)
    one = MultiFactorEngine(cfg)
    steps = [one.step(x, p, 0.0, 1) for x, p in zip(prices, probs, strict=True)]
    expected = [(i, t) for i, t in enumerate(steps) if t is not None]
    half = MultiFactorEngine(cfg)
    first = half.step_many(prices[:300], probs[:300], [0.0] * 300, [1] * 300)
    restored = pickle.loads(pickle.dumps(half))
    rest = restored.step_many(prices[300:], probs[300:], [0.0] * 300, [1] * 300)
    assert expected
    assert first + [(i + 300, t) for i, t in rest] == expected


def test_engine_is_chosen_by_its_configuration() -> None:
    assert isinstance(signal_engine(SignalConfig()), SignalState)
    assert isinstance(signal_engine(MultiFactorConfig()), MultiFactorEngine)
    assert len(MultiFactorEngine().weights) == len(FACTORS)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"cost_bps": -1.0}, "cost_bps=-1.0 is negative"),
        ({"horizon_ticks": 0}, "horizon_ticks=0 is below 1"),
        ({"forgetting": 0.0}, "forgetting=0.0 is outside"),
        ({"weights": (1.0,)}, "weights has 1 values"),
        ({"max_turnover": 1.0}, "max_turnover=1.0 is below 2"),
        ({"min_hold_ticks": -1}, "min_hold_ticks=-1 is negative"),
    ],
)
def test_config_rejects(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match="invalid MultiFactorConfig") as info:
        MultiFactorConfig(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_the_pipeline_passes_the_challengers_scores_to_the_engine() -> None:
    # Only the challengers' factor is weighted: a signal proves their fresh predictions
    # reached the engine (without them its edge is 0 and nothing is ever emitted).
    settings = load_settings(
        CONFIG,
        env={"HFL_MODEL__CHALLENGERS": "hoeffding_tree", "HFL_MODEL__CHECKPOINT_INTERVAL_S": "0"},
    )
    base = model_spec(settings)
    engine = configured(weights=(0.0, 0.0, 100.0, 0.0, 0.0, 0.0), cost_bps=0.0)
    pipeline = InstrumentPipeline("AAPL", replace(base, signal=engine))
    simulated = SimulationConfig(
        symbols=("AAPL",), seed=7, ticks_per_second=100.0, start_ns=1_700_000_000_000_000_000
    )
    out: list[object] = []
    for record in simulate(simulated, 4_000):
        pipeline.update(decode_tick(encode(record), frozenset({"AAPL"})), out)  # type: ignore[arg-type]
    assert any(isinstance(event, Signal) for event in out)
    alone = InstrumentPipeline(
        "AAPL", replace(base, signal=engine, models=replace(base.models, challengers=()))
    )
    out.clear()
    for record in simulate(simulated, 4_000):
        alone.update(decode_tick(encode(record), frozenset({"AAPL"})), out)  # type: ignore[arg-type]
    assert not any(isinstance(event, Signal) for event in out)
