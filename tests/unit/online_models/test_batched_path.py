"""The batched instrument path (`InstrumentPipeline.update_batch`, `InstrumentScorer.step`).

- Per-tick models: the rows of its columnar records are exactly the per-tick path's
  objects, in the same order, however the ticks are split into runs.
- Mini-batch models (`mini_batch_ticks`): how the ticks are split into runs (the input's
  batching) never changes a row, and the prequential scores equal River's own metrics
  over River's `learn_many` / `predict_proba_many` on the same buckets.
- `FrozenPredictor` is River's `predict_proba_many` / `predict_many` to 1e-15, and
  bit-identical however the rows are sliced.
- A state pickled mid-bucket continues exactly as the one that kept running.
"""

from __future__ import annotations

import bisect
import pickle
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from river import metrics

from connectors.codec import tick_from_object
from connectors.feeds.simulator import SimulationConfig, simulate
from online_models.bar import BarBuilder
from online_models.champion import ModelSetConfig, restore_model_set
from online_models.drift import DriftConfig
from online_models.feature import InstrumentFeatures
from online_models.instrument import InstrumentPipeline, ModelSpec, WarmStart, explode
from online_models.minibatch import FrozenPredictor, learn_many
from online_models.pipeline import build_pipeline
from online_models.registry import ModelConfig
from online_models.scorer import FeatureRows, InstrumentScorer, PredictionColumns
from online_models.signal import SignalConfig
from risk.domain import FeatureBatch, ModelCheckpoint, Prediction, PredictionBatch, Tick

SEED = 11
HORIZON_NS = 2 * 10**9


def sim_ticks(n: int = 4_000) -> list[Tick]:
    config = SimulationConfig(symbols=("SIM",), seed=SEED, ticks_per_second=50.0)
    return [tick_from_object(record, None) for record in simulate(config, n)]


def spec(mini_batch_ticks: int, *, challenger: bool = True) -> ModelSpec:
    challengers = (
        (ModelConfig(name="linear", factory="linear", params={}, sample_every=3),)
        if challenger
        else ()
    )
    return ModelSpec(
        models=ModelSetConfig(
            champion=ModelConfig(name="logistic", factory="logistic", params={}),
            challengers=challengers,
            seed=SEED,
            horizon_ns=HORIZON_NS,
            metrics_interval_ns=5 * 10**9,
            checkpoint_interval_ns=20 * 10**9,
            drift=DriftConfig(features=("realized_vol_20",), feature_min_instances=200),
            mini_batch_ticks=mini_batch_ticks,
        ),
        signal=SignalConfig(
            enter_long=0.51, exit_long=0.5, enter_short=0.49, exit_short=0.5, min_labelled=20
        ),
    )


def runs(ticks: list[Tick], rng: random.Random, longest: int) -> list[list[Tick]]:
    """`ticks` cut into consecutive runs of random lengths 1..`longest`."""
    out, start = [], 0
    while start < len(ticks):
        size = rng.randint(1, longest)
        out.append(ticks[start : start + size])
        start += size
    return out


def batched(ticks: list[Tick], model_spec: ModelSpec, pieces: list[list[Tick]]) -> list[object]:
    pipeline = InstrumentPipeline("SIM", model_spec)
    out: list[Any] = []
    for piece in pieces:
        pipeline.update_batch(piece, out)
    return out


def by_kind(events: list[object]) -> dict[str, list[object]]:
    """Each kind's events in order (the order across kinds follows the runs).

    A checkpoint by its id and position only: its blob pickles the set, whose layout
    differs between the paths (the batched one shares a tick's feature dict between
    its models), while a warm start from either continues identically.
    """
    kinds: dict[str, list[object]] = {}
    for event in explode(events):
        if isinstance(event, ModelCheckpoint):
            event = (event.checkpoint_id, event.seq, event.ts_event)  # noqa: PLW2901
        kinds.setdefault(type(event).__name__, []).append(event)
    return kinds


