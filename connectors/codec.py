"""The one orjson module: encode domain events, decode and validate inbound records.

Every `decode_*` function is total: for any input bytes it returns the decoded value
or a `DecodeFailure` naming a `DecodeReason`, which the flows route to `hfl.dlq`. It
never raises for input. Typing is strict, as the encoder writes it: an integer field
takes a JSON integer only (not a bool, a float or a string) within its column's range,
a float a finite JSON number, a bool `true`/`false` only, a Decimal a decimal string
(or an integer) of at most 29 integer digits, an enum one of its values. Unknown keys
are ignored, so a newer writer may add a field; a missing field without a default is
`missing_field`.

Other modules that need JSON (files, HTTP bodies, reports) use `dumps`/`loads`/
`loads_object` here: nothing else imports orjson.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol, TypeVar

import orjson

from connectors import topic
from risk.domain import (
    Alert,
    Approved,
    AuditEvent,
    Bar,
    CancelOrder,
    ControlCommand,
    DecodeFailure,
    DecodeReason,
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
    Tick,
    TickKind,
    TradingStateChanged,
)
from risk.domain.ids import record_id, tick_id

MAX_RECORD_BYTES = 64 * 1024
# Our flows' own event records (a model checkpoint is tens of kB) may be as large as a
# Kafka message (librdkafka's `message.max.bytes` default); outside input stays small.
MAX_EVENT_RECORD_BYTES = 1_000_000
RAW_KEEP_BYTES = 4 * 1024

T = TypeVar("T")

JSONDecodeError = orjson.JSONDecodeError
"""What `loads` raises on malformed JSON (a `ValueError`)."""

# Integer columns: DateTime64(9) and (U)Int64 hold at most 2**63 - 1 nanoseconds or
# counts; the few narrower or signed columns are listed. A value outside its column's
# range would make the persist flow's insert fail on every retry.
_INT64_MAX = 2**63 - 1
_NON_NEGATIVE = (0, _INT64_MAX)
_INT_RANGES: dict[str, tuple[int, int]] = {
    "offset": (-(2**63), _INT64_MAX),
    "partition": (0, 2**31 - 1),
    "interval_s": (0, 2**32 - 1),
    "direction": (-1, 1),
    "label": (0, 1),
    "version": (0, 255),
}
# Fields that identify or attribute a record: an empty one is as good as missing.
_NON_EMPTY = frozenset(
    {
        "account",
        "alert_id",
        "audit_id",
        "cancel_id",
        "client_order_id",
        "command_id",
        "event_id",
        "failure_id",
        "fill_id",
        "progress_id",
    }
)
# Commands carry who gave them; the audit trail needs a name.
_NON_EMPTY_BY_TYPE: dict[type, frozenset[str]] = {
    ControlCommand: _NON_EMPTY | {"actor"},
    LimitCommand: _NON_EMPTY | {"actor", "instrument"},
    ModelCommand: _NON_EMPTY | {"actor", "command_id"},
}
# Amounts that must be above zero, or the core refuses them by raising: a limit
# command with max_position <= 0 would crash the risk gate (`risk.limit`).
_POSITIVE_BY_TYPE: dict[type, frozenset[str]] = {LimitCommand: frozenset({"max_position"})}
# Decimal(38, 9) columns: at most 29 digits before the point.
_DECIMAL_MAX_ADJUSTED = 28
_DECIMAL_MIN_EXPONENT = -18


class RecordOrigin(Protocol):
    """Where a record was read: a `KafkaRecord` is one. Used to address dead letters."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def timestamp_ns(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Unread:
    """The origin of bytes that came from nowhere in particular (tests, fuzzing, files)."""

    topic: str = ""
    partition: int = 0
    offset: int = -1
    timestamp_ns: int = 0


NOWHERE = Unread()


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


def dumps(
    value: object, *, indent: bool = False, sort_keys: bool = False, lenient: bool = False
) -> bytes:
    """Serialise `value` to JSON bytes (Decimals as strings), optionally indented/sorted.

    For files, reports, logs and HTTP bodies; domain events use `encode`. `lenient`
    writes any other unknown type as its `str` (query results, log fields) instead of
    raising `TypeError`.

    >>> dumps({"b": 1, "a": [True, None]}, sort_keys=True)
    b'{"a":[true,null],"b":1}'
    >>> dumps({"at": range(2)}, lenient=True)
    b'{"at":"range(0, 2)"}'
    """
    option = (orjson.OPT_INDENT_2 if indent else 0) | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    return orjson.dumps(value, default=_lenient if lenient else _default, option=option)


def _lenient(value: object) -> object:
    return str(value)


def loads(raw: bytes | bytearray | memoryview | str) -> Any:
    """Parse trusted JSON (our own files and reports); raises `JSONDecodeError` if malformed.

    Records from Kafka go through a `decode_*` function instead, which never raises.

    >>> loads(b'{"a": [1, 2.5]}')
    {'a': [1, 2.5]}
    """
    return orjson.loads(raw)


