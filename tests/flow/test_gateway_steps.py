"""The gateway flow's steps under Bytewax, the loop back to the gate, and Kafka routing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest

from connectors import topic
from connectors.codec import encode, loads
from connectors.kafka.record import KafkaRecord
from dataflows.flows.account import handle_account, make_account_state
from dataflows.flows.gateway import BookState, TickBatch, handle, valid_ticks
from dataflows.flows.routing import ROUTES, feature_batches, prediction_batches, to_outbound
from dataflows.flows.trading import to_account
from dataflows.settings import Settings
from dataflows.settings_domain import paper_config
from online_models.instrument import explode
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
    Denied,
    DriftDetected,
    FeatureBatch,
    FeatureVector,
    Fill,
    FillsThrough,
    LimitCommand,
    ModelAction,
    ModelCheckpoint,
    ModelCommand,
    ModelMetrics,
    ModelVersion,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderEventsThrough,
    OrdersSent,
    PnlSnapshot,
    Position,
    Prediction,
    PredictionBatch,
    RiskMetric,
    Signal,
    TradingState,
    TradingStateChanged,
)
from risk.domain.ids import tick_id

RunGateway = Callable[..., list[object]]
SEQUENCE_REASONS = (DecodeReason.DUPLICATE_SEQUENCE, DecodeReason.BACKWARDS_SEQUENCE)


@pytest.fixture(scope="module")
def book_events(
    run_gateway: RunGateway, tick_records: list[KafkaRecord], orders: list[Order]
) -> list[object]:
    """Order events and fills for the trading steps' orders against the clean stream."""
    return run_gateway(tick_records, orders)


def sorted_bytes(events: Sequence[object]) -> list[bytes]:
    """Encoded events in a canonical order (keys interleave differently per run)."""
    return sorted(encode(event) for event in events)


def test_orders_with_ticks_are_accepted_once_and_filled(
    book_events: list[object], orders: list[Order]
) -> None:
    events = [e for e in book_events if isinstance(e, OrderEvent)]
    fills = [e for e in book_events if isinstance(e, Fill)]
    by_id = {order.client_order_id: order for order in orders}

    accepted = [e.client_order_id for e in events if e.kind is OrderEventKind.ACCEPTED]
    assert sorted(accepted) == sorted(by_id)
    assert not [e for e in events if e.kind is OrderEventKind.REJECTED]
    assert fills
    filled: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        order = by_id[fill.client_order_id]
        assert (fill.side, fill.instrument, fill.account) == (
            order.side,
            order.instrument,
            order.account,
        )
        assert fill.ts_event >= order.ts_event
        filled[fill.client_order_id] += fill.quantity
    assert all(filled[coid] <= by_id[coid].quantity for coid in filled)
    final = {e.client_order_id: e for e in events}
    assert all(final[coid].filled_quantity == filled[coid] for coid in filled)


def test_book_outputs_independent_of_how_orders_interleave_with_ticks(
    run_gateway: RunGateway,
    tick_records: list[KafkaRecord],
    orders: list[Order],
    book_events: list[object],
) -> None:
    one_by_one = run_gateway(tick_records, orders, tick_batch=97, order_batch=1)
    all_at_once = run_gateway(tick_records, orders, tick_batch=1000, order_batch=len(orders))

    assert sorted_bytes(one_by_one) == sorted_bytes(book_events)
    assert sorted_bytes(all_at_once) == sorted_bytes(book_events)


def test_cancel_request_on_orders_topic_cancels_working_order(
    run_gateway: RunGateway, orders: list[Order]
) -> None:
    order = orders[0]
    cancel = CancelOrder(
        cancel_id="x1",
        client_order_id=order.client_order_id,
        account=order.account,
        instrument=order.instrument,
        reason="kill: test",
        ts_event=order.ts_event + 1,
        ts_init=order.ts_event + 1,
    )
    out = run_gateway([], [order, cancel])  # type: ignore[list-item]
    kinds = [(e.kind, e.filled_quantity, e.leaves_quantity) for e in out]  # type: ignore[attr-defined]
    assert kinds == [
        (OrderEventKind.ACCEPTED, 0, order.quantity),
        (OrderEventKind.CANCELED, 0, 0),
    ]
    assert out[1].ts_event == cancel.ts_event  # type: ignore[attr-defined]


