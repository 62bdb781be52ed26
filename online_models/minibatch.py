"""The mini-batch path: predict a whole batch, then learn it, with `predict_many`/`learn_many`.

It exists for throughput (one pandas batch instead of a Python call per sample) and
is evaluated differently from the per-tick path. `score_batches` serves replays,
research and `hfl bench models`; the trading flow's variant (`model.mini_batch_ticks`,
in `online_models.scorer.InstrumentScorer`) batches learning only, in buckets of
ticks, predicting each tick as it arrives. Both differ from the per-tick path alike:

- every sample of a batch is predicted by the model as it was at the *start* of the
  batch, so a sample's label reaches the model up to `batch_size - 1` samples later
  than on the per-tick path (on top of the label horizon);
- an SGD linear model takes one step on the batch's mean gradient, not one step per
  sample, and `StandardScaler` updates its statistics once per batch.

With `batch_size == 1` both differences vanish for the linear pipelines (tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from river import compose, preprocessing

from online_models.pipeline import is_regressor


def supports_mini_batch(model: Any) -> bool:
    """True when `model` has both `predict_many` (or `predict_proba_many`) and `learn_many`.

    >>> from online_models.pipeline import build_pipeline
    >>> supports_mini_batch(build_pipeline("linear", seed=0))
    True
    >>> supports_mini_batch(build_pipeline("hoeffding_tree", seed=0))
    False
    """
    predict = "predict_many" if is_regressor(model) else "predict_proba_many"
    return hasattr(model, predict) and hasattr(model, "learn_many")


def learn_many(model: Any, x: pd.DataFrame, y: pd.Series) -> None:
    """`model.learn_many(x, y)`, clearing the rounding error River's scaler leaves.

    River's `StandardScaler.learn_many` takes a batch's variance as E[x²] - E[x]²,
    which for a feature that is constant within the batch (an ATR that only changes
    when a bar closes) can come out a hair below zero; the pipeline's very next
    `transform_many` then takes its square root and fails on a complex number. The
    true variance of such a batch is zero. So a pipeline's steps are run here as
    `Pipeline.learn_many` runs them (each unsupervised transformer learns, then
    transforms; the last step learns), with negative variances set to zero in between.

    >>> from online_models.pipeline import build_pipeline
    >>> model = build_pipeline("linear", seed=0)
    >>> x = pd.DataFrame({"atr": [0.1 + 0.2] * 3, "r": [0.1, 0.3, 0.2]})
    >>> learn_many(model, x, pd.Series([0.1, 0.2, 0.3]))
    >>> model["StandardScaler"].vars["atr"]
    0.0
    """
    if not isinstance(model, compose.Pipeline):
        model.learn_many(x, y)
        return
    *transformers, final = model.steps.values()
    for step in transformers:
        if step._supervised:  # not in our factories; River's own order would differ
            model.learn_many(x, y)
            return
    for step in transformers:
        step.learn_many(x)
        if isinstance(step, preprocessing.StandardScaler):
            variances = step.vars
            for name, variance in variances.items():
                if variance < 0.0:
                    variances[name] = 0.0
        x = step.transform_many(x)
    final.learn_many(x, y)


def score_batches(model: Any, x: pd.DataFrame, y: pd.Series, batch_size: int) -> np.ndarray:
    """Predict then learn `x` in consecutive batches; return every prediction in order.

    Classifiers yield the probability of the `True` class, regressors their forecast.

    Args:
        model: A River estimator for which `supports_mini_batch` holds.
        x: Features, one row per sample, in stream order.
        y: Targets aligned with `x` (bool for classifiers, float for regressors).
        batch_size: Rows per batch (>= 1).

    Raises:
        ValueError: `batch_size` is below 1.

    >>> from online_models.pipeline import build_pipeline
    >>> x = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
    >>> y = pd.Series([0.1, 0.2, 0.3, 0.4])
    >>> score_batches(build_pipeline("linear", seed=0), x, y, 2)[:2].tolist()
    [0.0, 0.0]
    """
    if batch_size < 1:
        msg = f"batch_size must be >= 1, got {batch_size}"
        raise ValueError(msg)
    regression = is_regressor(model)
    out = np.empty(len(x), dtype=np.float64)
    for start in range(0, len(x), batch_size):
        x_batch = x.iloc[start : start + batch_size]
        y_batch = y.iloc[start : start + batch_size]
        if regression:
            predicted = model.predict_many(x_batch).to_numpy(dtype=np.float64)
        else:
            proba = model.predict_proba_many(x_batch)
            predicted = (
                proba[True].to_numpy(dtype=np.float64)
                if True in proba
                else np.full(len(x_batch), 0.5)
            )
        out[start : start + len(x_batch)] = predicted
        learn_many(model, x_batch, y_batch)
    return out