def loads_object(raw: bytes | bytearray | memoryview | str) -> dict[str, Any] | None:
    """Parse JSON expected to be one object; None when it is malformed or not an object.

    For untrusted request bodies and files that may be damaged.

    >>> loads_object(b'{"a": 1}'), loads_object(b"[1]"), loads_object(b"nope")
    ({'a': 1}, None, None)
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class _Invalid(Exception):  # noqa: N818 - internal: caught in `_decoded`, never escapes
    """A record failed validation; `_decoded` turns it into a `DecodeFailure`."""

    def __init__(self, reason: DecodeReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def failure(
    raw: bytes | None,
    reason: DecodeReason,
    detail: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    ts_init: int,
) -> DecodeFailure:
    """Build the dead letter for `raw` read at `topic`/`partition`/`offset`."""
    data = raw if isinstance(raw, bytes | bytearray) else b""
    return DecodeFailure(
        failure_id=record_id(topic, partition, offset, ts_init),
        topic=topic,
        partition=partition,
        offset=offset,
        reason=reason,
        detail=detail[:1000],
        raw=bytes(data[:RAW_KEEP_BYTES]).decode("utf-8", errors="replace"),
        raw_size=len(data),
        ts_init=ts_init,
    )


def dead_letter(
    raw: bytes | None, reason: DecodeReason, detail: str, origin: RecordOrigin = NOWHERE
) -> DecodeFailure:
    """The dead letter for `raw` read at `origin` (a `KafkaRecord`), failing for `reason`."""
    return failure(
        raw,
        reason,
        detail,
        topic=origin.topic,
        partition=origin.partition,
        offset=origin.offset,
        ts_init=origin.timestamp_ns,
    )


def _decoded(
    build: Callable[[dict[str, Any]], T],
    raw: bytes | None,
    origin: RecordOrigin,
    max_bytes: int = MAX_RECORD_BYTES,
) -> T | DecodeFailure:
    """Parse `raw` and `build` a value from it; any problem becomes a dead letter.

    The one place validation problems are caught. Besides `_Invalid`, it catches the
    errors a builder may hit on hostile input (a huge number, a deep structure), so a
    gap in a field check is still a dead letter, never a crashed flow.
    """
    try:
        return build(_parse_object(raw, max_bytes))
    except _Invalid as invalid:
        return dead_letter(raw, invalid.reason, invalid.detail, origin)
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        AttributeError,
        ArithmeticError,
        RecursionError,
        UnicodeError,
    ) as exc:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        return dead_letter(raw, DecodeReason.WRONG_TYPE, detail, origin)


def _parse_object(raw: bytes | None, max_bytes: int = MAX_RECORD_BYTES) -> dict[str, Any]:
    """Parse `raw` as one JSON object of at most `max_bytes`."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise _Invalid(DecodeReason.MALFORMED_JSON, f"no bytes ({type(raw).__name__})")
    if len(raw) > max_bytes:
        raise _Invalid(DecodeReason.OVERSIZED, f"{len(raw)} bytes > {max_bytes}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # Some feeds write bare NaN/Infinity literals, which strict JSON (and orjson)
        # rejects; name the real problem rather than "malformed". A number too large
        # for a double parses as infinity: the same problem.
        if any(word in raw for word in _NON_FINITE_LITERALS) or "infinity" in str(exc):
            raise _Invalid(DecodeReason.NON_FINITE, "non-finite number literal") from None
        raise _Invalid(DecodeReason.MALFORMED_JSON, str(exc)[:200]) from None
    if not isinstance(obj, dict):
        raise _Invalid(DecodeReason.NOT_AN_OBJECT, type(obj).__name__)
    return obj


def parse_object(raw: bytes) -> dict[str, Any] | DecodeFailure:
    """Parse `raw` as one JSON object within the size limit, or say why it is not one."""
    return _decoded(lambda obj: obj, raw, NOWHERE)


# ---------------------------------------------------------------------------------------
# Field checks: each returns the field's value as the domain type holds it, or raises
# `_Invalid`.

_NON_FINITE_LITERALS = (b"NaN", b"Infinity")
_NON_FINITE_WORDS = frozenset({"nan", "inf", "+inf", "-inf", "infinity", "-infinity"})
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)

_Check = Callable[[str, Any], Any]


def _check_int(low: int, high: int) -> _Check:
    def check(name: str, value: Any) -> int:
        if type(value) is not int:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be an integer")
        if not low <= value <= high:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name}={value} outside [{low}, {high}]")
        return value

    return check


