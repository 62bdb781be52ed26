"""Pooled models: one estimator learns from every instrument, checked against River's evaluator.

Three instruments' ticks are interleaved in event-time order, as one `md.ticks`
partition delivers them. Each instrument's model set keeps its own pending labels and
metrics; the pooled logistic regression is one object they all learn into.

River's reference: `iter_progressive_val_score` over the same interleaved stream, each
sample revealed (`delay` per sample) at the event time of the instrument's own tick
that labels it, which is when the scorer learns it.
"""

from __future__ import annotations

import bisect
import pickle
from typing import Any

import pytest
from river import compose, evaluate, metrics

from connectors.codec import tick_from_object
from connectors.feeds.simulator import SimulationConfig, simulate
from online_models.bar import BarBuilder
from online_models.champion import ModelPool, ModelSet, ModelSetConfig, PromotionRule
from online_models.feature import InstrumentFeatures
from online_models.pipeline import build_pipeline
from online_models.registry import ModelConfig
from risk.domain import ModelScope, Prediction

SYMBOLS = ("AAA", "BBB", "CCC")
HORIZON_NS = 2 * 10**9
SEED = 4
Tick = tuple[str, str, int, float, dict[str, float] | None]  # instrument, id, ts, price, x


def stream(n: int = 9_000) -> list[Tick]:
    """Simulated ticks of three instruments with the live features, in arrival order."""
    config = SimulationConfig(symbols=SYMBOLS, seed=SEED, ticks_per_second=150.0)
    features = {name: InstrumentFeatures() for name in SYMBOLS}
    bars = {name: BarBuilder(name, 1) for name in SYMBOLS}
    out: list[Tick] = []
    for record in simulate(config, n):
        tick = tick_from_object(record, None)
        bar = bars[tick.instrument].update(tick)
        if bar is not None:
            features[tick.instrument].on_bar(bar)
        x = features[tick.instrument].update(tick)
        out.append((tick.instrument, tick.tick_id, tick.ts_event, tick.price, x))
    return out


def config(scope: ModelScope = ModelScope.POOLED) -> ModelSetConfig:
    return ModelSetConfig(
        champion=ModelConfig(name="logistic", factory="logistic", params={}, scope=scope),
        seed=SEED,
        horizon_ns=HORIZON_NS,
        promotion=PromotionRule(enabled=False),
    )


def run(
    ticks: list[Tick],
    sets: dict[str, ModelSet] | None = None,
    scope: ModelScope = ModelScope.POOLED,
) -> tuple[dict[str, ModelSet], list[Prediction]]:
    """Feed `ticks` to one model set per instrument sharing one pool; return sets and outputs."""
    if sets is None:
        pool = ModelPool()
        sets = {name: ModelSet(name, config(scope), pool) for name in SYMBOLS}
    last_ts = {name: max(t[2] for t in ticks if t[0] == name) for name in SYMBOLS}
    out: list[Any] = []
    for instrument, tick_id, ts, price, x in ticks:
        # Predict only where the label will resolve within the stream, as River's dataset.
        features = x if ts + HORIZON_NS <= last_ts[instrument] else None
        sets[instrument].update(tick_id, ts, price, features, out)
    return sets, [e for e in out if isinstance(e, Prediction)]


def river_dataset(ticks: list[Tick]) -> list[tuple[dict[str, Any], bool]]:
    """Every predicted tick with its label and the delay until its instrument's labelling tick."""
    times = {name: [t[2] for t in ticks if t[0] == name] for name in SYMBOLS}
    prices = {name: [t[3] for t in ticks if t[0] == name] for name in SYMBOLS}
    dataset = []
    for instrument, _, ts, price, x in ticks:
        j = bisect.bisect_left(times[instrument], ts + HORIZON_NS)
        if x is None or j == len(times[instrument]):
            continue
        label = prices[instrument][j] / price - 1.0 > 0
        dataset.append(({"__ts": ts, "__delay": times[instrument][j] - ts, **x}, label))
    return dataset


def river_steps(dataset: list[tuple[dict[str, Any], bool]], metric: Any) -> list[dict[str, Any]]:
    model = compose.Discard("__ts", "__delay") | build_pipeline("logistic", seed=SEED)
    return list(
        evaluate.iter_progressive_val_score(
            dataset, model, metric, moment="__ts", delay="__delay", step=1, yield_predictions=True
        )
    )


def pooled_metric(sets: dict[str, ModelSet], name: str) -> float:
    """A cumulative mean metric over all instruments, from the per-instrument ones."""
    scorers = [s.champion_scorer for s in sets.values()]
    total = sum(scorer.metrics.values()[name] * scorer.n_labelled for scorer in scorers)
    return total / sum(scorer.n_labelled for scorer in scorers)


def test_pooled_predictions_and_metrics_equal_river_progressive_validation() -> None:
    ticks = stream()
    sets, predictions = run(ticks)
    dataset = river_dataset(ticks)
    log_loss = river_steps(dataset, metrics.LogLoss())
    accuracy = river_steps(dataset, metrics.Accuracy())

    # River reports each prediction when its label is revealed: compare in that order.
    labelled = [p.probability_up for p in predictions if p.version == 1]
    assert len(labelled) == len(dataset) > 5_000
    assert labelled == [step["Prediction"][True] for step in log_loss]
    assert sum(s.champion_scorer.n_labelled for s in sets.values()) == len(dataset)
    assert pooled_metric(sets, "log_loss") == pytest.approx(
        log_loss[-1]["LogLoss"].get(), abs=1e-12
    )
    assert pooled_metric(sets, "accuracy") == pytest.approx(
        accuracy[-1]["Accuracy"].get(), abs=1e-12
    )


def test_pooled_model_is_one_object_and_differs_from_per_instrument_models() -> None:
    ticks = stream(3_000)
    pooled_sets, pooled = run(ticks)
    _, separate = run(ticks, scope=ModelScope.PER_INSTRUMENT)
    models = {id(s.champion_scorer.model) for s in pooled_sets.values()}
    assert len(models) == 1
    assert [p.probability_up for p in pooled] != [p.probability_up for p in separate]
    assert {p.instrument for p in pooled} == set(SYMBOLS)  # predictions per instrument


def test_same_seed_pooled_runs_give_identical_predictions() -> None:
    ticks = stream(3_000)
    assert run(ticks)[1] == run(ticks)[1]


def test_pooled_sets_pickled_together_resume_like_the_uninterrupted_run() -> None:
    ticks = stream(4_000)
    _, whole = run(ticks)
    head, first = run(ticks[:2_000])
    restored = pickle.loads(pickle.dumps(head))
    assert len({id(s.champion_scorer.model) for s in restored.values()}) == 1
    _, second = run(ticks[2_000:], restored)
    assert first + second == whole
