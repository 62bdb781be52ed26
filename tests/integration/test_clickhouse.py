"""ClickHouse sink against a real engine: schema, round trips, idempotence, read-only SQL."""

from __future__ import annotations

import json
import os
import random
import uuid
from decimal import Decimal
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError, ProgrammingError

from connectors.codec import encode
from risk.domain import (
    Alert,
    AlertSeverity,
    Approved,
    AuditEvent,
    Bar,
    CancelOrder,
    DecodeFailure,
    DecodeReason,
    DenialReason,
    Denied,
    DriftDetected,
    FeatureVector,
    Fill,
    ModelCheckpoint,
    ModelMetrics,
    ModelRole,
    ModelVersion,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderType,
    PnlSnapshot,
    Position,
    Prediction,
    RiskMetric,
    Side,
    Signal,
    Tick,
    TickKind,
    TradingState,
    TradingStateChanged,
)
from risk.domain.error import RecoverableError
from sinks.migration import available, migrate
from sinks.query import (
    QueryError,
    QueryRefusedError,
    QueryServer,
    format_json,
    port_file,
    query,
    query_http,
    read_port_file,
)
from sinks.row import COLUMNS, columns_for
from sinks.writer import BatchWriter

pytestmark = pytest.mark.integration

# Unique per test process so a shared server (HFL_TEST_CLICKHOUSE_URL) never mixes runs.
RUN = uuid.uuid4().hex[:8]
INSTRUMENT = f"I{RUN}"
ACCOUNT = f"A{RUN}"
T0 = 1_700_000_000_123_456_789
TIMESTAMPS = ("ts_event", "ts_init", "started_at", "finished_at", "created_at")


def record(event: object) -> dict[str, Any]:
    """What the persist flow sees: the event as the codec wrote it, decoded."""
    return orjson.loads(encode(event))


def q(value: str) -> Decimal:
    return Decimal(value)


