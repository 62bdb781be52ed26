"""The real trading flow with a pooled champion: one key, deterministic across batches, resume."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from conftest import abort_and_resume, encoded, trading_runner

from connectors.kafka.record import KafkaRecord
from dataflows.settings import PipelineSettings, Settings
from online_models.instrument import explode
from risk.domain import ModelScope, Prediction


@pytest.fixture(scope="module")
def pooled_settings(settings: Settings) -> Settings:
    pipelines = settings.model.pipelines | {
        "logistic": PipelineSettings(
            factory="logistic", params={"learning_rate": 0.01}, scope=ModelScope.POOLED
        )
    }
    return replace(settings, model=replace(settings.model, pipelines=pipelines))


def predictions(events: list[object]) -> list[Prediction]:
    return [e for e in explode(events) if isinstance(e, Prediction)]


def test_pooled_predictions_do_not_depend_on_how_the_input_is_batched(
    pooled_settings: Settings, tick_records: list[KafkaRecord], trading_events: list[object]
) -> None:
    run = trading_runner(pooled_settings)
    big = predictions(run(tick_records))
    small = predictions(run(tick_records, batch_size=37))
    assert len(big) > 5_000
    assert {p.instrument for p in big} == {p.instrument for p in predictions(trading_events)}
    assert encoded(small) == encoded(big)  # one key: log order, whatever the batches
    # Learning across instruments changes the predictions: the pooled model is in use.
    assert sorted(encoded(big)) != sorted(encoded(predictions(trading_events)))


def test_pooled_flow_aborted_and_resumed_equals_uninterrupted_run(
    pooled_settings: Settings, tick_records: list[KafkaRecord], tmp_path: Path
) -> None:
    full, before, after = abort_and_resume(trading_runner(pooled_settings), tick_records, tmp_path)

    assert before == full[: len(before)]
    assert after == full[len(full) - len(after) :]
    assert len(before) + len(after) >= len(full)
