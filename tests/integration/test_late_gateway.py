"""A bounded trading flow ends at the right depth, on the real broker.

The risk gate holds decisions until the gateway's progress markers pass them
(`risk.fill_sync: event_time`). Here the gateway starts only after the trading flow's
market data went idle, which the old end condition (every input idle for the window)
took for the end of the run: it decided the held signals without their fills and
exited before the gateway ever answered. Now the trading flow waits until its gate
holds nothing back (`dataflows.flows.run_end`), so the run decides, orders and books
exactly what a run with the gateway beside it from the start does.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import DECISIONS, FILLS, ORDERS, PNL, POSITIONS, SIGNALS
from dataflows.flows.run_end import GAVE_UP_EXIT
from dataflows.ops.process import Child, start_flow, wait_all
from dataflows.settings import load_settings
from tests.integration.test_end_to_end import bounded, good_lines, publish, run_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FLOW_TIMEOUT_S = 300
# The bounded run's guard, far longer than the run: the gate must wait for the late
# gateway, never give up (in a bounded run the fill sync waits as long as the guard).
GUARD_S = "240"
COMPARED = (DECISIONS, ORDERS, POSITIONS, PNL)


def start(name: str, env: dict[str, str], run_dir: Path) -> Child:
    env = bounded(env, ("trading", "gateway"))
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    return start_flow(name, settings, run_dir, env)


def wait_for_market_data_end(trading: Child) -> None:
    """Until the trading flow logs that its market data ended (or, as it did before
    the gate's end condition existed, exits)."""
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while "market data ended" not in trading.tail(200) and trading.process.poll() is None:
        assert time.monotonic() < deadline, trading.tail()
        time.sleep(0.2)


def published(kafka_bootstrap: str, run_dir: Path, guard_s: str) -> dict[str, str]:
    """A fresh namespace holding the replay and its end marker; the environment of its
    flows, whose bounded run fails loudly after `guard_s` without progress."""
    prefix = f"end-{uuid.uuid4().hex[:8]}."
    env = run_env(kafka_bootstrap, prefix, run_dir / "unused-clickhouse") | {
        "HFL_KAFKA__END_GUARD_S": guard_s
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    run_dir.mkdir()
    publish(run_dir, good_lines(), env)
    return env


def run(kafka_bootstrap: str, run_dir: Path, *, late_gateway: bool) -> dict[str, list[object]]:
    """Run trading and gateway over the replay; return what the trading flow wrote."""
    env = published(kafka_bootstrap, run_dir, GUARD_S)
    prefix = env["HFL_KAFKA__TOPIC_PREFIX"]
    trading = start("trading", env, run_dir)
    if late_gateway:
        wait_for_market_data_end(trading)
    gateway = start("gateway", env, run_dir)
    codes = wait_all([trading, gateway], FLOW_TIMEOUT_S)
    for child in (trading, gateway):
        if codes[child.name] is None:
            child.process.kill()
    assert codes == {"trading": 0, "gateway": 0}, f"{codes}\n{trading.tail()}\n{gateway.tail()}"
    # Progress markers say how far a flow got, which depends on batching.
    return {
        name: [r for r in read_log(kafka_bootstrap, prefix + name) if "progress_id" not in r]
        for name in (*COMPARED, FILLS)
    }


def test_a_gateway_starting_after_the_market_data_ended_changes_nothing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    reference = run(kafka_bootstrap, tmp_path / "reference", late_gateway=False)
    late = run(kafka_bootstrap, tmp_path / "late", late_gateway=True)

    assert reference[ORDERS] and reference[FILLS]
    for name in COMPARED:
        assert late[name] == reference[name], name
    # Every fill the gateway made was booked: one position update each.
    assert len(late[POSITIONS]) == len(late[FILLS])


def test_without_a_gateway_the_flow_gives_up_loudly_and_decides_every_signal(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    env = published(kafka_bootstrap, tmp_path / "alone", guard_s="3")
    trading = start("trading", env, tmp_path / "alone")
    code = wait_all([trading], FLOW_TIMEOUT_S)["trading"]
    if code is None:
        trading.process.kill()
    assert code == GAVE_UP_EXIT, trading.tail()
    assert "run ends WITHOUT the gateway" in trading.log.read_text()
    prefix = env["HFL_KAFKA__TOPIC_PREFIX"]
    signals = read_log(kafka_bootstrap, prefix + SIGNALS)
    decisions = read_log(kafka_bootstrap, prefix + DECISIONS)
    assert signals
    assert sorted(d["signal_id"] for d in decisions) == sorted(s["signal_id"] for s in signals)