def events_for(table: str) -> list[object]:
    """Two or more real domain events (or run rows) per table, exercising nulls and decimals."""
    ts = {"ts_event": T0, "ts_init": T0 + 7}
    ts2 = {"ts_event": T0 + 1_000, "ts_init": T0 + 1_007}
    decision = dict(
        account=ACCOUNT,
        instrument=INSTRUMENT,
        side=Side.BUY,
        quantity=q("3.000000001"),
        reference_price=None,
    )
    match table:
        case "ticks":
            return [
                Tick(
                    tick_id="t1",
                    instrument=INSTRUMENT,
                    seq=1,
                    kind=TickKind.TRADE,
                    price=100.25,
                    size=2.0,
                    **ts,
                ),
                Tick(
                    tick_id="t2",
                    instrument=INSTRUMENT,
                    seq=2,
                    kind=TickKind.QUOTE,
                    price=100.5,
                    size=0.0,
                    bid=100.0,
                    ask=101.0,
                    bid_size=5.0,
                    ask_size=6.0,
                    **ts2,
                    venue="coinbase",
                    venue_seq=12,
                    flags=("failover",),
                ),
                Tick(
                    tick_id="t3",
                    instrument=INSTRUMENT,
                    seq=3,
                    kind=TickKind.TRADE,
                    price=100.5,
                    size=0.5,
                    ts_event=T0 + 2_000,
                    ts_init=T0 + 2_007,
                    venue="kraken",
                    venue_trade_id=2**40,
                ),
            ]
        case "history_bars":
            return [
                {"venue": "binance", "instrument": INSTRUMENT, "interval_s": 60, "open": 1.5,
                 "high": 2.0, "low": 1.0, "close": 1.75, "volume": 10.0, **ts},
                {"venue": "coinbase", "instrument": INSTRUMENT, "interval_s": 60, "open": 1.5,
                 "high": 2.0, "low": 1.0, "close": 1.75, "volume": 0.0, **ts},
            ]  # fmt: skip
        case "bars":
            return [
                Bar(
                    instrument=INSTRUMENT,
                    interval_s=60,
                    open=1.0,
                    high=2.0,
                    low=0.5,
                    close=1.5,
                    volume=10.0,
                    vwap=1.2,
                    trade_count=4,
                    **ts,
                ),
                Bar(
                    instrument=INSTRUMENT,
                    interval_s=60,
                    open=1.5,
                    high=2.5,
                    low=1.5,
                    close=2.0,
                    volume=0.0,
                    vwap=2.0,
                    trade_count=0,
                    **ts2,
                ),
            ]
        case "features":
            return [
                FeatureVector(
                    tick_id="t1", instrument=INSTRUMENT, values={"ret_1": 0.01, "vol_20": 0.2}, **ts
                ),
                FeatureVector(tick_id="t2", instrument=INSTRUMENT, values={}, **ts2),
            ]
        case "predictions":
            return [
                Prediction(
                    tick_id="t1",
                    instrument=INSTRUMENT,
                    model="lr",
                    horizon_ns=10**9,
                    probability_up=0.6,
                    **ts,
                ),
                Prediction(
                    tick_id="t2",
                    instrument=INSTRUMENT,
                    model="lr",
                    horizon_ns=10**9,
                    probability_up=0.4,
                    label=1,
                    realized_return=0.0025,
                    error=0.6,
                    version=1,
                    **ts2,
                ),
                Prediction(
                    tick_id="t3",
                    instrument=INSTRUMENT,
                    model="linear",
                    horizon_ns=10**9,
                    probability_up=1.0,
                    expected_return=0.001,
                    label=0,
                    realized_return=-0.002,
                    error=0.003,
                    version=1,
                    **ts2,
                ),
            ]
        case "signals":
            return [
                Signal(
                    signal_id=f"s1{RUN}",
                    tick_id="t1",
                    instrument=INSTRUMENT,
                    model="lr",
                    direction=1,
                    probability_up=0.7,
                    reference_price=100.0,
                    **ts,
                ),
                Signal(
                    signal_id=f"s2{RUN}",
                    tick_id="t2",
                    instrument=INSTRUMENT,
                    model="lr",
                    direction=-1,
                    probability_up=0.2,
                    reference_price=99.0,
                    **ts2,
                ),
            ]
        case "risk_decisions":
            return [
                Approved(signal_id="s1", client_order_id="c1", **decision, **ts),
                Denied(
                    signal_id="s2",
                    reason=DenialReason.MAX_ORDER_NOTIONAL,
                    detail="1000 > 500",
                    **decision,
                    **ts2,
                ),
            ]
        case "orders":
            return [
                Order(
                    client_order_id=f"c1{RUN}",
                    signal_id="s1",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    side=Side.BUY,
                    quantity=q("1.5"),
                    order_type=OrderType.MARKET,
                    limit_price=None,
                    **ts,
                ),
                Order(
                    client_order_id=f"c2{RUN}",
                    signal_id="s2",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    side=Side.SELL,
                    quantity=q("2"),
                    order_type=OrderType.LIMIT,
                    limit_price=q("99.123456789"),
                    **ts2,
                ),
            ]
        case "order_events":
            return [
                OrderEvent(
                    event_id=f"e1{RUN}",
                    client_order_id="c1",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    kind=OrderEventKind.ACCEPTED,
                    filled_quantity=q("0"),
                    leaves_quantity=q("1.5"),
                    **ts,
                ),
                OrderEvent(
                    event_id=f"e2{RUN}",
                    client_order_id="c1",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    kind=OrderEventKind.REJECTED,
                    filled_quantity=q("0"),
                    leaves_quantity=q("0"),
                    reason="halted",
                    **ts2,
                ),
            ]
        case "fills":
            return [
                Fill(
                    fill_id=f"f1{RUN}",
                    client_order_id="c1",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    side=Side.BUY,
                    quantity=q("1"),
                    price=q("100.25"),
                    fee=q("0.01"),
                    leaves_quantity=q("0.5"),
                    tick_id="t1",
                    **ts,
                ),
                Fill(
                    fill_id=f"f2{RUN}",
                    client_order_id="c1",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    side=Side.BUY,
                    quantity=q("0.5"),
                    price=q("100.5"),
                    fee=q("0.005"),
                    leaves_quantity=q("0"),
                    tick_id="t2",
                    **ts2,
                ),
            ]
        case "positions":
            return [
                Position(
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    quantity=q("1"),
                    average_price=q("100.25"),
                    realized_pnl=q("0"),
                    **ts,
                ),
                Position(
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    quantity=q("-0.5"),
                    average_price=q("100.5"),
                    realized_pnl=q("-12.345678901"),
                    **ts2,
                ),
            ]
        case "pnl":
            amounts = dict(
                cash=q("1000"),
                realized_pnl=q("1.5"),
                unrealized_pnl=q("-0.25"),
                fees=q("0.015"),
                equity=q("1001.235"),
                gross_exposure=q("150.75"),
                net_exposure=q("-50.5"),
            )
            return [
                PnlSnapshot(account=ACCOUNT, **amounts, **ts),
                PnlSnapshot(account=ACCOUNT, **amounts, **ts2),
            ]
        case "dlq":
            return [
                DecodeFailure(
                    failure_id=f"d{n}{RUN}",
                    topic=f"T{RUN}",
                    partition=0,
                    offset=n,
                    reason=DecodeReason.MALFORMED_JSON,
                    detail="eof",
                    raw='{"price": ',
                    raw_size=10,
                    ts_init=T0,
                )
                for n in (1, 2)
            ]
        case "drift_events":
            return [
                DriftDetected(
                    drift_id=f"dr{n}{RUN}",
                    instrument=INSTRUMENT,
                    model="logistic",
                    detector="adwin",
                    stream="error",
                    value=0.25 * n,
                    **stamp,
                )
                for n, stamp in ((1, ts), (2, ts2))
            ]
        case "risk_events":
            return [
                TradingStateChanged(
                    event_id=f"se{n}{RUN}",
                    account=ACCOUNT,
                    instrument=instrument,
                    state=state,
                    previous=TradingState.ACTIVE,
                    trigger="kill",
                    reason="test",
                    **stamp,
                )
                for n, instrument, state, stamp in (
                    (1, "", TradingState.HALTED, ts),
                    (2, INSTRUMENT, TradingState.REDUCING, ts2),
                )
            ]
        case "alerts":
            return [
                Alert(
                    alert_id=f"al{n}{RUN}",
                    name="stale_data",
                    severity=AlertSeverity.WARNING,
                    source="trading",
                    subject=INSTRUMENT,
                    message=f"no tick for {n} s",
                    **stamp,
                )
                for n, stamp in ((1, ts), (2, ts2))
            ]
        case "audit":
            return [
                AuditEvent(
                    audit_id=f"au{n}{RUN}",
                    actor="ops",
                    action="kill",
                    subject=ACCOUNT,
                    reason="test",
                    detail=json.dumps({"n": n}),
                    **stamp,
                )
                for n, stamp in ((1, ts), (2, ts2))
            ]
        case "model_metrics":
            return [
                ModelMetrics(
                    metrics_id=f"mm{n}{RUN}",
                    instrument=INSTRUMENT,
                    model=model,
                    version_id=f"v{n}",
                    role=role,
                    n_labelled=100 * n,
                    n_pending=n,
                    evicted=0,
                    values={"accuracy": 0.5 + n / 100, "rolling_accuracy": 0.25},
                    memory_bytes=4096 * n,
                    detail=detail,
                    **stamp,
                )
                for n, model, role, detail, stamp in (
                    (1, "logistic", ModelRole.CHAMPION, "", ts),
                    (2, "bandit", ModelRole.CHALLENGER, "best=1 learning_rate=0.01", ts2),
                )
            ]
        case "model_versions":
            return [
                ModelVersion(
                    version_id=f"v{n}{RUN}",
                    instrument=INSTRUMENT,
                    model="hoeffding_tree",
                    factory="hoeffding_tree",
                    params='{"factory": "hoeffding_tree", "params": {"max_depth": 8.0}}',
                    params_hash="h" * 32,
                    code_version="abc123",
                    parent=parent,
                    created_at=T0 + n,
                    ts_init=T0 + n,
                )
                for n, parent in ((1, ""), (2, f"v1{RUN}"))
            ]
        case "model_checkpoints":
            return [
                ModelCheckpoint(
                    checkpoint_id=f"c{n}{RUN}",
                    instrument=INSTRUMENT,
                    model="logistic",
                    models=("logistic", "linear"),
                    version_id=f"v{n}",
                    params_hash="h" * 32,
                    code_version="abc123",
                    seq=1_000 * n,
                    tick_id=f"t{n}",
                    size_bytes=len(blob) * 3 // 4,
                    sha256="f" * 64,
                    blob=blob,
                    **stamp,
                )
                for n, blob, stamp in ((1, "eJwDAAAAAAE=", ts), (2, "QUJD" * 1000, ts2))
            ]
        case "order_cancels":
            return [
                CancelOrder(
                    cancel_id=f"x{n}{RUN}",
                    client_order_id=f"o{n}{RUN}",
                    account=ACCOUNT,
                    instrument=INSTRUMENT,
                    reason="kill: test",
                    **stamp,
                )
                for n, stamp in ((1, ts), (2, ts2))
            ]
        case "risk_metrics":
            return [
                RiskMetric(
                    metrics_id=f"m{n}{RUN}",
                    account=ACCOUNT,
                    metric=metric,
                    value=value,
                    limit_value=limit,
                    **stamp,
                )
                for n, metric, value, limit, stamp in (
                    (1, "var_hist", 0.0123456789, 0.02, ts),
                    (2, f"correlation:{INSTRUMENT}:MSFT", -0.25, 0.0, ts2),
                )
            ]
        case "runs":
            return [
                {
                    "run_id": f"R{RUN}",
                    "started_at": T0,
                    "finished_at": None,
                    "config": json.dumps({"mode": "paper"}),
                    "code_version": "abc123",
                    "status": "running",
                    "version": 1,
                },
                {
                    "run_id": f"R{RUN}b",
                    "started_at": T0,
                    "finished_at": T0 + 10**9,
                    "config": "{}",
                    "code_version": "abc123",
                    "status": "finished",
                    "version": 2,
                },
            ]
    raise AssertionError(table)


