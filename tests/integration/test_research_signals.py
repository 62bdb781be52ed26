"""`hfl walkforward --compare` end to end on River's real SP500Stocks, bounded.

The daily closes of the ten stocks (`connectors.feeds.sp500`, with a size that lets
each signal trade its whole target) are walked forward with the shipped signal
spaces (`config/search/signals/`): the multi-factor engine, today's hysteresis and
buy-and-hold over the same out-of-sample windows, after costs. Bounded: the first
2,500 ticks (250 trading days), one trial per fold, three folds.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.feeds.sp500 import write_sp500_prices

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPACES = ROOT / "config" / "search" / "signals"
ROW = re.compile(
    r"^\| (?P<name>[\w-]+) +\| +(?P<total>-?[\d.]+)% \| +(?P<annual>-?[\d.]+)% "
    r"\| +(?P<sharpe>-?[\d.]+|nan) \| +(?P<mdd>-?[\d.]+)% \| +(?P<signals>\d+) "
    r"\| +(?P<trades>\d+) \| +(?P<turnover>[\d.]+|nan) \|$",
    re.MULTILINE,
)


def test_compare_prints_the_out_of_sample_table(tmp_path: Path) -> None:
    prices = tmp_path / "sp500.csv"
    assert write_sp500_prices(prices, size=1_000_000) == 12_570
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    done = subprocess.run(
        [
            sys.executable, "-m", "dataflows.commands", "walkforward", str(prices),
            "--limit", "2500", "--space", str(SPACES / "hysteresis.yaml"),
            "--compare", str(SPACES / "multifactor.yaml"),
            "--train", "100", "--test", "50", "--trials", "1",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path, "HFL_CONFIG_DIR": str(ROOT / "config")},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {m["name"]: m for m in ROW.finditer(done.stdout)}
    assert set(rows) == {"hysteresis", "multifactor", "buy-and-hold"}, done.stdout
    assert "after fees 0.5 bps + slippage 1.0 bps per side" in done.stdout
    # The hysteresis signal trades on these days; buy-and-hold buys once per fold.
    assert int(rows["hysteresis"]["signals"]) > 0
    assert int(rows["hysteresis"]["trades"]) > 0
    assert int(rows["buy-and-hold"]["trades"]) == 3
    # The multi-factor engine never changes target more often than the hysteresis one.
    assert int(rows["multifactor"]["signals"]) <= int(rows["hysteresis"]["signals"])
