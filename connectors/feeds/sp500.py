"""Daily closing prices of River's bundled S&P 500 stocks, written as a replayable CSV.

River ships real daily returns (in percent) of ten large S&P 500 stocks, Feb 2013 to
Feb 2018, with the trading date of each row. Prices are rebuilt as
100 * cumulative product of (1 + return / 100), one trade per stock per trading day,
stamped at the real date's 16:00 New York time (the NYSE close).
"""

from __future__ import annotations

import csv
import gzip
import sys
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

NS_PER_S = 1_000_000_000
NEW_YORK = ZoneInfo("America/New_York")
BASE_PRICE = 100.0
_NOT_A_STOCK = frozenset({"date", "next_day_return"})


def close_ns(day: date) -> int:
    """Return 16:00 New York time on `day` as UTC epoch nanoseconds.

    >>> close_ns(date(2018, 2, 6))  # EST: 21:00 UTC
    1517950800000000000
    """
    return int(datetime.combine(day, time(16), tzinfo=NEW_YORK).timestamp()) * NS_PER_S


def write_sp500_prices(path: str | Path, size: float = 1) -> int:
    """Write `instrument,ts,price,size` rows (ts in ns) for River's S&P 500 stocks.

    Rows are in event-time order (by day, then ticker). River has no volumes: `size`
    is the liquidity each close offers the paper broker (1 share by default; a large
    size lets a backtest trade its whole target at the close). Returns the rows written.
    """
    from river.datasets import SP500Stocks  # river is heavy: only load it when asked

    source = SP500Stocks().path  # type: ignore[no-untyped-call]
    with gzip.open(source, "rt", newline="") as raw, open(path, "w", newline="") as out:
        reader = csv.DictReader(raw)
        tickers = [name for name in reader.fieldnames or () if name not in _NOT_A_STOCK]
        prices = dict.fromkeys(tickers, BASE_PRICE)
        writer = csv.writer(out)
        writer.writerow(("instrument", "ts", "price", "size"))
        rows = 0
        for day in reader:
            ts_ns = close_ns(date.fromisoformat(day["date"]))
            for ticker in tickers:
                prices[ticker] *= 1.0 + float(day[ticker]) / 100.0
                writer.writerow((ticker, ts_ns, repr(prices[ticker]), size))
                rows += 1
    return rows


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "sp500_prices.csv"
    shares = int(sys.argv[2]) if len(sys.argv) > 2 else 1  # argv[2]: the size
    print(f"wrote {write_sp500_prices(target, shares)} rows to {target}")