FILTER = {
    "risk_decisions": ("account", ACCOUNT),
    "positions": ("account", ACCOUNT),
    "pnl": ("account", ACCOUNT),
    "dlq": ("topic", f"T{RUN}"),
    "alerts": ("subject", INSTRUMENT),
    "risk_events": ("account", ACCOUNT),
    "audit": ("subject", ACCOUNT),
    "risk_metrics": ("account", ACCOUNT),
    "runs": ("startsWith(run_id, %(v)s)", f"R{RUN}"),
}


def read_back(client: Client, table: str, names: list[str]) -> list[tuple[Any, ...]]:
    selected = ", ".join(
        f"toUnixTimestamp64Nano({name})" if name in TIMESTAMPS else f"`{name}`" for name in names
    )
    column, value = FILTER.get(table, ("instrument", INSTRUMENT))
    where = column if "%(v)s" in column else f"{column} = %(v)s"
    sql = f"SELECT {selected} FROM {table} FINAL WHERE {where}"
    return sorted(client.query(sql, parameters={"v": value}).result_rows, key=repr)


def count(client: Client, table: str, *, final: bool = False) -> int:
    column, value = FILTER.get(table, ("instrument", INSTRUMENT))
    where = column if "%(v)s" in column else f"{column} = %(v)s"
    sql = f"SELECT count() FROM {table} {'FINAL' if final else ''} WHERE {where}"
    return int(client.query(sql, parameters={"v": value}).result_rows[0][0])


