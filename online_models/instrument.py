"""Everything one instrument's ticks go through: bars, features, model, signal."""

from __future__ import annotations

from dataclasses import dataclass

from online_models.bar import BarBuilder
from online_models.champion import ModelEvent, ModelPool, ModelSet, ModelSetConfig
from online_models.feature import InstrumentFeatures
from online_models.signal import SignalEngineConfig, signal_engine
from risk.domain import Bar, FeatureVector, ModelCommand, Prediction, Signal, Tick

InstrumentEvent = Bar | FeatureVector | Signal | ModelEvent

BAR_INTERVALS_S = (1, 60)


@dataclass(frozen=True, slots=True, kw_only=True)
class WarmStart:
    """A model set restored from a checkpoint taken after the instrument's tick `after_seq`.

    Ticks up to `after_seq` are already in the models: they still build bars and
    features (which are not checkpointed), but the models see only later ticks, so
    their predictions continue exactly as the models that were checkpointed would.
    """

    models: ModelSet
    after_seq: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelSpec:
    """Which models predict (champion and challengers) and how signals are drawn."""

    models: ModelSetConfig
    signal: SignalEngineConfig


class InstrumentPipeline:
    """Per-instrument state: event-time bars, incremental features, the models, the signal.

    `update` is deterministic in the tick sequence: it reads time only from
    `tick.ts_event`, so a replay yields the same events byte for byte.
    """

    def __init__(
        self,
        instrument: str,
        spec: ModelSpec,
        warm: WarmStart | None = None,
        pool: ModelPool | None = None,
    ) -> None:
        """Start from scratch, or with the models of `warm` (a checkpoint).

        `pool` holds the pooled models every instrument's pipeline shares.
        """
        self.instrument = instrument
        self._bars = tuple(BarBuilder(instrument, seconds) for seconds in BAR_INTERVALS_S)
        self._features = InstrumentFeatures()
        self._models = ModelSet(instrument, spec.models, pool) if warm is None else warm.models
        self._models_after_seq = -1 if warm is None else warm.after_seq
        self._signal = signal_engine(spec.signal)
        self._peers = bool(spec.models.challengers)

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
        if tick.seq <= self._models_after_seq:
            return  # already learnt by the checkpointed models this pipeline started from
        self._models_after_seq = tick.seq
        models = self._models
        start = len(out)
        fresh = models.update(tick.tick_id, tick.ts_event, tick.price, values, out)  # type: ignore[arg-type]
        if models.checkpoint_due(tick.ts_event):
            out.append(models.checkpoint(tick.seq, tick.tick_id, tick.ts_event))
        if fresh is not None:
            peers = (
                [
                    e.probability_up
                    for e in out[start:]
                    if isinstance(e, Prediction) and e.version == 0 and e is not fresh
                ]
                if self._peers
                else ()
            )
            n_labelled = models.champion_scorer.n_labelled
            signal = self._signal.update(fresh, n_labelled, tick.price, peers)
            if signal is not None:
                out.append(signal)

    def close_bars(self, out: list[InstrumentEvent]) -> None:
        """At the end of a bounded input, close the open bars (`BarBuilder.flush`): the
        last bar then reaches the risk gate, which marks the book to the last price."""
        for builder in self._bars:
            bar = builder.flush()
            if bar is not None:
                out.append(bar)

    def apply(self, command: ModelCommand, out: list[InstrumentEvent]) -> None:
        """Carry out a promote/rollback command, appending its audit event to `out`."""
        self._models.apply(command, out)  # type: ignore[arg-type]

    def warm_start(self) -> WarmStart:
        """The models as they are now, to start from: they learnt ticks up to `after_seq`."""
        return WarmStart(models=self._models, after_seq=self._models_after_seq)

    @property
    def champion(self) -> str:
        """Name of the model whose predictions trade."""
        return self._models.champion

    @property
    def accuracy(self) -> float:
        """Cumulative prequential accuracy of the champion so far."""
        return self._models.champion_scorer.accuracy
