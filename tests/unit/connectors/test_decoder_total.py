"""Every decoder is total: each class of bad input is a dead letter with its reason.

One row per (decoder, kind of damage): wrong JSON types (a bool for an int, a list for
a number, a string for a number), integers beyond a column, non-finite numbers, deep
nesting, invalid UTF-8, unknown enum values, missing fields, bytes after the object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fuzz.decoder_targets import SEED_EVENTS, SEED_TICKS

from connectors import codec, topic
from connectors.codec import encode
from risk.domain import ControlAction, ControlCommand, DecodeFailure, DecodeReason, LimitCommand

W, M, N = DecodeReason.WRONG_TYPE, DecodeReason.MISSING_FIELD, DecodeReason.NON_FINITE

Decoder = Callable[[bytes], object]


def _record(name: str, index: int = 0) -> dict[str, Any]:
    return dict(codec.loads(encode(SEED_EVENTS[name][index])))


def _tick(raw: bytes) -> object:
    return codec.decode_tick(raw, frozenset({"AAPL", "MSFT"}))


# decoder, a good record, an integer field, a number field, an enum field
DECODERS: dict[str, tuple[Decoder, dict[str, Any], str, str, str]] = {
    "tick": (_tick, dict(SEED_TICKS[0]), "seq", "price", "kind"),
    "control": (codec.decode_control, _record(topic.CONTROL), "ts_event", "ts_init", "action"),
    "limit": (
        codec.decode_control,
        _record(topic.CONTROL, 2),
        "ts_init",
        "max_position",
        "ts_event",
    ),
    "model_command": (
        codec.decode_model_command,
        _record(topic.MODEL_CONTROL),
        "ts_event",
        "ts_init",
        "action",
    ),
    "fill": (codec.decode_fill_report, _record(topic.FILLS), "ts_event", "quantity", "side"),
    "fills_through": (
        codec.decode_fill_report,
        _record(topic.FILLS, 1),
        "through_ns",
        "ts_init",
        "ts_event",
    ),
    "order_event": (
        codec.decode_order_report,
        _record(topic.ORDER_EVENTS),
        "ts_event",
        "leaves_quantity",
        "kind",
    ),
    "order": (codec.decode_order_request, _record(topic.ORDERS), "ts_event", "quantity", "side"),
    "cancel": (
        codec.decode_order_request,
        _record(topic.ORDERS, 1),
        "ts_event",
        "ts_init",
        "ts_init",
    ),
    "alert": (codec.decode_alert, _record(topic.ALERTS), "ts_event", "ts_init", "severity"),
    "audit": (codec.decode_audit, _record(topic.AUDIT), "ts_event", "ts_init", "ts_init"),
    "persisted_signal": (
        codec.record_decoder(topic.SIGNALS),
        _record(topic.SIGNALS),
        "direction",
        "probability_up",
        "ts_init",
    ),
    "persisted_decision": (
        codec.record_decoder(topic.DECISIONS),
        _record(topic.DECISIONS, 1),
        "ts_event",
        "quantity",
        "reason",
    ),
    "persisted_dlq": (
        codec.record_decoder(topic.DLQ),
        _record(topic.DLQ),
        "partition",
        "raw_size",
        "reason",
    ),
    "persisted_checkpoint": (
        codec.record_decoder(topic.MODEL_CHECKPOINTS),
        _record(topic.MODEL_CHECKPOINTS),
        "seq",
        "ts_event",
        "ts_event",
    ),
}

DEEP = b"[" * 5000 + b"]" * 5000


def _damages(good: dict[str, Any], int_field: str, number_field: str, enum_field: str):  # type: ignore[no-untyped-def]
    """(name, raw bytes, reason) for every kind of damage to `good`.

    A "NaN" string in an integer field is a wrong type; in a float or Decimal field,
    a non-finite number.
    """
    nan = W if isinstance(good[number_field], int) else N

    def changed(**change: object) -> bytes:
        return encode({**good, **change})

    missing = {k: v for k, v in good.items() if k != int_field}
    yield "bool_for_int", changed(**{int_field: True}), W
    yield "float_for_int", changed(**{int_field: 1.5}), W
    yield "string_for_int", changed(**{int_field: "7"}), W
    yield "huge_int", encode(good)[:-1] + f',"{int_field}":{2**64 - 1}}}'.encode(), W
    yield "beyond_64_bits", encode(good)[:-1] + f',"{int_field}":{10**30}}}'.encode(), W
    yield "negative_count", changed(**{int_field: -(2**63)}), W
    yield "list_for_number", changed(**{number_field: [0, [1], 18446744073709551615]}), W
    yield "object_for_number", changed(**{number_field: {"a": 1}}), W
    yield "bool_for_number", changed(**{number_field: False}), W
    yield "string_nan", changed(**{number_field: "NaN"}), nan
    yield "string_inf", changed(**{number_field: "-inf"}), nan
    yield "literal_nan", encode(good)[:-1] + f',"{number_field}":NaN}}'.encode(), N
    yield "overflow_literal", encode(good)[:-1] + f',"{number_field}":1e999}}'.encode(), N
    yield "unknown_enum", changed(**{enum_field: "sideways"}), W
    yield "null_required", changed(**{int_field: None}), W
    yield "missing_field", encode(missing), M
    yield "deep_nesting", encode(good)[:-1] + b',"x":' + DEEP + b"}", DecodeReason.MALFORMED_JSON
    yield "invalid_utf8", encode(good)[:-1] + b',"x":"\xff\xfe"}', DecodeReason.MALFORMED_JSON
    yield "lone_surrogate", encode(good)[:-1] + b',"x":"\\ud800"}', DecodeReason.MALFORMED_JSON
    yield "trailing_garbage", encode(good) + b" garbage", DecodeReason.MALFORMED_JSON
    yield "not_json", b"this is not json", DecodeReason.MALFORMED_JSON
    yield "empty", b"", DecodeReason.MALFORMED_JSON
    yield "array", b"[1, 2]", DecodeReason.NOT_AN_OBJECT
    yield "string", b'"x"', DecodeReason.NOT_AN_OBJECT
    yield "oversized", b" " * (codec.MAX_EVENT_RECORD_BYTES + 1), DecodeReason.OVERSIZED


CASES = [
    pytest.param(decoder, raw, reason, id=f"{name}-{damage}")
    for name, (decoder, good, int_field, number_field, enum_field) in DECODERS.items()
    for damage, raw, reason in _damages(good, int_field, number_field, enum_field)
]


@pytest.mark.parametrize(("decoder", "raw", "reason"), CASES)
def test_decoder_bad_input_is_dead_letter_with_reason(
    decoder: Decoder, raw: bytes, reason: DecodeReason
) -> None:
    result = decoder(raw)

    assert isinstance(result, DecodeFailure), result
    assert result.reason is reason, result.detail
    assert result.raw_size == len(raw)
    encode(result)


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_good_record_is_a_value(name: str) -> None:
    decoder, good, *_ = DECODERS[name]

    assert not isinstance(decoder(encode(good)), DecodeFailure)


def test_decode_control_with_wrongly_typed_fields_is_not_a_reduce() -> None:
    raw = encode(
        {
            "command_id": "c1",
            "account": "paper",
            "action": "reduce",
            "reason": "r",
            "actor": 12345,
            "flatten": "yes",
            "ts_event": "x",
            "ts_init": 1,
        }
    )

    result = codec.decode_control(raw)

    assert isinstance(result, DecodeFailure)
    assert result.reason is DecodeReason.WRONG_TYPE


@pytest.mark.parametrize("flatten", ["yes", 1, 0, "true", None])
def test_decode_control_flatten_takes_only_a_json_bool(flatten: object) -> None:
    good = _record(topic.CONTROL)

    assert isinstance(codec.decode_control(encode({**good, "flatten": flatten})), DecodeFailure)


def test_decode_control_good_kill_keeps_every_field() -> None:
    command = SEED_EVENTS[topic.CONTROL][0]

    decoded = codec.decode_control(encode(command))

    assert decoded == command
    assert isinstance(decoded, ControlCommand) and decoded.action is ControlAction.KILL


def test_decode_control_limit_from_its_marker_key_keeps_the_decimal() -> None:
    decoded = codec.decode_control(encode(SEED_EVENTS[topic.CONTROL][2]))

    assert isinstance(decoded, LimitCommand)
    assert str(decoded.max_position) == "500"


@pytest.mark.parametrize(
    "value",
    [
        "1e40",
        "0.1e-30",
        1.5,
        "Infinity",
        "sNaN",
        "1,5",
        " 1",
        "1_000",
        "+1",
        ".5",
        "٣",
        "0",
        "-5",
        -1,
    ],
)
def test_decode_control_limit_decimal_that_does_not_fit_is_dead_letter(value: object) -> None:
    good = _record(topic.CONTROL, 2)

    assert isinstance(codec.decode_control(encode({**good, "max_position": value})), DecodeFailure)


def test_dead_letter_keeps_topic_partition_offset_and_reason() -> None:
    origin = codec.Unread(topic="hfl.audit", partition=0, offset=17, timestamp_ns=99)

    result = codec.decode_audit(b"this is not json", origin=origin)

    assert isinstance(result, DecodeFailure)
    assert (result.topic, result.partition, result.offset, result.ts_init) == (
        "hfl.audit",
        0,
        17,
        99,
    )
    assert result.reason is DecodeReason.MALFORMED_JSON


def test_record_decoder_fills_defaults_and_drops_unknown_keys() -> None:
    good = _record(topic.DECISIONS)
    del good["outcome"]

    row = codec.record_decoder(topic.DECISIONS)(encode({**good, "extra": [1]}))

    assert isinstance(row, dict)
    assert row["outcome"] == "approved" and "extra" not in row


@pytest.mark.parametrize("name", sorted(DECODERS))
def test_decoder_null_record_value_is_dead_letter(name: str) -> None:
    decoder = DECODERS[name][0]

    result = decoder(None)  # type: ignore[arg-type]  # a Kafka tombstone has no value

    assert isinstance(result, DecodeFailure)
    assert result.reason is DecodeReason.MALFORMED_JSON and result.raw_size == 0


def test_model_checkpoint_larger_than_an_outside_record_is_a_row() -> None:
    """A trained forest's checkpoint is tens of kB: persisted, not a dead letter."""
    big = {**_record(topic.MODEL_CHECKPOINTS), "blob": "A" * (2 * codec.MAX_RECORD_BYTES)}

    row = codec.record_decoder(topic.MODEL_CHECKPOINTS)(encode(big))

    assert not isinstance(row, DecodeFailure), row
    assert row["blob"] == big["blob"]
