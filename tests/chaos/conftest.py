"""Fixtures of the chaos suite: the replay, the golden run, and where figures go.

`make chaos` runs the full suite (`HFL_CHAOS_TICKS=200000`, `HFL_CHAOS_KILLS=20`); the
bounded CI form (`make chaos-ci`) uses the defaults below.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.loopback import free_port

from connectors.broker import start_broker, stop_broker
from dataflows.ops.chaos import record_result, results_path
from tests.chaos.harness import (
    ROOT,
    Dump,
    PrivateBroker,
    Run,
    chaos_ticks,
    dump,
    replay_lines,
    run_clean,
)

CHAOS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder `chaos` (the default run deselects them)."""
    for item in items:
        if CHAOS_DIR in item.path.parents:
            item.add_marker(pytest.mark.chaos)


@pytest.fixture(scope="session")
def ticks() -> int:
    """Replay length: 200,000 for `make chaos`, shorter for the bounded CI form."""
    return chaos_ticks(40_000)


@pytest.fixture(scope="session")
def kills() -> int:
    """How many `kill -9` per flow in R1/R2 (`HFL_CHAOS_KILLS`)."""
    return int(os.environ.get("HFL_CHAOS_KILLS", "5"))


@pytest.fixture(scope="session")
def lines(ticks: int) -> list[bytes]:
    """The fixed-seed replay as JSON lines."""
    return replay_lines(ticks)


@pytest.fixture(scope="session")
def golden(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes]
) -> Dump:
    """Every table after a fault-free run of the replay."""
    run = Run("golden", kafka_bootstrap, tmp_path_factory.mktemp("golden"), len(lines))
    run_clean(run, lines)
    return dump(run.store)


@pytest.fixture(scope="session")
def record() -> Callable[[str, dict[str, Any]], None]:
    """Print a test's figures and store them for `hfl chaos report`."""
    path: Path = results_path(ROOT)

    def save(test_id: str, figures: dict[str, Any]) -> None:
        print(f"\n[chaos {test_id}] {figures}")
        record_result(path, test_id, figures)

    return save


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A broker this test may pause, restart or lose, without disturbing the others."""
    port = free_port()
    broker = PrivateBroker(f"127.0.0.1:{port}", port, tmp_path / "broker.pid", tmp_path / "b.log")
    start_broker("127.0.0.1", port, broker.pid_file, broker.log)
    try:
        yield broker
    finally:
        stop_broker(broker.pid_file)
