"""The kill switch end to end on the real broker, across a restart of the trading flow.

The trading and gateway flows run as `python -m bytewax.run` processes with recovery on.
The first part of a simulated tick stream produces orders; the feed then pauses, so the
last orders stay working (no tick arrives to fill them). `hfl kill` is sent in the middle
of the run. After it: no order is approved, every working order is cancelled through the
gateway, and the HALTED state survives a SIGTERM and restart of the trading flow while
the second part of the stream (event times after the kill) arrives.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from test_end_to_end import SYMBOLS, hfl, run_env

from connectors import topic
from connectors.codec import encode, is_progress_marker
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from dataflows.ops.process import Child, start_flow, stop
from dataflows.ops.recovery_store import resumable
from dataflows.settings import load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
FIRST_PART = 4_000
SECOND_PART = 2_000
WAIT_S = 120.0


def ticks(start_ns: int) -> list[dict[str, object]]:
    """The seeded stream: about 40 s of five instruments at 150 ticks/s."""
    config = SimulationConfig(symbols=SYMBOLS, seed=11, ticks_per_second=150.0, start_ns=start_ns)
    return list(simulate(config, FIRST_PART + SECOND_PART))


def publish(env: dict[str, str], records: list[dict[str, object]], path: Path) -> None:
    path.write_bytes(b"\n".join(encode(record) for record in records) + b"\n")
    hfl(env, "feed", "replay", str(path))


def read_topic(bootstrap: str, name: str) -> list[dict[str, object]]:
    """Every record of a one-partition topic so far, decoded (short polls: topics are small),
    without the flows' progress markers."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "kill-check", "enable.partition.eof": True}
    )
    consumer.assign([TopicPartition(name, 0, OFFSET_BEGINNING)])
    records: list[dict[str, object]] = []
    try:
        while True:
            for message in consumer.consume(1000, 0.2):
                error = message.error()
                if error is None:
                    record = orjson.loads(message.value())
                    if not is_progress_marker(record):
                        records.append(record)
                elif error.code() == KafkaError._PARTITION_EOF:
                    return records
                elif error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise AssertionError(str(error))
    finally:
        consumer.close()


