"""`hfl walkforward` and `hfl optimize` end to end on River's real SP500Stocks, bounded.

The daily closes of the ten stocks (`connectors.feeds.sp500`) are replayed in process
with the shipped daily search space (`config/search/sp500-daily.yaml`). Bounded: the
first 2,500 ticks (250 trading days), two trials per fold, three folds; the study gets
four trials in two processes, then one more on resuming it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.feeds.sp500 import write_sp500_prices

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPACE = ROOT / "config" / "search" / "sp500-daily.yaml"


def hfl(tmp_path: Path, *args: str) -> str:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path, "HFL_CONFIG_DIR": str(ROOT / "config")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sp500") / "sp500.csv"
    assert write_sp500_prices(path) == 12_570
    return path


def test_walkforward_chains_out_of_sample_folds(prices: Path, tmp_path: Path) -> None:
    out = tmp_path / "oos.json"
    text = hfl(
        tmp_path, "walkforward", str(prices), "--limit", "2500", "--space", str(SPACE),
        "--train", "100", "--test", "50", "--trials", "2", "--out", str(out),
    )  # fmt: skip

    curve = json.loads(out.read_text())
    assert len(curve["folds"]) == 3
    assert len(curve["returns"]) == len(curve["equity"]) == len(curve["ts_ns"]) > 100
    # Out-of-sample periods follow each other: no fold looks into another's window.
    assert curve["ts_ns"] == sorted(curve["ts_ns"])
    for fold in curve["folds"]:
        assert set(fold["params"]) == {
            "model.enter_long", "model.enter_short", "risk.sizing.method",
        }  # fmt: skip
    assert "out-of-sample equity: " in text
    # Each fold's trials say they finished, so a long search shows it is moving.
    assert "fold 3/3: trial 2/2 complete" in text


def test_optimize_runs_in_processes_resumes_and_prints_deflated_sharpe(
    prices: Path, tmp_path: Path
) -> None:
    args = ("optimize", str(prices), "--limit", "2000", "--space", str(SPACE), "--study", "t")
    first = hfl(tmp_path, *args, "--trials", "4", "--jobs", "2")
    again = hfl(tmp_path, *args, "--trials", "1")

    def trials(text: str) -> int:
        found = re.search(r"(\d+) complete, (\d+) pruned, (\d+) failed", text)
        assert found, text
        return sum(int(n) for n in found.groups())

    assert trials(first) == 4
    assert trials(again) == 5  # the stored study resumed
    assert (tmp_path / "var" / "optuna" / "t.journal").exists()
    assert re.search(r"deflated Sharpe ratio (0\.\d+|1\.0+|nan)", again), again
