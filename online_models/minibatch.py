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
from river import compose, linear_model, preprocessing

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


class FrozenPredictor:
    """River's `predict_proba_many` (or `predict_many`) of one frozen model, without a frame.

    River's mini-batch calls go through a dataframe layer whose fixed cost (about
    1-1.5 ms per call on this machine, whatever the number of rows) is larger than a
    whole batch's arithmetic. Within a mini-batch bucket the model does not change, so
    for the linear pipelines (`StandardScaler | LogisticRegression` or
    `LinearRegression`) its parameters are read once, here, and each call does exactly
    the numpy operations River's `transform_many` and `predict_proba_many` /
    `predict_many` do, except that the dot product is summed column by column (see
    `__call__`): within 1e-15 of River's (tested), and independent of how the rows are
    sliced. Any other model that `supports_mini_batch` gets River's own call on a frame.
    Build one after every change of the model (a `learn_many`); never pickled.

    >>> from online_models.pipeline import build_pipeline
    >>> predict = FrozenPredictor(build_pipeline("logistic", seed=0), ("a", "b"))
    >>> predict(np.array([[1.0, 2.0], [3.0, 4.0]])).tolist()
    [0.5, 0.5]
    """

    __slots__ = ("_intercept", "_means", "_model", "_names", "_proba", "_stds", "_weights")

    def __init__(self, model: Any, names: tuple[str, ...]) -> None:
        """Read the parameters of `model` for the feature columns `names`."""
        self._model = model
        self._names = names
        self._proba = not is_regressor(model)
        self._weights: np.ndarray | None = None
        steps = list(model.steps.values()) if isinstance(model, compose.Pipeline) else []
        if (
            len(steps) == 2
            and type(steps[0]) is preprocessing.StandardScaler
            and steps[0].window_size is None
            and type(steps[1]) in (linear_model.LogisticRegression, linear_model.LinearRegression)
        ):
            scaler, glm = steps
            columns = list(names)
            # Indexing, as River's transform_many does (its defaultdicts gain the keys).
            self._means = np.array([scaler.means[c] for c in columns], dtype=np.float64)
            self._stds = (
                np.array([scaler.vars[c] ** 0.5 for c in columns], dtype=np.float64)
                if scaler.with_std
                else None
            )
            self._weights = glm._weights.to_numpy(columns)
            self._intercept = glm.intercept

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The probability of up (classifier) or the forecast (regressor) of each row of `x`."""
        weights = self._weights
        if weights is None:
            return predict_frame(self._model, pd.DataFrame(x, columns=list(self._names)))
        xt = x - self._means
        stds = self._stds
        if stds is not None:
            np.divide(xt, stds, where=stds > 0, out=xt)
        # River's `xt @ weights` is a BLAS product whose rounding depends on how many rows
        # it is given and on their alignment in memory (seen: last-bit differences when a
        # bucket's rows come in other slices). Summed column by column, each row gets the
        # same additions in the same order however the rows are sliced, so the input's
        # batching never changes a bit. Within 1e-15 of River's value (tested).
        raw: np.ndarray = xt[:, 0] * weights[0]
        for j in range(1, len(weights)):
            raw += xt[:, j] * weights[j]
        raw += self._intercept
        if self._proba:
            with np.errstate(over="ignore"):  # exp(+large) is inf: the probability is 0.0
                proba: np.ndarray = 1.0 / (1.0 + np.exp(-raw))  # River's mean_func on arrays
            return proba
        return raw


def predict_frame(model: Any, x: pd.DataFrame) -> np.ndarray:
    """River's `predict_proba_many` (probability of `True`) or `predict_many`, as an array."""
    if is_regressor(model):
        forecast: np.ndarray = model.predict_many(x).to_numpy(dtype=np.float64)
        return forecast
    proba = model.predict_proba_many(x)
    if True in proba:
        up: np.ndarray = proba[True].to_numpy(dtype=np.float64)
        return up
    return np.full(len(x), 0.5)
