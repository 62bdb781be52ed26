"""Map Kafka topics to tables and decoded JSON records to column-oriented batches.

Records arrive as the dicts `connectors.codec.encode` produced: Decimals as strings,
enums as their string values, timestamps as integer nanoseconds, None as null.
Timestamps go to ``DateTime64(9, 'UTC')`` columns as those integers, untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from operator import itemgetter
from typing import Any

from connectors import topic
from risk.domain.error import ConfigError

TABLE_BY_TOPIC: dict[str, str] = {
    topic.TICKS: "ticks",
    topic.BARS: "bars",
    topic.FEATURES: "features",
    topic.PREDICTIONS: "predictions",
    topic.SIGNALS: "signals",
    topic.DECISIONS: "risk_decisions",
    topic.ORDERS: "orders",
    topic.ORDER_EVENTS: "order_events",
    topic.FILLS: "fills",
    topic.POSITIONS: "positions",
    topic.PNL: "pnl",
    topic.DLQ: "dlq",
    topic.DRIFT: "drift_events",
    topic.RISK_EVENTS: "risk_events",
    topic.RISK_METRICS: "risk_metrics",
    topic.ALERTS: "alerts",
    topic.AUDIT: "audit",
    topic.MODEL_METRICS: "model_metrics",
    topic.MODEL_VERSIONS: "model_versions",
    topic.MODEL_CHECKPOINTS: "model_checkpoints",
}

Rows = list[dict[str, Any]]
_Column = Callable[[Rows], list[Any]]


def _value(name: str) -> _Column:
    get = itemgetter(name)
    return lambda rows: list(map(get, rows))


def _value_or(name: str, default: object) -> _Column:
    # For fields one record type of a shared table lacks (decisions) or may omit.
    return lambda rows: [row.get(name, default) for row in rows]


def _decimal(name: str) -> _Column:
    return lambda rows: [Decimal(row[name]) for row in rows]


def _optional_decimal(name: str) -> _Column:
    return lambda rows: [None if (v := row.get(name)) is None else Decimal(v) for row in rows]


def _spec(
    values: str = "",
    optional: str = "",
    decimals: str = "",
    optional_decimals: str = "",
    **defaults: object,
) -> dict[str, _Column]:
    """Build a table's column extractors from space-separated field names per kind."""
    columns: dict[str, _Column] = {}
    for name in values.split():
        columns[name] = _value(name)
    for name in optional.split():
        columns[name] = _value_or(name, None)
    for name in decimals.split():
        columns[name] = _decimal(name)
    for name in optional_decimals.split():
        columns[name] = _optional_decimal(name)
    for name, default in defaults.items():
        columns[name] = _value_or(name, default)
    return columns


_TS = "ts_event ts_init"

COLUMNS: dict[str, dict[str, _Column]] = {
    "ticks": _spec(
        f"tick_id instrument seq kind price size {_TS}",
        optional="bid ask bid_size ask_size venue_trade_id venue_seq",
        venue="",
        flags=(),
    ),
    "bars": _spec(f"instrument interval_s open high low close volume vwap trade_count {_TS}"),
    "history_bars": _spec(f"venue instrument interval_s open high low close volume {_TS}"),
    "features": _spec(f"tick_id instrument values {_TS}"),
    "predictions": _spec(
        f"tick_id instrument model horizon_ns probability_up {_TS}",
        optional="label expected_return realized_return error",
        version=0,
    ),
    "signals": _spec(
        f"signal_id tick_id instrument model direction probability_up reference_price {_TS}"
    ),
    "risk_decisions": _spec(
        f"signal_id account instrument side outcome {_TS}",
        optional="reference_price",
        decimals="quantity",
        reason="",
        detail="",
        client_order_id="",
    ),
    "orders": _spec(
        f"client_order_id signal_id account instrument side order_type {_TS}",
        decimals="quantity",
        optional_decimals="limit_price",
    ),
    "order_events": _spec(
        f"event_id client_order_id account instrument kind {_TS}",
        decimals="filled_quantity leaves_quantity",
        reason="",
    ),
    "fills": _spec(
        f"fill_id client_order_id account instrument side tick_id {_TS}",
        decimals="quantity price fee leaves_quantity",
    ),
    "positions": _spec(f"account instrument {_TS}", decimals="quantity average_price realized_pnl"),
    "pnl": _spec(
        f"account {_TS}",
        decimals="cash realized_pnl unrealized_pnl fees equity gross_exposure net_exposure",
    ),
    "dlq": _spec("failure_id topic partition offset reason detail raw raw_size ts_init"),
    "drift_events": _spec(f"drift_id instrument model detector stream value {_TS}"),
    "risk_events": _spec(f"event_id account instrument state previous trigger reason {_TS}"),
    "alerts": _spec(f"alert_id name severity source subject message {_TS}"),
    "audit": _spec(f"audit_id actor action subject reason detail {_TS}"),
    "model_metrics": _spec(
        "metrics_id instrument model version_id role n_labelled n_pending evicted values"
        f" memory_bytes detail {_TS}"
    ),
    "model_versions": _spec(
        "version_id instrument model factory params params_hash code_version parent"
        " created_at ts_init"
    ),
    "model_checkpoints": _spec(
        "checkpoint_id instrument model models version_id params_hash code_version seq tick_id"
        f" size_bytes sha256 blob {_TS}"
    ),
    "risk_metrics": _spec(f"metrics_id account metric value limit_value {_TS}"),
    "order_cancels": _spec(f"cancel_id client_order_id account instrument reason {_TS}"),
    "runs": _spec("run_id started_at config code_version status version", optional="finished_at"),
}


def table_for_topic(name: str, prefix: str = "") -> str:
    """Return the table that persists topic `name` (optionally namespaced by `prefix`).

    >>> table_for_topic("t1.hfl.fills", prefix="t1.")
    'fills'
    """
    try:
        return TABLE_BY_TOPIC[name.removeprefix(prefix)]
    except KeyError:
        raise ConfigError(f"topic {name!r} has no table") from None


def table_for_record(name: str, row: dict[str, Any], prefix: str = "") -> str:
    """Return the table of one record: cancel requests share `hfl.orders` with orders.

    >>> table_for_record("hfl.orders", {"cancel_id": "c1"}), table_for_record("hfl.orders", {})
    ('order_cancels', 'orders')
    """
    table = table_for_topic(name, prefix)
    return "order_cancels" if table == "orders" and "cancel_id" in row else table


def columns_for(table: str, rows: Rows) -> tuple[list[str], list[list[Any]]]:
    """Turn decoded records into column names and column-oriented values for `table`.

    One pass per column keeps the per-row Python work to a list-comprehension step.
    A record missing a required field raises KeyError: our own flows wrote it, so
    that is a broken contract, not bad input.

    >>> names, data = columns_for("positions", [{"account": "a", "instrument": "X",
    ...     "quantity": "2.5", "average_price": "10", "realized_pnl": "0",
    ...     "ts_event": 1, "ts_init": 2}])
    >>> names
    ['account', 'instrument', 'ts_event', 'ts_init', 'quantity', 'average_price', 'realized_pnl']
    >>> data[4]
    [Decimal('2.5')]
    """
    try:
        spec = COLUMNS[table]
    except KeyError:
        raise ConfigError(f"no column mapping for table {table!r}") from None
    return list(spec), [extract(rows) for extract in spec.values()]
