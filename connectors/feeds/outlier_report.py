"""Replay real and simulated price series through the outlier screen; count per rule.

Series:

- `sp500`: River's S&P 500 daily closes (ten stocks, Feb 2013 - Feb 2018, 12,570 ticks),
  rebuilt from its returns, which are split-adjusted (AAPL's 7:1 split of 2014-06-09
  is a +1.6 % day there);
- `sp500_unadjusted_split`: the same, with AAPL's prices before 2014-06-09 left as the
  market printed them (7x higher), i.e. the split as an unadjusted feed shows it;
- `simulated_intraday`: the project's simulator (regime switches, Poisson jumps of
  ~3 %, trades and quotes), 200,000 ticks — synthetic, not market data.

`python -m connectors.feeds.outlier_report` prints one JSON object: per series, per
rule, how many ticks were dead-lettered and how many flagged, under the default
configuration.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import date
from itertools import islice
from typing import Any

from connectors.feeds.simulator import SimulationConfig, Simulator
from connectors.feeds.sp500 import BASE_PRICE, close_ns
from risk.domain.enums import TickKind
from risk.domain.market import Tick
from risk.outlier import OutlierAction, OutlierConfig, OutlierRule, OutlierScreen

AAPL_SPLIT_DAY = date(2014, 6, 9)
AAPL_SPLIT_RATIO = 7.0


def sp500_ticks() -> list[Tick]:
    """River's S&P 500 daily closes as trade ticks, in event-time order."""
    from river.datasets import SP500Stocks

    ticks: list[Tick] = []
    path = SP500Stocks().path  # type: ignore[no-untyped-call]
    with gzip.open(path, "rt", newline="") as raw:
        reader = csv.DictReader(raw)
        names = [n for n in reader.fieldnames or () if n not in ("date", "next_day_return")]
        prices = dict.fromkeys(names, BASE_PRICE)
        for seq, day in enumerate(reader):
            ts = close_ns(date.fromisoformat(day["date"]))
            for name in names:
                prices[name] *= 1.0 + float(day[name]) / 100.0
                ticks.append(_trade(name, seq, prices[name], ts))
    return ticks


def _trade(instrument: str, seq: int, price: float, ts: int) -> Tick:
    return Tick(
        tick_id=f"{instrument}-{seq}",
        instrument=instrument,
        seq=seq,
        kind=TickKind.TRADE,
        price=price,
        size=1.0,
        ts_event=ts,
        ts_init=ts,
    )


def unadjusted_split(ticks: Iterable[Tick], instrument: str, day: date, ratio: float) -> list[Tick]:
    """Undo a split's adjustment: prices of `instrument` before `day` times `ratio`."""
    cut = close_ns(day)
    out = []
    for tick in ticks:
        if tick.instrument == instrument and tick.ts_event < cut:
            out.append(_trade(instrument, tick.seq, tick.price * ratio, tick.ts_event))
        else:
            out.append(tick)
    return out


def simulated_ticks(count: int = 200_000) -> Iterator[Tick]:
    """The simulator's ticks (half quotes), as validated Ticks."""
    config = SimulationConfig(quote_fraction=0.5, seed=11)
    for record in islice(Simulator(config), count):
        kind = TickKind(record.get("kind", "trade"))
        bid, ask = record.get("bid"), record.get("ask")
        quote = kind is TickKind.QUOTE and bid is not None and ask is not None
        price = (bid + ask) / 2.0 if quote else record["price"]  # type: ignore[operator]
        yield Tick(
            tick_id=str(record["seq"]),
            instrument=record["instrument"],
            seq=record["seq"],
            kind=kind,
            price=price,
            size=0.0 if kind is TickKind.QUOTE else record["size"],
            bid=bid,
            ask=ask,
            bid_size=record.get("bid_size"),
            ask_size=record.get("ask_size"),
            ts_event=record["ts_event"],
            ts_init=record["ts_event"],
        )


def count_outliers(ticks: Iterable[Tick], config: OutlierConfig | None = None) -> dict[str, Any]:
    """Screen `ticks`; count dead letters and flags per rule."""
    screen = OutlierScreen(config)
    dead: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    total = 0
    examples: list[str] = []
    for tick in ticks:
        total += 1
        verdict = screen.screen(tick)
        if verdict.rejected is not None:
            dead[verdict.rejected.value] += 1
        if not verdict.clean and len(examples) < 5:
            examples.append(f"{tick.instrument} {tick.ts_event}: {verdict.detail}")
        for rule in verdict.flags:
            flagged[rule.value] += 1
    return {
        "ticks": total,
        "dead_letter": dict(sorted(dead.items())),
        "flag": dict(sorted(flagged.items())),
        "examples": examples,
    }


SENSITIVE = OutlierConfig(
    min_jump_ratio=0.05,
    mad_threshold=6.0,
    actions=dict.fromkeys(OutlierRule, OutlierAction.FLAG),
)
"""Everything flags, nothing is dead-lettered: shows which real moves the jump rule sees."""


def report(simulated: int = 200_000) -> dict[str, Any]:
    """Counts per rule for every series (default configuration, and `SENSITIVE`)."""
    real = sp500_ticks()
    return {
        "config": "default",
        "sp500": count_outliers(real),
        "sp500_sensitive_flags_only": count_outliers(real, SENSITIVE),
        "sp500_unadjusted_split": count_outliers(
            unadjusted_split(real, "AAPL", AAPL_SPLIT_DAY, AAPL_SPLIT_RATIO)
        ),
        "simulated_intraday": count_outliers(simulated_ticks(simulated)),
    }


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(json.dumps(report(size), indent=1))
