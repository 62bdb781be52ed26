"""The real trading flow with a pooled champion: one key, deterministic across batches, resume."""

from __future__ import annotations

import datetime
from dataclasses import replace
from pathlib import Path

import pytest
from bytewax.recovery import RecoveryConfig, init_db_dir
from bytewax.testing import TestingSource, run_main
from conftest import BATCH_SIZE, encoded, trading_flow

from connectors.kafka.record import KafkaRecord
from dataflows.settings import PipelineSettings, Settings
from risk.domain import ModelScope, Prediction


@pytest.fixture(scope="module")
def pooled_settings(settings: Settings) -> Settings:
    pipelines = settings.model.pipelines | {
        "logistic": PipelineSettings(
            factory="logistic", params={"learning_rate": 0.01}, scope=ModelScope.POOLED
        )
    }
    return replace(settings, model=replace(settings.model, pipelines=pipelines))


def run(
    settings: Settings,
    records: list[object],
    batch_size: int = BATCH_SIZE,
    recovery_dir: Path | None = None,
) -> list[object]:
    out: list[object] = []
    flow = trading_flow(settings, records, out, batch_size)
    if recovery_dir is None:
        run_main(flow)
    else:
        run_main(
            flow,
            epoch_interval=datetime.timedelta(0),
            recovery_config=RecoveryConfig(str(recovery_dir)),
        )
    return out


def predictions(events: list[object]) -> list[Prediction]:
    return [e for e in events if isinstance(e, Prediction)]


def test_pooled_predictions_do_not_depend_on_how_the_input_is_batched(
    pooled_settings: Settings, tick_records: list[KafkaRecord], trading_events: list[object]
) -> None:
    big = predictions(run(pooled_settings, list(tick_records)))
    small = predictions(run(pooled_settings, list(tick_records), batch_size=37))
    assert len(big) > 5_000
    assert {p.instrument for p in big} == {p.instrument for p in predictions(trading_events)}
    assert encoded(small) == encoded(big)  # one key: log order, whatever the batches
    # Learning across instruments changes the predictions: the pooled model is in use.
    assert sorted(encoded(big)) != sorted(encoded(predictions(trading_events)))


def test_pooled_flow_aborted_and_resumed_equals_uninterrupted_run(
    pooled_settings: Settings, tick_records: list[KafkaRecord], tmp_path: Path
) -> None:
    full_dir, resumed_dir = tmp_path / "full", tmp_path / "resumed"
    for directory in (full_dir, resumed_dir):
        directory.mkdir()
        init_db_dir(directory, 1)
    half = len(tick_records) // 2 // BATCH_SIZE * BATCH_SIZE
    with_abort = [*tick_records[:half], TestingSource.ABORT(), *tick_records[half:]]

    full = encoded(run(pooled_settings, list(tick_records), recovery_dir=full_dir))
    before = encoded(run(pooled_settings, with_abort, recovery_dir=resumed_dir))
    after = encoded(run(pooled_settings, with_abort, recovery_dir=resumed_dir))

    assert before == full[: len(before)]
    assert after == full[len(full) - len(after) :]
    assert len(before) + len(after) >= len(full)
