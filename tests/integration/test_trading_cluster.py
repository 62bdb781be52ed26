"""The trading flow as a Bytewax cluster gives the orders of one process, on the real broker.

A bounded replay (ends by its data, `connectors.kafka.end`) is traded three ways: one
process reading one `md.ticks` partition (the reference), one process reading two
partitions, and two Bytewax processes (`-i/-a`, `dataflows.ops.process.start_cluster`)
sharing the two partitions, instruments assigned to both workers. The gateway runs
beside each as one process. Decisions and orders must be identical, in order; what
makes them so is `dataflows.flows.sequence` (one order into the account gate, which
runs on worker 0).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import orjson
import pytest
from support.loopback import free_port

from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import DECISIONS, ORDERS
from dataflows.ops.process import Child, start_cluster, start_flow, stop, wait_all
from dataflows.settings import load_settings
from tests.integration.test_end_to_end import ROOT, bounded, good_lines, publish, run_env

pytestmark = pytest.mark.integration

FLOW_TIMEOUT_S = 400


def trade(kafka_bootstrap: str, run_dir: Path, *, partitions: int, processes: int) -> dict:
    """One bounded run; its decisions and orders as they are in Kafka."""
    run_dir.mkdir()
    prefix = f"cl{processes}{partitions}-{uuid.uuid4().hex[:8]}."
    env = bounded(run_env(kafka_bootstrap, prefix, run_dir / "clickhouse"), ("trading", "gateway"))
    env |= {"HFL_KAFKA__END_GUARD_S": "300"}
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    create_topics(kafka_bootstrap, prefix=prefix, partitions={"md.ticks": partitions})
    publish(run_dir, good_lines(), env)
    children: list[Child] = []
    try:
        if processes == 1:
            children.append(start_flow("trading", settings, run_dir, env))
        else:
            addresses = [f"127.0.0.1:{free_port()}" for _ in range(processes)]
            children += start_cluster("trading", settings, run_dir, env, addresses)
        children.append(start_flow("gateway", settings, run_dir, env))
        codes = wait_all(children, FLOW_TIMEOUT_S)
    finally:
        for child in children:
            stop(child)
    tails = "\n".join(f"--- {c.name}\n{c.tail()}" for c in children)
    assert all(code == 0 for code in codes.values()), f"{codes}\n{tails}"
    out = {}
    for name in (DECISIONS, ORDERS):
        records = [r for r in read_log(kafka_bootstrap, prefix + name) if "progress_id" not in r]
        out[name] = [orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in records]
    return out


@pytest.fixture(scope="module")
def reference(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    run = trade(
        kafka_bootstrap, tmp_path_factory.mktemp("cluster") / "one", partitions=1, processes=1
    )
    assert len(run[ORDERS]) > 20, "the reference run must trade for the comparison to mean anything"
    return run


def test_two_partitions_in_one_process_give_the_same_orders(
    kafka_bootstrap: str, tmp_path: Path, reference: dict
) -> None:
    got = trade(kafka_bootstrap, tmp_path / "parts", partitions=2, processes=1)
    assert got[DECISIONS] == reference[DECISIONS]
    assert got[ORDERS] == reference[ORDERS]


def test_two_bytewax_processes_give_the_same_orders(
    kafka_bootstrap: str, tmp_path: Path, reference: dict
) -> None:
    got = trade(kafka_bootstrap, tmp_path / "cluster", partitions=2, processes=2)
    assert got[DECISIONS] == reference[DECISIONS]
    assert got[ORDERS] == reference[ORDERS]
    logs = "".join((tmp_path / "cluster" / f"trading-{i}.log").read_text() for i in range(2))
    assert "panic" not in logs
