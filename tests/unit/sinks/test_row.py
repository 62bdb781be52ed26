"""Mapping decoded records to column-oriented batches."""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal

import orjson
import pytest

from connectors import topic
from connectors.codec import encode
from risk.domain import (
    Approved,
    DenialReason,
    Denied,
    Order,
    OrderType,
    Prediction,
    Side,
    Tick,
    TickKind,
)
from risk.domain.error import ConfigError
from sinks.row import COLUMNS, TABLE_BY_TOPIC, columns_for, table_for_topic


def as_record(event: object) -> dict[str, object]:
    return orjson.loads(encode(event))


def tick(seq: int, **overrides: object) -> Tick:
    values: dict[str, object] = dict(
        tick_id=f"t{seq}",
        instrument="AAPL",
        seq=seq,
        kind=TickKind.TRADE,
        price=100.5,
        size=3.0,
        ts_event=1_700_000_000_000_000_000 + seq,
        ts_init=1_700_000_000_000_000_001,
    )
    values.update(overrides)
    return Tick(**values)  # type: ignore[arg-type]


def column(table: str, records: list[dict[str, object]], name: str) -> list[object]:
    names, data = columns_for(table, records)
    return data[names.index(name)]


def test_columns_for_ticks_keeps_ints_and_nulls_column_oriented() -> None:
    records = [as_record(tick(1)), as_record(tick(2, bid=100.0, ask=101.0))]
    names, data = columns_for("ticks", records)
    assert set(names) == {f.name for f in fields(Tick)}
    assert all(len(values) == 2 for values in data)
    assert column("ticks", records, "seq") == [1, 2]
    assert column("ticks", records, "ts_event") == [
        1_700_000_000_000_000_001,
        1_700_000_000_000_000_002,
    ]
    assert column("ticks", records, "bid") == [None, 100.0]
    assert column("ticks", records, "kind") == ["trade", "trade"]


def test_columns_for_order_parses_decimal_strings_and_null_limit_price() -> None:
    order = Order(
        client_order_id="c1",
        signal_id="s1",
        account="acc",
        instrument="AAPL",
        side=Side.BUY,
        quantity=Decimal("1.500000000"),
        order_type=OrderType.MARKET,
        limit_price=None,
        ts_event=5,
        ts_init=6,
    )
    records = [as_record(order), as_record(_with(order, limit_price=Decimal("99.25")))]
    assert column("orders", records, "quantity") == [Decimal("1.5")] * 2
    assert isinstance(column("orders", records, "quantity")[0], Decimal)
    assert column("orders", records, "limit_price") == [None, Decimal("99.25")]
    assert column("orders", records, "side") == ["buy", "buy"]


def _with(event: Order, **changes: object) -> Order:
    from dataclasses import replace

    return replace(event, **changes)  # type: ignore[arg-type]


def test_columns_for_decisions_fills_fields_each_outcome_lacks() -> None:
    common: dict[str, object] = dict(
        signal_id="s1",
        account="acc",
        instrument="AAPL",
        side=Side.SELL,
        quantity=Decimal("2"),
        reference_price=10.0,
        ts_event=1,
        ts_init=2,
    )
    approved = Approved(client_order_id="c1", **common)  # type: ignore[arg-type]
    denied = Denied(reason=DenialReason.MAX_POSITION, detail="5 > 4", **common)  # type: ignore[arg-type]
    records = [as_record(approved), as_record(denied)]
    assert column("risk_decisions", records, "outcome") == ["approved", "denied"]
    assert column("risk_decisions", records, "reason") == ["", "max_position"]
    assert column("risk_decisions", records, "detail") == ["", "5 > 4"]
    assert column("risk_decisions", records, "client_order_id") == ["c1", ""]


def test_columns_for_predictions_keeps_missing_label_null() -> None:
    prediction = Prediction(
        tick_id="t1",
        instrument="AAPL",
        model="lr",
        horizon_ns=10,
        probability_up=0.6,
        ts_event=1,
        ts_init=1,
    )
    records = [as_record(prediction)]
    assert column("predictions", records, "label") == [None]
    assert column("predictions", records, "version") == [0]


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_columns_for_empty_batch_gives_empty_columns(table: str) -> None:
    names, data = columns_for(table, [])
    assert names and data == [[] for _ in names]


def test_columns_for_unknown_table_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="nope"):
        columns_for("nope", [])


def test_columns_for_record_missing_required_field_raises() -> None:
    record = as_record(tick(1))
    del record["price"]
    with pytest.raises(KeyError):
        columns_for("ticks", [record])


def test_table_by_topic_covers_every_persisted_topic() -> None:
    # Commands are not persisted as such: what they did is (risk events, audit; the
    # gate's command journal is on hfl.audit too; its input journal is for resumes only).
    persisted = {spec.name for spec in topic.ALL_TOPICS} - {
        topic.CONTROL,
        topic.MODEL_CONTROL,
        topic.COMMAND_JOURNAL,
        topic.GATE_JOURNAL,
    }
    assert set(TABLE_BY_TOPIC) == persisted
    assert set(TABLE_BY_TOPIC.values()) <= set(COLUMNS)


def test_table_for_topic_strips_prefix_and_rejects_unknown() -> None:
    assert table_for_topic("x.md.ticks", prefix="x.") == "ticks"
    with pytest.raises(ConfigError):
        table_for_topic(topic.CONTROL)
