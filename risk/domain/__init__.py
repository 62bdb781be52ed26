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
    ModelCommand,
    ModelMetrics,
    ModelVersion,
    Prediction,
    Signal,
)
from risk.domain.order import (
    CancelOrder,
    Fill,
    FillsThrough,
    Order,
    OrderEvent,
    OrderIntent,
    OrdersSent,
)
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
    "FillsThrough",
    "ModelAction",
    "ModelCommand",
    "ModelMetrics",
    "ModelRole",
    "ModelVersion",
    "Order",
    "OrderEvent",
    "OrderEventKind",
    "OrderIntent",
    "OrderType",
    "OrdersSent",
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