def test_per_tick_models_give_the_per_tick_paths_rows_in_order() -> None:
    ticks = sim_ticks()
    model_spec = spec(0)
    per_tick = InstrumentPipeline("SIM", model_spec)
    expected: list[Any] = []
    for tick in ticks:
        per_tick.update(tick, expected)
    got = batched(ticks, model_spec, runs(ticks, random.Random(1), 300))
    assert any(isinstance(e, PredictionBatch) for e in got)
    assert any(isinstance(e, FeatureBatch) for e in got)
    assert by_kind(got) == by_kind(expected)
    assert len(by_kind(got)["Signal"]) > 10


@pytest.mark.parametrize("bucket", [16, 256])
def test_mini_batch_rows_do_not_depend_on_how_the_ticks_are_batched(bucket: int) -> None:
    ticks = sim_ticks()
    model_spec = spec(bucket)
    whole = by_kind(batched(ticks, model_spec, [ticks]))
    for seed, longest in ((2, 1), (3, 37), (4, 700)):
        assert by_kind(batched(ticks, model_spec, runs(ticks, random.Random(seed), longest))) == (
            whole
        )
    per_tick = by_kind(batched(ticks, spec(0), [ticks]))
    assert whole["Prediction"] != per_tick["Prediction"]  # frozen within buckets


def test_a_state_pickled_mid_bucket_continues_identically() -> None:
    ticks = sim_ticks()
    model_spec = spec(64)
    expected = batched(ticks, model_spec, [ticks[:1_000], ticks[1_000:2_345], ticks[2_345:]])
    pipeline = InstrumentPipeline("SIM", model_spec)
    out: list[Any] = []
    pipeline.update_batch(ticks[:1_000], out)
    pipeline.update_batch(ticks[1_000:2_345], out)
    restored: InstrumentPipeline = pickle.loads(pickle.dumps(pipeline))
    restored.update_batch(ticks[2_345:], out)
    assert by_kind(out) == by_kind(expected)


def reference_scores(
    rows: list[tuple[str, int, float, tuple[float, ...] | None]],
    names: tuple[str, ...],
    bucket: int,
) -> tuple[list[float], dict[str, float]]:
    """River alone: buckets of `bucket` ticks; every warm row of a bucket predicted with
    one `predict_proba_many` on the model as the bucket starts; labels resolve at the
    first tick at/after their horizon, are scored with River's metrics, and are learnt
    with one `learn_many` when the next bucket starts."""
    model = build_pipeline("logistic", seed=SEED)
    times = [ts for _, ts, _, _ in rows]
    resolved_at: dict[int, list[int]] = {}
    for i, (_, ts, _, x) in enumerate(rows):
        j = bisect.bisect_left(times, ts + HORIZON_NS, lo=i + 1)
        if x is not None and j < len(rows):
            resolved_at.setdefault(j, []).append(i)
    scores = {
        "accuracy": metrics.Accuracy(),
        "log_loss": metrics.LogLoss(),
        "roc_auc": metrics.ROCAUC(),
    }
    predictions: dict[int, float] = {}
    learn_x: list[tuple[float, ...]] = []
    learn_y: list[bool] = []
    for k, (_, _, price, _x) in enumerate(rows):
        if k % bucket == 0:
            if learn_x:
                frame = pd.DataFrame(np.array(learn_x), columns=list(names))
                learn_many(model, frame, pd.Series(learn_y, dtype=bool))
                learn_x, learn_y = [], []
            warm = [i for i in range(k, min(k + bucket, len(rows))) if rows[i][3] is not None]
            if warm:
                frame = pd.DataFrame(np.array([rows[i][3] for i in warm]), columns=list(names))
                proba = model.predict_proba_many(frame)
                column = proba[True] if True in proba else pd.Series([0.5] * len(warm))
                predictions.update(zip(warm, column.tolist(), strict=True))
        for i in resolved_at.get(k, []):
            y = price > rows[i][2]
            for name, metric in scores.items():
                p = predictions[i]
                metric.update(y, p > 0.5 if name == "accuracy" else {True: p, False: 1 - p})
            learn_x.append(rows[i][3])  # type: ignore[arg-type]
            learn_y.append(y)
    return [predictions[k] for k in sorted(predictions)], {
        name: float(metric.get()) for name, metric in scores.items()
    }


