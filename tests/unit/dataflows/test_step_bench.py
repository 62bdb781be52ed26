"""`hfl bench step`: figures, and the same outputs whether the heap is settled or not."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from dataflows.bench.pipeline import MODEL_OVERRIDES
from dataflows.bench.step import bench_step
from dataflows.settings import load_settings


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_step_bench_outputs_do_not_depend_on_the_heap_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in MODEL_OVERRIDES.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    plain = bench_step(settings, ticks=2_000, warmup=16_000, event_rate=1_000.0, settle=False)
    settled = bench_step(settings, ticks=2_000, warmup=16_000, event_rate=1_000.0, settle=True)
    assert plain["us_per_tick"] > 0
    # Warm: a fresh and a labelled prediction per tick, in one columnar record per
    # instrument per batch of 1,000 ticks.
    assert 0.0 < plain["records_per_tick"]["hfl.events.predictions"] < 0.1
    assert plain["bytes_per_tick"]["hfl.events.predictions"] > 100
    assert settled["outputs_sha256"] == plain["outputs_sha256"]
