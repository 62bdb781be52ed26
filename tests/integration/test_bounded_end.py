"""A bounded run ends by its data, on the real broker and ClickHouse engine: whatever
the timing, each flow ends at the same depth with the same outputs.

The feed's end-of-stream marker ends the trading flow's market data; the trading
flow's markers end the gateway's orders; all three writers' markers end persist
(`connectors.kafka.end`). No idle window decides anything, so a late persist, a trading
flow started long after the feed ended, or a flow killed with SIGKILL during the drain
and restarted from its snapshot changes nothing in Kafka or ClickHouse.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import orjson
import pytest

from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import DECISIONS, FILLS, ORDERS, PNL, POSITIONS
from dataflows.ops.process import Child, start_flow, stop, wait_all
from dataflows.settings import load_settings
from tests.integration.test_end_to_end import (
    ROOT,
    bounded,
    good_lines,
    publish,
    run_env,
    sql,
    with_bad_records,
)

pytestmark = pytest.mark.integration

FLOWS = ("persist", "trading", "gateway")
FLOW_TIMEOUT_S = 400
LATE_S = 30
COMPARED = (DECISIONS, ORDERS, POSITIONS, PNL, FILLS)
TABLES = ("ticks", "orders", "fills", "positions", "pnl", "risk_decisions", "dlq")
Outputs = tuple[dict[str, list[bytes]], dict[str, int]]


class Run:
    """One bounded run in its own namespace and store; flows started one by one."""

    def __init__(self, kafka_bootstrap: str, run_dir: Path) -> None:
        self.bootstrap = kafka_bootstrap
        self.run_dir = run_dir
        run_dir.mkdir()
        self.prefix = f"bend-{uuid.uuid4().hex[:8]}."
        self.env = bounded(run_env(kafka_bootstrap, self.prefix, run_dir / "clickhouse"), FLOWS) | {
            "HFL_KAFKA__END_GUARD_S": "300"
        }
        self.settings = load_settings(ROOT / "config", env={**os.environ, **self.env})
        self.children: list[Child] = []
        create_topics(kafka_bootstrap, prefix=self.prefix)

    def publish(self) -> None:
        lines, _ = with_bad_records(good_lines())
        publish(self.run_dir, lines, self.env)

    def start(self, name: str) -> Child:
        child = start_flow(name, self.settings, self.run_dir, self.env)
        self.children.append(child)
        return child

    def wait(self, children: list[Child] | None = None) -> None:
        """Every (given) flow exits 0 by itself; stop all by PID on the way out."""
        children = self.children if children is None else children
        try:
            codes = wait_all(children, FLOW_TIMEOUT_S)
        finally:
            for child in children:
                stop(child)
        tails = "\n".join(f"--- {c.name}\n{c.tail()}" for c in children)
        assert all(code == 0 for code in codes.values()), f"{codes}\n{tails}"

    def outputs(self) -> Outputs:
        """What the flows wrote to Kafka (progress and end markers aside, replays
        de-duplicated) and the row counts of ClickHouse tables."""
        kafka = {}
        for name in COMPARED:
            records = read_log(self.bootstrap, self.prefix + name)
            seen: dict[bytes, None] = {}
            for record in records:
                if "progress_id" not in record:
                    seen.setdefault(orjson.dumps(record, option=orjson.OPT_SORT_KEYS), None)
            kafka[name] = list(seen)
        query = ", ".join(f"(SELECT count() FROM {t} FINAL) AS {t}" for t in TABLES)
        counts = {k: int(v) for k, v in sql(self.env, f"SELECT {query}")[0].items()}  # type: ignore[call-overload]
        return kafka, counts


def logged(child: Child, needle: str, timeout_s: float = FLOW_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while needle not in child.log.read_text(errors="replace"):
        assert child.process.poll() is None, f"{child.name} exited early\n{child.tail()}"
        assert time.monotonic() < deadline, f"no {needle!r} in {child.name}\n{child.tail()}"
        time.sleep(0.2)


def assert_same(got: Outputs, reference: Outputs) -> None:
    kafka, counts = got
    for name in COMPARED:
        if name == FILLS:  # the books of instruments interleave as batches come: a set
            assert sorted(kafka[name]) == sorted(reference[0][name]), name
        else:
            assert kafka[name] == reference[0][name], name
    assert counts == reference[1]


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Outputs:
    """All three flows started together, then the feed."""
    run = Run(kafka_bootstrap, tmp_path_factory.mktemp("bounded") / "reference")
    for name in FLOWS:
        run.start(name)
    run.publish()
    run.wait()
    outputs = run.outputs()
    assert outputs[0][ORDERS] and outputs[0][FILLS]
    assert outputs[1]["ticks"] == 6_000 and outputs[1]["dlq"] > 0
    return outputs


def test_persist_started_after_the_others_finished_stores_the_same(
    reference: Outputs, kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = Run(kafka_bootstrap, tmp_path / "late-persist")
    run.publish()
    run.wait([run.start("trading"), run.start("gateway")])
    run.wait([run.start("persist")])
    assert_same(run.outputs(), reference)


def test_trading_started_long_after_the_feed_ended_ends_at_the_same_depth(
    reference: Outputs, kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = Run(kafka_bootstrap, tmp_path / "late-trading")
    gateway = run.start("gateway")
    run.start("persist")
    run.publish()
    logged(gateway, '"end of stream"')  # the gateway read the feed's end: no idle end
    time.sleep(LATE_S)
    run.start("trading")
    run.wait()
    assert_same(run.outputs(), reference)


def test_flows_killed_during_the_drain_resume_and_end_at_the_same_depth(
    reference: Outputs, kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = Run(kafka_bootstrap, tmp_path / "killed")
    for name in FLOWS:
        run.start(name)
    run.publish()
    trading = run.children[1]
    logged(trading, "market data ended")  # the drain: feed over, the gate settling
    victims = [c for c in run.children if c.process.poll() is None and c.name != "persist"]
    assert victims, "every flow had already ended"
    for child in victims:
        os.killpg(child.process.pid, signal.SIGKILL)
        child.process.wait()
    restarted = [run.start(child.name) for child in victims]
    run.wait([*restarted, *(c for c in run.children[:3] if c not in victims)])
    assert_same(run.outputs(), reference)