@pytest.mark.parametrize("bucket", [32, 500])
def test_mini_batch_prequential_scores_equal_rivers_on_the_same_buckets(bucket: int) -> None:
    features = InstrumentFeatures()
    bars = BarBuilder("SIM", 1)
    rows = []
    for tick in sim_ticks():
        bar = bars.update(tick)
        if bar is not None:
            features.on_bar(bar)
        rows.append(
            (tick.tick_id, tick.ts_event, tick.price, features.update_row(tick.price, tick.size))
        )
    scorer = InstrumentScorer("SIM", horizon_ns=HORIZON_NS, seed=SEED, mini_batch_ticks=bucket)
    sink = PredictionColumns("SIM")
    fresh: list[float] = []
    rng = random.Random(5)
    start = 0
    while start < len(rows):  # the input in random batches
        piece = rows[start : start + rng.randint(1, 300)]
        batch = FeatureRows(features.names)
        index = []
        for _, _, _, x in piece:
            index.append(-1 if x is None else len(batch.rows))
            if x is not None:
                batch.rows.append(x)
        for (tick_id, ts, price, _), row in zip(piece, index, strict=True):
            made = scorer.step(tick_id, ts, price, row, features=batch, sink=sink)
            if made is not None:
                fresh.append(made)
        start += len(piece)
    expected, scores = reference_scores(rows, features.names, bucket)
    assert fresh == pytest.approx(expected, abs=1e-15, rel=0)
    values = scorer.metrics.values()
    assert scorer.n_labelled > 3_000
    for name, value in scores.items():
        assert values[name] == pytest.approx(value, abs=1e-12), name


@pytest.mark.parametrize("factory", ["logistic", "linear"])
def test_frozen_predictor_is_rivers_predict_many_and_slicing_never_changes_a_bit(
    factory: str,
) -> None:
    rng = np.random.default_rng(0)
    names = tuple(f"f{i}" for i in range(14))
    x = rng.normal(size=(3_000, 14)) * rng.uniform(0.1, 100, 14) + rng.uniform(-50, 50, 14)
    model = build_pipeline(factory, seed=0)
    y = (
        pd.Series(rng.random(1_000) > 0.5)
        if factory == "logistic"
        else pd.Series(rng.normal(size=1_000))
    )
    learn_many(model, pd.DataFrame(x[:1_000], columns=list(names)), y)
    predict = FrozenPredictor(model, names)
    whole = predict(x[1_000:])
    frame = pd.DataFrame(x[1_000:], columns=list(names))
    river = (
        model.predict_proba_many(frame)[True]
        if factory == "logistic"
        else model.predict_many(frame)
    ).to_numpy()
    assert np.allclose(whole, river, rtol=0, atol=1e-15)
    for seed in range(40):
        cuts = sorted(random.Random(seed).sample(range(1, 2_000), 12))
        parts = [
            predict(x[1_000 + a : 1_000 + b])
            for a, b in zip([0, *cuts], [*cuts, 2_000], strict=True)
        ]
        assert np.array_equal(np.concatenate(parts), whole)


def test_a_mini_batch_checkpoint_warm_starts_bit_identically() -> None:
    """A warm start from a checkpoint sealed mid-bucket (pending labels, the learn buffer
    and the metrics window pickled as arrays) continues exactly, and seals the same
    later checkpoints byte for byte."""
    ticks = sim_ticks()
    model_spec = spec(64, challenger=False)
    uninterrupted = explode(batched(ticks, model_spec, runs(ticks, random.Random(6), 250)))
    sealed = [e for e in uninterrupted if isinstance(e, ModelCheckpoint)]
    assert len(sealed) >= 2
    first = sealed[0]
    warm = WarmStart(models=restore_model_set(first), after_seq=first.seq)
    resumed_pipeline = InstrumentPipeline("SIM", model_spec, warm)
    resumed: list[Any] = []
    for piece in runs(ticks, random.Random(7), 90):
        resumed_pipeline.update_batch(piece, resumed)
    resumed = explode(resumed)
    for kind in (Prediction, ModelCheckpoint):  # each kind in order (runs interleave them)
        expected = [e for e in uninterrupted if isinstance(e, kind) and e.ts_init > first.ts_event]
        assert expected
        assert [e for e in resumed if isinstance(e, kind) and e.ts_init > first.ts_event] == (
            expected
        )
