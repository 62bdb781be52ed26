"""River pipeline factories and the registry that names them.

Factories build stock River estimators; nothing here subclasses one, so River's own
checks, pickling and `clone()` keep working unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from river import linear_model, optim, preprocessing

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


PIPELINES: dict[str, Callable[..., Any]] = {
    "logistic": logistic_pipeline,
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
    ...     build_pipeline("forest", seed=0)
    ... except KeyError as exc:
    ...     print(exc)
    unknown pipeline 'forest'; known: logistic
    """
    try:
        factory = PIPELINES[name]
    except KeyError:
        known = ", ".join(sorted(PIPELINES))
        msg = f"unknown pipeline {name!r}; known: {known}"
        raise UnknownPipelineError(msg) from None
    return factory(seed=seed, **params)
