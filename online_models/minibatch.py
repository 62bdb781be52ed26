"""The mini-batch path: predict a whole batch, then learn it, with `predict_many`/`learn_many`.

It exists for throughput (one pandas batch instead of a Python call per sample) and
is evaluated differently from the per-tick path, which is why the trading flow
keeps the per-tick path and this one serves replays, research and `hfl bench models`:

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
        model.learn_many(x_batch, y_batch)
    return out