def test_the_gates_promise_leaves_a_book_only_ticks_an_order_to_come_can_trade_on(
    settings: Settings, tick_records: list[KafkaRecord]
) -> None:
    decoded = valid_ticks(frozenset(settings.trading.instruments))(tick_records)
    batch = next(item for _, item in decoded if len(item.ticks))  # type: ignore[union-attr]
    times = [ts for ts, _ in batch.ticks.identities()]  # type: ignore[union-attr]
    state = BookState(paper_config(settings))
    handle(state, [batch])
    through = times[len(times) // 2]
    sent = OrdersSent(
        progress_id="p", account="acct", through_ns=through, ts_event=through, ts_init=through
    )
    handle(state, [sent])
    assert state.book is not None
    tradable = [ts for ts in times if ts >= through + state.config.latency_ns]
    assert 0 < state.book.buffered_tick_count() == len(tradable) < len(times)


def test_valid_ticks_drops_invalid_records_silently(settings: Settings, bad_stream: Any) -> None:
    decode = valid_ticks(frozenset(settings.trading.instruments))
    dropped = {
        offset for offset, reason in bad_stream.expected.items() if reason not in SEQUENCE_REASONS
    }

    decoded = decode(bad_stream.records)
    assert all(isinstance(batch, TickBatch) for _, batch in decoded)
    batches: list[TickBatch] = [batch for _, batch in decoded]  # type: ignore[misc]
    out = [(name, *key) for name, batch in decoded for key in batch.ticks.identities()]  # type: ignore[union-attr]

    kept = [r for r in bad_stream.records if r.offset not in dropped]
    assert len(out) == len(kept)
    newest = max(ts for _, ts, _ in out)
    assert [key for key, _ in decoded] == sorted(settings.trading.instruments)
    assert {b.through_ns for b in batches} == {newest}
    assert sorted(tick_id(name, seq, ts) for name, ts, seq in out) == sorted(
        tick_id(obj["instrument"], obj["seq"], obj["ts_event"])
        for obj in map(loads, (r.value for r in kept))
    )


def test_bad_and_replayed_ticks_leave_book_outputs_unchanged(
    run_gateway: RunGateway, bad_stream: Any, orders: list[Order], book_events: list[object]
) -> None:
    out = run_gateway(bad_stream.records, orders)

    assert not [e for e in out if isinstance(e, DecodeFailure)]
    assert sorted_bytes(out) == sorted_bytes(book_events)


def closed_loop(
    settings: Settings, trading_events: list[object], book_events: list[object]
) -> list[object]:
    """Replay the gate's inputs, then feed it the gateway's order events and fills."""
    inputs: list[Any] = [value for _, value in to_account(settings.trading.account)(trading_events)]
    inputs += [e for e in book_events if isinstance(e, OrderEvent | Fill)]
    return handle_account(make_account_state(settings), inputs)


def test_fills_fed_back_to_gate_yield_one_position_each(
    settings: Settings, trading_events: list[object], book_events: list[object]
) -> None:
    out = closed_loop(settings, trading_events, book_events)

    fills = [e for e in book_events if isinstance(e, Fill)]
    positions = [e for e in out if isinstance(e, Position)]
    assert len(positions) == len(fills)
    net: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        net[fill.instrument] += fill.side.sign * fill.quantity
    last = {position.instrument: position for position in positions}
    assert {name: p.quantity for name, p in last.items()} == dict(net)


EXPECTED_ROUTES: dict[type, tuple[str, str]] = {
    Bar: (topic.BARS, "instrument"),
    FeatureVector: (topic.FEATURES, "instrument"),
    Prediction: (topic.PREDICTIONS, "instrument"),
    Signal: (topic.SIGNALS, "instrument"),
    Approved: (topic.DECISIONS, "account"),
    Denied: (topic.DECISIONS, "account"),
    Order: (topic.ORDERS, "account"),
    OrderEvent: (topic.ORDER_EVENTS, "account"),
    Fill: (topic.FILLS, "account"),
    Position: (topic.POSITIONS, "account"),
    PnlSnapshot: (topic.PNL, "account"),
    DecodeFailure: (topic.DLQ, "topic"),
    ModelMetrics: (topic.MODEL_METRICS, "instrument"),
    ModelVersion: (topic.MODEL_VERSIONS, "instrument"),
}
# Feature vectors and predictions leave as columnar records, one per instrument per batch.
COLUMNAR: dict[type, Callable[[str, list[Any]], Sequence[object]]] = {
    FeatureVector: feature_batches,
    Prediction: prediction_batches,
}
# Routed types the trading and gateway flows of the fixtures do not produce yet.
CONSTRUCTED_ROUTES: dict[object, tuple[str, str]] = {
    DriftDetected(
        drift_id="d1",
        instrument="AAA",
        model="m",
        detector="adwin",
        stream="error",
        value=0.5,
        ts_event=1,
        ts_init=1,
    ): (topic.DRIFT, "instrument"),
    Alert(
        alert_id="a1",
        name="stale_data",
        severity=AlertSeverity.WARNING,
        source="trading",
        subject="AAA",
        message="no tick for 5 s",
        ts_event=1,
        ts_init=1,
    ): (topic.ALERTS, "name"),
    AuditEvent(
        audit_id="u1",
        actor="ops",
        action="kill",
        subject="acct",
        reason="test",
        detail="{}",
        ts_event=1,
        ts_init=1,
    ): (topic.AUDIT, "subject"),
    LimitCommand(
        command_id="l1",
        account="acct",
        instrument="AAA",
        max_position=Decimal(50),
        reason="test",
        actor="ops",
        ts_event=1,
        ts_init=1,
    ): (topic.CONTROL, "account"),
    ModelCheckpoint(
        checkpoint_id="c1",
        instrument="AAA",
        model="m",
        models=("m",),
        version_id="v1",
        params_hash="h",
        code_version="abc",
        seq=1,
        tick_id="t1",
        size_bytes=3,
        sha256="0" * 64,
        blob="AAAA",
        ts_event=1,
        ts_init=1,
    ): (topic.MODEL_CHECKPOINTS, "instrument"),
    CancelOrder(
        cancel_id="x1",
        client_order_id="o1",
        account="acct",
        instrument="AAA",
        reason="kill: test",
        ts_event=1,
        ts_init=1,
    ): (topic.ORDERS, "account"),
    OrdersSent(progress_id="p1", account="acct", through_ns=5, ts_event=5, ts_init=5): (
        topic.ORDERS,
        "account",
    ),
    FillsThrough(
        progress_id="p2", account="acct", instrument="AAA", through_ns=5, ts_event=5, ts_init=5
    ): (topic.FILLS, "account"),
    OrderEventsThrough(
        progress_id="p3", account="acct", instrument="AAA", through_ns=5, ts_event=5, ts_init=5
    ): (topic.ORDER_EVENTS, "account"),
    RiskMetric(
        metrics_id="m1",
        account="acct",
        metric="var_hist",
        value=0.01,
        limit_value=0.02,
        ts_event=1,
        ts_init=1,
    ): (topic.RISK_METRICS, "account"),
    ControlCommand(
        command_id="k1",
        account="acct",
        action=ControlAction.KILL,
        reason="test",
        actor="ops",
        ts_event=1,
        ts_init=1,
    ): (topic.CONTROL, "account"),
    TradingStateChanged(
        event_id="s1",
        account="acct",
        instrument="",
        state=TradingState.HALTED,
        previous=TradingState.ACTIVE,
        trigger="kill",
        reason="test",
        ts_event=1,
        ts_init=1,
    ): (topic.RISK_EVENTS, "account"),
    ModelCommand(
        command_id="c1",
        action=ModelAction.PROMOTE,
        model="m",
        instrument="AAA",
        actor="ops",
        reason="test",
        ts_event=1,
        ts_init=1,
    ): (topic.MODEL_CONTROL, "instrument"),
}


def killed_denial(settings: Settings, trading_events: list[object]) -> object:
    """The gate's decision on the first signal with the kill switch on: a denial."""
    state = make_account_state(settings)
    state.gate.on_control(
        ControlCommand(
            command_id="k1",
            account=settings.trading.account,
            action=ControlAction.KILL,
            reason="test",
            actor="ops",
            ts_event=0,
            ts_init=0,
        )
    )
    signal = next(e for e in trading_events if isinstance(e, Signal))
    decision, _ = state.gate.on_signal(signal)
    return decision


def test_to_outbound_routes_every_event_type_to_prefixed_topic_and_key(
    settings: Settings,
    trading_events: list[object],
    book_events: list[object],
    bad_stream: Any,
    run_trading: Callable[..., list[object]],
) -> None:
    failures = [e for e in run_trading(bad_stream.records[:1200]) if isinstance(e, DecodeFailure)]
    everything = [
        *explode(trading_events),  # features and predictions leave as columnar records
        *book_events,
        *closed_loop(settings, trading_events, book_events),
        *failures,
        killed_denial(settings, trading_events),
    ]
    samples = {kind: next(e for e in everything if type(e) is kind) for kind in EXPECTED_ROUTES}

    records = to_outbound("p.")(list(samples.values()))

    assert set(ROUTES) == set(EXPECTED_ROUTES) | {FeatureBatch, PredictionBatch} | {
        type(e) for e in CONSTRUCTED_ROUTES
    }
    expected = []
    for kind, event in samples.items():
        name, key_field = EXPECTED_ROUTES[kind]
        columnar = COLUMNAR.get(kind)
        (value,) = columnar(event.instrument, [event]) if columnar else (event,)
        expected.append(("p." + name, getattr(event, key_field).encode(), encode(value)))
    assert all(name == record.topic for name, record in records)
    assert sorted((r.topic, r.key, r.value) for _, r in records) == sorted(expected)


def test_to_outbound_routes_drift_state_alert_and_audit_to_their_topics() -> None:
    records = to_outbound("p.")(list(CONSTRUCTED_ROUTES))

    for (event, (name, key_field)), (topic_name, record) in zip(
        CONSTRUCTED_ROUTES.items(), records, strict=True
    ):
        assert topic_name == record.topic == "p." + name
        assert record.key == getattr(event, key_field).encode()
        assert record.value == encode(event)
