"""The live mini-batch path (`mini_batch_ticks`) against an explicit reference.

The reference is written out here from the documented semantics, with River alone:
the ticks fall into buckets of N; within a bucket every prediction uses the model as
it was at the bucket's start; when a bucket starts, the model learns, with one
`learn_many`, the labels that resolved during the previous bucket (in the order they
resolved). A label resolves at the first tick at or after its horizon.
"""

from __future__ import annotations

import bisect
from typing import Any

import pandas as pd
import pytest
from river import metrics
from test_scorer import simulator_stream

from online_models.minibatch import learn_many
from online_models.pipeline import build_pipeline
from online_models.scorer import InstrumentScorer, TickInput

SEED = 3
HORIZON_NS = 2 * 10**9


def reference(ticks: list[TickInput], pipeline: str, bucket: int) -> tuple[list[float], float]:
    """Predictions (probability of up or forecast) per warm tick and the final accuracy/MAE."""
    model = build_pipeline(pipeline, seed=SEED)
    regression = pipeline == "linear"
    times = [ts for _, ts, _, _ in ticks]
    resolved_at: dict[int, list[int]] = {}  # tick index -> predictions it labels
    for i, (_, ts, _, x) in enumerate(ticks):
        j = bisect.bisect_left(times, ts + HORIZON_NS, lo=i + 1)
        if x is not None and j < len(ticks):
            resolved_at.setdefault(j, []).append(i)
    predictions: dict[int, float] = {}
    metric: Any = metrics.MAE() if regression else metrics.Accuracy()
    learn_x: list[dict[str, float]] = []
    learn_y: list[Any] = []
    for k, (_, _, price, x) in enumerate(ticks):
        if k % bucket == 0 and learn_x:
            dtype = float if regression else bool
            learn_many(model, pd.DataFrame(learn_x), pd.Series(learn_y, dtype=dtype))
            learn_x, learn_y = [], []
        for i in resolved_at.get(k, []):
            forward_return = price / ticks[i][2] - 1.0
            y = forward_return if regression else forward_return > 0
            metric.update(y, predictions[i] if regression else predictions[i] > 0.5)
            learn_x.append(ticks[i][3])  # type: ignore[arg-type]
            learn_y.append(y)
        if x is not None:
            predictions[k] = (
                model.predict_one(x) if regression else model.predict_proba_one(x).get(True, 0.5)
            )
    return [predictions[k] for k in sorted(predictions)], float(metric.get())


def live(ticks: list[TickInput], pipeline: str, bucket: int) -> InstrumentScorer:
    scorer = InstrumentScorer(
        "SIM", model_name=pipeline, horizon_ns=HORIZON_NS, seed=SEED, mini_batch_ticks=bucket
    )
    scorer.predictions = [  # type: ignore[attr-defined]
        p.expected_return if p.expected_return is not None else p.probability_up
        for tick in ticks
        for p in scorer.update(*tick)
        if p.version == 0
    ]
    return scorer


@pytest.mark.parametrize("pipeline", ["logistic", "linear"])
@pytest.mark.parametrize("bucket", [7, 64, 500])
def test_live_mini_batch_equals_the_explicit_reference(pipeline: str, bucket: int) -> None:
    ticks = list(simulator_stream())
    scorer = live(ticks, pipeline, bucket)
    expected, score = reference(ticks, pipeline, bucket)
    assert scorer.predictions == pytest.approx(expected, abs=1e-12)  # type: ignore[attr-defined]
    name = "mae" if pipeline == "linear" else "accuracy"
    assert scorer.metrics.values()[name] == pytest.approx(score, abs=1e-12)


def test_live_mini_batch_differs_from_the_per_tick_path() -> None:
    ticks = list(simulator_stream())
    batched = live(ticks, "logistic", 64).predictions  # type: ignore[attr-defined]
    per_tick = live(ticks, "logistic", 0).predictions  # type: ignore[attr-defined]
    assert len(batched) == len(per_tick) and batched != per_tick


def test_models_without_learn_many_stay_per_tick() -> None:
    ticks = list(simulator_stream())[:1_500]
    batched = live(ticks, "hoeffding_tree", 64).predictions  # type: ignore[attr-defined]
    assert batched == live(ticks, "hoeffding_tree", 0).predictions  # type: ignore[attr-defined]
