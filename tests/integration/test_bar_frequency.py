"""`hfl backtest` on River's real daily closes with the shipped configuration trades.

The closes are written with a size of 1,000,000 shares (River has no volumes; the paper
broker offers a tick's size as its liquidity). Nothing is set on the command line: the
bar interval is estimated from the input (one day), so the risk model annualises by
252, orders live five days (a weekend between two closes), models trade after 20
labelled days, and the run trades the input's ten stocks. Bounded to the first 2,500
closes (250 trading days: the default multi-factor signal warms up over the first 150).
The run must make orders and fills, dead-letter nothing, close its last bars and mark
the final P&L to the last closes (equity = cash + the positions at the last prices);
`hfl report` on it writes the report with daily figures.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.feeds.sp500 import write_sp500_prices

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLOSES = 2_500


def hfl(tmp_path: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=tmp_path,
        env={**os.environ, "HFL_CONFIG_DIR": str(ROOT / "config")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def query(url: str, sql: str) -> list[list[object]]:
    """Rows of `sql` read in a child process: chDB opens one store per process, and the
    suite's own process may already hold another one. Decimals come back as text."""
    code = (
        "import json, sys; from sinks.query import query; "
        "_, rows = query(sys.argv[1], sys.argv[2]); "
        "print(json.dumps([list(row) for row in rows], default=str))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, url, sql],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows: list[list[object]] = json.loads(done.stdout)
    return rows


def test_daily_closes_with_the_shipped_config_make_orders_and_fills(tmp_path: Path) -> None:
    path = tmp_path / "sp500.csv"
    write_sp500_prices(path, size=1_000_000)  # River has no volumes: a liquid close
    store = tmp_path / "clickhouse"
    out = hfl(
        tmp_path, "backtest", str(path), "--limit", str(CLOSES),
        "--run-id", "daily", "--store", str(store),
    )  # fmt: skip
    assert "bar interval 1d (estimated from the input)" in out
    assert "annualised by 252 periods per year" in out
    counts = next(line for line in out.splitlines() if line.startswith("signals"))
    number = {
        k.strip(): int(v.replace(",", "")) for k, v in re.findall(r"([a-z ]+?) ([\d,]+)", counts)
    }
    assert number["orders"] > 0 and number["fills"] > 0, counts
    assert number["dead letters"] == 0, counts  # no unknown instrument, no outlier

    url = f"chdb://{store}"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))[:CLOSES]
    last_price = {row["instrument"]: Decimal(row["price"]) for row in rows}
    last_ns = int(rows[-1]["ts"])
    # The last 1 s bars are closed at the end of the input.
    at_last = f"toUnixTimestamp64Nano(ts_event) = {last_ns}"
    closed = query(url, f"SELECT instrument FROM bars FINAL WHERE interval_s = 1 AND {at_last}")
    assert {name for (name,) in closed} == set(last_price)
    # The final P&L is at the last close, marked to the last prices.
    last_pnl = "SELECT toUnixTimestamp64Nano(ts_event), cash, equity FROM pnl FINAL"
    pnl = query(url, last_pnl + " ORDER BY ts_event DESC LIMIT 1")
    ts, cash, equity = int(str(pnl[0][0])), Decimal(str(pnl[0][1])), Decimal(str(pnl[0][2]))
    assert ts == last_ns
    holdings = "SELECT instrument, argMax(quantity, ts_event) FROM positions FINAL"
    held = query(url, holdings + " GROUP BY instrument")
    marked = cash + sum(
        (Decimal(str(quantity)) * last_price[str(name)] for name, quantity in held), Decimal(0)
    )
    assert abs(equity - marked) <= Decimal("0.01") * max(1, len(held)), (equity, marked)

    report = hfl(tmp_path, "report", "daily", "--out", str(tmp_path / "daily.html"))
    assert "daily returns" in report
    assert (tmp_path / "daily.html").stat().st_size > 0
