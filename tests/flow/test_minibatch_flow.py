"""The real trading flow with `mini_batch_ticks`: learning in tick buckets, any batching."""

from __future__ import annotations

from dataclasses import replace

from bytewax.testing import run_main
from conftest import encoded, trading_flow

from connectors.kafka.record import KafkaRecord
from dataflows.settings import Settings
from online_models.instrument import explode
from risk.domain import Prediction


def predictions(settings: Settings, records: list[KafkaRecord], batch_size: int) -> list[bytes]:
    out: list[object] = []
    run_main(trading_flow(settings, records, out, batch_size))
    return sorted(encoded(e for e in explode(out) if isinstance(e, Prediction)))


def test_mini_batch_predictions_do_not_depend_on_the_input_batches(
    settings: Settings, tick_records: list[KafkaRecord], trading_events: list[object]
) -> None:
    batched = replace(settings, model=replace(settings.model, mini_batch_ticks=64))
    big = predictions(batched, tick_records, 500)
    assert big == predictions(batched, tick_records, 37)
    per_tick = sorted(encoded(e for e in explode(trading_events) if isinstance(e, Prediction)))
    assert len(big) == len(per_tick) and big != per_tick