def test_migrate_twice_applies_nothing_the_second_time(clickhouse: Client) -> None:
    assert migrate(clickhouse) == []
    versions = {
        row[0] for row in clickhouse.query("SELECT version FROM schema_migrations").result_rows
    }
    assert {m.version for m in available()} <= versions
    tables = {row[0] for row in clickhouse.query("SHOW TABLES").result_rows}
    assert set(COLUMNS) <= tables


@pytest.mark.parametrize("table", sorted(COLUMNS))
def test_write_each_table_reads_back_identical_values(clickhouse: Client, table: str) -> None:
    records = [e if isinstance(e, dict) else record(e) for e in events_for(table)]
    assert BatchWriter(clickhouse).write(table, records) == len(records)
    names, data = columns_for(table, records)
    assert read_back(clickhouse, table, names) == sorted(zip(*data, strict=True), key=repr)


def test_write_identical_batch_twice_is_deduplicated_by_token(clickhouse: Client) -> None:
    records = [record(e) for e in events_for("ticks")]
    records = [{**r, "instrument": f"D{RUN}"} for r in records]
    writer = BatchWriter(clickhouse)
    writer.write("ticks", records)
    writer.write("ticks", records)  # a retry or a replay of the same Kafka batch
    sql = "SELECT count() FROM ticks WHERE instrument = %(i)s"
    # No FINAL: the second insert never created a part, not merely collapsed later.
    assert clickhouse.query(sql, parameters={"i": f"D{RUN}"}).result_rows[0][0] == len(records)


