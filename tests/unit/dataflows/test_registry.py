"""Runs register what they listen on; operator commands find them or fail saying so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataflows.ops.registry import RunRecord, find_run, register, runs, unregister
from dataflows.settings import Settings
from risk.domain.error import HflError

ROOT = Path(__file__).resolve().parents[3]


def record(name: str, pid: int | None = None, started_ns: int = 1) -> RunRecord:
    return RunRecord(
        name=name,
        kind="demo",
        pid=os.getpid() if pid is None else pid,
        topic_prefix=f"{name}.",
        bootstrap="127.0.0.1:1",
        clickhouse_url=f"chdb:///tmp/{name}",
        dashboard_port=8123,
        started_ns=started_ns,
    )


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_only_running_system_is_found_and_points_the_settings_at_it(tmp_path: Path) -> None:
    register(tmp_path, record("demo-1"))
    found = find_run(tmp_path, None)
    assert found is not None
    settings = found.apply(Settings())
    assert settings.kafka.topic_prefix == "demo-1."
    assert settings.clickhouse.url.reveal() == "chdb:///tmp/demo-1"
    assert settings.dashboard.port == 8123


def test_nothing_running_finds_nothing_and_a_dead_owner_does_not_count(tmp_path: Path) -> None:
    assert find_run(tmp_path, None) is None
    register(tmp_path, record("gone", pid=dead_pid()))
    assert runs(tmp_path) == []


def test_several_running_systems_need_a_name(tmp_path: Path) -> None:
    register(tmp_path, record("a", started_ns=1))
    register(tmp_path, record("b", started_ns=2))
    with pytest.raises(HflError, match=r"several systems run \(b, a\)"):
        find_run(tmp_path, None)
    found = find_run(tmp_path, "a")
    assert found is not None and found.name == "a"
    with pytest.raises(HflError, match="no running system named 'c'"):
        find_run(tmp_path, "c")
    unregister(tmp_path, "b")
    assert [r.name for r in runs(tmp_path)] == ["a"]


@pytest.mark.parametrize(
    "args",
    [
        ["kill", "--reason", "x"],
        ["limits", "set", "--instrument", "AAPL", "--max-position", "5", "--reason", "x"],
    ],
)
def test_operator_command_with_nothing_running_fails_with_one_line(
    tmp_path: Path, args: list[str]
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HFL_KAFKA__TOPIC_PREFIX"}
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=tmp_path,
        env=env | {"HFL_CONFIG_DIR": str(ROOT / "config"), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"hfl {args[0]}: no running system")
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
