"""Model checkpoints: sealed with sha256, warm start continues bit-identically; tampering fails."""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path

import pytest
from support.warm_start import assert_continues_identically, checkpoints, predictions_after

from connectors.codec import decode_tick, encode
from connectors.feeds.simulator import SimulationConfig, simulate
from dataflows.flows.trading import model_spec
from dataflows.settings import load_settings
from online_models.champion import restore_model_set
from online_models.checkpoint import CheckpointError, seal, unseal
from online_models.instrument import InstrumentPipeline, ModelSpec, WarmStart
from risk.domain import Alert, Tick

SYMBOL = "AAPL"
CONFIG = Path(__file__).resolve().parents[3] / "config"


def spec(**env: str) -> ModelSpec:
    settings = load_settings(
        CONFIG,
        env={
            "HFL_MODEL__HORIZON_S": "1",
            "HFL_MODEL__CHECKPOINT_INTERVAL_S": "10",
            "HFL_MODEL__CHALLENGERS": "hoeffding_tree,bandit",
            **env,
        },
    )
    return model_spec(settings)


def stream(n: int) -> list[Tick]:
    config = SimulationConfig(
        symbols=(SYMBOL,), seed=7, ticks_per_second=100.0, start_ns=1_700_000_000_000_000_000
    )
    return [decode_tick(encode(record), frozenset({SYMBOL})) for record in simulate(config, n)]


def run(pipeline: InstrumentPipeline, ticks: list[Tick]) -> list[object]:
    out: list[object] = []
    for tick in ticks:
        pipeline.update(tick, out)  # type: ignore[arg-type]
    return out


def test_checkpoints_are_taken_on_the_event_time_schedule_with_their_digest() -> None:
    events = run(InstrumentPipeline(SYMBOL, spec()), stream(4_000))
    taken = checkpoints(events)
    assert [c.ts_event // 10**10 for c in taken] == [170_000_001, 170_000_002, 170_000_003]
    for checkpoint in taken:
        assert checkpoint.models == ("logistic", "hoeffding_tree", "bandit")
        assert checkpoint.model in checkpoint.models and len(checkpoint.sha256) == 64
        assert checkpoint.size_bytes == len(base64.b64decode(checkpoint.blob))


def test_warm_start_from_a_checkpoint_predicts_bit_identically_to_the_uninterrupted_models() -> (
    None
):
    ticks = stream(6_000)
    uninterrupted = run(InstrumentPipeline(SYMBOL, spec()), ticks)
    checkpoint = checkpoints(uninterrupted)[1]
    warm = WarmStart(models=restore_model_set(checkpoint), after_seq=checkpoint.seq)
    # A fresh flow reads the topic from its start: ticks up to the checkpoint only
    # rebuild features; the restored models see the rest.
    resumed = run(InstrumentPipeline(SYMBOL, spec(), warm), ticks)
    assert_continues_identically(uninterrupted, resumed, checkpoint, at_least=3_000)


def test_a_cold_start_differs_so_the_warm_start_equality_is_not_trivial() -> None:
    ticks = stream(6_000)
    uninterrupted = run(InstrumentPipeline(SYMBOL, spec()), ticks)
    checkpoint = checkpoints(uninterrupted)[1]
    cold = run(InstrumentPipeline(SYMBOL, spec()), [t for t in ticks if t.seq > checkpoint.seq])
    expected = predictions_after(uninterrupted, checkpoint.ts_event)
    assert predictions_after(cold, checkpoint.ts_event) != expected


def test_tampered_blob_is_refused_before_unpickling() -> None:
    checkpoint = checkpoints(run(InstrumentPipeline(SYMBOL, spec()), stream(2_100)))[0]
    raw = bytearray(base64.b64decode(checkpoint.blob))
    raw[len(raw) // 2] ^= 0x01
    tampered = replace(checkpoint, blob=base64.b64encode(bytes(raw)).decode())
    with pytest.raises(CheckpointError, match="digest mismatch"):
        restore_model_set(tampered)


def test_wrong_digest_or_garbage_is_refused() -> None:
    sealed = seal({"w": 1.0})
    with pytest.raises(CheckpointError, match="digest mismatch"):
        unseal(sealed.blob, sealed.sha256[::-1])
    with pytest.raises(CheckpointError, match="not base64"):
        unseal("not base64!", sealed.sha256)


def test_checkpoint_of_another_instrument_or_type_is_refused() -> None:
    checkpoint = checkpoints(run(InstrumentPipeline(SYMBOL, spec()), stream(2_100)))[0]
    with pytest.raises(CheckpointError, match="not the model set of 'MSFT'"):
        restore_model_set(replace(checkpoint, instrument="MSFT"))
    other = seal(["not", "a", "model set"])
    with pytest.raises(CheckpointError, match="holds list"):
        restore_model_set(replace(checkpoint, blob=other.blob, sha256=other.sha256))


def test_checkpoint_over_the_size_bound_becomes_an_alert_not_a_record() -> None:
    events = run(
        InstrumentPipeline(SYMBOL, spec(HFL_MODEL__CHECKPOINT_MAX_BYTES="1000")), stream(2_100)
    )
    assert not checkpoints(events)
    alerts = [e for e in events if isinstance(e, Alert)]
    assert alerts and {a.name for a in alerts} == {"checkpoint_oversized"}
    assert "exceeds checkpoint_max_bytes 1000" in alerts[0].message


def test_no_checkpoints_when_the_interval_is_zero() -> None:
    events = run(
        InstrumentPipeline(SYMBOL, spec(HFL_MODEL__CHECKPOINT_INTERVAL_S="0")), stream(2_100)
    )
    assert not checkpoints(events)
