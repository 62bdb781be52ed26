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


# --- Which worker runs which key: explicit, balanced assignment -------------------------
#
# Bytewax 0.21 sends a keyed item to worker `hash(key) % workers`, where `hash` is Rust's
# `DefaultHasher` (SipHash-1-3 with zero keys) over the key string (`StateKey(String)`:
# its bytes, then 0xff) — `stateful_batch` in bytewax's src/operators.rs, `PartitionFn`
# in src/timely.rs. The trading flow does not leave the spread of instruments to that
# hash (five instruments on two workers can land four on one): it picks each key so the
# hash puts it on the worker it assigns (`assign_keys`). A test checks this function
# against where Bytewax really runs each key.

_MASK = 0xFFFF_FFFF_FFFF_FFFF


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK


def siphash13(data: bytes) -> int:
    """SipHash-1-3 of `data` with zero keys: Rust's `std::hash::DefaultHasher`."""
    v0, v1, v2, v3 = 0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573

    def rounds(n: int) -> None:
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & _MASK
            v1 = _rotl(v1, 13) ^ v0
            v0 = _rotl(v0, 32)
            v2 = (v2 + v3) & _MASK
            v3 = _rotl(v3, 16) ^ v2
            v0 = (v0 + v3) & _MASK
            v3 = _rotl(v3, 21) ^ v0
            v2 = (v2 + v1) & _MASK
            v1 = _rotl(v1, 17) ^ v2
            v2 = _rotl(v2, 32)

    size = len(data)
    end = size - size % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i : i + 8], "little")
        v3 ^= m
        rounds(1)
        v0 ^= m
    last = ((size & 0xFF) << 56) | int.from_bytes(data[end:], "little")
    v3 ^= last
    rounds(1)
    v0 ^= last
    v2 ^= 0xFF
    rounds(3)
    return v0 ^ v1 ^ v2 ^ v3


def worker_of(key: str, workers: int) -> int:
    """The worker (0 … workers-1) on which Bytewax runs the state of `key`.

    >>> worker_of("AAPL", 1)
    0
    """
    return siphash13(key.encode() + b"\xff") % workers


def key_for(name: str, worker: int, workers: int) -> str:
    """A state key for `name` that Bytewax runs on `worker`: `name` itself if it already
    lands there, else the first `name~n` that does (n = 1, 2, …)."""
    if worker_of(name, workers) == worker:
        return name
    n = 1
    while worker_of(f"{name}~{n}", workers) != worker:
        n += 1
    return f"{name}~{n}"


def assign_keys(names: tuple[str, ...] | frozenset[str], workers: int) -> dict[str, str]:
    """Balanced, explicit: the i-th of the sorted `names` runs on worker `i % workers`.

    Returns each name's state key. With one worker every key is the name itself, so a
    one-process flow keys (and stores) its state exactly as before.

    >>> assign_keys(("B", "A"), 1)
    {'A': 'A', 'B': 'B'}
    """
    return {name: key_for(name, i % workers, workers) for i, name in enumerate(sorted(names))}
