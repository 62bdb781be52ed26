"""The one orjson module: encode domain events, decode and validate inbound records.

Decoding never raises on bad input: it returns a `DecodeFailure` carrying a
`DecodeReason`, which the flows route to `hfl.dlq`.
"""

from __future__ import annotations

import math
from dataclasses import fields
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar

import orjson

from risk.domain import (
    CancelOrder,
    ControlCommand,
    DecodeFailure,
    DecodeReason,
    Fill,
    FillsThrough,
    LimitCommand,
    Order,
    OrderEvent,
    OrderEventsThrough,
    OrdersSent,
    Tick,
    TickKind,
)
from risk.domain.ids import record_id, tick_id

MAX_RECORD_BYTES = 64 * 1024
RAW_KEEP_BYTES = 4 * 1024

T = TypeVar("T")


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode(event: object) -> bytes:
    """Serialise a domain dataclass (or plain dict) to one JSON object.

    Decimals become strings so no precision is lost.

    >>> from decimal import Decimal
    >>> encode({"qty": Decimal("1.5")})
    b'{"qty":"1.5"}'
    """
    return orjson.dumps(event, default=_default)


def loads(raw: bytes | str) -> Any:
    """Parse JSON; raises `orjson.JSONDecodeError` on malformed input."""
    return orjson.loads(raw)


