"""River pipeline factories and the registry that names them.

Factories build stock River estimators; nothing here subclasses one, so River's own
checks (`river.checks.yield_checks`), pickling and `clone()` keep working unchanged.
Every factory takes `seed` (models that draw random numbers use it; deterministic
ones ignore it) and bounds what can grow: tree depth and size, forest size, the
number of candidates of an ensemble or a bandit.

Classifiers predict whether the forward return over the horizon is positive;
regressors (`linear`, `ensemble`) predict the forward return itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from river import (
    bandit,
    base,
    ensemble,
    forest,
    linear_model,
    metrics,
    model_selection,
    optim,
    preprocessing,
    tree,
)

from risk.domain.error import ConfigError


class UnknownPipelineError(ConfigError, KeyError):
    """A pipeline name that is not in `PIPELINES`; the message lists the known names."""

    def __str__(self) -> str:
        # KeyError's own __str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


def logistic_pipeline(*, seed: int, learning_rate: float = 0.01, l2: float = 0.0) -> Any:
    """Build `StandardScaler | LogisticRegression` trained by plain SGD.

    River's `LogisticRegression` takes no seed: its weights start at zero
    (`optim.initializers.Zeros`) and SGD visits samples in arrival order, so the
    model is deterministic by construction. `seed` is accepted, and ignored, so
    that every factory in `PIPELINES` shares one signature. The intercept keeps
    River's default learning rate (0.01).

    Args:
        seed: Unused; see above.
        learning_rate: SGD step size for the weights.
        l2: L2 penalty pushing the weights towards zero.

    Returns:
        A `river.compose.Pipeline`.

    >>> model = logistic_pipeline(seed=0)
    >>> model.predict_proba_one({"x": 1.0})
    {False: 0.5, True: 0.5}
    """
    del seed  # deterministic without one; see the docstring
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.SGD(learning_rate), l2=l2
    )


def hoeffding_tree_pipeline(
    *, seed: int, grace_period: float = 200, max_depth: float = 8, max_size_mib: float = 16.0
) -> Any:
    """Build a Hoeffding tree classifier with bounded depth and memory.

    Deterministic (River's Hoeffding tree draws no random numbers), so `seed` is
    ignored. Features need no scaling: splits are thresholds.

    Args:
        seed: Unused.
        grace_period: Samples a leaf sees between split attempts.
        max_depth: Deepest level the tree may grow to.
        max_size_mib: Memory ceiling; River deactivates leaves beyond it.

    >>> print(hoeffding_tree_pipeline(seed=0).max_depth)
    8
    """
    del seed
    return tree.HoeffdingTreeClassifier(
        grace_period=int(grace_period), max_depth=int(max_depth), max_size=max_size_mib
    )


def forest_pipeline(
    *, seed: int, n_models: float = 5, max_depth: float = 8, max_size_mib: float = 16.0
) -> Any:
    """Build an adaptive random forest (ARF) classifier, seeded.

    An ARF costs ~700 µs per predict+learn on this machine: far too slow per tick.
    Run it as a challenger on a sub-sample or on bars (see `config/models.yaml`).

    Args:
        seed: Seeds bagging weights and feature subspaces.
        n_models: Trees in the forest.
        max_depth: Deepest level each tree may grow to.
        max_size_mib: Memory ceiling of each tree.

    >>> forest_pipeline(seed=3).seed
    3
    """
    return forest.ARFClassifier(
        n_models=int(n_models), max_depth=int(max_depth), max_size=max_size_mib, seed=seed
    )


def linear_pipeline(*, seed: int, learning_rate: float = 0.01, l2: float = 0.0) -> Any:
    """Build `StandardScaler | LinearRegression` of the forward return, trained by SGD.

    Deterministic (zero-initialised weights), so `seed` is ignored. It supports
    `learn_many`/`predict_many`, the mini-batch path of `hfl bench models`.

    >>> print(linear_pipeline(seed=0))
    StandardScaler | LinearRegression
    """
    del seed
    return preprocessing.StandardScaler() | linear_model.LinearRegression(
        optimizer=optim.SGD(learning_rate), l2=l2
    )


def candidate_rates(lr_min: float, lr_max: float, n_candidates: float) -> list[float]:
    """Return `n_candidates` learning rates on a geometric grid from `lr_min` to `lr_max`.

    >>> candidate_rates(0.001, 0.1, 3)
    [0.001, 0.01, 0.1]
    """
    n = int(n_candidates)
    if n < 2:
        return [lr_min]
    ratio = (lr_max / lr_min) ** (1.0 / (n - 1))
    return [round(lr_min * ratio**i, 12) for i in range(n)]


def ensemble_pipeline(
    *,
    seed: int,
    lr_min: float = 0.001,
    lr_max: float = 0.1,
    n_candidates: float = 3,
    weight_learning_rate: float = 0.5,
) -> Any:
    """Build an exponentially weighted average of linear regressors of the forward return.

    River's `EWARegressor` weights each member by `exp(-η · its cumulative squared
    error)`, re-normalised after every sample: members are weighted by their own
    prequential score, so the better learning rate comes to dominate.

    >>> len(ensemble_pipeline(seed=0).models)
    3
    """
    return ensemble.EWARegressor(
        [
            linear_pipeline(seed=seed, learning_rate=rate)
            for rate in candidate_rates(lr_min, lr_max, n_candidates)
        ],
        learning_rate=weight_learning_rate,
    )


def bandit_pipeline(
    *,
    seed: int,
    lr_min: float = 0.001,
    lr_max: float = 0.1,
    n_candidates: float = 3,
    epsilon: float = 0.1,
) -> Any:
    """Build online hyperparameter selection: an epsilon-greedy bandit over learning rates.

    River's `BanditClassifier` trains only the arm it pulls and scores each arm by
    its prequential log loss; `selection_detail` reports the current choice.

    >>> len(bandit_pipeline(seed=0).models)
    3
    """
    return model_selection.BanditClassifier(
        [
            logistic_pipeline(seed=seed, learning_rate=rate)
            for rate in candidate_rates(lr_min, lr_max, n_candidates)
        ],
        metric=metrics.LogLoss(),  # type: ignore[no-untyped-call]
        policy=bandit.EpsilonGreedy(epsilon, seed=seed),
    )


PIPELINES: dict[str, Callable[..., Any]] = {
    "logistic": logistic_pipeline,
    "hoeffding_tree": hoeffding_tree_pipeline,
    "forest": forest_pipeline,
    "linear": linear_pipeline,
    "ensemble": ensemble_pipeline,
    "bandit": bandit_pipeline,
}


def build_pipeline(name: str, *, seed: int, **params: Any) -> Any:
    """Build the pipeline registered as `name` with its keyword `params`.

    Args:
        name: A key of `PIPELINES`.
        seed: Seed for models that draw random numbers.
        **params: Forwarded to the factory (e.g. `learning_rate`, `l2`).

    Returns:
        A fresh, unfitted River estimator.

    Raises:
        UnknownPipelineError: `name` is not registered (also a `KeyError`).

    >>> print(build_pipeline("logistic", seed=0, learning_rate=0.05))
    StandardScaler | LogisticRegression
    >>> try:
    ...     build_pipeline("boosted", seed=0)
    ... except KeyError as exc:
    ...     print(exc)
    unknown pipeline 'boosted'; known: bandit, ensemble, forest, hoeffding_tree, linear, logistic
    """
    try:
        factory = PIPELINES[name]
    except KeyError:
        known = ", ".join(sorted(PIPELINES))
        msg = f"unknown pipeline {name!r}; known: {known}"
        raise UnknownPipelineError(msg) from None
    return factory(seed=seed, **params)


def is_regressor(model: Any) -> bool:
    """True when `model` predicts a number (the forward return), not a class.

    >>> is_regressor(linear_pipeline(seed=0)), is_regressor(logistic_pipeline(seed=0))
    (True, False)
    """
    return isinstance(model, base.Regressor)


def selection_detail(model: Any) -> str:
    """Describe what an adaptive model currently chooses; empty for other models.

    A bandit names the arm it would use now (index and learning rate); an
    exponentially weighted ensemble lists its members' weights.

    >>> selection_detail(bandit_pipeline(seed=0))
    'best=none'
    >>> selection_detail(logistic_pipeline(seed=0))
    ''
    """
    if isinstance(model, model_selection.BanditClassifier):
        best = model.best_model  # None until an arm has been scored
        if best is None:
            return "best=none"
        index = next(i for i, arm in enumerate(model.models) if arm is best)
        rate = best["LogisticRegression"].optimizer.learning_rate
        return f"best={index} learning_rate={rate}"
    if isinstance(model, ensemble.EWARegressor):
        return "weights=" + ",".join(f"{w:.4f}" for w in model.weights)
    return ""
