"""Search spaces, folds and the deflated Sharpe of `dataflows.ops.search`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest

from dataflows.ops.search import deflation, folds, load_space, suggest, window_returns
from risk import performance as perf
from risk.domain.error import HflError

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_space_parses_with_ints_floats_and_choices(tmp_path: Path) -> None:
    space = load_space(ROOT / "config" / "search" / "sp500-daily.yaml")
    assert space.objective == "sharpe"
    assert len(space.fixed["trading.instruments"]) == 10

    path = tmp_path / "s.yaml"
    path.write_text(
        "objective: sortino\nparameters:\n  model.horizon_s: {low: 1, high: 5}\n"
        "  model.enter_long: {low: 0.5, high: 0.6}\n  risk.sizing.method: {choices: [a, b]}\n"
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    params = suggest(study.ask(), load_space(path))
    assert isinstance(params["model.horizon_s"], int)
    assert isinstance(params["model.enter_long"], float)
    assert params["risk.sizing.method"] in {"a", "b"}


@pytest.mark.parametrize(
    "text",
    [
        "parameters: {}\n",
        "objective: nope\nparameters:\n  a.b: {low: 1, high: 2}\n",
        "parameters:\n  a.b: {low: 1}\n",
    ],
)
def test_bad_spaces_are_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(HflError):
        load_space(path)


def test_folds_cover_every_out_of_sample_period_once() -> None:
    for anchored in (False, True):
        plan = folds(23, train=5, test=4, anchored=anchored)
        covered = [p for f in plan for p in range(f.test_start, f.test_end)]
        assert covered == list(range(5, 23))
        assert all(f.test_start - f.train_start == (f.test_start if anchored else 5) for f in plan)


def test_window_returns_start_from_the_last_in_sample_mark() -> None:
    day = perf.NS_PER_DAY
    ts = [0, day, 2 * day, 3 * day]
    ends, rets = window_returns(ts, [100.0, 110.0, 121.0, 108.9], perf.DAILY, 2 * day)
    assert ends.tolist() == [2 * day, 3 * day]
    assert np.allclose(rets, [0.1, -0.1])


def test_deflation_matches_the_formula() -> None:
    attrs = [{"sharpe_per_period": s} for s in (0.01, 0.05, 0.02, -0.03)]
    best = {"sharpe_per_period": 0.05, "periods": 250, "skew": 0.0, "kurtosis": 3.0}
    d = deflation(attrs, best)
    variance = float(np.var([0.01, 0.05, 0.02, -0.03], ddof=1))
    expected = perf.probabilistic_sharpe_ratio(
        0.05, perf.expected_max_sharpe(4, variance), 250, 0.0, 3.0
    )
    assert d.trials == 4
    assert math.isclose(d.deflated_sharpe, expected, rel_tol=1e-12)
