"""Everything one instrument's ticks go through: bars, features, model, signal."""

from __future__ import annotations

from dataclasses import dataclass

from online_models.bar import BarBuilder
from online_models.champion import ModelEvent, ModelPool, ModelSet, ModelSetConfig
from online_models.feature import InstrumentFeatures
from online_models.scorer import FeatureRows, PredictionColumns
from online_models.signal import SignalEngineConfig, SignalState, next_direction, signal_engine
from risk.domain import (
    Bar,
    FeatureBatch,
    FeatureVector,
    ModelCommand,
    Prediction,
    PredictionBatch,
    Signal,
    Tick,
)

InstrumentEvent = Bar | FeatureVector | FeatureBatch | PredictionBatch | Signal | ModelEvent

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

    def update_batch(self, ticks: list[Tick], out: list[InstrumentEvent]) -> None:
        """`update` for a run of validated ticks of this instrument, in order.

        The same events as `update` tick after tick, except that feature vectors and
        predictions are not objects per tick: they are appended as columnar records
        (`FeatureBatch`, `PredictionBatch`, at most `MAX_ROWS` rows each) after the
        run's other events, holding exactly the rows `update` would have emitted, in
        the same order. Features are computed for the whole run first (they do not
        depend on the models), so a mini-batch model predicts all of a bucket's rows
        that the run holds in one call; bars, model events and signals are then
        emitted tick by tick, in `update`'s order.
        """
        names = self._features.names
        features = FeatureRows(names)
        rows = features.rows
        update_row = self._features.update_row
        on_bar = self._features.on_bar
        builders = self._bars
        warm: list[int] = []  # per tick: its row in `features`, or -1
        bars: dict[int, list[Bar]] = {}  # closed by the tick at this index
        feature_ids: list[str] = []
        feature_times: list[int] = []
        for i, tick in enumerate(ticks):
            for builder in builders:
                bar = builder.update(tick)
                if bar is not None:
                    bars.setdefault(i, []).append(bar)
                    if bar.interval_s == 1:
                        on_bar(bar)
            values = update_row(tick.price, tick.size)
            if values is None:
                warm.append(-1)
                continue
            warm.append(len(rows))
            rows.append(values)
            feature_ids.append(tick.tick_id)
            feature_times.append(tick.ts_event)
        models = self._models
        sink = PredictionColumns(self.instrument)
        after = self._models_after_seq
        for i, tick in enumerate(ticks):
            closed = bars.get(i)
            if closed is not None:
                out.extend(closed)
            if tick.seq <= after:
                continue  # already learnt by the checkpointed models this pipeline started from
            after = self._models_after_seq = tick.seq
            start = len(sink)
            fresh = models.step(
                tick.tick_id,
                tick.ts_event,
                tick.price,
                warm[i],
                features=features,
                sink=sink,
                out=out,  # type: ignore[arg-type]
            )
            if models.checkpoint_due(tick.ts_event):
                out.append(models.checkpoint(tick.seq, tick.tick_id, tick.ts_event))
            if fresh >= 0:
                n_labelled = models.champion_scorer.n_labelled
                if not self._may_signal(sink.probabilities_up[fresh], n_labelled):
                    continue
                peers = (
                    [
                        sink.probabilities_up[j]
                        for j in range(start, len(sink))
                        if sink.versions[j] == 0 and j != fresh
                    ]
                    if self._peers
                    else ()
                )
                signal = self._signal.update(
                    _prediction(sink, fresh), n_labelled, tick.price, peers
                )
                if signal is not None:
                    out.append(signal)
        if rows:
            out.extend(features.batches(self.instrument, feature_ids, feature_times))
        if len(sink):
            out.extend(sink.batches())

    def _may_signal(self, probability_up: float, n_labelled: int) -> bool:
        """False when the hysteresis would certainly not move on this prediction, so no
        `Prediction` object need be made for it (most ticks); True otherwise, and for
        any other engine, which always gets the object."""
        engine = self._signal
        if type(engine) is not SignalState:
            return True
        config = engine.config
        return n_labelled >= config.min_labelled and (
            next_direction(engine.direction, probability_up, config) != engine.direction
        )

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


def _prediction(sink: PredictionColumns, i: int) -> Prediction:
    """Row `i` of `sink`, a fresh prediction, as the object a signal engine takes."""
    return Prediction(
        tick_id=sink.tick_ids[i],
        instrument=sink.instrument,
        model=sink.models[i],
        horizon_ns=sink.horizons_ns[i],
        probability_up=sink.probabilities_up[i],
        expected_return=sink.expected_returns[i],
        ts_event=sink.ts_events[i],
        ts_init=sink.ts_inits[i],
    )


def explode(events: list[object]) -> list[object]:
    """`events` with every columnar record replaced by its rows as objects, in order.

    For readers that want one `FeatureVector` / `Prediction` per row (tests, tools).

    >>> batch = FeatureBatch(instrument="X", names=("a",), tick_ids=("t",), values=((1.0,),),
    ...                      ts_events=(5,), ts_inits=(5,), ts_event=5, ts_init=5)
    >>> explode([batch])
    [FeatureVector(tick_id='t', instrument='X', values={'a': 1.0}, ts_event=5, ts_init=5)]
    """
    out: list[object] = []
    for event in events:
        if isinstance(event, FeatureBatch):
            out.extend(
                FeatureVector(
                    tick_id=tick_id,
                    instrument=event.instrument,
                    values=dict(zip(event.names, values, strict=True)),
                    ts_event=ts_event,
                    ts_init=ts_init,
                )
                for tick_id, values, ts_event, ts_init in zip(
                    event.tick_ids, event.values, event.ts_events, event.ts_inits, strict=True
                )
            )
        elif isinstance(event, PredictionBatch):
            out.extend(
                Prediction(
                    tick_id=row[0],
                    instrument=event.instrument,
                    model=row[1],
                    horizon_ns=row[2],
                    probability_up=row[3],
                    expected_return=row[4],
                    label=row[5],
                    realized_return=row[6],
                    error=row[7],
                    version=row[8],
                    ts_event=row[9],
                    ts_init=row[10],
                )
                for row in zip(
                    event.tick_ids,
                    event.models,
                    event.horizons_ns,
                    event.probabilities_up,
                    event.expected_returns,
                    event.labels,
                    event.realized_returns,
                    event.errors,
                    event.versions,
                    event.ts_events,
                    event.ts_inits,
                    strict=True,
                )
            )
        else:
            out.append(event)
    return out
