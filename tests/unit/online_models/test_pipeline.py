"""Every registered pipeline honours River's estimator contract (`river.checks`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from river import checks

from online_models.pipeline import PIPELINES, build_pipeline

SEED = 1


def river_checks(name: str) -> list[Callable[..., Any]]:
    """The checks `river.checks.check_estimator` runs on pipeline `name`.

    Like `check_estimator`, this leaves out what the estimator itself declares
    inapplicable in `_unit_test_skips()`: SGD linear models take one mean-gradient
    step per `learn_many` batch (not a `learn_one` loop; see `hfl bench models`), and
    a seeded bandit policy explores arms by position, so arm order matters.
    """
    model = build_pipeline(name, seed=SEED)
    skips = model._unit_test_skips()
    return [check for check in checks.yield_checks(model) if check.__name__ not in skips]


CASES = [(name, check) for name in sorted(PIPELINES) for check in river_checks(name)]


@pytest.mark.parametrize(
    ("name", "check"), CASES, ids=[f"{name}-{check.__name__}" for name, check in CASES]
)
def test_pipeline_passes_river_estimator_check(name: str, check: Callable[..., Any]) -> None:
    check(build_pipeline(name, seed=SEED))


def test_every_pipeline_has_river_checks() -> None:
    assert {name for name, _ in CASES} == set(PIPELINES)
    names = {check.__name__ for _, check in CASES}
    assert {"check_pickling", "check_clone_is_idempotent", "check_bounded_memory_growth"} <= names
