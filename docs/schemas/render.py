"""Write the JSON Schema of every Kafka topic to docs/schemas/<topic>.schema.json.

The schemas are the topic contracts of docs/topics.md. Output topics are derived from the
domain dataclasses our flows encode (`connectors.codec.encode`: Decimals as strings,
enums as their values, every field present); `md.ticks`, the one topic outside producers
write, is written by hand in `TICK_SCHEMA` from the decoder's rules
(`connectors.codec.tick_from_object`). Tests validate real encoded messages against the
committed files and check they equal this script's output. Regenerate after changing a
domain type:

    python docs/schemas/render.py
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import fields, is_dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

from connectors import topic
from risk import domain as d

HERE = Path(__file__).resolve().parent
DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Python Decimal text: plain ("12.500000000") or, for zero and tiny values, exponent form
# ("0E-9" is zero quantised to 9 places). Parse it with a decimal type, never a float.
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?(E[-+]?[0-9]+)?$"

# Each topic: what its records are keyed by, and the record types written to it.
TOPIC_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    topic.CONTROL: ("account", (d.ControlCommand, d.LimitCommand)),
    topic.ORDERS: ("account", (d.Order, d.CancelOrder, d.OrdersSent)),
    topic.ORDER_EVENTS: ("account", (d.OrderEvent, d.OrderEventsThrough)),
    topic.FILLS: ("account", (d.Fill, d.FillsThrough)),
    topic.DLQ: ("topic the failed record came from", (d.DecodeFailure,)),
    topic.BARS: ("instrument", (d.Bar,)),
    topic.FEATURES: ("instrument", (d.FeatureVector, d.FeatureBatch)),
    topic.PREDICTIONS: ("instrument", (d.Prediction, d.PredictionBatch)),
    topic.SIGNALS: ("instrument", (d.Signal,)),
    topic.DECISIONS: ("account", (d.Approved, d.Denied)),
    topic.POSITIONS: ("account", (d.Position,)),
    topic.PNL: ("account", (d.PnlSnapshot,)),
    topic.DRIFT: ("instrument", (d.DriftDetected,)),
    topic.RISK_EVENTS: ("account", (d.TradingStateChanged,)),
    topic.RISK_METRICS: ("account", (d.RiskMetric,)),
    topic.ALERTS: ("alert name", (d.Alert,)),
    topic.AUDIT: ("subject", (d.AuditEvent,)),
    topic.COMMAND_JOURNAL: ("command_id", (d.AuditEvent,)),
    topic.MODEL_CONTROL: ("instrument, or `all`", (d.ModelCommand,)),
    topic.MODEL_METRICS: ("instrument", (d.ModelMetrics,)),
    topic.MODEL_VERSIONS: ("instrument", (d.ModelVersion,)),
    topic.MODEL_CHECKPOINTS: ("instrument", (d.ModelCheckpoint,)),
}

NS = "integer nanoseconds since the Unix epoch, UTC"
FIELD_NOTES = {
    "ts_event": f"when it happened at the source ({NS})",
    "ts_init": f"when this system made the record ({NS})",
    "through_ns": f"progress marker: everything up to this event time was sent ({NS})",
    "created_at": NS,
    "horizon_ns": "prediction horizon, nanoseconds",
    "instrument": "instrument id (symbol), e.g. AAPL",
    "account": "trading account id",
    "quantity": "quantity in units of the instrument (decimal string)",
    "price": "price in the instrument's currency, USD (decimal string)",
    "fee": "fee in USD (decimal string)",
    "tick_id": "deterministic id of the tick: blake2b of instrument, seq and ts_event",
    "client_order_id": "deterministic id: f(account, instrument, signal_id)",
    "signal_id": "deterministic id of the signal behind this record",
    "probability_up": "model probability that the price rises over the horizon, 0..1",
    "progress_id": "present only on progress markers (not history; not persisted)",
}

TICK_SCHEMA: dict[str, Any] = {
    "$schema": DRAFT,
    "$id": "md.ticks.schema.json",
    "title": "md.ticks: one market data tick",
    "description": (
        "Key: the instrument id as UTF-8 bytes. Value: one JSON object. A trade carries price "
        "and size; a quote carries bid and ask (price becomes the mid). NaN/Infinity are "
        "rejected; a record that fails validation goes to hfl.dlq, never into the models."
    ),
    "type": "object",
    "required": ["instrument", "seq", "ts_event", "ts_init"],
    "properties": {
        "instrument": {
            "type": "string",
            "minLength": 1,
            "description": "instrument id (symbol); must be one of trading.instruments",
        },
        "seq": {
            "type": "integer",
            "minimum": 0,
            "description": (
                "per-instrument sequence number, strictly increasing (gaps allowed; repeats "
                "and regressions are dead-lettered)"
            ),
        },
        "kind": {
            "enum": ["trade", "quote"],
            "default": "trade",
            "description": "trade (price, size) or quote (bid, ask)",
        },
        "price": {"type": "number", "exclusiveMinimum": 0, "description": "trade price, USD"},
        "size": {"type": "number", "minimum": 0, "description": "trade size, units"},
        "bid": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "best bid, USD"},
        "ask": {"type": ["number", "null"], "exclusiveMinimum": 0, "description": "best ask, USD"},
        "bid_size": {"type": ["number", "null"], "minimum": 0, "description": "units at bid"},
        "ask_size": {"type": ["number", "null"], "minimum": 0, "description": "units at ask"},
        "ts_event": {"type": "integer", "minimum": 0, "description": FIELD_NOTES["ts_event"]},
        "ts_init": {
            "type": "integer",
            "minimum": 0,
            "description": f"when the producer sent it ({NS})",
        },
    },
    "if": {"properties": {"kind": {"const": "quote"}}, "required": ["kind"]},
    "then": {
        "required": ["bid", "ask"],
        "properties": {"bid": {"type": "number"}, "ask": {"type": "number"}},
    },
    "else": {"required": ["price", "size"]},
}


def field_schema(kind: Any) -> dict[str, Any]:
    """JSON Schema of one field type as `connectors.codec.encode` writes it.

    >>> field_schema(int | None)
    {'type': ['integer', 'null']}
    >>> field_schema(Decimal)["type"]
    'string'
    """
    origin = typing.get_origin(kind)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        inner = field_schema(options[0])
        if "type" in inner and isinstance(inner["type"], str):
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin is typing.Literal:
        return {"const": typing.get_args(kind)[0]}
    if origin is dict:
        return {"type": "object", "additionalProperties": field_schema(typing.get_args(kind)[1])}
    if origin is tuple:
        return {"type": "array", "items": field_schema(typing.get_args(kind)[0])}
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return {"enum": [member.value for member in kind]}
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if kind in simple:
        return {"type": simple[kind]}
    if kind is Decimal:
        return {"type": "string", "pattern": DECIMAL_PATTERN}
    raise TypeError(f"no JSON Schema for {kind!r}")


def record_schema(cls: type) -> dict[str, Any]:
    """Schema of one record type: every field required, nothing else allowed."""
    assert is_dataclass(cls)
    hints = typing.get_type_hints(cls)
    properties = {}
    for f in fields(cls):
        schema = field_schema(hints[f.name])
        note = FIELD_NOTES.get(f.name) or (
            "integer nanoseconds" if f.name.endswith("_ns") else None
        )
        if note:
            schema["description"] = note
        properties[f.name] = schema
    return {
        "title": cls.__name__,
        "description": (cls.__doc__ or "").strip().splitlines()[0],
        "type": "object",
        "required": [f.name for f in fields(cls)],
        "properties": properties,
        "additionalProperties": False,
    }


def topic_schema(name: str) -> dict[str, Any]:
    """Schema of topic `name`: one record type, or oneOf its record types."""
    key, kinds = TOPIC_TYPES[name]
    head = {"$schema": DRAFT, "$id": f"{name}.schema.json"}
    description = f"Key: {key}. Value: one JSON object."
    if len(kinds) == 1:
        body = record_schema(kinds[0])
        return {
            **head,
            **body,
            "title": f"{name}: {body['title']}",
            "description": description + " " + body["description"],
        }
    return {
        **head,
        "title": f"{name}: " + " | ".join(kind.__name__ for kind in kinds),
        "description": description,
        "oneOf": [record_schema(kind) for kind in kinds],
    }


def render() -> dict[str, str]:
    """File name -> text of every schema file."""
    schemas = {topic.TICKS: TICK_SCHEMA} | {name: topic_schema(name) for name in TOPIC_TYPES}
    return {
        f"{name}.schema.json": json.dumps(schema, indent=2) + "\n"
        for name, schema in schemas.items()
    }


def main() -> None:
    """Write every schema next to this script."""
    for name, text in render().items():
        (HERE / name).write_text(text)


if __name__ == "__main__":
    main()
