"""Everything one instrument's ticks go through: bars, features, model, signal."""

from __future__ import annotations

from dataclasses import dataclass

from online_models.bar import BarBuilder
from online_models.feature import InstrumentFeatures
from online_models.scorer import InstrumentScorer
from online_models.signal import SignalConfig, SignalState
from risk.domain import Bar, FeatureVector, Prediction, Signal, Tick

InstrumentEvent = Bar | FeatureVector | Prediction | Signal

BAR_INTERVALS_S = (1, 60)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Which pipeline predicts, over what horizon, and how signals are drawn."""

    pipeline: str
    seed: int
    horizon_ns: int
    params: dict[str, float]
    signal: SignalConfig


class InstrumentPipeline:
    """Per-instrument state: event-time bars, incremental features, the model, the signal.

    `update` is deterministic in the tick sequence: it reads time only from
    `tick.ts_event`, so a replay yields the same events byte for byte.
    """

    def __init__(self, instrument: str, spec: ModelSpec) -> None:
        self.instrument = instrument
        self._bars = tuple(BarBuilder(instrument, seconds) for seconds in BAR_INTERVALS_S)
        self._features = InstrumentFeatures()
        self._scorer = InstrumentScorer(
            instrument,
            model_name=spec.pipeline,
            horizon_ns=spec.horizon_ns,
            seed=spec.seed,
            params=spec.params,
        )
        self._signal = SignalState(spec.signal)

    def update(self, tick: Tick, out: list[InstrumentEvent]) -> None:
        """Process one validated tick, appending what it produced to `out`."""
        for builder in self._bars:
            bar = builder.update(tick)
            if bar is not None:
                out.append(bar)
                if bar.interval_s == 1:
                    self._features.on_bar(bar)
        values = self._features.update(tick)
        if values is not None:
            out.append(
                FeatureVector(
                    tick_id=tick.tick_id,
                    instrument=tick.instrument,
                    values=values,
                    ts_event=tick.ts_event,
                    ts_init=tick.ts_event,
                )
            )
        predictions = self._scorer.update(tick.tick_id, tick.ts_event, tick.price, values)
        out.extend(predictions)
        for prediction in predictions:
            if prediction.version == 0:
                signal = self._signal.update(prediction, self._scorer.n_labelled, tick.price)
                if signal is not None:
                    out.append(signal)

    @property
    def accuracy(self) -> float:
        """Cumulative prequential accuracy of the model so far."""
        return self._scorer.accuracy
