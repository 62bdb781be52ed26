"""A run's report data built from the real S&P 500 replay CSV, without any broker or store.

A simple daily rule trades the ten stocks (long after an up day, short after a down day,
1 bp fees) with cash accounting, giving equity marks, exposures, fills and the
equal-weighted buy-and-hold index of the same prices as benchmark.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from connectors.feeds.sp500 import write_sp500_prices
from dataflows.ops.report import RunData, Table
from risk.performance import Execution

INITIAL_CASH = 1_000_000.0
QUANTITY = 400.0
FEE_RATE = 0.0001


def sp500_run(directory: Path, *, days: int | None = None) -> RunData:
    """Trade the replay CSV's prices (its first `days` days) and return the run's data."""
    path = directory / "sp500.csv"
    if not path.exists():
        write_sp500_prices(path)
    by_ts: dict[int, dict[str, float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            by_ts.setdefault(int(row["ts"]), {})[row["instrument"]] = float(row["price"])
    times = sorted(by_ts)[:days]
    first = by_ts[times[0]]
    names = sorted(first)
    cash = INITIAL_CASH
    position = dict.fromkeys(names, 0.0)
    previous = dict(first)
    fills: list[Execution] = []
    equity, gross, net, index = [], [], [], []
    for ts in times:
        prices = by_ts[ts]
        for name in names:
            price = prices[name]
            target = QUANTITY if price >= previous[name] else -QUANTITY
            delta = target - position[name]
            if delta:
                fee = FEE_RATE * abs(delta) * price
                fills.append(
                    Execution(instrument=name, ts_event=ts, quantity=delta, price=price, fee=fee)
                )
                cash -= delta * price + fee
                position[name] = target
            previous[name] = price
        values = [position[n] * prices[n] for n in names]
        equity.append(cash + sum(values))
        gross.append(sum(abs(v) for v in values))
        net.append(sum(values))
        index.append(float(np.mean([prices[n] / first[n] for n in names])))
    stamps = np.array(times, dtype=np.int64)
    return RunData(
        run_id="sp500-test",
        account="paper-1",
        initial_cash=INITIAL_CASH,
        equity_ts=stamps,
        equity=np.array(equity),
        gross_exposure=np.array(gross),
        net_exposure=np.array(net),
        benchmark_ts=stamps,
        benchmark=np.array(index),
        executions=tuple(fills),
        model_scores=Table(
            title="Prequential scores (latest)",
            columns=("instrument", "model", "accuracy"),
            rows=(("AAPL", "logistic", 0.52),),
        ),
        score_history=(
            ("AAPL logistic accuracy", stamps[::50], np.linspace(0.5, 0.52, stamps[::50].size)),
        ),
    )
