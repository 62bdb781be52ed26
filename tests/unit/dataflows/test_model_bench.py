"""`hfl bench models` prints one JSON object on its last line, keyed by pipeline."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from dataflows.commands import main

REPO = Path(__file__).resolve().parents[3]


def test_bench_models_prints_rates_per_pipeline_as_json_last_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFL_CONFIG_DIR", str(REPO / "config"))

    assert main(["bench", "models", "--ticks", "2000", "--budget", "0.05"]) == 0

    figures = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(figures) == {"logistic", "hoeffding_tree", "forest", "linear", "ensemble", "bandit"}
    assert all(rates["per_tick"] > 0 for rates in figures.values())
    assert figures["linear"]["mini_batch"] > 0
    assert figures["forest"]["mini_batch"] is None
    assert all(rates["checkpoint_bytes"] > 0 and rates["seal_ms"] > 0 for rates in figures.values())
