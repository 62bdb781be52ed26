"""Pooled models: one checkpoint for the pool, warm start bit-identical, drift renews the pool.

The model step's real state (`dataflows.flows.trading.InstrumentState`, `handle_ticks`) runs
three instruments' simulated ticks on one key, as the flow does with a pooled model.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from support.warm_start import assert_continues_identically, checkpoints, predictions_after

from connectors.codec import decode_tick, encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.record import KafkaRecord
from dataflows.flows.trading import InstrumentState, TickWithOrigin, handle_ticks, model_spec
from dataflows.settings import PipelineSettings, load_settings
from online_models.champion import restore_model_set
from online_models.checkpoint import CheckpointError, seal
from online_models.drift import DriftConfig
from online_models.instrument import ModelSpec
from online_models.pool import POOL, restore_pool
from risk.domain import (
    AuditEvent,
    DriftDetected,
    ModelAction,
    ModelCommand,
    ModelScope,
    ModelVersion,
)

SYMBOLS = ("AAPL", "MSFT", "NVDA")
CONFIG = Path(__file__).resolve().parents[3] / "config"
BATCH = 250


def spec(champion: ModelScope = ModelScope.POOLED, drift: DriftConfig | None = None) -> ModelSpec:
    """A pooled logistic champion (or per-instrument), a pooled linear challenger and a
    per-instrument bandit, checkpointed every 10 s of event time."""
    base = load_settings(CONFIG, env={})
    pipelines = base.model.pipelines | {
        "logistic": PipelineSettings(
            factory="logistic", params={"learning_rate": 0.01}, scope=champion
        ),
        "linear": PipelineSettings(
            factory="linear", params={"learning_rate": 0.01}, scope=ModelScope.POOLED
        ),
    }
    model = replace(
        base.model,
        pipelines=pipelines,
        challengers=("linear", "bandit"),
        horizon_s=1.0,
        checkpoint_interval_s=10,
    )
    built = model_spec(replace(base, model=model))
    if drift is None:
        return built
    return replace(built, models=replace(built.models, drift=drift))


def stream(n: int) -> list[TickWithOrigin]:
    config = SimulationConfig(
        symbols=SYMBOLS, seed=5, ticks_per_second=150.0, start_ns=1_700_000_000_000_000_000
    )
    ticks = []
    for offset, record in enumerate(simulate(config, n)):
        value = encode(record)
        origin = KafkaRecord("md.ticks", 0, offset, None, value, offset)
        ticks.append((decode_tick(value, frozenset(SYMBOLS)), origin))
    return ticks


def run(state: InstrumentState, ticks: list[TickWithOrigin]) -> list[object]:
    out: list[object] = []
    for start in range(0, len(ticks), BATCH):
        out.extend(handle_ticks(state, ticks[start : start + BATCH]))  # type: ignore[arg-type]
    return out


@pytest.fixture(scope="module")
def ticks() -> list[TickWithOrigin]:
    return stream(9_000)


@pytest.fixture(scope="module")
def uninterrupted(ticks: list[TickWithOrigin]) -> list[object]:
    return run(InstrumentState(spec()), ticks)


def test_the_pool_writes_one_checkpoint_per_interval_and_no_instrument_does(
    uninterrupted: list[object],
) -> None:
    taken = checkpoints(uninterrupted)
    assert [c.ts_event // 10**10 for c in taken] == [
        170_000_001,
        170_000_002,
        170_000_003,
        170_000_004,
        170_000_005,
    ]
    assert {c.instrument for c in taken} == {POOL}
    for checkpoint in taken:
        assert checkpoint.models == ("logistic", "linear")  # the pooled estimators
        assert checkpoint.size_bytes == len(base64.b64decode(checkpoint.blob))
        state = restore_pool(checkpoint)
        assert set(state.sets) == set(SYMBOLS)
        assert state.sets["AAPL"].models.models == ("logistic", "linear", "bandit")


def test_warm_start_from_a_pooled_checkpoint_predicts_bit_identically(
    ticks: list[TickWithOrigin], uninterrupted: list[object]
) -> None:
    checkpoint = checkpoints(uninterrupted)[1]
    start = restore_pool(checkpoint)
    # A fresh flow replays the log from its start: the models skip what they learnt.
    resumed = run(InstrumentState(spec(), pool=start.pool, warm=start.sets), ticks)
    assert_continues_identically(uninterrupted, resumed, checkpoint, at_least=10_000)


def test_a_cold_pool_differs_so_the_warm_start_equality_is_not_trivial(
    ticks: list[TickWithOrigin], uninterrupted: list[object]
) -> None:
    checkpoint = checkpoints(uninterrupted)[1]
    later = [item for item in ticks if item[0].ts_event > checkpoint.ts_event]
    cold = run(InstrumentState(spec()), later)
    expected = predictions_after(uninterrupted, checkpoint.ts_event)
    assert predictions_after(cold, checkpoint.ts_event) != expected


def test_a_tampered_or_foreign_pooled_checkpoint_is_refused(uninterrupted: list[object]) -> None:
    checkpoint = checkpoints(uninterrupted)[0]
    raw = bytearray(base64.b64decode(checkpoint.blob))
    raw[len(raw) // 2] ^= 0x01
    with pytest.raises(CheckpointError, match="digest mismatch"):
        restore_pool(replace(checkpoint, blob=base64.b64encode(bytes(raw)).decode()))
    with pytest.raises(CheckpointError, match="digest mismatch"):
        restore_pool(replace(checkpoint, sha256=checkpoint.sha256[::-1]))
    other = seal({"not": "a pool"})
    with pytest.raises(CheckpointError, match="holds dict, not a pool"):
        restore_pool(replace(checkpoint, blob=other.blob, sha256=other.sha256))
    with pytest.raises(CheckpointError, match="holds PoolState"):
        restore_model_set(replace(checkpoint, instrument="AAPL"))
    with pytest.raises(CheckpointError, match="not a pool"):
        restore_pool(replace(checkpoint, instrument="AAPL"))


def test_per_instrument_models_still_checkpoint_per_instrument(
    ticks: list[TickWithOrigin],
) -> None:
    config = spec(champion=ModelScope.PER_INSTRUMENT)
    per_instrument = replace(
        config, models=replace(config.models, challengers=config.models.challengers[1:])
    )
    taken = checkpoints(run(InstrumentState(per_instrument), ticks[:3_000]))
    assert {c.instrument for c in taken} == set(SYMBOLS)


EAGER_DRIFT = DriftConfig(
    watch_error=False,
    features=("realized_vol_20",),
    feature_threshold=3.0,
    feature_min_instances=100,
)


def replaced(events: list[object]) -> list[AuditEvent]:
    return [e for e in events if isinstance(e, AuditEvent) and e.action == "challenger_replaced"]


def test_a_drift_on_one_instrument_replaces_the_pooled_challenger_everywhere(
    ticks: list[TickWithOrigin],
) -> None:
    state = InstrumentState(spec(drift=EAGER_DRIFT))
    events = run(state, ticks[:4_000])
    drifts = [e for e in events if isinstance(e, DriftDetected)]
    assert drifts
    first = drifts[0]
    audits = [json.loads(a.detail) | {"subject": a.subject} for a in replaced(events)]
    at_first = [a for a in audits if first.drift_id in a["drift_ids"]]
    # The pooled linear model in every instrument, the bandit of the drifting one only.
    assert sorted((a["subject"], a["instrument"]) for a in at_first) == sorted(
        [("linear", name) for name in SYMBOLS] + [("bandit", first.instrument)]
    )
    assert {a["drift_instrument"] for a in at_first} == {first.instrument}
    versions = {
        (e.instrument, e.model): e
        for e in events
        if isinstance(e, ModelVersion) and e.created_at == first.ts_event
    }
    for audit in at_first:
        version = versions[audit["instrument"], audit["subject"]]
        assert (version.version_id, version.parent) == (audit["version_id"], audit["parent"])
    # One fresh estimator, shared again by every instrument's scorer.
    shared = {id(p._models._slots["linear"].scorer.model) for p in state.pipelines.values()}
    assert shared == {id(state.pool.estimators["linear"])}


def test_pooled_drift_replacement_is_the_same_on_replay_and_across_batching(
    ticks: list[TickWithOrigin],
) -> None:
    once = run(InstrumentState(spec(drift=EAGER_DRIFT)), ticks[:4_000])
    again: list[object] = handle_ticks(InstrumentState(spec(drift=EAGER_DRIFT)), ticks[:4_000])  # type: ignore[arg-type,assignment]
    assert replaced(once) and once == again


def test_a_pooled_model_some_instrument_trades_is_not_reset_by_a_drift_elsewhere(
    ticks: list[TickWithOrigin],
) -> None:
    state = InstrumentState(spec(drift=EAGER_DRIFT))
    run(state, ticks[:300])
    promote = ModelCommand(
        command_id="c1",
        action=ModelAction.PROMOTE,
        model="linear",
        instrument="MSFT",
        actor="test",
        reason="test",
        ts_event=0,
        ts_init=0,
    )
    handle_ticks(state, [promote])
    shared = state.pool.estimators["linear"]
    events = run(state, ticks[300:4_000])
    assert [e for e in events if isinstance(e, DriftDetected)]
    assert {
        json.loads(a.detail)["instrument"] for a in replaced(events) if a.subject == "linear"
    } == set()
    assert state.pool.estimators["linear"] is shared
