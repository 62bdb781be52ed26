"""Where each event goes in Kafka: topic and key (DESIGN.md §3).

Feature vectors and predictions, the bulk of what the trading flow makes (three of
every four events), are not one record each: the feature vectors and the predictions
of one instrument in one batch of events go out as one columnar record
(`FeatureBatch`, `PredictionBatch`), which the persist flow explodes into exactly the
rows the single events would have given (`connectors.codec.record_rows_decoder`).
Which rows share a record follows the input batching; the rows do not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import attrgetter

from connectors import topic
from connectors.codec import encode
from connectors.kafka.record import OutboundRecord
from risk.domain import (
    Alert,
    Approved,
    AuditEvent,
    Bar,
    CancelOrder,
    ControlCommand,
    DecodeFailure,
    Denied,
    DriftDetected,
    FeatureBatch,
    FeatureVector,
    Fill,
    FillsThrough,
    LimitCommand,
    ModelCheckpoint,
    ModelCommand,
    ModelMetrics,
    ModelVersion,
    Order,
    OrderEvent,
    OrderEventsThrough,
    OrdersSent,
    PnlSnapshot,
    Position,
    Prediction,
    PredictionBatch,
    RiskMetric,
    Signal,
    TradingStateChanged,
)

_BY_INSTRUMENT: Callable[[object], str] = lambda event: event.instrument  # type: ignore[attr-defined]  # noqa: E731
_BY_ACCOUNT: Callable[[object], str] = lambda event: event.account  # type: ignore[attr-defined]  # noqa: E731

ROUTES: dict[type, tuple[str, Callable[[object], str]]] = {
    Bar: (topic.BARS, _BY_INSTRUMENT),
    FeatureVector: (topic.FEATURES, _BY_INSTRUMENT),
    FeatureBatch: (topic.FEATURES, _BY_INSTRUMENT),
    Prediction: (topic.PREDICTIONS, _BY_INSTRUMENT),
    PredictionBatch: (topic.PREDICTIONS, _BY_INSTRUMENT),
    Signal: (topic.SIGNALS, _BY_INSTRUMENT),
    Approved: (topic.DECISIONS, _BY_ACCOUNT),
    Denied: (topic.DECISIONS, _BY_ACCOUNT),
    Order: (topic.ORDERS, _BY_ACCOUNT),
    CancelOrder: (topic.ORDERS, _BY_ACCOUNT),
    OrdersSent: (topic.ORDERS, _BY_ACCOUNT),
    ControlCommand: (topic.CONTROL, _BY_ACCOUNT),
    LimitCommand: (topic.CONTROL, _BY_ACCOUNT),
    OrderEvent: (topic.ORDER_EVENTS, _BY_ACCOUNT),
    OrderEventsThrough: (topic.ORDER_EVENTS, _BY_ACCOUNT),
    Fill: (topic.FILLS, _BY_ACCOUNT),
    FillsThrough: (topic.FILLS, _BY_ACCOUNT),
    Position: (topic.POSITIONS, _BY_ACCOUNT),
    PnlSnapshot: (topic.PNL, _BY_ACCOUNT),
    DecodeFailure: (topic.DLQ, lambda event: event.topic),  # type: ignore[attr-defined]
    DriftDetected: (topic.DRIFT, _BY_INSTRUMENT),
    TradingStateChanged: (topic.RISK_EVENTS, _BY_ACCOUNT),
    RiskMetric: (topic.RISK_METRICS, _BY_ACCOUNT),
    Alert: (topic.ALERTS, lambda event: event.name),  # type: ignore[attr-defined]
    AuditEvent: (topic.AUDIT, lambda event: event.subject),  # type: ignore[attr-defined]
    ModelCommand: (topic.MODEL_CONTROL, lambda event: event.instrument or "all"),  # type: ignore[attr-defined]
    ModelMetrics: (topic.MODEL_METRICS, _BY_INSTRUMENT),
    ModelVersion: (topic.MODEL_VERSIONS, _BY_INSTRUMENT),
    ModelCheckpoint: (topic.MODEL_CHECKPOINTS, _BY_INSTRUMENT),
}


# Rows per columnar record: 1,000 feature rows of 14 values encode to ~0.3 MB, well
# under the 1 MB a record may hold (`connectors.codec.MAX_EVENT_RECORD_BYTES`).
MAX_BATCH_ROWS = 1_000

_FEATURE_COLUMNS = attrgetter("tick_id", "values", "ts_event", "ts_init")
_PREDICTION_COLUMNS = attrgetter(
    "tick_id",
    "model",
    "horizon_ns",
    "probability_up",
    "expected_return",
    "label",
    "realized_return",
    "error",
    "version",
    "ts_event",
    "ts_init",
)


def feature_batches(instrument: str, vectors: Sequence[FeatureVector]) -> list[FeatureBatch]:
    """`vectors` of `instrument` as columnar records, in order: a new record whenever
    the feature names change or `MAX_BATCH_ROWS` is reached.

    >>> v = FeatureVector(tick_id="t", instrument="X", values={"a": 1.0}, ts_event=5, ts_init=5)
    >>> [(b.names, b.tick_ids, b.values) for b in feature_batches("X", [v, v])]
    [(('a',), ('t', 't'), ((1.0,), (1.0,)))]
    """
    batches: list[FeatureBatch] = []
    run: list[FeatureVector] = []
    names: tuple[str, ...] = ()
    for vector in vectors:
        keys = tuple(vector.values)
        if run and (keys != names or len(run) >= MAX_BATCH_ROWS):
            batches.append(_feature_batch(instrument, names, run))
            run = []
        names = keys
        run.append(vector)
    if run:
        batches.append(_feature_batch(instrument, names, run))
    return batches


def _feature_batch(
    instrument: str, names: tuple[str, ...], run: list[FeatureVector]
) -> FeatureBatch:
    tick_ids, values, ts_events, ts_inits = zip(*map(_FEATURE_COLUMNS, run), strict=True)
    return FeatureBatch(
        instrument=instrument,
        names=names,
        tick_ids=tick_ids,
        values=tuple(tuple(row.values()) for row in values),
        ts_events=ts_events,
        ts_inits=ts_inits,
        ts_event=max(ts_events),
        ts_init=max(ts_inits),
    )


def prediction_batches(instrument: str, predictions: Sequence[Prediction]) -> list[PredictionBatch]:
    """`predictions` of `instrument` as columnar records of at most `MAX_BATCH_ROWS`, in order.

    >>> p = Prediction(tick_id="t", instrument="X", model="m", horizon_ns=1,
    ...                probability_up=0.5, ts_event=5, ts_init=6)
    >>> [(b.tick_ids, b.labels, b.ts_init) for b in prediction_batches("X", [p])]
    [(('t',), (None,), 6)]
    """
    batches = []
    for start in range(0, len(predictions), MAX_BATCH_ROWS):
        chunk = predictions[start : start + MAX_BATCH_ROWS]
        (
            tick_ids,
            models,
            horizons_ns,
            probabilities_up,
            expected_returns,
            labels,
            realized_returns,
            errors,
            versions,
            ts_events,
            ts_inits,
        ) = zip(*map(_PREDICTION_COLUMNS, chunk), strict=True)
        batches.append(
            PredictionBatch(
                instrument=instrument,
                tick_ids=tick_ids,
                models=models,
                horizons_ns=horizons_ns,
                probabilities_up=probabilities_up,
                expected_returns=expected_returns,
                labels=labels,
                realized_returns=realized_returns,
                errors=errors,
                versions=versions,
                ts_events=ts_events,
                ts_inits=ts_inits,
                ts_event=max(ts_events),
                ts_init=max(ts_inits),
            )
        )
    return batches


_BATCHED: dict[type, Callable[[str, list[object]], Sequence[object]]] = {
    FeatureVector: feature_batches,  # type: ignore[dict-item]
    Prediction: prediction_batches,  # type: ignore[dict-item]
}


def to_outbound(prefix: str) -> Callable[[list[object]], list[tuple[str, OutboundRecord]]]:
    """Return a batch mapper turning events into records keyed by their topic.

    Feature vectors and predictions are grouped by instrument (in their order within
    the batch) into columnar records, after the batch's other records.
    """
    routes = {kind: (prefix + name, key) for kind, (name, key) in ROUTES.items()}
    batched = _BATCHED

    def route(events: list[object]) -> list[tuple[str, OutboundRecord]]:
        records = []
        grouped: dict[tuple[type, str], list[object]] = {}
        for event in events:
            kind = type(event)
            if kind in batched:
                group_key = (kind, event.instrument)  # type: ignore[attr-defined]
                group = grouped.get(group_key)
                if group is None:
                    group = grouped[group_key] = []
                group.append(event)
                continue
            name, key = routes[kind]
            records.append((name, OutboundRecord(name, key(event).encode(), encode(event))))
        for (kind, instrument), group in grouped.items():
            name = routes[kind][0]
            for batch in batched[kind](instrument, group):
                records.append((name, OutboundRecord(name, instrument.encode(), encode(batch))))
        return records

    return route
