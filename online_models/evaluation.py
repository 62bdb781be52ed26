"""Live prequential metrics of one model: cumulative River metrics and a rolling window."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from typing import Any, NamedTuple

import numpy as np
from river import metrics
from scipy import integrate

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


# River's ROCAUC thresholds (n_thresholds=10), nudged at both ends exactly as River does.
ROC_THRESHOLDS: tuple[float, ...] = tuple(
    t - 1e-7 if i == 0 else t + 1e-7 if i == 9 else t
    for i, t in enumerate(i / 9 for i in range(10))
)
_PROBA_MIN, _PROBA_MAX = 1e-15, 1 - 1e-15  # River's clamp of a probability (LogLoss)


def log_loss(label: int, p_up: float) -> float:
    """Binary log loss of one probability of up, clamped as River's `metrics.LogLoss` does.

    >>> round(log_loss(1, 0.9), 6), round(log_loss(0, 0.9), 6)
    (0.105361, 2.302585)
    """
    p = max(min(p_up, _PROBA_MAX), _PROBA_MIN)
    return -math.log(p) if label == 1 else -math.log(1 - p)


def mean_of(values: Any) -> float:
    """The mean of `values` accumulated as River's `stats.Mean` does (same float, same order).

    >>> mean_of([1.0, 2.0, 4.0])
    2.333333333333333
    """
    n = 0.0
    mean = 0.0
    for x in values:
        n += 1.0
        mean += (1.0 / n) * (x - mean)
    return mean


class BinaryCounts:
    """Counts that give River's Accuracy and ROCAUC (10 thresholds) exactly, in O(1) per label.

    River's ROCAUC keeps one confusion matrix per threshold and updates all ten per
    label (~12 µs). A prediction above threshold i is above every lower one too, so
    a histogram of "how many thresholds lie below p" per true class holds the same
    information: the true and false positives at threshold i are the counts of the
    buckets above i. Counts are integers, so `roc_auc` equals River's `get()` to the
    bit (the same divisions on equal numbers, the same trapezoid). Labels can be
    removed again (`remove`), which keeps a rolling window exact as well.

    >>> counts = BinaryCounts()
    >>> for label, p in ((0, 0.1), (0, 0.4), (1, 0.35), (1, 0.8)):
    ...     counts.add(label, p)
    >>> counts.accuracy(), counts.roc_auc()
    (0.75, 0.875)
    """

    __slots__ = ("correct", "negatives", "positives", "total")

    def __init__(self) -> None:
        """Start empty."""
        self.total = 0
        self.correct = 0
        # Index k: predictions above exactly the k lowest thresholds, per true class.
        self.positives = [0] * (len(ROC_THRESHOLDS) + 1)
        self.negatives = [0] * (len(ROC_THRESHOLDS) + 1)

    def add(self, label: int, p_up: float, sign: int = 1) -> None:
        """Count one label and its probability of up (`sign` -1 removes it)."""
        self.total += sign
        if (p_up > 0.5) == (label == 1):
            self.correct += sign
        bucket = bisect_left(ROC_THRESHOLDS, p_up)
        if label == 1:
            self.positives[bucket] += sign
        else:
            self.negatives[bucket] += sign

    def remove(self, label: int, p_up: float) -> None:
        """Take back one label counted by `add`."""
        self.add(label, p_up, -1)

    def accuracy(self) -> float:
        """River's `Accuracy` of the thresholded predictions (0.0 when empty)."""
        return self.correct / self.total if self.total else 0.0

    def roc_auc(self) -> float:
        """River's `ROCAUC().get()` over the counted labels."""
        n_pos = sum(self.positives)
        n_neg = sum(self.negatives)
        tprs = []
        fprs = []
        tp = n_pos
        fp = n_neg
        for i in range(len(ROC_THRESHOLDS)):
            tp -= self.positives[i]  # above threshold i: buckets i + 1 and up
            fp -= self.negatives[i]
            tprs.append(tp / n_pos if n_pos else 0.0)
            fprs.append(fp / n_neg if n_neg else 0.0)
        return float(-integrate.trapezoid(x=fprs, y=tprs))


