"""Kafka topic names and their partition counts (DESIGN.md §1)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class TopicSpec:
    """A topic, how many partitions it gets, and what its records are keyed by."""

    name: str
    partitions: int
    key: str


TICKS = "md.ticks"
CONTROL = "hfl.control"
ORDERS = "hfl.orders"
ORDER_EVENTS = "hfl.order_events"
FILLS = "hfl.fills"
DLQ = "hfl.dlq"
BARS = "hfl.events.bars"
FEATURES = "hfl.events.features"
PREDICTIONS = "hfl.events.predictions"
SIGNALS = "hfl.events.signals"
DECISIONS = "hfl.events.decisions"
POSITIONS = "hfl.events.positions"
PNL = "hfl.events.pnl"
DRIFT = "hfl.events.drift"
RISK_EVENTS = "hfl.events.risk"
RISK_METRICS = "hfl.events.risk_metrics"
ALERTS = "hfl.alerts"
AUDIT = "hfl.audit"
COMMAND_JOURNAL = "hfl.command_journal"
GATE_JOURNAL = "hfl.gate_journal"
MODEL_CONTROL = "hfl.models.control"
MODEL_METRICS = "hfl.events.model_metrics"
MODEL_VERSIONS = "hfl.events.model_versions"
MODEL_CHECKPOINTS = "hfl.events.model_checkpoints"

# Event topics have one partition: the local broker's cost grows with the number of
# stored batches, and one flow writes them all anyway.
# md.ticks has one partition by default: the risk gate's cross-instrument limits
# (gross exposure) depend on the order in which instruments' signals arrive, and only
# a single partition gives the same order on every replay. Raise it for throughput
# once instruments are routed to independent gates.
ALL_TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(name=TICKS, partitions=1, key="instrument"),
    TopicSpec(name=CONTROL, partitions=1, key="account"),
    TopicSpec(name=ORDERS, partitions=1, key="account"),
    TopicSpec(name=ORDER_EVENTS, partitions=1, key="account"),
    TopicSpec(name=FILLS, partitions=1, key="account"),
    TopicSpec(name=DLQ, partitions=1, key="topic"),
    TopicSpec(name=BARS, partitions=1, key="instrument"),
    TopicSpec(name=FEATURES, partitions=1, key="instrument"),
    TopicSpec(name=PREDICTIONS, partitions=1, key="instrument"),
    TopicSpec(name=SIGNALS, partitions=1, key="instrument"),
    TopicSpec(name=DECISIONS, partitions=1, key="account"),
    TopicSpec(name=POSITIONS, partitions=1, key="account"),
    TopicSpec(name=PNL, partitions=1, key="account"),
    TopicSpec(name=DRIFT, partitions=1, key="instrument"),
    TopicSpec(name=RISK_EVENTS, partitions=1, key="account"),
    TopicSpec(name=RISK_METRICS, partitions=1, key="account"),
    TopicSpec(name=ALERTS, partitions=1, key="name"),
    TopicSpec(name=AUDIT, partitions=1, key="subject"),
    # Written only by the risk gate, synchronously; read only by a resuming gate.
    TopicSpec(name=COMMAND_JOURNAL, partitions=1, key="command_id"),
    # The order in which the risk gate consumed its inputs, per batch (same rules).
    TopicSpec(name=GATE_JOURNAL, partitions=1, key="account"),
    TopicSpec(name=MODEL_CONTROL, partitions=1, key="instrument"),
    TopicSpec(name=MODEL_METRICS, partitions=1, key="instrument"),
    TopicSpec(name=MODEL_VERSIONS, partitions=1, key="instrument"),
    TopicSpec(name=MODEL_CHECKPOINTS, partitions=1, key="instrument"),
)


def prefixed(prefix: str, name: str) -> str:
    """Return the topic name under an optional namespace prefix (tests, benchmarks)."""
    return f"{prefix}{name}"


# The bounded writers of each topic: a bounded reader of the topic finishes once each of
# them (those running in its run, `kafka.end_writers`) wrote its end-of-stream marker
# (`connectors.kafka.end`). Topics not named here (control, model control, the command
# journal) are written by operators or synchronously by the gate: a bounded reader
# reads them to their end at the moment its other inputs ended.
_TRADING_OUT = (
    ORDERS,
    BARS,
    FEATURES,
    PREDICTIONS,
    SIGNALS,
    DECISIONS,
    POSITIONS,
    PNL,
    DRIFT,
    RISK_EVENTS,
    RISK_METRICS,
    ALERTS,
    AUDIT,
    MODEL_METRICS,
    MODEL_VERSIONS,
    MODEL_CHECKPOINTS,
)
END_WRITERS: dict[str, tuple[str, ...]] = {
    TICKS: ("feed",),
    ORDER_EVENTS: ("gateway",),
    FILLS: ("gateway",),
    DLQ: ("trading", "gateway"),
    **{name: ("trading",) for name in _TRADING_OUT},
}
