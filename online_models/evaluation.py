"""Live prequential metrics of one model: cumulative River metrics and a rolling window."""

from __future__ import annotations

from collections import deque
from typing import Any

from river import metrics

CLASSIFICATION_METRICS: dict[str, Any] = {
    "accuracy": metrics.Accuracy,
    "log_loss": metrics.LogLoss,
    "roc_auc": metrics.ROCAUC,
}
REGRESSION_METRICS: dict[str, Any] = {
    "mae": metrics.MAE,
    "rmse": metrics.RMSE,
    "r2": metrics.R2,
}


def prediction_error(
    y_pred: float, label: int, forward_return: float, *, regression: bool
) -> float:
    """Absolute error of one prediction once its outcome is known.

    A classifier's error is `|label - probability of up|` (0 for a confident hit,
    1 for a confident miss); a regressor's is `|forward return - forecast|`.

    >>> prediction_error(0.8, 1, 0.01, regression=False)
    0.19999999999999996
    >>> prediction_error(0.002, 1, 0.003, regression=True)
    0.001
    """
    if regression:
        return abs(forward_return - y_pred)
    return abs(label - y_pred)


def direction_hit(y_pred: float, label: int, *, regression: bool) -> int:
    """1 when the predicted direction matches the label, else 0.

    A classifier calls "up" above probability 0.5 (a tie is "down", like River's
    `predict_one`); a regressor calls "up" on a positive forecast.

    >>> direction_hit(0.5, 0, regression=False), direction_hit(0.001, 1, regression=True)
    (1, 1)
    """
    up = y_pred > 0.0 if regression else y_pred > 0.5
    return 1 if up == (label == 1) else 0


class PrequentialMetrics:
    """Prequential (predict-then-learn) scores of one model on one instrument.

    Cumulative metrics are River's own objects, updated per label exactly as
    `river.evaluate.progressive_val_score` updates them (so the numbers are equal,
    tested): accuracy, log loss and ROC AUC for classifiers, MAE, RMSE and R² for
    regressors. Rolling metrics cover the latest `rolling_window` labels; they are
    recomputed by River's same metrics from the kept window only when `values()`
    is asked for (on a schedule), which keeps the per-label cost to a deque append.
    `rolling_accuracy` (direction hits over the window, for both tasks) is kept
    per label by a hit counter, since champion/challenger rules read it often.

    Bounded (the window) and picklable.

    >>> m = PrequentialMetrics(regression=False, rolling_window=2)
    >>> for y, p in ((1, 0.9), (0, 0.8), (0, 0.1)):
    ...     m.update(y, p, 0.0)
    >>> m.values()["accuracy"], m.values()["rolling_accuracy"], m.rolling_accuracy
    (0.6666666666666666, 0.5, 0.5)
    """

    __slots__ = ("_cumulative", "_hits", "_window", "n_labelled", "regression")

    def __init__(self, *, regression: bool, rolling_window: int) -> None:
        """Start empty.

        Raises:
            ValueError: `rolling_window` is below 1.
        """
        if rolling_window < 1:
            msg = f"rolling_window must be >= 1, got {rolling_window}"
            raise ValueError(msg)
        self.regression = regression
        kinds = REGRESSION_METRICS if regression else CLASSIFICATION_METRICS
        self._cumulative: dict[str, Any] = {name: kind() for name, kind in kinds.items()}
        # (y_true, y_pred, hit) per label; the metrics' own y_true (bool or float).
        self._window: deque[tuple[Any, float, int]] = deque(maxlen=rolling_window)
        self._hits = 0
        self.n_labelled = 0

    def update(self, label: int, y_pred: float, forward_return: float) -> None:
        """Score one resolved prediction."""
        regression = self.regression
        y_true: Any = forward_return if regression else label == 1
        for name, metric in self._cumulative.items():
            # Accuracy scores the predicted class; the others score the probability.
            metric.update(y_true, y_pred > 0.5 if name == "accuracy" else y_pred)
        hit = direction_hit(y_pred, label, regression=regression)
        window = self._window
        if len(window) == window.maxlen:
            self._hits -= window[0][2]
        window.append((y_true, y_pred, hit))
        self._hits += hit
        self.n_labelled += 1

    @property
    def accuracy(self) -> float:
        """Cumulative accuracy of a classifier (River's); 0.0 before a label or for a regressor."""
        metric = self._cumulative.get("accuracy")
        return 0.0 if metric is None else float(metric.get())

    @property
    def rolling_accuracy(self) -> float:
        """Share of correct directions over the window; 0.0 before any label."""
        window = self._window
        return self._hits / len(window) if window else 0.0

    def values(self) -> dict[str, float]:
        """Every cumulative metric, and each again as `rolling_<name>` over the window."""
        out = {name: float(metric.get()) for name, metric in self._cumulative.items()}
        rolling = {name: metric.clone() for name, metric in self._cumulative.items()}
        for y_true, y_pred, _ in self._window:
            for name, metric in rolling.items():
                metric.update(y_true, y_pred > 0.5 if name == "accuracy" else y_pred)
        out.update({f"rolling_{name}": float(metric.get()) for name, metric in rolling.items()})
        out["rolling_accuracy"] = self.rolling_accuracy
        return out