def wait_for(
    bootstrap: str, name: str, found: Callable[[list[dict[str, object]]], bool]
) -> list[dict[str, object]]:
    """Read topic `name` until `found(records)` holds; fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while True:
        records = read_topic(bootstrap, name)
        if found(records):
            return records
        assert time.monotonic() < deadline, f"gave up waiting on {name}"
        time.sleep(0.5)


def snapshotted(store: Path, epochs: int, timeout_s: float = 240.0) -> None:
    """Wait until the flow of recovery `store` closed `epochs` more epochs than now."""

    def frontier() -> int:
        try:
            state = resumable(store)
        except sqlite3.OperationalError:  # the flow holds the write lock: ask again
            return -1
        return -1 if state is None else state.frontier

    deadline = time.monotonic() + timeout_s
    while (start := frontier()) < 0:
        assert time.monotonic() < deadline, f"no snapshot in {store}"
        time.sleep(0.2)
    while frontier() < start + epochs:
        assert time.monotonic() < deadline, f"{store} closed no {epochs} epochs"
        time.sleep(0.2)


def start(name: str, env: dict[str, str], run_dir: Path) -> Child:
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    return start_flow(name, settings, run_dir, env)


def test_kill_mid_run_denies_cancels_working_orders_and_survives_restart(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"kill-{uuid.uuid4().hex[:8]}."
    # An event-time latency longer than the first part keeps its orders working.
    env = run_env(kafka_bootstrap, prefix, tmp_path / "unused-clickhouse") | {
        "HFL_GATEWAY__LATENCY_MS": "60000"
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    records = ticks(time.time_ns() - 60_000_000_000)
    trading = start("trading", env, tmp_path)
    gateway = start("gateway", env, tmp_path)
    try:
        publish(env, records[:FIRST_PART], tmp_path / "first.jsonl")
        orders = wait_for(kafka_bootstrap, prefix + topic.ORDERS, lambda r: len(r) >= 5)
        # Let the gateway accept what the gate sent before the feed paused.
        wait_for(
            kafka_bootstrap,
            prefix + topic.ORDER_EVENTS,
            lambda events: (
                {e["client_order_id"] for e in events}
                >= {
                    o["client_order_id"] for o in read_topic(kafka_bootstrap, prefix + topic.ORDERS)
                }
            ),
        )
        hfl(env, "kill", "--reason", "e2e kill switch")
        halted = wait_for(
            kafka_bootstrap,
            prefix + topic.RISK_EVENTS,
            lambda events: any(e["state"] == "halted" for e in events),
        )
        [envelope] = read_topic(kafka_bootstrap, prefix + topic.CONTROL)
        control = orjson.loads(str(envelope["payload"]))  # signed with the admin key
        kill_ts = int(control["ts_event"])  # type: ignore[call-overload]
        orders = wait_for(
            kafka_bootstrap, prefix + topic.ORDERS, lambda r: any("cancel_id" in o for o in r)
        )
        cancels = {o["client_order_id"] for o in orders if "cancel_id" in o}
        canceled = wait_for(
            kafka_bootstrap,
            prefix + topic.ORDER_EVENTS,
            lambda events: (
                cancels <= {e["client_order_id"] for e in events if e["kind"] == "canceled"}
            ),
        )
        # The HALTED state is in the recovery store once two more epochs were snapshotted
        # (counted in the store, not by the clock: a loaded machine snapshots late).
        snapshotted(tmp_path / "recovery" / "trading", epochs=2)
        assert stop(trading) in (0, -15, 143)

        trading = start("trading", env, tmp_path)
        shift = kill_ts + 1_000_000_000 - int(records[FIRST_PART]["ts_event"])  # type: ignore[call-overload]
        later = [
            {**record, "ts_event": int(record["ts_event"]) + shift}  # type: ignore[call-overload]
            for record in records[FIRST_PART:]
        ]
        publish(env, later, tmp_path / "second.jsonl")
        decisions = wait_for(
            kafka_bootstrap,
            prefix + topic.DECISIONS,
            lambda ds: any(int(d["ts_event"]) > kill_ts for d in ds),  # type: ignore[call-overload]
        )
        time.sleep(3)
        decisions = read_topic(kafka_bootstrap, prefix + topic.DECISIONS)
        orders = read_topic(kafka_bootstrap, prefix + topic.ORDERS)
        events = read_topic(kafka_bootstrap, prefix + topic.RISK_EVENTS)
    finally:
        stop(trading)
        stop(gateway)

    after = [d for d in decisions if int(d["ts_event"]) > kill_ts]  # type: ignore[call-overload]
    assert after, "no signal after the kill: nothing was tested"
    assert all(d["outcome"] == "denied" and d["reason"] == "kill_switch" for d in after)
    new_orders = [o for o in orders if "cancel_id" not in o and int(o["ts_event"]) > kill_ts]  # type: ignore[call-overload]
    assert new_orders == []
    assert cancels, "no working order at the kill: nothing was cancelled"
    assert [e for e in canceled if e["kind"] == "canceled"]
    assert [e["state"] for e in events] == [e["state"] for e in halted] == ["halted"]
    audit = read_topic(kafka_bootstrap, prefix + topic.AUDIT)
    assert sorted((a["action"], a["actor"], a["reason"]) for a in audit) == [
        ("command_verified", "pytest-admin", "kill"),
        ("control_applied", "trading.risk_gate", "kill by pytest-admin: e2e kill switch"),
        ("kill", "pytest-admin", "e2e kill switch"),
    ]
    # Who asked, and where (decision count, event time) the gate applied it.
    for entry in audit:
        assert orjson.loads(entry["detail"])["command_id"] == control["command_id"]  # type: ignore[arg-type]
