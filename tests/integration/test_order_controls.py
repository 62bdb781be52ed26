"""Controls that only limit orders reach, firing end to end on the real broker.

The gate sends marketable limit orders good for a time in force, so self-match
(an order that would trade against our own resting order) and the time in force
(what has not filled expires at the paper broker, EXPIRED, and the gate releases it)
fire in a real run of the trading and gateway flows, driven as
tests/integration/test_kill_switch.py drives them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from test_end_to_end import run_env
from test_kill_switch import FIRST_PART, publish, read_topic, start, ticks, wait_for

from connectors import topic
from connectors.kafka.admin import create_topics
from dataflows.ops.process import stop

pytestmark = pytest.mark.integration

Found = Callable[[list[dict[str, object]]], bool]


Records = list[dict[str, object]]


def run_stack(
    kafka_bootstrap: str, tmp_path: Path, env_extra: dict[str, str], until: tuple[str, Found]
) -> dict[str, Records]:
    """Trading and gateway flows over the first part of the seeded stream, with
    `env_extra`, until `until[1]` holds on topic `until[0]`; every topic the gate
    writes or reads, then."""
    prefix = f"controls-{uuid.uuid4().hex[:8]}."
    env = run_env(kafka_bootstrap, prefix, tmp_path / "unused-clickhouse") | env_extra
    create_topics(kafka_bootstrap, prefix=prefix)
    flows = [start(name, env, tmp_path) for name in ("trading", "gateway")]
    try:
        publish(env, ticks(time.time_ns() - 60_000_000_000)[:FIRST_PART], tmp_path / "t.jsonl")
        wait_for(kafka_bootstrap, prefix + until[0], until[1])
        time.sleep(3)  # let the gate book what the gateway reported so far
        names = (topic.ORDERS, topic.ORDER_EVENTS, topic.FILLS, topic.DECISIONS)
        return {name: read_topic(kafka_bootstrap, prefix + name) for name in names}
    finally:
        for flow in flows:
            stop(flow)


def test_signal_flipping_against_our_resting_order_is_denied_as_self_match(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # An event-time latency longer than the run keeps every order resting.
    read = run_stack(
        kafka_bootstrap,
        tmp_path,
        {"HFL_GATEWAY__LATENCY_MS": "60000"},
        (topic.DECISIONS, lambda ds: any(d.get("reason") == "self_match" for d in ds)),
    )
    orders = [o for o in read[topic.ORDERS] if "cancel_id" not in o]
    denied = next(d for d in read[topic.DECISIONS] if d.get("reason") == "self_match")
    resting = [
        o
        for o in orders
        if o["instrument"] == denied["instrument"]
        and o["side"] != denied["side"]
        and int(o["ts_event"]) < int(denied["ts_event"])  # type: ignore[call-overload]
    ]
    assert resting, "no order on the other side was resting: nothing to self-match"
    assert all(o["order_type"] == "limit" for o in orders)


def test_orders_not_filled_within_their_time_in_force_expire_and_are_released(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # Good for 1 ms of event time, but the paper venue lets an order trade only after
    # its 50 ms latency: every order expires at its first eligible tick.
    read = run_stack(
        kafka_bootstrap,
        tmp_path,
        {"HFL_RISK__LIMITS__TIME_IN_FORCE_MS": "1"},
        (topic.ORDER_EVENTS, lambda events: sum(e["kind"] == "expired" for e in events) >= 3),
    )
    expired = [e for e in read[topic.ORDER_EVENTS] if e["kind"] == "expired"]
    sent = {o["client_order_id"]: o for o in read[topic.ORDERS] if "cancel_id" not in o}
    assert {e["client_order_id"] for e in expired} <= set(sent)
    for event in expired:
        order = sent[event["client_order_id"]]
        assert int(event["ts_event"]) == int(order["expire_ns"])  # type: ignore[call-overload]
        assert Decimal(str(event["filled_quantity"])) == 0
    assert read[topic.FILLS] == []
    # Released, not left working: no decision was denied for too many open orders.
    assert not any(d.get("reason") == "max_open_orders" for d in read[topic.DECISIONS])
