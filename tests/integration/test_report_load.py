"""`load_run` reads back a run written to ClickHouse, and its report has every section.

The S&P 500 replay run of `support.research_run` is written as pnl, fills, ticks and
positions rows (instruments renamed so other tests' rows cannot mix in); the loaded
run must equal the one written and give the same statistics.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client
from support.research_run import sp500_run

from dataflows.ops import report
from sinks.writer import BatchWriter

pytestmark = pytest.mark.integration

ACCOUNT = "report-load-test"
PREFIX = "RL_"


def write_run(client: Client, run: report.RunData, root: Path) -> report.RunWindow:
    writer = BatchWriter(client)
    writer.write(
        "pnl",
        [
            {
                "account": ACCOUNT,
                "cash": "0",
                "realized_pnl": "0",
                "unrealized_pnl": "0",
                "fees": "0",
                "equity": f"{e:.9f}",
                "gross_exposure": f"{g:.9f}",
                "net_exposure": f"{n:.9f}",
                "ts_event": int(ts),
                "ts_init": int(ts),
            }
            for ts, e, g, n in zip(
                run.equity_ts, run.equity, run.gross_exposure, run.net_exposure, strict=True
            )
        ],
    )
    writer.write(
        "fills",
        [
            {
                "fill_id": f"rl-{i:06d}",
                "client_order_id": f"rl-o{i}",
                "account": ACCOUNT,
                "instrument": PREFIX + f.instrument,
                "side": "buy" if f.quantity > 0 else "sell",
                "quantity": f"{abs(f.quantity):.9f}",
                "price": f"{f.price:.9f}",
                "fee": f"{f.fee:.9f}",
                "leaves_quantity": "0",
                "tick_id": "",
                "ts_event": f.ts_event,
                "ts_init": f.ts_event,
            }
            for i, f in enumerate(run.executions)
        ],
    )
    held: dict[str, float] = {}
    for f in run.executions:
        held[f.instrument] = held.get(f.instrument, 0.0) + f.quantity
    with open(root / "sp500.csv", newline="") as handle:
        ticks = [
            {
                "tick_id": f"rl-t{i}",
                "instrument": PREFIX + row["instrument"],
                "seq": i,
                "kind": "trade",
                "price": float(row["price"]),
                "size": 1.0,
                "bid": None,
                "ask": None,
                "bid_size": None,
                "ask_size": None,
                "ts_event": int(row["ts"]),
                "ts_init": int(row["ts"]),
            }
            for i, row in enumerate(csv.DictReader(handle))
        ]
    writer.write("ticks", ticks)
    end = int(run.equity_ts[-1])
    writer.write(
        "positions",
        [
            {
                "account": ACCOUNT,
                "instrument": PREFIX + name,
                "quantity": f"{q:.9f}",
                "average_price": "0",
                "realized_pnl": "0",
                "ts_event": end,
                "ts_init": end,
            }
            for name, q in held.items()
        ],
    )
    window = report.RunWindow(
        run_id="rl-run",
        account=ACCOUNT,
        initial_cash=run.initial_cash,
        since_ns=int(run.equity_ts[0]),
        until_ns=end,
    )
    run_dir = root / "var" / "runs" / "rl-run"
    run_dir.mkdir(parents=True)
    report.write_manifest(run_dir, window)
    return window


def test_load_run_reads_back_the_written_run_and_reports_it(
    clickhouse: Client, clickhouse_url: str, tmp_path: Path
) -> None:
    run = sp500_run(tmp_path)
    written = write_run(clickhouse, run, tmp_path)
    window = report.find_window(
        clickhouse_url, "rl-run", account="x", initial_cash=0.0, root=tmp_path
    )
    assert window == written
    loaded = report.load_run(clickhouse_url, window)
    np.testing.assert_array_equal(loaded.equity_ts, run.equity_ts)
    np.testing.assert_allclose(loaded.equity, run.equity, rtol=1e-12)
    assert len(loaded.executions) == len(run.executions)
    for got, sent in zip(loaded.executions, run.executions, strict=True):
        assert (got.instrument, got.ts_event, got.quantity) == (
            PREFIX + sent.instrument,
            sent.ts_event,
            sent.quantity,
        )
        assert (got.price, got.fee) == pytest.approx((sent.price, sent.fee), abs=1e-9)
    # Every stock trades, so the index over the traded instruments is the run's benchmark.
    np.testing.assert_allclose(loaded.benchmark, run.benchmark, rtol=1e-9)
    ours, theirs = report.analyse(loaded), report.analyse(run)
    assert ours.figures.sharpe == pytest.approx(theirs.figures.sharpe, rel=1e-9)
    assert ours.figures.beta == pytest.approx(theirs.figures.beta, rel=1e-9)
    # Prices and fees went through Decimal(38, 9): equal to rounding at the ninth decimal.
    assert ours.trade_stats.win_rate == theirs.trade_stats.win_rate
    assert ours.trade_stats.profit_factor == pytest.approx(
        theirs.trade_stats.profit_factor, rel=1e-9
    )
    titles = [t.title for t in loaded.post_trade]
    assert "P&L attribution by instrument" in titles
    attribution = next(t for t in loaded.post_trade if t.title == "P&L attribution by instrument")
    assert len(attribution.rows) == 10
    decomposition = next(t for t in loaded.post_trade if t.title.startswith("Risk decomposition"))
    stress = next(t for t in loaded.post_trade if t.title.startswith("Stress scenarios"))
    assert [row[0] for row in stress.rows][:3] == [
        "market_down_10",
        "volatility_x3",
        "correlations_to_one",
    ]
    assert all(np.isfinite(row[1]) for row in stress.rows)
    book = decomposition.rows[-1]
    assert book[0] == "book"
    assert sum(row[3] for row in decomposition.rows[:-1]) == pytest.approx(book[3], rel=1e-9)
    path = report.write_report(loaded, tmp_path / "report.html")
    assert "Risk decomposition" in path.read_text()


def test_hfl_report_command_finds_the_run_in_the_runs_table_and_writes_html(
    clickhouse: Client,
    clickhouse_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dataflows.commands import main

    run = sp500_run(tmp_path, days=300)
    written = write_run(clickhouse, run, tmp_path)
    BatchWriter(clickhouse).write(
        "runs",
        [
            {
                "run_id": "rl-cli",
                "started_at": written.since_ns,
                "finished_at": written.until_ns,
                "config": "{}",
                "code_version": "test",
                "status": "finished",
                "version": 2,
            }
        ],
    )
    monkeypatch.setenv("HFL_CLICKHOUSE_URL", clickhouse_url)
    out = tmp_path / "cli.html"
    code = main(
        ["report", "rl-cli", "--account", ACCOUNT, "--frequency", "weekly", "--out", str(out)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "weekly returns, annualised by 52 periods per year" in printed
    assert f"report written to {out}" in printed
    assert printed.count("target") == 9
    assert 'id="success"' in out.read_text()