def test_later_prediction_version_replaces_unlabelled_row(clickhouse: Client) -> None:
    base = dict(
        tick_id=f"p{RUN}",
        instrument=f"P{RUN}",
        model="lr",
        horizon_ns=1,
        probability_up=0.5,
        ts_event=T0,
        ts_init=T0,
    )
    labelled = record(Prediction(**base, label=0, version=1))  # type: ignore[arg-type]
    unlabelled = record(Prediction(**base))  # type: ignore[arg-type]
    writer = BatchWriter(clickhouse)
    writer.write("predictions", [labelled])
    writer.write("predictions", [unlabelled])  # arrives late, must not win
    rows = clickhouse.query(
        "SELECT label, version FROM predictions FINAL WHERE instrument = %(i)s",
        parameters={"i": f"P{RUN}"},
    ).result_rows
    assert rows == [(0, 1)]


class FlakyClient:
    """A real client whose first `failures` inserts raise like a dropped connection."""

    def __init__(self, delegate: Client | None, failures: int, error: Exception) -> None:
        self.delegate = delegate
        self.failures = failures
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def insert(self, table: str, data: Any, column_names: Any = None, **kwargs: Any) -> Any:
        self.calls.append(kwargs["settings"])
        if len(self.calls) <= self.failures:
            raise self.error
        assert self.delegate is not None
        return self.delegate.insert(table, data, column_names=column_names, **kwargs)


def test_write_retries_transient_failures_then_succeeds(clickhouse: Client) -> None:
    records = [{**record(e), "instrument": f"F{RUN}"} for e in events_for("ticks")]
    flaky = FlakyClient(clickhouse, failures=2, error=OperationalError("connection reset"))
    delays: list[float] = []
    writer = BatchWriter(flaky, base_delay_s=0.2, sleep=delays.append, rng=random.Random(1))
    assert writer.write("ticks", records) == len(records)
    assert len(flaky.calls) == 3
    assert len({c["insert_deduplication_token"] for c in flaky.calls}) == 1  # identical resend
    assert 0.1 <= delays[0] <= 0.2 and 0.2 <= delays[1] <= 0.4
    rows = clickhouse.query(
        "SELECT count() FROM ticks WHERE instrument = %(i)s", parameters={"i": f"F{RUN}"}
    ).result_rows
    assert rows[0][0] == len(records)