class PrequentialMetrics:
    """Prequential (predict-then-learn) scores of one model on one instrument.

    Cumulative metrics equal River's, updated per label as
    `river.evaluate.progressive_val_score` updates them (tested): accuracy, log loss
    and ROC AUC for classifiers, MAE, RMSE and R² for regressors. Rolling metrics
    cover the latest `rolling_window` labels.

    Classifiers are scored with `BinaryCounts` and a running mean of the log loss,
    not River's metric objects: the same numbers to the bit for about a tenth of the
    cost per label (River's ROCAUC updates ten confusion matrices per label). The
    rolling counts are kept per label too (a label leaving the window is removed);
    only the rolling log loss is re-accumulated from the window's kept losses when
    `values()` is asked for (on a schedule), in River's order, so it equals River's
    metric replayed over the window. Regressors keep River's own metric objects and
    re-score the window in `values()`. `rolling_accuracy` (direction hits over the
    window, for both tasks) is kept per label, since champion/challenger rules read
    it often.

    Bounded (the window) and picklable.

    >>> m = PrequentialMetrics(regression=False, rolling_window=2)
    >>> for y, p in ((1, 0.9), (0, 0.8), (0, 0.1)):
    ...     m.update(y, p, 0.0)
    >>> m.values()["accuracy"], m.values()["rolling_accuracy"], m.rolling_accuracy
    (0.6666666666666666, 0.5, 0.5)
    """

    __slots__ = (
        "_counts",
        "_cumulative",
        "_hits",
        "_loss_mean",
        "_loss_n",
        "_rolling_counts",
        "_window",
        "n_labelled",
        "regression",
    )

    def __init__(self, *, regression: bool, rolling_window: int) -> None:
        """Start empty.

        Raises:
            ValueError: `rolling_window` is below 1.
        """
        if rolling_window < 1:
            msg = f"rolling_window must be >= 1, got {rolling_window}"
            raise ValueError(msg)
        self.regression = regression
        # Regressors: River's metrics. Classifiers: counts and the log loss's running mean.
        self._cumulative: dict[str, Any] = (
            {name: kind() for name, kind in REGRESSION_METRICS.items()} if regression else {}
        )
        self._counts = BinaryCounts()
        self._rolling_counts = BinaryCounts()
        self._loss_n = 0.0
        self._loss_mean = 0.0
        # Per label: (y_true, y_pred, hit) for a regressor; (label, y_pred, hit, log
        # loss) for a classifier.
        self._window: deque[tuple[Any, ...]] = deque(maxlen=rolling_window)
        self._hits = 0
        self.n_labelled = 0

    def update(self, label: int, y_pred: float, forward_return: float) -> None:
        """Score one resolved prediction."""
        regression = self.regression
        hit = direction_hit(y_pred, label, regression=regression)
        window = self._window
        full = len(window) == window.maxlen
        if full:
            self._hits -= window[0][2]
        if regression:
            for metric in self._cumulative.values():
                metric.update(forward_return, y_pred)
            window.append((forward_return, y_pred, hit))
        else:
            loss = log_loss(label, y_pred)
            self._loss_n += 1.0
            self._loss_mean += (1.0 / self._loss_n) * (loss - self._loss_mean)
            self._counts.add(label, y_pred)
            rolling = self._rolling_counts
            if full:
                rolling.remove(window[0][0], window[0][1])
            rolling.add(label, y_pred)
            window.append((label, y_pred, hit, loss))
        self._hits += hit
        self.n_labelled += 1

    @property
    def accuracy(self) -> float:
        """Cumulative accuracy of a classifier (River's); 0.0 before a label or for a regressor."""
        return 0.0 if self.regression else self._counts.accuracy()

    @property
    def rolling_accuracy(self) -> float:
        """Share of correct directions over the window; 0.0 before any label."""
        window = self._window
        return self._hits / len(window) if window else 0.0

    def values(self) -> dict[str, float]:
        """Every cumulative metric, and each again as `rolling_<name>` over the window."""
        if not self.regression:
            counts, rolling = self._counts, self._rolling_counts
            return {
                "accuracy": counts.accuracy(),
                "log_loss": self._loss_mean,
                "roc_auc": counts.roc_auc(),
                "rolling_accuracy": self.rolling_accuracy,
                "rolling_log_loss": mean_of(item[3] for item in self._window),
                "rolling_roc_auc": rolling.roc_auc(),
            }
        out = {name: float(metric.get()) for name, metric in self._cumulative.items()}
        replay = {name: metric.clone() for name, metric in self._cumulative.items()}
        for y_true, y_pred, _ in self._window:
            for metric in replay.values():
                metric.update(y_true, y_pred)
        out.update({f"rolling_{name}": float(metric.get()) for name, metric in replay.items()})
        out["rolling_accuracy"] = self.rolling_accuracy
        return out

    def __getstate__(self) -> tuple[None, dict[str, Any]]:
        """The slots, with the window as one array (`_WindowColumns`).

        A model checkpoint pickles with the pure-Python pickler, which pays per object:
        a window of 1,000 label tuples is 5,000 objects, one float array a single one.
        """
        slots = {name: getattr(self, name) for name in self.__slots__}
        window = self._window
        if window:
            slots["_window"] = _WindowColumns(
                window.maxlen or len(window), np.array(window, dtype=np.float64)
            )
        return None, slots

    def __setstate__(self, state: tuple[Any, dict[str, Any]]) -> None:
        """Restore, converting a classifier pickled with River's metric objects."""
        slots = state[1] if isinstance(state, tuple) else state
        window = slots.get("_window")
        if isinstance(window, _WindowColumns):
            slots = {**slots, "_window": window.restore(regression=slots["regression"])}
        if "_counts" not in slots:
            slots = (
                {
                    **slots,
                    "_counts": BinaryCounts(),
                    "_rolling_counts": BinaryCounts(),
                    "_loss_n": 0.0,
                    "_loss_mean": 0.0,
                }
                if slots.get("regression")
                else _from_river_metrics(slots)
            )
        for name, value in slots.items():
            object.__setattr__(self, name, value)