def _check_float(name: str, value: Any) -> float:
    kind = type(value)
    if kind is float:
        number = value
    elif kind is int:
        if abs(value) > _INT64_MAX:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} is out of range")
        number = float(value)
    elif kind is str and value.lower() in _NON_FINITE_WORDS:
        raise _Invalid(DecodeReason.NON_FINITE, f"{name}={value}")
    else:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be a number")
    if not math.isfinite(number):
        raise _Invalid(DecodeReason.NON_FINITE, f"{name}={value}")
    return number


def _check_str(name: str, value: Any) -> str:
    if type(value) is not str:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be a string")
    return value


def _check_non_empty_str(name: str, value: Any) -> str:
    if type(value) is not str or not value:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be a non-empty string")
    return value


def _check_bool(name: str, value: Any) -> bool:
    if type(value) is not bool:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be true or false")
    return value


def _check_decimal(name: str, value: Any) -> Decimal:
    # Accounted amounts travel as strings (`encode`); an integer is exact too. A float
    # is refused: it would bring binary rounding into the books.
    kind = type(value)
    if kind is int:
        if abs(value) > _INT64_MAX:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} is out of range")
        return Decimal(value)
    if kind is not str or len(value) > 64:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be a decimal string")
    if _DECIMAL_TEXT.fullmatch(value) is None:
        # Decimal() also takes spaces, underscores and NaN/Infinity/sNaN: none of them
        # is an amount our encoder writes.
        if value.strip().lower().lstrip("+-s") in _NON_FINITE_WORDS:
            raise _Invalid(DecodeReason.NON_FINITE, f"{name}={value}")
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name}={value[:40]!r} is not a decimal")
    if "e" not in value and "E" not in value:
        # The common case, as `encode` writes amounts: digits are counted on the text.
        whole, _, fraction = value.lstrip("-").partition(".")
        if (
            len(whole.lstrip("0")) > _DECIMAL_MAX_ADJUSTED + 1
            or len(fraction) > -_DECIMAL_MIN_EXPONENT
        ):
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name}={value} does not fit Decimal(38, 9)")
        return Decimal(value)
    number = Decimal(value)
    exponent = number.as_tuple().exponent
    if number and (
        number.adjusted() > _DECIMAL_MAX_ADJUSTED
        or (isinstance(exponent, int) and exponent < _DECIMAL_MIN_EXPONENT)
    ):
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name}={value} does not fit Decimal(38, 9)")
    return number


def _check_enum(kind: type[StrEnum]) -> _Check:
    members = {member.value: member for member in kind}

    def check(name: str, value: Any) -> StrEnum:
        member = members.get(value) if type(value) is str else None
        if member is None:
            detail = f"{name}={str(value)[:40]!r} is not a {kind.__name__}"
            raise _Invalid(DecodeReason.WRONG_TYPE, detail)
        return member

    return check


def _check_literal(allowed: tuple[Any, ...]) -> _Check:
    def check(name: str, value: Any) -> Any:
        if type(value) is not str or value not in allowed:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be one of {allowed}")
        return value

    return check


def _check_float_map(name: str, value: Any) -> dict[str, float]:
    if type(value) is not dict:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be an object of numbers")
    return {key: _check_float(f"{name}.{key}", item) for key, item in value.items()}


def _check_str_tuple(name: str, value: Any) -> tuple[str, ...]:
    if type(value) is not list:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be a list of strings")
    return tuple(_check_str(f"{name}[]", item) for item in value)


def _positive_decimal(name: str, value: Any) -> Decimal:
    number = _check_decimal(name, value)
    if number <= 0:
        raise _Invalid(DecodeReason.WRONG_TYPE, f"{name}={value} must be positive")
    return number