def test_write_raises_recoverable_error_after_max_attempts() -> None:
    cause = OperationalError("server gone")
    flaky = FlakyClient(None, failures=99, error=cause)
    writer = BatchWriter(flaky, max_attempts=4, sleep=lambda _: None)
    with pytest.raises(RecoverableError, match="ticks") as raised:
        writer.write("ticks", [record(e) for e in events_for("ticks")])
    assert raised.value.__cause__ is cause
    assert len(flaky.calls) == 4


def test_write_permanent_error_is_not_retried() -> None:
    flaky = FlakyClient(None, failures=99, error=ProgrammingError("no such column"))
    with pytest.raises(ProgrammingError):
        BatchWriter(flaky, sleep=lambda _: None).write("ticks", [record(events_for("ticks")[0])])
    assert len(flaky.calls) == 1


def test_query_server_answers_select_and_refuses_writes(
    clickhouse: Client, clickhouse_url: str
) -> None:
    BatchWriter(clickhouse).write("bars", [record(e) for e in events_for("bars")])
    with QueryServer(clickhouse_url) as server:
        port = server.start()
        if port_file(clickhouse_url) is not None:
            assert read_port_file(clickhouse_url) == port
        token = server.token
        columns, rows = query_http(
            port,
            f"SELECT instrument, trade_count FROM bars FINAL WHERE instrument = '{INSTRUMENT}'"
            " ORDER BY ts_event",
            token=token,
        )
        assert columns == ["instrument", "trade_count"]
        assert rows == [(INSTRUMENT, 4), (INSTRUMENT, 0)]
        for statement in (
            "INSERT INTO bars (instrument) VALUES ('x')",
            "DROP TABLE bars",
            "SELECT 1 SETTINGS readonly = 0",
        ):
            with pytest.raises(QueryRefusedError):
                query_http(port, statement, token=token)
        with pytest.raises(QueryError, match=r"UNKNOWN_TABLE|Unknown table"):
            query_http(port, "SELECT * FROM no_such_table", token=token)
        assert query(clickhouse_url, "SELECT 41 + 1 AS answer") == (["answer"], [(42,)])
    assert read_port_file(clickhouse_url) is None
    assert count(clickhouse, "bars") == 2  # the table survived the DROP attempt


def test_query_without_server_reads_directly(clickhouse: Client, clickhouse_url: str) -> None:
    assert read_port_file(clickhouse_url) is None
    columns, rows = query(clickhouse_url, "SELECT count() AS n FROM schema_migrations")
    assert columns == ["n"] and rows[0][0] >= 1
    with pytest.raises(QueryError):
        query(clickhouse_url, "CREATE TABLE hfl_nope (x UInt8) ENGINE = Memory")


def test_format_json_gives_one_object_per_row(clickhouse: Client, clickhouse_url: str) -> None:
    BatchWriter(clickhouse).write("fills", [record(e) for e in events_for("fills")])
    columns, rows = query(
        clickhouse_url,
        f"SELECT fill_id, price, ts_event FROM fills FINAL WHERE account = '{ACCOUNT}' "
        "ORDER BY fill_id",
    )
    parsed = json.loads(format_json(columns, rows))
    assert [set(obj) for obj in parsed] == [{"fill_id", "price", "ts_event"}] * 2
    assert parsed[0]["fill_id"] == f"f1{RUN}"
    assert Decimal(parsed[0]["price"]) == Decimal("100.25")
    assert parsed[0]["ts_event"].startswith("2023-11-14T22:13:20.123456")


def test_stale_port_file_falls_back_to_direct_query(clickhouse_url: str) -> None:
    target = port_file(clickhouse_url)
    if target is None:
        pytest.skip("port files exist only for on-disk embedded engines")
    with open(target, "w") as handle:
        handle.write("1\n")  # nothing listens on port 1
    try:
        assert query(clickhouse_url, "SELECT 1 AS one") == (["one"], [(1,)])
    finally:
        os.remove(target)
