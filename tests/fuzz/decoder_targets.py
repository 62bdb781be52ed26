"""One fuzz target per decoder of `connectors.codec`, with seeds and a structured mutator.

A target takes any bytes and checks what the decoder promises: it returns a value of
the expected type or a `DecodeFailure`, never raises; a value encodes and decodes back
to itself; a dead letter encodes; a persisted row turns into columns. Any exception
escaping a target is a finding.

Seeds are real records: domain objects as the flows encode them. The mutator edits a
record's JSON structure (a field set to a wrongly typed, huge, non-finite or nested
value, a field dropped, a marker key added) as well as its bytes, so the fuzzer spends
its time past the JSON parser, where the type checks are.

Used by `tests/fuzz/run.py` (atheris, `make fuzz`) and `tests/fuzz/test_fuzz_slice.py`
(a bounded Hypothesis slice in the normal test run).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors import codec, topic
from dataflows.flows.routing import to_outbound
from risk.domain import (
    Alert,
    AlertSeverity,
    Approved,
    AuditEvent,
    Bar,
    CancelOrder,
    ControlAction,
    ControlCommand,
    DecodeFailure,
    DecodeReason,
    DenialReason,
    Denied,
    DriftDetected,
    FeatureVector,
    Fill,
    FillsThrough,
    LimitCommand,
    ModelAction,
    ModelCheckpoint,
    ModelCommand,
    ModelMetrics,
    ModelRole,
    ModelVersion,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderEventsThrough,
    OrdersSent,
    OrderType,
    PnlSnapshot,
    Position,
    Prediction,
    RiskMetric,
    Side,
    Signal,
    TradingState,
    TradingStateChanged,
)
from sinks.row import TABLE_BY_TOPIC, columns_for, table_for_record

TS = 1_700_000_000_000_000_000
D = Decimal


def _seed_events() -> dict[str, list[object]]:
    """Real records per topic, as the flows and commands make them."""
    order = Order(
        client_order_id="c1",
        signal_id="s1",
        account="paper",
        instrument="AAPL",
        side=Side.BUY,
        quantity=D("10.000000000"),
        order_type=OrderType.LIMIT,
        limit_price=D("101.250000000"),
        ts_event=TS,
        ts_init=TS + 1,
    )
    common = {"account": "paper", "ts_event": TS, "ts_init": TS + 1}
    return {
        topic.CONTROL: [
            ControlCommand(
                command_id="k1",
                action=ControlAction.KILL,
                reason="r",
                actor="ops",
                instrument="AAPL",
                flatten=True,
                **common,
            ),
            ControlCommand(
                command_id="r1", action=ControlAction.RESUME, reason="ok", actor="ops", **common
            ),
            LimitCommand(
                command_id="l1",
                instrument="AAPL",
                max_position=D("500"),
                reason="r",
                actor="risk",
                **common,
            ),
        ],
        topic.MODEL_CONTROL: [
            ModelCommand(
                command_id="m1",
                action=ModelAction.PROMOTE,
                model="logistic",
                instrument="",
                actor="quant",
                reason="better",
                ts_event=TS,
                ts_init=TS,
            ),
            ModelCommand(
                command_id="m2",
                action=ModelAction.ROLLBACK,
                model="",
                instrument="AAPL",
                actor="quant",
                reason="worse",
                ts_event=TS,
                ts_init=TS,
            ),
        ],
        topic.FILLS: [
            Fill(
                fill_id="f1",
                client_order_id="c1",
                instrument="AAPL",
                side=Side.SELL,
                quantity=D("2.5"),
                price=D("101.25"),
                fee=D("0.01"),
                leaves_quantity=D("0"),
                tick_id="t1",
                **common,
            ),
            FillsThrough(progress_id="p1", instrument="AAPL", through_ns=TS, **common),
        ],
        topic.ORDER_EVENTS: [
            OrderEvent(
                event_id="e1",
                client_order_id="c1",
                instrument="AAPL",
                kind=OrderEventKind.PARTIALLY_FILLED,
                filled_quantity=D("2.5"),
                leaves_quantity=D("7.5"),
                reason="",
                **common,
            ),
            OrderEventsThrough(progress_id="p2", instrument="AAPL", through_ns=TS, **common),
        ],
        topic.ORDERS: [
            order,
            CancelOrder(
                cancel_id="x1", client_order_id="c1", instrument="AAPL", reason="kill", **common
            ),
            OrdersSent(progress_id="p3", through_ns=TS, **common),
        ],
        topic.ALERTS: [
            Alert(
                alert_id="a1",
                name="stale_data",
                severity=AlertSeverity.WARNING,
                source="trading",
                subject="AAPL",
                message="no tick for 5 s",
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.AUDIT: [
            AuditEvent(
                audit_id="u1",
                actor="ops",
                action="kill",
                subject="paper",
                reason="r",
                detail='{"flatten": true}',
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.BARS: [
            Bar(
                instrument="AAPL",
                interval_s=1,
                open=1.0,
                high=2.0,
                low=0.5,
                close=1.5,
                volume=10.0,
                vwap=1.2,
                trade_count=3,
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.FEATURES: [
            FeatureVector(
                tick_id="t1",
                instrument="AAPL",
                values={"ret_1": 0.01, "vol": 0.2},
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.PREDICTIONS: [
            Prediction(
                tick_id="t1",
                instrument="AAPL",
                model="lr",
                horizon_ns=10**9,
                probability_up=0.6,
                label=1,
                realized_return=0.001,
                error=0.4,
                version=1,
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.SIGNALS: [
            Signal(
                signal_id="s1",
                tick_id="t1",
                instrument="AAPL",
                model="lr",
                direction=-1,
                probability_up=0.3,
                reference_price=101.0,
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.DECISIONS: [
            Approved(
                signal_id="s1",
                instrument="AAPL",
                side=Side.BUY,
                quantity=D("10"),
                reference_price=101.0,
                client_order_id="c1",
                **common,
            ),
            Denied(
                signal_id="s2",
                instrument="AAPL",
                side=Side.SELL,
                quantity=D("5"),
                reference_price=None,
                reason=DenialReason.MAX_POSITION,
                detail="10 > 5",
                **common,
            ),
        ],
        topic.POSITIONS: [
            Position(
                instrument="AAPL",
                quantity=D("-3"),
                average_price=D("100.5"),
                realized_pnl=D("1.25"),
                **common,
            )
        ],
        topic.PNL: [
            PnlSnapshot(
                cash=D("100000"),
                realized_pnl=D("1"),
                unrealized_pnl=D("-2"),
                fees=D("0.1"),
                equity=D("99999"),
                gross_exposure=D("300"),
                net_exposure=D("-300"),
                **common,
            )
        ],
        topic.DLQ: [
            codec.failure(
                b"not json",
                DecodeReason.MALFORMED_JSON,
                "expected value",
                topic=topic.AUDIT,
                partition=0,
                offset=42,
                ts_init=TS,
            )
        ],
        topic.DRIFT: [
            DriftDetected(
                drift_id="d1",
                instrument="AAPL",
                model="lr",
                detector="adwin",
                stream="error",
                value=0.3,
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.RISK_EVENTS: [
            TradingStateChanged(
                event_id="e9",
                instrument="",
                state=TradingState.HALTED,
                previous=TradingState.ACTIVE,
                trigger="kill",
                reason="r",
                **common,
            )
        ],
        topic.RISK_METRICS: [
            RiskMetric(metrics_id="r1", metric="var_hist", value=0.01, limit_value=0.02, **common)
        ],
        topic.MODEL_METRICS: [
            ModelMetrics(
                metrics_id="mm1",
                instrument="AAPL",
                model="lr",
                version_id="v1",
                role=ModelRole.CHAMPION,
                n_labelled=10,
                n_pending=2,
                evicted=0,
                values={"accuracy": 0.5},
                memory_bytes=1234,
                detail="",
                ts_event=TS,
                ts_init=TS,
            )
        ],
        topic.MODEL_VERSIONS: [
            ModelVersion(
                version_id="v1",
                instrument="AAPL",
                model="lr",
                factory="logistic",
                params="{}",
                params_hash="h",
                code_version="abc",
                parent="",
                created_at=TS,
                ts_init=TS,
            )
        ],
        topic.MODEL_CHECKPOINTS: [
            ModelCheckpoint(
                checkpoint_id="ck1",
                instrument="AAPL",
                model="lr",
                models=("lr", "arf"),
                version_id="v1",
                params_hash="h",
                code_version="abc",
                seq=7,
                tick_id="t1",
                size_bytes=3,
                sha256="00",
                blob="eJw=",
                ts_event=TS,
                ts_init=TS,
            )
        ],
    }


SEED_EVENTS = _seed_events()
SEED_TICKS: list[dict[str, Any]] = [
    {
        "instrument": "AAPL",
        "seq": 7,
        "kind": "trade",
        "price": 101.5,
        "size": 3.0,
        "bid": 101.4,
        "ask": 101.6,
        "bid_size": 5.0,
        "ask_size": 6.0,
        "ts_event": TS,
        "ts_init": TS + 100,
    },
    {
        "instrument": "MSFT",
        "seq": 1,
        "kind": "quote",
        "bid": 300.0,
        "ask": 300.5,
        "ts_event": TS,
        "ts_init": TS,
    },
]


@dataclass(frozen=True, slots=True)
class Target:
    """A decoder under fuzzing: its name, the check of one input, and real seeds."""

    name: str
    decode: Callable[[bytes], object]
    run: Callable[[bytes], None]
    seeds: tuple[bytes, ...]


def _round_trip(
    decode: Callable[[bytes], object], expected: tuple[type, ...]
) -> Callable[[bytes], None]:
    def run(data: bytes) -> None:
        result = decode(data)
        if isinstance(result, DecodeFailure):
            codec.encode(result)
            return
        assert isinstance(result, expected), type(result)
        again = decode(codec.encode(result))
        assert again == result, (again, result)

    return run


def _decode_persisted(data: bytes) -> object:
    """First byte picks the persisted topic; the rest is the record (single or columnar),
    decoded as the persist flow decodes it."""
    name = _PERSISTED[data[0] % len(_PERSISTED)] if data else _PERSISTED[0]
    return codec.record_rows_decoder(name)(data[1:])


def _persisted(data: bytes) -> None:
    result = _decode_persisted(data)
    name = _PERSISTED[data[0] % len(_PERSISTED)] if data else _PERSISTED[0]
    if isinstance(result, DecodeFailure):
        codec.encode(result)
        return
    assert isinstance(result, list)
    for row in result:
        assert isinstance(row, dict)
        if not codec.is_progress_marker(row):
            columns_for(table_for_record(name, row), [row])
        codec.encode(row)


_PERSISTED = tuple(name for name in codec.RECORD_TYPES if name in TABLE_BY_TOPIC)


def _encoded(name: str) -> tuple[bytes, ...]:
    events = SEED_EVENTS[name]
    singles = tuple(codec.encode(event) for event in events)
    if name not in (topic.FEATURES, topic.PREDICTIONS):
        return singles
    # The trading flow writes these topics as columnar records (dataflows.flows.routing).
    columnar = tuple(record.value for _, record in to_outbound("")([*events, *events]))
    return singles + columnar


def _ticks(data: bytes) -> object:
    return codec.decode_tick(data, frozenset({"AAPL", "MSFT"}))


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target(
            "tick",
            _ticks,
            _round_trip(_ticks, (codec.Tick,)),  # type: ignore[attr-defined]
            tuple(codec.encode(tick) for tick in SEED_TICKS),
        ),
        Target(
            "control",
            codec.decode_control,
            _round_trip(codec.decode_control, (ControlCommand, LimitCommand)),
            _encoded(topic.CONTROL),
        ),
        Target(
            "model_command",
            codec.decode_model_command,
            _round_trip(codec.decode_model_command, (ModelCommand,)),
            _encoded(topic.MODEL_CONTROL),
        ),
        Target(
            "fill_report",
            codec.decode_fill_report,
            _round_trip(codec.decode_fill_report, (Fill, FillsThrough)),
            _encoded(topic.FILLS),
        ),
        Target(
            "order_report",
            codec.decode_order_report,
            _round_trip(codec.decode_order_report, (OrderEvent, OrderEventsThrough)),
            _encoded(topic.ORDER_EVENTS),
        ),
        Target(
            "order_request",
            codec.decode_order_request,
            _round_trip(codec.decode_order_request, (Order, CancelOrder, OrdersSent)),
            _encoded(topic.ORDERS),
        ),
        Target(
            "alert",
            codec.decode_alert,
            _round_trip(codec.decode_alert, (Alert,)),
            _encoded(topic.ALERTS),
        ),
        Target(
            "audit",
            codec.decode_audit,
            _round_trip(codec.decode_audit, (AuditEvent,)),
            _encoded(topic.AUDIT),
        ),
        Target(
            "persisted_record",
            _decode_persisted,
            _persisted,
            tuple(
                bytes([index]) + raw
                for index, name in enumerate(_PERSISTED)
                for raw in _encoded(name)
            ),
        ),
    )
}

# Values that have broken decoders elsewhere: wrong JSON types, bools posing as ints,
# integers beyond 64 bits, Decimal tuple forms, non-finite spellings, deep nesting.
NASTY_VALUES: tuple[object, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    2**31,
    2**32,
    2**63 - 1,
    2**63,
    2**64 - 1,
    -(2**63) - 1,
    0.0,
    -0.0,
    1.5,
    -1e308,
    1e308,
    5e-324,
    "",
    "x",
    "0",
    "1.5",
    "-1",
    "NaN",
    "nan",
    "inf",
    "-Infinity",
    "sNaN",
    "1e999999999",
    "1E+30",
    "0.0000000000000000001",
    "1_000",
    " 1",
    "yes",
    "true",
    "\u0000",
    "é" * 3,
    [],
    [0, [1], 18446744073709551615],
    [1, 2],
    {},
    {"a": {"b": [None]}},
    [[[[[[[[]]]]]]]],
)
_FIELD_NAMES = sorted(
    {
        key
        for events in SEED_EVENTS.values()
        for event in events
        for key in codec.loads(codec.encode(event))
    }
    | {key for tick in SEED_TICKS for key in tick}
)


def mutate_structure(data: bytes, rng: random.Random) -> bytes | None:
    """Edit one record's JSON structure; None when `data` is not a JSON object.

    The first byte of a persisted-record input is its topic selector: kept as is.
    """
    try:
        return _mutate_structure(data, rng)
    except (RecursionError, ValueError, TypeError):  # too deep to re-encode: bytes only
        return None


def _mutate_structure(data: bytes, rng: random.Random) -> bytes | None:
    head, body = b"", data
    obj = codec.loads_object(body)
    if obj is None and data:
        head, body = data[:1], data[1:]
        obj = codec.loads_object(body)
    if obj is None:
        return None
    keys = list(obj) or [rng.choice(_FIELD_NAMES)]
    key = rng.choice(keys)
    move = rng.randrange(6)
    if move == 0:
        obj.pop(key, None)
    elif move == 1:
        obj[rng.choice(_FIELD_NAMES)] = rng.choice(NASTY_VALUES)
    elif move == 2:
        # Nesting deeper than any parser's limit: written as text, no encoder allows it.
        depth = rng.randrange(1, 1100)
        obj.pop(key, None)
        rest = json.dumps(obj)[1:-1]
        nested = "[" * depth + json.dumps(rng.choice(NASTY_VALUES)) + "]" * depth
        return (
            head
            + ("{" + json.dumps(key) + ":" + nested + ("," + rest if rest else "") + "}").encode()
        )
    elif move == 3 and isinstance(obj.get(key), int | float) and not isinstance(obj[key], bool):
        obj[key] = obj[key] * rng.choice((-1, 2, 10**20, 0))
    elif move == 4:
        obj[key] = str(obj.get(key))
    else:
        obj[key] = rng.choice(NASTY_VALUES)
    # The standard library's encoder writes integers beyond 64 bits, which orjson refuses.
    return head + json.dumps(obj, ensure_ascii=False).encode("utf-8", errors="surrogatepass")