def _optional(check: _Check) -> _Check:
    def optional(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return optional


def _check_for(
    name: str, hint: Any, non_empty: frozenset[str], positive: frozenset[str] = frozenset()
) -> _Check:
    """The check of one dataclass field from its type hint; unknown hints are a bug."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if name in positive and hint is Decimal:
        return _positive_decimal
    if origin in (types.UnionType, typing.Union):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return _optional(_check_for(name, rest[0], non_empty))
    if origin is Literal:
        return _check_literal(args)
    if origin is dict and args == (str, float):
        return _check_float_map
    if origin is tuple and args == (str, ...):
        return _check_str_tuple
    if hint is str:
        return _check_non_empty_str if name in non_empty else _check_str
    if hint is bool:
        return _check_bool
    if hint is int:
        return _check_int(*_INT_RANGES.get(name, _NON_NEGATIVE))
    if hint is float:
        return _check_float
    if hint is Decimal:
        return _check_decimal
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return _check_enum(hint)
    raise TypeError(f"no decoder for field {name}: {hint!r}")


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    check: _Check
    default: Any  # MISSING when the field is required


class _Schema:
    """The checks of one dataclass's fields, built once from its type hints."""

    __slots__ = ("cls", "fields")

    def __init__(self, cls: type) -> None:
        hints = typing.get_type_hints(cls)
        non_empty = _NON_EMPTY_BY_TYPE.get(cls, _NON_EMPTY)
        positive = _POSITIVE_BY_TYPE.get(cls, frozenset())
        self.cls = cls
        self.fields = tuple(
            _Field(
                field.name,
                _check_for(field.name, hints[field.name], non_empty, positive),
                field.default,
            )
            for field in fields(cls)
        )

    def values(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The checked, converted field values of `obj` (defaults where absent)."""
        values: dict[str, Any] = {}
        for field in self.fields:
            if field.name in obj:
                values[field.name] = field.check(field.name, obj[field.name])
            elif field.default is MISSING:
                raise _Invalid(DecodeReason.MISSING_FIELD, field.name)
        return values

    def build(self, obj: dict[str, Any]) -> Any:
        """The dataclass instance `obj` describes."""
        return self.cls(**self.values(obj))

    def row(self, obj: dict[str, Any]) -> dict[str, Any]:
        """`obj` checked, as JSON values, with every field (defaults filled in) and no other.

        The persist flow's row: what `sinks.row` turns into columns.
        """
        row: dict[str, Any] = {}
        for field in self.fields:
            if field.name in obj:
                value = obj[field.name]
                field.check(field.name, value)
            elif field.default is MISSING:
                raise _Invalid(DecodeReason.MISSING_FIELD, field.name)
            else:
                value = field.default
            row[field.name] = value
        return row


_SCHEMAS: dict[type, _Schema] = {}


def _schema(cls: type) -> _Schema:
    schema = _SCHEMAS.get(cls)
    if schema is None:
        schema = _SCHEMAS[cls] = _Schema(cls)
    return schema


# ---------------------------------------------------------------------------------------
# Ticks


def _text(obj: dict[str, Any], name: str) -> str:
    return _check_non_empty_str(name, _required(obj, name))


def _required(obj: dict[str, Any], name: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise _Invalid(DecodeReason.MISSING_FIELD, name) from None


_check_count = _check_int(*_NON_NEGATIVE)


def _int(obj: dict[str, Any], name: str) -> int:
    return _check_count(name, _required(obj, name))  # type: ignore[no-any-return]


def _float(obj: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = obj.get(name) if optional else _required(obj, name)
    if value is None and optional:
        return None
    return _check_float(name, value)


def _positive(obj: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = _float(obj, name, optional=optional)
    if value is not None and value <= 0.0:
        raise _Invalid(DecodeReason.NON_POSITIVE_PRICE, f"{name}={value}")
    return value


def _size(obj: dict[str, Any], name: str, *, optional: bool = False) -> float | None:
    value = _float(obj, name, optional=optional)
    if value is not None and value < 0.0:
        raise _Invalid(DecodeReason.NEGATIVE_SIZE, f"{name}={value}")
    return value


_check_tick_kind = _check_enum(TickKind)


def _tick(obj: dict[str, Any], instruments: frozenset[str] | None) -> Tick:
    plain = _plain_tick(obj, instruments)
    return plain if plain is not None else _checked_tick(obj, instruments)


_TRADE = TickKind.TRADE
_INFINITY = math.inf


# A valid tick's fields as `decode_tick_row` returns them: instrument, seq, ts_event,
# price, size, bid, ask, bid_size, ask_size.
TickRow = tuple[str, int, int, float, float, float | None, float | None, float | None, float | None]


def _plain_tick(obj: dict[str, Any], instruments: frozenset[str] | None) -> Tick | None:
    """The common tick (a trade without venue fields, every number a float in range)
    checked inline, or None: then `_checked_tick` decides, with its reasons. The same
    checks, a few function calls instead of thirty (decoding was a tenth of the trading
    flow's per-tick CPU).
    """
    row = _plain_row(obj, instruments)
    if row is None:
        return None
    instrument, seq, ts_event, price, size, bid, ask, bid_size, ask_size = row
    return Tick(
        tick_id=tick_id(instrument, seq, ts_event),
        instrument=instrument,
        seq=seq,
        kind=_TRADE,
        price=price,
        size=size,
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        ts_event=ts_event,
        ts_init=obj["ts_init"],
    )


def _plain_row(obj: dict[str, Any], instruments: frozenset[str] | None) -> TickRow | None:
    """`_plain_tick`'s checks, returning the fields instead of a `Tick`.

    Venue fields that only say "no venue" (`"venue": ""`, null venue ids, no flags, as
    every `Tick` without a venue encodes) pass here: `_venue_fields` gives them the
    defaults a `Tick` has anyway.
    """
    get = obj.get
    instrument = get("instrument")
    seq = get("seq")
    ts_event = get("ts_event")
    ts_init = get("ts_init")
    if (
        type(instrument) is not str
        or not instrument
        or (instruments is not None and instrument not in instruments)
        or type(seq) is not int
        or type(ts_event) is not int
        or type(ts_init) is not int
        or not 0 <= seq <= _INT64_MAX
        or not 0 <= ts_event <= _INT64_MAX
        or not 0 <= ts_init <= _INT64_MAX
        or get("kind", "trade") != "trade"
        or ("venue" in obj and not _no_venue(obj))
    ):
        return None
    price = get("price")
    size = get("size")
    if (
        type(price) is not float
        or type(size) is not float
        or not 0.0 < price < _INFINITY
        or not 0.0 <= size < _INFINITY
    ):
        return None
    bid = get("bid")
    ask = get("ask")
    bid_size = get("bid_size")
    ask_size = get("ask_size")
    for quote in (bid, ask):
        if quote is not None and (type(quote) is not float or not 0.0 < quote < _INFINITY):
            return None
    for depth in (bid_size, ask_size):
        if depth is not None and (type(depth) is not float or not 0.0 <= depth < _INFINITY):
            return None
    if bid is not None and ask is not None and bid > ask:
        return None
    return instrument, seq, ts_event, price, size, bid, ask, bid_size, ask_size


def _no_venue(obj: dict[str, Any]) -> bool:
    """The venue fields of a tick without a venue (what `_venue_fields` maps to the
    `Tick` defaults); anything else takes the full checks."""
    flags = obj.get("flags")
    return (
        obj["venue"] == ""
        and obj.get("venue_trade_id") is None
        and obj.get("venue_seq") is None
        and (flags is None or (type(flags) is list and not flags))
    )


def _checked_tick(obj: dict[str, Any], instruments: frozenset[str] | None) -> Tick:
    instrument = _text(obj, "instrument")
    if instruments is not None and instrument not in instruments:
        raise _Invalid(DecodeReason.UNKNOWN_INSTRUMENT, instrument[:100])
    seq = _int(obj, "seq")
    ts_event = _int(obj, "ts_event")
    ts_init = _int(obj, "ts_init")
    kind = _check_tick_kind("kind", obj.get("kind", TickKind.TRADE.value))
    bid = _positive(obj, "bid", optional=True)
    ask = _positive(obj, "ask", optional=True)
    bid_size = _size(obj, "bid_size", optional=True)
    ask_size = _size(obj, "ask_size", optional=True)
    if bid is not None and ask is not None and bid > ask:
        raise _Invalid(DecodeReason.CROSSED_QUOTE, f"bid {bid} > ask {ask}")
    if kind is TickKind.QUOTE:
        if bid is None or ask is None:
            raise _Invalid(DecodeReason.MISSING_FIELD, "quote needs bid and ask")
        price, size = (bid + ask) / 2.0, 0.0
    else:
        price = _positive(obj, "price")  # type: ignore[assignment]
        size = _size(obj, "size")  # type: ignore[assignment]
    return Tick(
        tick_id=tick_id(instrument, seq, ts_event),
        instrument=instrument,
        seq=seq,
        kind=kind,  # type: ignore[arg-type]
        price=price,
        size=size,
        bid=bid,
        ask=ask,
        bid_size=bid_size,
        ask_size=ask_size,
        ts_event=ts_event,
        ts_init=ts_init,
        **(_venue_fields(obj) if "venue" in obj else {}),
    )


def _venue_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """A live feed's venue, venue trade id / sequence and flags (all optional; a Tick
    encoded without a venue carries `"venue": ""`, which decodes back to the same)."""
    venue = obj["venue"]
    if type(venue) is not str or len(venue) > 100:
        raise _Invalid(DecodeReason.WRONG_TYPE, "venue must be a string (at most 100)")
    out: dict[str, Any] = {"venue": venue}
    for name in ("venue_trade_id", "venue_seq"):
        if (value := obj.get(name)) is not None:
            out[name] = _check_count(name, value)
    flags = obj.get("flags")
    if flags is not None:
        if type(flags) is not list or len(flags) > 16 or not all(type(f) is str for f in flags):
            raise _Invalid(DecodeReason.WRONG_TYPE, "flags must be a list of 16 strings at most")
        out["flags"] = tuple(flags)
    return out


def tick_from_object(obj: dict[str, Any], instruments: frozenset[str] | None) -> Tick:
    """Validate a parsed tick object (a feed's or replay's row) into a `Tick`.

    Raises `ValueError` naming the first problem: for trusted rows (benchmarks,
    fixtures), where a bad one is a bug. Records use `decode_tick`.
    """
    try:
        return _tick(obj, instruments)
    except _Invalid as invalid:
        raise ValueError(f"{invalid.reason}: {invalid.detail}") from None


def decode_tick(
    raw: bytes, instruments: frozenset[str] | None = None, *, origin: RecordOrigin = NOWHERE
) -> Tick | DecodeFailure:
    """Parse and validate one tick record, or say why it is not one.

    Non-finite numbers never pass: orjson rejects bare NaN/Infinity literals, and the
    strings "NaN"/"inf" that some feeds emit are caught here.

    >>> decode_tick(b'{"instrument":"A","seq":1,"price":2.5,"size":1,'
    ...             b'"ts_event":5,"ts_init":6}').price
    2.5
    >>> decode_tick(b'{"instrument":"A","seq":true}').reason.value
    'wrong_type'
    """
    return _decoded(lambda obj: _tick(obj, instruments), raw, origin)


def decode_tick_row(raw: bytes, instruments: frozenset[str] | None = None) -> TickRow | None:
    """The fields of a valid tick record, or None where `decode_tick` gives a dead letter.

    For a reader that keeps ticks as columns and drops invalid ones (the paper broker:
    the trading flow dead-letters them): no `Tick`, no `tick_id` hash. The common tick
    takes `_plain_row`'s inline checks; any other goes through `decode_tick` itself, so
    which records pass is exactly what `decode_tick` accepts.

    >>> decode_tick_row(b'{"instrument":"A","seq":1,"price":2.5,"size":1.0,'
    ...                 b'"ts_event":5,"ts_init":6}')
    ('A', 1, 5, 2.5, 1.0, None, None, None, None)
    >>> decode_tick_row(b'{"instrument":"A","seq":1,"price":2.5,"size":1,'
    ...                 b'"ts_event":5,"ts_init":6}')[4]
    1.0
    >>> decode_tick_row(b'{"instrument":"A","seq":-1}') is None
    True
    """
    if type(raw) is bytes and len(raw) <= MAX_RECORD_BYTES:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None  # `_parse_object` turns every parse error into a dead letter
        if type(obj) is dict:
            row = _plain_row(obj, instruments)
            if row is not None:
                return row
    tick = decode_tick(raw, instruments)
    if isinstance(tick, DecodeFailure):
        return None
    return (
        tick.instrument,
        tick.seq,
        tick.ts_event,
        tick.price,
        tick.size,
        tick.bid,
        tick.ask,
        tick.bid_size,
        tick.ask_size,
    )


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


# ---------------------------------------------------------------------------------------
# Events our own flows and commands write


def decode_event(cls: type[T], raw: bytes, *, origin: RecordOrigin = NOWHERE) -> T | DecodeFailure:
    """Decode one record of dataclass `cls` (an order, a fill, an alert, ...).

    >>> decode_event(Alert, b'{"alert_id": 7}').detail
    'alert_id must be a non-empty string'
    """
    schema = _schema(cls)
    return _decoded(schema.build, raw, origin)


def event_from_object(cls: type[T], obj: dict[str, Any]) -> T:
    """Build `cls` from a trusted parsed object (a journal entry, a fixture).

    Raises `ValueError` naming the first problem.
    """
    try:
        return _schema(cls).build(obj)  # type: ignore[no-any-return]
    except _Invalid as invalid:
        raise ValueError(f"{cls.__name__}: {invalid.reason}: {invalid.detail}") from None


def _one_of(obj: dict[str, Any], choices: Iterable[tuple[str, type]], otherwise: type) -> type:
    """The type of a record on a topic of several: the first whose marker key it has."""
    for key, cls in choices:
        if key in obj:
            return cls
    return otherwise


_ORDER_REQUESTS = (("cancel_id", CancelOrder), ("progress_id", OrdersSent))
_CONTROLS = (("max_position", LimitCommand),)
_FILL_REPORTS = (("progress_id", FillsThrough),)
_ORDER_REPORTS = (("progress_id", OrderEventsThrough),)


def _build_one_of(
    choices: Iterable[tuple[str, type]], otherwise: type
) -> Callable[[dict[str, Any]], Any]:
    choices = tuple(choices)

    def build(obj: dict[str, Any]) -> Any:
        return _schema(_one_of(obj, choices, otherwise)).build(obj)

    return build


_build_order_request = _build_one_of(_ORDER_REQUESTS, Order)
_build_control = _build_one_of(_CONTROLS, ControlCommand)
_build_fill_report = _build_one_of(_FILL_REPORTS, Fill)
_build_order_report = _build_one_of(_ORDER_REPORTS, OrderEvent)


def decode_order_request(
    raw: bytes, *, origin: RecordOrigin = NOWHERE
) -> Order | CancelOrder | OrdersSent | DecodeFailure:
    """Decode a record of `hfl.orders`: a cancel request (it has `cancel_id`), the gate's
    progress (`progress_id`) or an order."""
    return _decoded(_build_order_request, raw, origin)  # type: ignore[no-any-return]


def decode_control(
    raw: bytes, *, origin: RecordOrigin = NOWHERE
) -> ControlCommand | LimitCommand | DecodeFailure:
    """Decode a record of `hfl.control`: a limit change (it has `max_position`) or a
    kill, reduce or resume command.

    >>> decode_control(b'{"command_id":"c","account":"a","action":"reduce","reason":"r",'
    ...     b'"actor":12345,"flatten":"yes","ts_event":"x","ts_init":1}').detail
    'actor must be a non-empty string'
    """
    return _decoded(_build_control, raw, origin)  # type: ignore[no-any-return]


def decode_model_command(
    raw: bytes, *, origin: RecordOrigin = NOWHERE
) -> ModelCommand | DecodeFailure:
    """Decode a record of `hfl.models.control`: promote a model or roll the champion back."""
    return decode_event(ModelCommand, raw, origin=origin)


def decode_fill_report(
    raw: bytes, *, origin: RecordOrigin = NOWHERE
) -> Fill | FillsThrough | DecodeFailure:
    """Decode a record of `hfl.fills`: the gateway's progress marker (`progress_id`) or a fill."""
    return _decoded(_build_fill_report, raw, origin)  # type: ignore[no-any-return]


def decode_order_report(
    raw: bytes, *, origin: RecordOrigin = NOWHERE
) -> OrderEvent | OrderEventsThrough | DecodeFailure:
    """Decode a record of `hfl.order_events`: the gateway's progress marker or an event."""
    return _decoded(_build_order_report, raw, origin)  # type: ignore[no-any-return]


def decode_alert(raw: bytes, *, origin: RecordOrigin = NOWHERE) -> Alert | DecodeFailure:
    """Decode a record of `hfl.alerts`."""
    return decode_event(Alert, raw, origin=origin)


def decode_audit(raw: bytes, *, origin: RecordOrigin = NOWHERE) -> AuditEvent | DecodeFailure:
    """Decode a record of `hfl.audit`."""
    return decode_event(AuditEvent, raw, origin=origin)


def is_progress_marker(record: dict[str, Any]) -> bool:
    """Tell flow-control progress records (`OrdersSent`, `FillsThrough`) from history.

    They say how far a flow got, which depends on batching, so they are not persisted.

    >>> is_progress_marker({"progress_id": "p"}), is_progress_marker({"fill_id": "f"})
    (True, False)
    """
    return "progress_id" in record


# ---------------------------------------------------------------------------------------
# Records the persist flow stores: checked against their type, kept as JSON values

# Per persisted topic (without prefix): which type a record has. Topics of several
# types tell them apart by a marker key (or the decision's outcome). Ticks are decoded
# by `decode_tick`.
_Choose = Callable[[dict[str, Any]], type]


def _by_marker(choices: tuple[tuple[str, type], ...], otherwise: type) -> _Choose:
    return lambda obj: _one_of(obj, choices, otherwise)


def _only(cls: type) -> _Choose:
    return lambda obj: cls


def _decision_type(obj: dict[str, Any]) -> type:
    return Denied if obj.get("outcome") == "denied" else Approved


RECORD_TYPES: dict[str, _Choose] = {
    topic.BARS: _only(Bar),
    topic.FEATURES: _only(FeatureVector),
    topic.PREDICTIONS: _only(Prediction),
    topic.SIGNALS: _only(Signal),
    topic.DECISIONS: _decision_type,
    topic.ORDERS: _by_marker(_ORDER_REQUESTS, Order),
    topic.ORDER_EVENTS: _by_marker(_ORDER_REPORTS, OrderEvent),
    topic.FILLS: _by_marker(_FILL_REPORTS, Fill),
    topic.POSITIONS: _only(Position),
    topic.PNL: _only(PnlSnapshot),
    topic.DLQ: _only(DecodeFailure),
    topic.DRIFT: _only(DriftDetected),
    topic.RISK_EVENTS: _only(TradingStateChanged),
    topic.RISK_METRICS: _only(RiskMetric),
    topic.ALERTS: _only(Alert),
    topic.AUDIT: _only(AuditEvent),
    topic.MODEL_METRICS: _only(ModelMetrics),
    topic.MODEL_VERSIONS: _only(ModelVersion),
    topic.MODEL_CHECKPOINTS: _only(ModelCheckpoint),
}


def record_decoder(name: str) -> Callable[..., dict[str, Any] | DecodeFailure]:
    """The row decoder of topic `name` (without prefix): `decode(raw, origin=...)`.

    The row is the record checked against its type, as JSON values with every field
    (defaults filled in) and nothing else; progress markers keep their `progress_id`.
    Raises `KeyError` for a topic without records to persist (a wiring bug).
    """
    choose = RECORD_TYPES[name]

    def build(obj: dict[str, Any]) -> dict[str, Any]:
        return _schema(choose(obj)).row(obj)

    def decode(raw: bytes, *, origin: RecordOrigin = NOWHERE) -> dict[str, Any] | DecodeFailure:
        return _decoded(build, raw, origin, MAX_EVENT_RECORD_BYTES)

    return decode


# ---------------------------------------------------------------------------------------
# Columnar records: many feature vectors or predictions of one instrument in one record
# (`FeatureBatch`, `PredictionBatch`; `dataflows.flows.routing`), exploded here into the
# very rows their single records would have given: each row is built as that record's
# object and checked by the single record's own schema.

_PREDICTION_COLUMNS = (
    ("tick_ids", "tick_id"),
    ("models", "model"),
    ("horizons_ns", "horizon_ns"),
    ("probabilities_up", "probability_up"),
    ("expected_returns", "expected_return"),
    ("labels", "label"),
    ("realized_returns", "realized_return"),
    ("errors", "error"),
    ("versions", "version"),
    ("ts_events", "ts_event"),
    ("ts_inits", "ts_init"),
)


def _columns(obj: dict[str, Any], names: Iterable[str]) -> list[list[Any]]:
    """The lists `names` of a columnar record, all of one length."""
    columns = []
    for name in names:
        column = obj.get(name)
        if type(column) is not list:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"{name} must be a list")
        columns.append(column)
    if len({len(column) for column in columns}) > 1:
        raise _Invalid(DecodeReason.WRONG_TYPE, "columns of different lengths")
    return columns


def _feature_rows(obj: dict[str, Any]) -> list[dict[str, Any]]:
    instrument = obj.get("instrument")
    names = _check_str_tuple("names", obj.get("names"))
    width = len(names)
    row = _schema(FeatureVector).row
    rows = []
    for tick, values, ts_event, ts_init in zip(
        *_columns(obj, ("tick_ids", "values", "ts_events", "ts_inits")), strict=True
    ):
        if type(values) is not list or len(values) != width:
            raise _Invalid(DecodeReason.WRONG_TYPE, f"values must be lists of {width} numbers")
        rows.append(
            row(
                {
                    "tick_id": tick,
                    "instrument": instrument,
                    "values": dict(zip(names, values, strict=True)),
                    "ts_event": ts_event,
                    "ts_init": ts_init,
                }
            )
        )
    return rows


def _prediction_rows(obj: dict[str, Any]) -> list[dict[str, Any]]:
    instrument = obj.get("instrument")
    row = _schema(Prediction).row
    names = [field for _, field in _PREDICTION_COLUMNS]
    rows = []
    for values in zip(*_columns(obj, (column for column, _ in _PREDICTION_COLUMNS)), strict=True):
        record = dict(zip(names, values, strict=True))
        record["instrument"] = instrument
        rows.append(row(record))
    return rows


_EXPLODE: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    topic.FEATURES: _feature_rows,
    topic.PREDICTIONS: _prediction_rows,
}


