"""`hfl bench pipeline` end to end, tiny: private broker, trading flow, JSON figures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from support.loopback import free_port

REPO = Path(__file__).resolve().parents[2]
BENCH_ARGS = ("bench", "pipeline", "--rate", "500", "--duration", "3", "--baseline")
KEYS = {
    "ticks_per_s",
    "p50_ms",
    "p99_ms",
    "rate",
    "duration_s",
    "ticks",
    "decisions",
    "prediction_p50_ms",
    "prediction_p99_ms",
    "p999_ms",
    "cpu_us_per_tick",
    "baseline_ticks_per_s",
    "ratio",
    "config",
}


@pytest.mark.integration
def test_bench_prints_figures_as_json_on_its_last_line(tmp_path: Path) -> None:
    env = {**os.environ, "HFL_CONFIG_DIR": str(REPO / "config")}
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *BENCH_ARGS],
        cwd=tmp_path,  # var/bench/ (broker pid, logs) lands in the temporary directory
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    figures = orjson.loads(done.stdout.decode().strip().splitlines()[-1])
    assert set(figures) >= KEYS
    assert figures["rate"] == 500.0
    assert figures["ticks"] > 1000
    assert figures["ticks_per_s"] > 0
    assert figures["prediction_p50_ms"] is not None
    assert figures["config"]["min_labelled"] == 20
    assert figures["config"]["feed_linger_ms"] == 2.0  # the paced feed's default batching
    assert figures["config"]["control_fetch_wait_ms"] == 100
    assert figures["cpu_us_per_tick"]["trading"] > 0
    assert figures["cpu_us_per_tick"]["broker"] > 0
    assert figures["baseline_ticks_per_s"] > 0  # the plain flow ran over the same ticks
    assert figures["baseline_orders"] > 0
    assert figures["ratio"] > 0
    assert list((tmp_path / "var" / "bench").glob("broker-*.pid")) == []  # broker stopped


@pytest.mark.integration
def test_dashboard_bench_prints_rate_and_p99_as_json_on_its_last_line(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HFL_CONFIG_DIR": str(REPO / "config"),
        "HFL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
    }
    args = ("bench", "dashboard", "--clients", "10", "--duration", "1", "--port", str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    figures = orjson.loads(done.stdout.decode().strip().splitlines()[-1])
    assert figures["clients"] == 10
    assert figures["errors"] == 0
    assert figures["requests"] > 0
    assert figures["req_per_s"] > 0
    assert figures["p99_ms"] >= figures["p50_ms"] > 0
    assert figures["viewers"] == 10


@pytest.mark.integration
def test_risk_bench_prints_decision_cost_and_kill_latency_as_json_on_its_last_line(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "HFL_CONFIG_DIR": str(REPO / "config")}
    args = ("bench", "risk", "--decisions", "500", "--kills", "3")
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    figures = orjson.loads(done.stdout.decode().strip().splitlines()[-1])
    assert figures["us_per_decision"] > 0
    assert figures["kill_p99_ms"] > 0
    assert figures["kill_event_time_p99_ms"] > 0
    assert figures["kills"] == 3
    assert sum(figures["outcomes"].values()) == 500
    assert figures["outcomes"]["approved"] > 0  # the full path, not only early denials
    assert list((tmp_path / "var" / "bench").glob("broker-*.pid")) == []  # broker stopped
