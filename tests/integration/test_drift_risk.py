"""A regime change in the market makes the instrument REDUCING, on the real broker.

A scripted simulator stream of two instruments (calm for 12,000 ticks, then stressed
for good: the regime is market-wide) is
published with `hfl feed replay`; the trading flow runs as `python -m bytewax.run`
with recovery on until it drains. Its drift events and trading-state changes are read
back from Kafka: on each instrument the feature detector fires within the bound stated
in `online_models.drift` (100 of its ticks, 2 s of event time here) after the switch,
never in the calm part, and the risk gate moves that instrument to REDUCING for it.
The shadow challenger is pooled: the first detection, on either instrument, replaces
it in both instruments' model sets, each replacement an audit event naming the
instrument whose drift caused it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from test_end_to_end import publish, run_flows  # shared end-to-end helpers

from connectors.codec import encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import AUDIT, DRIFT, RISK_EVENTS

pytestmark = pytest.mark.integration

SYMBOLS = ("AAPL", "MSFT")
CHANGE_AT = 12_000
TICKS_PER_S = 100.0  # 50 per instrument
BOUND_NS = 2 * 1_000_000_000  # 100 ticks of one instrument at 50 ticks/s


def test_regime_change_is_detected_and_the_instrument_becomes_reducing(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"drift-{uuid.uuid4().hex[:8]}."
    env = {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_TRADING__INSTRUMENTS": ",".join(SYMBOLS),
        "HFL_RUN_ID": prefix.rstrip("."),
        # No gateway runs here, so the gate must not wait for its progress markers.
        "HFL_RISK__FILL_SYNC": "arrival",
        "HFL_MODEL__CHALLENGERS": "linear",
        "HFL_MODEL__PIPELINES__LINEAR__SCOPE": "pooled",
    }
    create_topics(kafka_bootstrap, prefix=prefix)
    config = SimulationConfig(
        symbols=SYMBOLS,
        seed=1,
        ticks_per_second=TICKS_PER_S,
        calm_steps=CHANGE_AT,
        p_stressed_to_calm=0.0,
        stressed_vol_annual=0.8,
    )
    records = list(simulate(config, CHANGE_AT + 2_000))
    switch_ns = int(records[CHANGE_AT]["ts_event"])
    publish(tmp_path, [encode(record) for record in records], env)

    run_flows(("trading",), env, tmp_path)

    drifts = read_log(kafka_bootstrap, prefix + DRIFT)
    states = read_log(kafka_bootstrap, prefix + RISK_EVENTS)
    for name in SYMBOLS:
        mine = [d for d in drifts if d["instrument"] == name]
        assert mine, f"no drift detected on {name}"
        first = mine[0]
        assert (first["detector"], first["stream"]) == ("page_hinkley", "feature:realized_vol_20")
        assert switch_ns <= int(first["ts_event"]) <= switch_ns + BOUND_NS
        reducing = [s for s in states if s["trigger"] == "drift" and s["instrument"] == name]
        assert reducing, f"{name} never became reducing"
        assert (reducing[0]["state"], reducing[0]["ts_event"]) == ("reducing", first["ts_event"])

    first = min(drifts, key=lambda d: int(d["ts_event"]))
    replaced = [
        json.loads(str(a["detail"]))
        for a in read_log(kafka_bootstrap, prefix + AUDIT)
        if a["action"] == "challenger_replaced" and a["subject"] == "linear"
    ]
    at_first = [r for r in replaced if first["drift_id"] in r["drift_ids"]]
    assert sorted(r["instrument"] for r in at_first) == sorted(SYMBOLS)
    assert {(r["drift_instrument"], r["scope"]) for r in at_first} == {
        (first["instrument"], "pooled")
    }
