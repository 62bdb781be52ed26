"""Shared checks of model warm starts: a restored model set continues bit-identically."""

from __future__ import annotations

from online_models.instrument import explode
from risk.domain import ModelCheckpoint, Prediction


def checkpoints(events: list[object]) -> list[ModelCheckpoint]:
    return [event for event in events if isinstance(event, ModelCheckpoint)]


def predictions_after(events: list[object], ts_event: int) -> list[Prediction]:
    """Predictions made, or labelled, after `ts_event` (labels carry the tick's time in ts_init)."""
    return [e for e in explode(events) if isinstance(e, Prediction) and e.ts_init > ts_event]


def assert_continues_identically(
    uninterrupted: list[object], resumed: list[object], checkpoint: ModelCheckpoint, at_least: int
) -> None:
    """`resumed` (warm-started from `checkpoint`) predicts nothing before it and, after it,
    exactly what the uninterrupted run predicted (at least `at_least` predictions), and
    seals byte-identical later checkpoints."""
    expected = predictions_after(uninterrupted, checkpoint.ts_event)
    assert len(expected) > at_least
    assert predictions_after(resumed, checkpoint.ts_event) == expected
    assert not [
        e
        for e in explode(resumed)
        if isinstance(e, Prediction) and e.ts_init <= checkpoint.ts_event
    ]
    assert checkpoints(resumed) == [
        c for c in checkpoints(uninterrupted) if c.ts_event > checkpoint.ts_event
    ]
