"""`hfl bench models`: predict+learn throughput of every pipeline, per tick and in mini-batches.

Method: `ticks` simulated ticks of one instrument go through the live feature set
(`InstrumentFeatures`, 1 s bars for ATR); each warm feature vector is labelled by the
forward return `HORIZON_TICKS` ticks later (the sign for classifiers, the return for
regressors). Building the data is not timed. Then, for each pipeline, a fresh seeded
model runs

- per tick: `predict_proba_one` (or `predict_one`) then `learn_one`, sample by sample;
- mini-batch (only where the model has `learn_many` and `predict_many`): the
  prequential batch loop of `online_models.minibatch.score_batches` over pandas
  batches of `batch_size` rows (building the DataFrame is not timed).

Each mode stops after `budget_s` seconds of wall clock or at the end of the data,
whichever comes first, and reports samples per second (rounded to whole samples).
Slow models (the forest) therefore run on fewer samples.

The model the per-tick mode trained is then sealed as a checkpoint would seal it
(`online_models.checkpoint.seal`: the deterministic pickler, zlib, sha256):
`checkpoint_bytes` is its compressed size and `seal_ms` the wall time of the seal,
the pause a checkpoint adds to that model's key (one instrument's model; a pooled
checkpoint seals one such estimator plus every instrument's model set at once).

Progress goes to stderr; the JSON object on the last stdout line maps each pipeline
name to `{"per_tick": rate, "mini_batch": rate or null, "checkpoint_bytes": size,
"seal_ms": time}`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import orjson
import pandas as pd

from connectors.codec import tick_from_object
from connectors.feeds.simulator import SimulationConfig, simulate
from dataflows.settings import ModelSettings
from online_models.bar import BarBuilder
from online_models.checkpoint import seal
from online_models.feature import InstrumentFeatures
from online_models.minibatch import score_batches, supports_mini_batch
from online_models.pipeline import build_pipeline, is_regressor

HORIZON_TICKS = 10
CHECK_EVERY = 64


def feature_stream(ticks: int, seed: int) -> tuple[list[dict[str, float]], list[float]]:
    """Warm feature vectors of a simulated instrument and their forward returns."""
    config = SimulationConfig(symbols=("BENCH",), seed=seed, ticks_per_second=50.0)
    features, bars = InstrumentFeatures(), BarBuilder("BENCH", 1)
    rows: list[tuple[dict[str, float] | None, float]] = []
    for record in simulate(config, ticks):
        tick = tick_from_object(record, None)
        bar = bars.update(tick)
        if bar is not None:
            features.on_bar(bar)
        rows.append((features.update(tick), tick.price))
    x, returns = [], []
    for i, (values, price) in enumerate(rows[:-HORIZON_TICKS]):
        if values is not None:
            x.append(values)
            returns.append(rows[i + HORIZON_TICKS][1] / price - 1.0)
    return x, returns


def per_tick_rate(model: Any, x: list[dict[str, float]], y: list[Any], budget_s: float) -> float:
    """Samples per second of predict-then-learn one sample at a time."""
    predict = model.predict_one if is_regressor(model) else model.predict_proba_one
    learn = model.learn_one
    started = time.perf_counter()
    deadline = started + budget_s
    done = 0
    for done, (row, target) in enumerate(zip(x, y, strict=True), start=1):
        predict(row)
        learn(row, target)
        if done % CHECK_EVERY == 0 and time.perf_counter() > deadline:
            break
    return done / (time.perf_counter() - started)


def mini_batch_rate(
    model: Any, x: pd.DataFrame, y: pd.Series, batch_size: int, budget_s: float
) -> float:
    """Samples per second of the mini-batch path, batch by batch until the budget is spent."""
    started = time.perf_counter()
    deadline = started + budget_s
    done = 0
    for start in range(0, len(x), batch_size):
        end = min(start + batch_size, len(x))
        score_batches(model, x.iloc[start:end], y.iloc[start:end], batch_size)
        done = end
        if time.perf_counter() > deadline:
            break
    return done / (time.perf_counter() - started)


def seal_cost(model: Any) -> tuple[int, float]:
    """Compressed checkpoint size (bytes) of `model` and the wall time of its seal (ms)."""
    started = time.perf_counter()
    sealed = seal(model)
    return sealed.size_bytes, (time.perf_counter() - started) * 1e3


def bench_models(
    model_settings: ModelSettings, *, ticks: int, batch_size: int, budget_s: float
) -> dict[str, dict[str, float | None]]:
    """Measure every configured pipeline; print one line each and the JSON result last."""
    x, returns = feature_stream(ticks, model_settings.seed)
    frame = pd.DataFrame(x)
    print(f"[hfl bench] {len(x)} warm samples, batch {batch_size}", file=sys.stderr)
    results: dict[str, dict[str, float | None]] = {}
    for name, spec in model_settings.pipelines.items():
        model = build_pipeline(spec.factory, seed=model_settings.seed, **spec.params)
        regression = is_regressor(model)
        y = returns if regression else [r > 0.0 for r in returns]
        per_tick = per_tick_rate(model, x, y, budget_s)
        size, seal_ms = seal_cost(model)
        fresh = model.clone()
        mini = (
            mini_batch_rate(fresh, frame, pd.Series(y), batch_size, budget_s)
            if supports_mini_batch(fresh)
            else None
        )
        results[name] = {
            "per_tick": round(per_tick),
            "mini_batch": None if mini is None else round(mini),
            "checkpoint_bytes": size,
            "seal_ms": round(seal_ms, 2),
        }
        print(
            f"{name:>16}: per tick {per_tick:>12,.0f}/s   mini-batch "
            + ("n/a" if mini is None else f"{mini:,.0f}/s")
            + f"   checkpoint {size / 1e3:,.1f} kB sealed in {seal_ms:,.1f} ms"
        )
    print(orjson.dumps(results).decode())
    return results
