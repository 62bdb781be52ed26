"""Where each event goes in Kafka: topic and key (DESIGN.md §3)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any

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
    RiskMetric,
    Signal,
    TradingStateChanged,
)

_BY_INSTRUMENT: Callable[[object], str] = lambda event: event.instrument  # type: ignore[attr-defined]  # noqa: E731
_BY_ACCOUNT: Callable[[object], str] = lambda event: event.account  # type: ignore[attr-defined]  # noqa: E731

ROUTES: dict[type, tuple[str, Callable[[object], str]]] = {
    Bar: (topic.BARS, _BY_INSTRUMENT),
    FeatureVector: (topic.FEATURES, _BY_INSTRUMENT),
    Prediction: (topic.PREDICTIONS, _BY_INSTRUMENT),
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


def as_mapping(kind: type) -> Callable[[Any], dict[str, Any]]:
    """A function giving an event of dataclass `kind` as a dict of its fields, in order.

    orjson serialises a slotted dataclass through a slow generic path (about 11 µs
    for a `Prediction` on this machine, against 1.5 µs for the same fields as a
    dict), and the output path encodes three to four events per tick. The dict has
    the keys orjson writes for the dataclass (every field, in definition order,
    none with a leading underscore), so the bytes are the same (tested).
    """
    names = tuple(f.name for f in dataclasses.fields(kind) if not f.name.startswith("_"))
    values = attrgetter(*names)
    if len(names) == 1:
        return lambda event: {names[0]: values(event)}
    return lambda event: dict(zip(names, values(event), strict=True))


def to_outbound(prefix: str) -> Callable[[list[object]], list[tuple[str, OutboundRecord]]]:
    """Return a batch mapper turning events into records keyed by their topic."""
    routes = {kind: (prefix + name, key, as_mapping(kind)) for kind, (name, key) in ROUTES.items()}

    def route(events: list[object]) -> list[tuple[str, OutboundRecord]]:
        records = []
        for event in events:
            name, key, fields = routes[type(event)]
            records.append((name, OutboundRecord(name, key(event).encode(), encode(fields(event)))))
        return records

    return route
