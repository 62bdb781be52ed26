"""Domain types and identifiers shared by every layer (DESIGN.md §3)."""

from risk.domain.control import (
    Alert,
    AuditEvent,
    ControlCommand,
    DecodeFailure,
    TradingStateChanged,
)
from risk.domain.decision import Approved, Denied, RiskDecision
from risk.domain.enums import (
    AlertSeverity,
    ControlAction,
    DecodeReason,
    DenialReason,
    ModelAction,
    ModelRole,
    ModelScope,
    OrderEventKind,
    OrderType,
    Side,
    TickKind,
    TradingState,
)
from risk.domain.market import Bar, Tick
from risk.domain.model import (
    DriftDetected,
    FeatureVector,
    ModelCheckpoint,
    ModelCommand,
    ModelMetrics,
    ModelVersion,
    Prediction,
    Signal,
)
from risk.domain.order import CancelOrder, Fill, Order, OrderEvent, OrderIntent
from risk.domain.portfolio import PnlSnapshot, Position, RiskMetric

__all__ = [
    "Alert",
    "AlertSeverity",
    "Approved",
    "AuditEvent",
    "Bar",
    "CancelOrder",
    "ControlAction",
    "ControlCommand",
    "DecodeFailure",
    "DecodeReason",
    "DenialReason",
    "Denied",
    "DriftDetected",
    "FeatureVector",
    "Fill",
    "ModelAction",
    "ModelCheckpoint",
    "ModelCommand",
    "ModelMetrics",
    "ModelRole",
    "ModelScope",
    "ModelVersion",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderIntent",
    "OrderType",
    "PnlSnapshot",
    "Position",
    "Prediction",
    "RiskDecision",
    "RiskMetric",
    "Side",
    "Signal",
    "Tick",
    "TickKind",
    "TradingState",
    "TradingStateChanged",
]