def _is_columnar(obj: dict[str, Any]) -> bool:
    return "tick_ids" in obj


def record_rows_decoder(name: str) -> Callable[..., list[dict[str, Any]] | DecodeFailure]:
    """The rows decoder of topic `name` (without prefix): `decode(raw, origin=...)`.

    As `record_decoder`, but a record may hold many rows: a columnar record of the
    features or predictions topic gives its rows in order (each checked and shaped
    exactly as its single record would be); any other record gives one row. A record
    with one bad row is a dead letter as a whole.
    """
    single = record_decoder(name)
    explode = _EXPLODE.get(name)
    if explode is None:

        def one(
            raw: bytes, *, origin: RecordOrigin = NOWHERE
        ) -> list[dict[str, Any]] | DecodeFailure:
            row = single(raw, origin=origin)
            return row if isinstance(row, DecodeFailure) else [row]

        return one
    choose = RECORD_TYPES[name]

    def build(obj: dict[str, Any]) -> list[dict[str, Any]]:
        if _is_columnar(obj):
            return explode(obj)
        return [_schema(choose(obj)).row(obj)]

    def decode(
        raw: bytes, *, origin: RecordOrigin = NOWHERE
    ) -> list[dict[str, Any]] | DecodeFailure:
        return _decoded(build, raw, origin, MAX_EVENT_RECORD_BYTES)

    return decode


def event_rows(name: str, obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The events in one parsed, trusted record of topic `name` (without prefix):
    a columnar record's rows, or the record itself (tools reading topics).

    Raises `ValueError` when a columnar record is malformed.

    >>> event_rows("hfl.events.features", {"instrument": "X", "names": ["a"],
    ...     "tick_ids": ["t"], "values": [[1.5]], "ts_events": [5], "ts_inits": [5],
    ...     "ts_event": 5, "ts_init": 5})
    [{'tick_id': 't', 'instrument': 'X', 'values': {'a': 1.5}, 'ts_event': 5, 'ts_init': 5}]
    """
    explode = _EXPLODE.get(name)
    if explode is None or not _is_columnar(obj):
        return [obj]
    try:
        return explode(obj)
    except _Invalid as invalid:
        raise ValueError(f"{invalid.reason}: {invalid.detail}") from None
