"""Where each event goes in Kafka: topic and key (DESIGN.md §3)."""

from __future__ import annotations

from collections.abc import Callable

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


def to_outbound(prefix: str) -> Callable[[list[object]], list[tuple[str, OutboundRecord]]]:
    """Return a batch mapper turning events into records keyed by their topic."""
    routes = {kind: (prefix + name, key) for kind, (name, key) in ROUTES.items()}

    def route(events: list[object]) -> list[tuple[str, OutboundRecord]]:
        records = []
        for event in events:
            name, key = routes[type(event)]
            records.append((name, OutboundRecord(name, key(event).encode(), encode(event))))
        return records

    return route
