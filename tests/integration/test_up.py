"""`hfl up` on the real broker: all start, a killed flow comes back, SIGTERM stops all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.kafka.admin import create_topics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def pids(directory: Path) -> dict[str, int]:
    """Component pids from the health lines `hfl up` wrote to its own log."""
    found: dict[str, int] = {}
    log = directory / "up.err"
    for line in log.read_text(errors="replace").splitlines():
        for part in line.removeprefix("[hfl up] ").split(" | "):
            fields = part.split()
            if len(fields) > 2 and fields[1] == "running" and fields[2].startswith("pid="):
                found[fields[0]] = int(fields[2].removeprefix("pid="))
    return found


def up_env(bootstrap: str, prefix: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    """Environment of an `hfl up` in its own namespace, store and recovery stores."""
    return {
        **os.environ,
        "HFL_KAFKA__BOOTSTRAP": bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "HFL_RECOVERY__DIRECTORY": str(tmp_path / "recovery"),
        "HFL_CONFIG_DIR": str(ROOT / "config"),
        **extra,
    }


def start_up(tmp_path: Path, env: dict[str, str], report_every_s: int) -> subprocess.Popen[bytes]:
    """`hfl up --external-broker` with a 600 s feed; its stderr goes to `up.err`."""
    with (tmp_path / "up.err").open("wb") as err:
        return subprocess.Popen(
            [
                *(sys.executable, "-m", "dataflows.commands", "up", "--external-broker"),
                *("--feed-duration", "600", "--report-every", str(report_every_s)),
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            start_new_session=True,
        )


def test_up_restarts_a_killed_flow_and_stops_everything_on_sigterm(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"up-{uuid.uuid4().hex[:8]}."
    create_topics(kafka_bootstrap, prefix=prefix)
    up = start_up(tmp_path, up_env(kafka_bootstrap, prefix, tmp_path), 1)
    try:
        assert wait_for(
            lambda: {"trading", "gateway", "persist", "feed"} <= pids(tmp_path).keys(), 90
        )
        first = pids(tmp_path)["trading"]
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: pids(tmp_path).get("trading", first) != first, 60)
        up.send_signal(signal.SIGTERM)
        out, _ = up.communicate(timeout=60)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
    assert up.returncode == 0
    codes = dict(part.split("=") for part in out.decode().split())
    assert set(codes) == {"persist", "trading", "gateway", "feed"}
    assert "None" not in codes.values()
    survivors = [pid for pid in pids(tmp_path).values() if Path(f"/proc/{pid}").exists()]
    assert survivors == []
