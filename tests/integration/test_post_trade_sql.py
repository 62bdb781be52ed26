"""Post-trade SQL views (sinks/migrations/0006_post_trade.sql) on real prices in ClickHouse.

Thirty real closes of two S&P 500 stocks (River's SP500Stocks) are written as ticks of
two test-only instruments; a rule orders on each close, the gateway-like fills trade on
later ticks (one order fills in two parts, one never fills). Every figure the views
return is recomputed here in Python from the same rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client
from river.datasets import SP500Stocks

from sinks.writer import BatchWriter

pytestmark = pytest.mark.integration

DAY_NS = 86_400 * 10**9
ACCOUNT = "post-trade-test"
NAMES = {"PTA": "AAPL", "PTB": "MSFT"}
DAYS = 30
REL = 1e-9


def closes() -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {name: [] for name in NAMES}
    prices = dict.fromkeys(NAMES, 100.0)
    first = int(dt.datetime(2013, 2, 11, 21, tzinfo=dt.UTC).timestamp()) * 10**9
    for day, (x, _) in enumerate(list(SP500Stocks())[:DAYS]):  # type: ignore[no-untyped-call]
        ts = first + day * DAY_NS
        for name, ticker in NAMES.items():
            prices[name] *= 1.0 + float(x[ticker]) / 100.0
            series[name].append((ts, prices[name]))
    return series


def scenario() -> dict[str, list[dict[str, Any]]]:
    """Rows of every table the views read, and what the test expects."""
    rows: dict[str, list[dict[str, Any]]] = {
        t: [] for t in ("ticks", "signals", "risk_decisions", "orders", "fills", "model_versions")
    }
    series = closes()
    start = series["PTA"][0][0]
    for name, points in series.items():
        for seq, (ts, price) in enumerate(points):
            rows["ticks"].append(
                {
                    "tick_id": f"{name}-{seq}",
                    "instrument": name,
                    "seq": seq,
                    "kind": "trade",
                    "price": price,
                    "size": 1.0,
                    "bid": None,
                    "ask": None,
                    "bid_size": None,
                    "ask_size": None,
                    "ts_event": ts,
                    "ts_init": ts,
                }
            )
        for version, created in (("v1", start), ("v2", start + 15 * DAY_NS)):
            rows["model_versions"].append(
                {
                    "version_id": f"{name}-{version}",
                    "instrument": name,
                    "model": "m",
                    "factory": "f",
                    "params": "{}",
                    "params_hash": "h",
                    "code_version": "c",
                    "parent": "",
                    "created_at": created,
                    "ts_init": created,
                }
            )
        for day in range(1, len(points) - 2, 2):
            ts, price = points[day]
            side = "buy" if price > points[day - 1][1] else "sell"
            signal_id, order_id = f"{name}-s{day}", f"{name}-o{day}"
            quantity = 10 + day
            decision = price * 1.0001
            rows["signals"].append(
                {
                    "signal_id": signal_id,
                    "tick_id": f"{name}-{day}",
                    "instrument": name,
                    "model": "m",
                    "direction": 1 if side == "buy" else -1,
                    "probability_up": 0.6,
                    "reference_price": price,
                    "ts_event": ts,
                    "ts_init": ts,
                }
            )
            rows["risk_decisions"].append(
                {
                    "signal_id": signal_id,
                    "account": ACCOUNT,
                    "instrument": name,
                    "side": side,
                    "quantity": str(quantity),
                    "reference_price": decision,
                    "outcome": "approved",
                    "reason": "",
                    "detail": "",
                    "client_order_id": order_id,
                    "ts_event": ts,
                    "ts_init": ts,
                }
            )
            rows["orders"].append(
                {
                    "client_order_id": order_id,
                    "signal_id": signal_id,
                    "account": ACCOUNT,
                    "instrument": name,
                    "side": side,
                    "quantity": str(quantity),
                    "order_type": "market",
                    "limit_price": None,
                    "ts_event": ts,
                    "ts_init": ts,
                }
            )
            if day == 5:
                continue  # never filled
            parts = [(day + 1, quantity)] if day != 7 else [(day + 1, 6), (day + 2, quantity - 6)]
            for k, (fill_day, fill_quantity) in enumerate(parts):
                fill_ts, fill_price = points[fill_day]
                rows["fills"].append(
                    {
                        "fill_id": f"{order_id}-f{k}",
                        "client_order_id": order_id,
                        "account": ACCOUNT,
                        "instrument": name,
                        "side": side,
                        "quantity": str(fill_quantity),
                        "price": f"{fill_price:.9f}",
                        "fee": f"{0.0002 * fill_quantity * fill_price:.9f}",
                        "leaves_quantity": "0",
                        "tick_id": f"{name}-{fill_day}",
                        "ts_event": fill_ts,
                        "ts_init": fill_ts,
                    }
                )
    return rows


@pytest.fixture(scope="module")
def window(clickhouse: Client) -> tuple[int, int, dict[str, list[dict[str, Any]]]]:
    rows = scenario()
    writer = BatchWriter(clickhouse)
    for table, batch in rows.items():
        writer.write(table, batch)
    times = [r["ts_event"] for r in rows["ticks"]]
    return min(times), max(times), rows


def select(client: Client, sql: str) -> list[dict[str, Any]]:
    result = client.query(sql)
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def test_post_trade_orders_slippage_latency_fill_ratio_equal_python(
    clickhouse: Client, window: tuple[int, int, dict[str, list[dict[str, Any]]]]
) -> None:
    since, until, rows = window
    got = {
        r["client_order_id"]: r
        for r in select(
            clickhouse,
            f"SELECT * FROM post_trade_orders(since_ns={since}, until_ns={until}) "
            f"WHERE account = '{ACCOUNT}'",
        )
    }
    assert len(got) == len(rows["orders"])
    ticks = {(t["instrument"], t["ts_event"]): t["price"] for t in rows["ticks"]}
    for order in rows["orders"]:
        row = got[order["client_order_id"]]
        fills = [f for f in rows["fills"] if f["client_order_id"] == order["client_order_id"]]
        decision = next(
            d["reference_price"]
            for d in rows["risk_decisions"]
            if d["signal_id"] == order["signal_id"]
        )
        sign = 1 if order["side"] == "buy" else -1
        ordered = float(order["quantity"])
        assert row["decision_price"] == pytest.approx(decision, rel=REL)
        arrival = min(
            ts for (name, ts) in ticks if name == order["instrument"] and ts > order["ts_event"]
        )
        assert row["arrival_price"] == pytest.approx(ticks[(order["instrument"], arrival)], rel=REL)
        if not fills:
            assert row["fills"] == 0 and row["fill_ratio"] == 0.0
            assert row["latency_first_fill_ns"] is None
            continue
        filled = sum(float(f["quantity"]) for f in fills)
        average = sum(float(f["quantity"]) * float(f["price"]) for f in fills) / filled
        fees = sum(float(f["fee"]) for f in fills)
        assert row["fill_ratio"] == pytest.approx(filled / ordered, rel=REL)
        assert row["slippage_decision_bps"] == pytest.approx(
            sign * (average - decision) / decision * 1e4, rel=1e-6
        )
        arrival_price = ticks[(order["instrument"], arrival)]
        assert row["slippage_arrival_bps"] == pytest.approx(
            sign * (average - arrival_price) / arrival_price * 1e4, rel=1e-6, abs=1e-9
        )
        assert row["shortfall"] == pytest.approx(
            sign * (average - decision) * filled + fees, rel=1e-6
        )
        assert row["latency_first_fill_ns"] == min(f["ts_event"] for f in fills) - order["ts_event"]
        assert row["latency_last_fill_ns"] == max(f["ts_event"] for f in fills) - order["ts_event"]
        version = "v2" if order["ts_event"] >= since + 15 * DAY_NS else "v1"
        assert row["model_version"] == f"{order['instrument']}-{version}"


def test_post_trade_quality_per_instrument_and_side_adds_up(
    clickhouse: Client, window: tuple[int, int, dict[str, list[dict[str, Any]]]]
) -> None:
    since, until, rows = window
    quality = select(
        clickhouse,
        f"SELECT * FROM post_trade_quality(since_ns={since}, until_ns={until}) "
        "WHERE instrument IN ('PTA', 'PTB')",
    )
    assert sum(q["orders"] for q in quality) == len(rows["orders"])
    assert sum(q["filled_orders"] for q in quality) == len(rows["orders"]) - 2
    fees = sum(float(f["fee"]) for f in rows["fills"])
    assert sum(q["total_fees"] for q in quality) == pytest.approx(fees, rel=1e-9)
    pta_buy = [o for o in rows["orders"] if o["instrument"] == "PTA" and o["side"] == "buy"]
    ordered = sum(float(o["quantity"]) for o in pta_buy)
    filled = sum(
        float(f["quantity"])
        for f in rows["fills"]
        if f["client_order_id"] in {o["client_order_id"] for o in pta_buy}
    )
    row = next(q for q in quality if q["instrument"] == "PTA" and q["side"] == "buy")
    assert row["quantity_fill_ratio"] == pytest.approx(filled / ordered, rel=REL)
    assert row["latency_p50_ms"] >= DAY_NS / 1e6  # fills trade on a later day's tick


def test_pnl_attribution_sums_to_cash_pnl_under_every_grouping(
    clickhouse: Client, window: tuple[int, int, dict[str, list[dict[str, Any]]]]
) -> None:
    since, until, rows = window
    last = {}
    for tick in sorted(rows["ticks"], key=lambda t: t["ts_event"]):
        last[tick["instrument"]] = tick["price"]
    cash, held = 0.0, dict.fromkeys(NAMES, 0.0)
    for fill in rows["fills"]:
        sign = 1 if fill["side"] == "buy" else -1
        cash -= sign * float(fill["quantity"]) * float(fill["price"]) + float(fill["fee"])
        held[fill["instrument"]] += sign * float(fill["quantity"])
    total = cash + sum(q * last[name] for name, q in held.items())
    view = f"pnl_attribution(since_ns={since}, until_ns={until})"
    where = f"WHERE account = '{ACCOUNT}'"
    for key in ("instrument", "model_version", "signal_id", "model"):
        groups = select(
            clickhouse, f"SELECT {key}, sum(pnl) AS pnl FROM {view} {where} GROUP BY {key}"
        )
        assert sum(g["pnl"] for g in groups) == pytest.approx(total, rel=1e-9), key
    by_instrument = {
        g["instrument"]: g["pnl"]
        for g in select(
            clickhouse,
            f"SELECT instrument, sum(pnl) AS pnl FROM {view} {where} GROUP BY instrument",
        )
    }
    for name in NAMES:
        own = [f for f in rows["fills"] if f["instrument"] == name]
        expected = sum(
            (1 if f["side"] == "buy" else -1)
            * float(f["quantity"])
            * (last[name] - float(f["price"]))
            - float(f["fee"])
            for f in own
        )
        assert by_instrument[name] == pytest.approx(expected, rel=1e-9)
    assert np.isfinite(total)
