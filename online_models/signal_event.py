"""The `Signal` a signal engine emits for a model's prediction (one shape for every engine)."""

from __future__ import annotations

from risk.domain.ids import signal_id
from risk.domain.model import Prediction, Signal


def signal_from(prediction: Prediction, direction: int, reference_price: float) -> Signal:
    """The signal of `prediction` to go `direction` (+1 long, -1 short, 0 flat), priced at
    `reference_price`; its id is stable for the prediction's instrument, tick and model."""
    return Signal(
        signal_id=signal_id(prediction.instrument, prediction.tick_id, prediction.model),
        tick_id=prediction.tick_id,
        instrument=prediction.instrument,
        model=prediction.model,
        direction=direction,
        probability_up=prediction.probability_up,
        reference_price=reference_price,
        ts_event=prediction.ts_event,
        ts_init=prediction.ts_init,
    )
