"""The mini-batch path against the per-sample path it approximates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from online_models.minibatch import score_batches
from online_models.pipeline import build_pipeline, is_regressor


def stream(n: int, *, regression: bool) -> tuple[pd.DataFrame, pd.Series]:
    """A seeded linear stream with three features and noise."""
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    signal = x.to_numpy() @ np.array([0.5, -0.2, 0.1]) + rng.normal(scale=0.1, size=n)
    return x, pd.Series(signal if regression else signal > 0)


def per_sample(name: str, x: pd.DataFrame, y: pd.Series) -> np.ndarray:
    """Predict-then-learn one row at a time with `*_one`."""
    model = build_pipeline(name, seed=0)
    out = []
    for row, target in zip(x.to_dict("records"), y, strict=True):
        if is_regressor(model):
            out.append(model.predict_one(row))
        else:
            out.append(model.predict_proba_one(row).get(True, 0.5))
        model.learn_one(row, target)
    return np.asarray(out)


@pytest.mark.parametrize("name", ["linear", "logistic"])
def test_batches_of_one_equal_the_per_sample_path(name: str) -> None:
    x, y = stream(300, regression=name == "linear")

    got = score_batches(build_pipeline(name, seed=0), x, y, batch_size=1)

    np.testing.assert_allclose(got, per_sample(name, x, y), rtol=1e-9, atol=1e-12)


def test_larger_batches_predict_with_the_model_from_the_batch_start() -> None:
    x, y = stream(200, regression=True)

    got = score_batches(build_pipeline("linear", seed=0), x, y, batch_size=100)

    assert np.all(got[:100] == 0.0)  # the untrained model predicts the whole first batch
    assert np.any(got[100:] != 0.0)


def test_batch_size_below_one_is_rejected() -> None:
    x, y = stream(5, regression=True)

    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        score_batches(build_pipeline("linear", seed=0), x, y, batch_size=0)