class Rejected(Exception):  # noqa: N818 - a verdict, not an error: it becomes a value
    """Internal signal that a record failed validation; becomes a DecodeFailure."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def failure(
    raw: bytes,
    reason: DecodeReason,
    detail: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    ts_init: int,
) -> DecodeFailure:
    """Build the dead letter for `raw` read at `topic`/`partition`/`offset`."""
    return DecodeFailure(
        failure_id=record_id(topic, partition, offset, ts_init),
        topic=topic,
        partition=partition,
        offset=offset,
        reason=reason,
        detail=detail,
        raw=raw[:RAW_KEEP_BYTES].decode("utf-8", errors="replace"),
        raw_size=len(raw),
        ts_init=ts_init,
    )


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse `raw` as one JSON object, enforcing the size limit."""
    if len(raw) > MAX_RECORD_BYTES:
        raise Rejected(DecodeReason.OVERSIZED, f"{len(raw)} bytes > {MAX_RECORD_BYTES}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # Some feeds write bare NaN/Infinity literals, which strict JSON (and orjson)
        # rejects; name the real problem rather than "malformed".
        if any(word in raw for word in _NON_FINITE_LITERALS):
            raise Rejected(DecodeReason.NON_FINITE, "non-finite number literal") from exc
        raise Rejected(DecodeReason.MALFORMED_JSON, str(exc)[:200]) from exc
    if not isinstance(obj, dict):
        raise Rejected(DecodeReason.NOT_AN_OBJECT, type(obj).__name__)
    return obj


def _required(obj: dict[str, Any], name: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise Rejected(DecodeReason.MISSING_FIELD, name) from None


def _int(obj: dict[str, Any], name: str) -> int:
    value = _required(obj, name)
    if type(value) is not int:
        raise Rejected(DecodeReason.WRONG_TYPE, f"{name} must be an integer")
    return value


def _float(obj: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = obj.get(name) if optional else _required(obj, name)
    if value is None and optional:
        return None
    if type(value) is str and value.lower() in _NON_FINITE_WORDS:
        raise Rejected(DecodeReason.NON_FINITE, f"{name}={value}")
    if type(value) not in (int, float):
        raise Rejected(DecodeReason.WRONG_TYPE, f"{name} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise Rejected(DecodeReason.NON_FINITE, f"{name}={value}")
    return number


_NON_FINITE_LITERALS = (b"NaN", b"Infinity")
_NON_FINITE_WORDS = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "-infinity"})


def _positive(obj: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = _float(obj, name, optional=optional)
    if value is not None and value <= 0.0:
        raise Rejected(DecodeReason.NON_POSITIVE_PRICE, f"{name}={value}")
    return value


def _size(obj: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = _float(obj, name, optional=optional)
    if value is not None and value < 0.0:
        raise Rejected(DecodeReason.NEGATIVE_SIZE, f"{name}={value}")
    return value


def _text(obj: dict[str, Any], name: str) -> str:
    value = _required(obj, name)
    if type(value) is not str or not value:
        raise Rejected(DecodeReason.WRONG_TYPE, f"{name} must be a non-empty string")
    return value


def tick_from_object(obj: dict[str, Any], instruments: frozenset[str] | None) -> Tick:
    """Validate a parsed tick object; raises `Rejected` with the first problem found.

    Non-finite numbers never pass: orjson rejects bare NaN/Infinity literals, and the
    strings "NaN"/"inf" that some feeds emit are caught here.
    """
    instrument = _text(obj, "instrument")
    if instruments is not None and instrument not in instruments:
        raise Rejected(DecodeReason.UNKNOWN_INSTRUMENT, instrument)
    seq = _int(obj, "seq")
    ts_event = _int(obj, "ts_event")
    ts_init = _int(obj, "ts_init")
    kind_text = obj.get("kind", TickKind.TRADE.value)
    try:
        kind = TickKind(kind_text)
    except ValueError:
        raise Rejected(DecodeReason.WRONG_TYPE, f"kind={kind_text!r}") from None
    bid = _positive(obj, "bid", optional=True)
    ask = _positive(obj, "ask", optional=True)
    bid_size = _size(obj, "bid_size", optional=True)
    ask_size = _size(obj, "ask_size", optional=True)
    if bid is not None and ask is not None and bid > ask:
        raise Rejected(DecodeReason.CROSSED_QUOTE, f"bid {bid} > ask {ask}")
    if kind is TickKind.QUOTE:
        if bid is None or ask is None:
            raise Rejected(DecodeReason.MISSING_FIELD, "quote needs bid and ask")
        price, size = (bid + ask) / 2.0, 0.0
    else:
        price = _positive(obj, "price")  # type: ignore[assignment]
        size = _size(obj, "size")  # type: ignore[assignment]
    return Tick(
        tick_id=tick_id(instrument, seq, ts_event),
        instrument=instrument,
        seq=seq,
        kind=kind,
        price=price,
        size=size,
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        ts_event=ts_event,
        ts_init=ts_init,
    )


def decode_tick(raw: bytes, instruments: frozenset[str] | None = None) -> Tick:
    """Parse and validate one tick record; raises `Rejected` on any problem."""
    return tick_from_object(parse_object(raw), instruments)


def check_sequence(last_seq: int | None, seq: int) -> DecodeReason | None:
    """Name the problem with `seq` following `last_seq` on one instrument, if any.

    Gaps are allowed (a feed may drop); repeats and regressions are not.

    >>> check_sequence(None, 5) is None, check_sequence(5, 7) is None
    (True, True)
    >>> check_sequence(5, 5).value, check_sequence(5, 4).value
    ('duplicate_sequence', 'backwards_sequence')
    """
    if last_seq is None or seq > last_seq:
        return None
    return DecodeReason.DUPLICATE_SEQUENCE if seq == last_seq else DecodeReason.BACKWARDS_SEQUENCE


def _convert(kind: Any, value: Any) -> Any:
    if value is None:
        return None
    if kind is Decimal:
        return Decimal(value)
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return kind(value)
    return value


def _field_types(cls: type) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    module = __import__(cls.__module__, fromlist=["*"])
    namespace = {**vars(module), "Decimal": Decimal}
    for field in fields(cls):
        annotation = field.type if isinstance(field.type, str) else field.type.__name__
        base = annotation.split("|")[0].strip()
        hints[field.name] = eval(base, namespace)
    return hints


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def decode_event(cls: type[T], raw: bytes) -> T:
    """Decode a record our own flows wrote (orders, fills, control) into `cls`.

    Raises `Rejected` when the record is malformed or lacks a field.
    """
    return event_from_object(cls, parse_object(raw))


def event_from_object(cls: type[T], obj: dict[str, Any]) -> T:
    """Build `cls` from a parsed record object; raises `Rejected` when it does not fit."""
    types = _FIELD_TYPES.get(cls)
    if types is None:
        types = _FIELD_TYPES[cls] = _field_types(cls)
    try:
        values = {name: _convert(kind, obj[name]) for name, kind in types.items() if name in obj}
        return cls(**values)
    except (TypeError, ValueError, InvalidOperation) as exc:
        raise Rejected(DecodeReason.WRONG_TYPE, f"{cls.__name__}: {exc}") from exc


def decode_order_request(raw: bytes) -> Order | CancelOrder | OrdersSent:
    """Decode a record of `hfl.orders`: a cancel request (it has `cancel_id`), the gate's
    progress (`progress_id`) or an order."""
    obj = parse_object(raw)
    if "cancel_id" in obj:
        return event_from_object(CancelOrder, obj)
    if "progress_id" in obj:
        return event_from_object(OrdersSent, obj)
    return event_from_object(Order, obj)


def decode_control(raw: bytes) -> ControlCommand | LimitCommand:
    """Decode a record of `hfl.control`: a limit change (it has `max_position`) or a
    kill, reduce or resume command."""
    obj = parse_object(raw)
    if "max_position" in obj:
        return event_from_object(LimitCommand, obj)
    return event_from_object(ControlCommand, obj)


def decode_fill_report(raw: bytes) -> Fill | FillsThrough:
    """Decode a record of `hfl.fills`: the gateway's progress marker (`progress_id`) or a fill."""
    obj = parse_object(raw)
    if "progress_id" in obj:
        return event_from_object(FillsThrough, obj)
    return event_from_object(Fill, obj)


def decode_order_report(raw: bytes) -> OrderEvent | OrderEventsThrough:
    """Decode a record of `hfl.order_events`: the gateway's progress marker or an event."""
    obj = parse_object(raw)
    if "progress_id" in obj:
        return event_from_object(OrderEventsThrough, obj)
    return event_from_object(OrderEvent, obj)


def is_progress_marker(record: dict[str, Any]) -> bool:
    """Tell flow-control progress records (`OrdersSent`, `FillsThrough`) from history.

    They say how far a flow got, which depends on batching, so they are not persisted.

    >>> is_progress_marker({"progress_id": "p"}), is_progress_marker({"fill_id": "f"})
    (True, False)
    """
    return "progress_id" in record


DECODABLE = (
    Order,
    OrderEvent,
    Fill,
    ControlCommand,
    LimitCommand,
    CancelOrder,
    OrdersSent,
    FillsThrough,
    OrderEventsThrough,
)
