"""`hfl demo`, the README's first command, runs to its summary and report and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.loopback import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_demo_with_dashboard_drains_its_flows_and_prints_the_summary(tmp_path: Path) -> None:
    # The dashboard never exits by itself: the demo must stop it once the flows drained.
    broker_port = free_port()
    env = {
        **os.environ,
        "HFL_CONFIG_DIR": str(ROOT / "config"),
        "HFL_BROKER__PORT": str(broker_port),
        "HFL_KAFKA__BOOTSTRAP": f"127.0.0.1:{broker_port}",
        "HFL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "HFL_DASHBOARD__PORT": str(free_port()),
    }
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", "demo", "--ticks", "3000", "--rate", "1000"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ticks processed        3000" in done.stdout
    assert "demo finished" in done.stdout
    # Statistics at the daily default: a 3 s run has one daily return, so no Sharpe.
    assert "1 x daily returns, annualised by 252 periods per year" in done.stdout
    assert "per-second" not in done.stdout
    reports = list((tmp_path / "var" / "reports").glob("demo-*.html"))
    assert len(reports) == 1
    assert f"report                 {reports[0]}" in done.stdout
    assert 'id="success"' in reports[0].read_text()
