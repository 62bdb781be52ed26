"""The classifier's prequential metrics equal River's metric objects to the bit."""

from __future__ import annotations

import pickle
import random
from collections import deque

import pytest
from river import metrics

from online_models.evaluation import PrequentialMetrics, direction_hit

WINDOW = 50


def stream(seed: int, n: int) -> list[tuple[int, float]]:
    rng = random.Random(seed)
    probabilities = [0.0, 1.0, 0.5, 1e-16, 1 - 1e-16, 1 / 9, 8 / 9]  # edges and thresholds
    out = []
    for i in range(n):
        p = probabilities[i] if i < len(probabilities) else rng.random()
        out.append((1 if rng.random() < 0.5 else 0, p))
    return out


def river_values(labels: list[tuple[int, float]], window: int) -> dict[str, float]:
    kinds = {"accuracy": metrics.Accuracy, "log_loss": metrics.LogLoss, "roc_auc": metrics.ROCAUC}
    out = {}
    for prefix, items in (("", labels), ("rolling_", labels[-window:])):
        for name, kind in kinds.items():
            metric = kind()
            for label, p in items:
                metric.update(label == 1, p > 0.5 if name == "accuracy" else p)
            out[prefix + name] = float(metric.get())
    return out


@pytest.mark.parametrize(("seed", "n"), [(0, 0), (1, 1), (2, 7), (3, WINDOW), (4, 777)])
def test_classifier_metrics_equal_river_metrics_exactly(seed: int, n: int) -> None:
    labels = stream(seed, n)
    scores = PrequentialMetrics(regression=False, rolling_window=WINDOW)
    for label, p in labels:
        scores.update(label, p, 0.0)
    got = scores.values()
    expected = river_values(labels, WINDOW)
    hits = [direction_hit(p, label, regression=False) for label, p in labels[-WINDOW:]]
    expected["rolling_accuracy"] = sum(hits) / len(hits) if hits else 0.0
    assert got == expected
    assert list(got) == [
        "accuracy",
        "log_loss",
        "roc_auc",
        "rolling_accuracy",
        "rolling_log_loss",
        "rolling_roc_auc",
    ]


def test_classifier_metrics_survive_pickling_unchanged() -> None:
    scores = PrequentialMetrics(regression=False, rolling_window=WINDOW)
    for label, p in stream(5, 300):
        scores.update(label, p, 0.0)
    restored = pickle.loads(pickle.dumps(scores))
    assert restored.values() == scores.values()
    for label, p in stream(6, 100):
        scores.update(label, p, 0.0)
        restored.update(label, p, 0.0)
    assert restored.values() == scores.values()


def test_metrics_pickled_with_river_objects_restore_to_the_same_values() -> None:
    labels = stream(7, 400)
    cumulative = {"accuracy": metrics.Accuracy(), "log_loss": metrics.LogLoss()}
    cumulative["roc_auc"] = metrics.ROCAUC()
    window: deque[tuple[bool, float, int]] = deque(maxlen=WINDOW)
    hits = 0
    for label, p in labels:
        for name, metric in cumulative.items():
            metric.update(label == 1, p > 0.5 if name == "accuracy" else p)
        hit = direction_hit(p, label, regression=False)
        if len(window) == WINDOW:
            hits -= window[0][2]
        window.append((label == 1, p, hit))
        hits += hit
    old_layout = {
        "_cumulative": cumulative,
        "_hits": hits,
        "_window": window,
        "n_labelled": len(labels),
        "regression": False,
    }
    restored = PrequentialMetrics.__new__(PrequentialMetrics)
    restored.__setstate__((None, old_layout))
    fresh = PrequentialMetrics(regression=False, rolling_window=WINDOW)
    for label, p in labels:
        fresh.update(label, p, 0.0)
    assert restored.values() == fresh.values()
    for label, p in stream(8, 60):
        restored.update(label, p, 0.0)
        fresh.update(label, p, 0.0)
    assert restored.values() == fresh.values()
