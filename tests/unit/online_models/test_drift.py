"""Drift: a scripted calm-to-stressed regime change is detected within a stated bound."""

from __future__ import annotations

from functools import cache

import pytest

from connectors.codec import tick_from_object
from connectors.feeds.simulator import SimulationConfig, simulate
from online_models.bar import BarBuilder
from online_models.champion import ModelSet, ModelSetConfig, PromotionRule
from online_models.drift import DriftConfig, DriftMonitor
from online_models.feature import InstrumentFeatures
from online_models.registry import ModelConfig
from risk.domain import DriftDetected, ModelVersion

CHANGE_AT = 12_000  # ticks of calm before the switch
AFTER = 1_000
BOUND_TICKS = 100  # 2 s of event time at 50 ticks/s
CONFIG = DriftConfig(features=("realized_vol_20",))  # the configured defaults


def regime_change(seed: int) -> SimulationConfig:
    """One instrument, calm for `CHANGE_AT` ticks, then stressed (4x vol, falling) for good."""
    return SimulationConfig(
        symbols=("X",),
        seed=seed,
        ticks_per_second=50.0,
        calm_steps=CHANGE_AT,
        p_stressed_to_calm=0.0,
        stressed_vol_annual=0.8,
    )


@cache
def feature_stream(seed: int) -> tuple[tuple[str, int, float, dict[str, float] | None], ...]:
    """(tick_id, ts_event, price, features) of the scenario, as the live flow computes them."""
    features, bars = InstrumentFeatures(), BarBuilder("X", 1)
    out = []
    for record in simulate(regime_change(seed), CHANGE_AT + AFTER):
        tick = tick_from_object(record, None)
        bar = bars.update(tick)
        if bar is not None:
            features.on_bar(bar)
        out.append((tick.tick_id, tick.ts_event, tick.price, features.update(tick)))
    return tuple(out)


def detections(seed: int) -> list[int]:
    """Tick indices at which the feature detector fired."""
    monitor = DriftMonitor("X", CONFIG)
    fired = []
    for i, (_, ts, _, values) in enumerate(feature_stream(seed)):
        if values is not None and monitor.on_features("m", values, ts):
            fired.append(i)
    return fired


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_regime_change_is_detected_within_bound_and_calm_raises_no_alarm(seed: int) -> None:
    fired = detections(seed)

    assert fired, "no detection"
    assert fired[0] >= CHANGE_AT  # nothing during 12,000 calm ticks
    assert fired[0] - CHANGE_AT <= BOUND_TICKS


def test_simulator_switches_regime_exactly_at_calm_steps() -> None:
    regimes = [r["ask"] - r["bid"] for r in simulate(regime_change(1), CHANGE_AT + 10)]

    assert max(regimes[:CHANGE_AT]) < min(regimes[CHANGE_AT:])  # spreads widen with stress


def test_error_rise_is_detected_but_improvement_is_not() -> None:
    worse, better = DriftMonitor("X", CONFIG), DriftMonitor("X", CONFIG)

    rising = [worse.on_error("m", 0.1 if i < 500 else 0.9, i) for i in range(1_000)]
    falling = [better.on_error("m", 0.9 if i < 500 else 0.1, i) for i in range(1_000)]

    first = next(d for d in rising if d is not None)
    assert (first.detector, first.stream, first.instrument) == ("adwin", "error", "X")
    assert 500 <= first.ts_event < 600
    assert all(d is None for d in falling)


def test_drift_renews_challengers_as_child_versions_and_keeps_the_champion() -> None:
    config = ModelSetConfig(
        champion=ModelConfig(name="logistic", factory="logistic", params={}),
        challengers=(ModelConfig(name="tree", factory="hoeffding_tree", params={}),),
        seed=1,
        horizon_ns=10**9,
        promotion=PromotionRule(enabled=False),
        drift=CONFIG,
    )
    models = ModelSet("X", config)
    out: list[object] = []
    for tick_id, ts, price, values in feature_stream(1):
        models.update(tick_id, ts, price, values, out)  # type: ignore[arg-type]

    drift = [e for e in out if isinstance(e, DriftDetected)]
    versions = [e for e in out if isinstance(e, ModelVersion) and e.model == "tree"]
    assert len(drift) >= 1
    assert len(versions) == 1 + len(drift)
    assert [v.parent for v in versions[1:]] == [v.version_id for v in versions[:-1]]
    assert versions[1].created_at == drift[0].ts_event
    assert models.champion == "logistic"
    assert models.champion_scorer.n_labelled > CHANGE_AT // 2