class _WindowColumns(NamedTuple):
    """A metrics window pickled as one array: one row per label, in order."""

    maxlen: int
    rows: np.ndarray

    def restore(self, *, regression: bool) -> deque[tuple[Any, ...]]:
        """The window as `PrequentialMetrics` keeps it: label and hit as ints."""
        rows = self.rows.tolist()
        if regression:  # (forward return, forecast, hit)
            items = ((y, p, int(hit)) for y, p, hit in rows)
        else:  # (label, probability, hit, log loss)
            items = ((int(label), p, int(hit), loss) for label, p, hit, loss in rows)  # type: ignore[misc]
        return deque(items, maxlen=self.maxlen)


def _from_river_metrics(old: dict[str, Any]) -> dict[str, Any]:
    """The slots of a classifier's metrics pickled by the earlier, River-object layout."""
    counts = BinaryCounts()
    roc = old["_cumulative"]["roc_auc"]
    for label, row in ((1, counts.positives), (0, counts.negatives)):
        above = [cm.data[label == 1][True] for cm in roc.cms]  # predicted up, per threshold
        total = sum(cm.data[label == 1][False] for cm in roc.cms[:1]) + above[0]
        row[0] = int(total - above[0])
        for i in range(1, len(above)):
            row[i] = int(above[i - 1] - above[i])
        row[-1] = int(above[-1])
    accuracy = old["_cumulative"]["accuracy"].cm
    counts.total = int(accuracy.total_weight)
    counts.correct = int(accuracy.total_true_positives)
    loss = old["_cumulative"]["log_loss"]._mean
    old_window = old["_window"]
    window: deque[tuple[Any, ...]] = deque(maxlen=old_window.maxlen)
    rolling = BinaryCounts()
    for y_true, y_pred, hit in old_window:
        label = 1 if y_true else 0
        window.append((label, y_pred, hit, log_loss(label, y_pred)))
        rolling.add(label, y_pred)
    return {
        "_counts": counts,
        "_cumulative": {},
        "_hits": old["_hits"],
        "_loss_n": float(loss.n),
        "_loss_mean": float(loss._mean),
        "_rolling_counts": rolling,
        "_window": window,
        "n_labelled": old["n_labelled"],
        "regression": False,
    }
