"""R1-J: `kill -9` of the trading flow with the journaled gate (`risk.fill_sync: journal`)
loses, duplicates and contradicts nothing.

A journaled run decides on arrival, so another run of the same replay may decide
otherwise (fills arrive when they arrive): there is no golden run to compare with.
The reference is the killed run itself. Everything the trading flow wrote before
each kill is in Kafka, and its replay must write the same thing again: every signal
has exactly one decision (the same record however often it was emitted), every order
id one order, and the store (persist ran beside it) holds each once.

Why "contradicted" is the right check although a journaled gate's decisions depend on
arrival order: a decision that left before a kill was acted on (the gateway filled its
order, persist stored it) and cannot be taken back, so the replay must make exactly
the same one. Arrival order may differ between *runs*; within one run, every input the
gate applied before a kill is in the journal, and a resume applies it in that order.
A signal journaled twice (`journaled_twice`, asserted 0) was applied again in arrival
order by a later execution instead of replayed, whatever it then decided.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from connectors.kafka.reader import read_log
from connectors.topic import DECISIONS, FILLS, GATE_JOURNAL, ORDERS, PREDICTIONS, SIGNALS
from tests.chaos.harness import Dump, Run, dump, kill_repeatedly


@dataclass
class JournaledRun(Run):
    """A run whose trading flow journals its input order."""

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "HFL_RISK__FILL_SYNC": "journal"}


@dataclass(frozen=True, slots=True)
class Killed:
    run: Run
    tables: Dump
    kills: int


@pytest.fixture(scope="module")
def journaled_killed(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], kills: int
) -> Killed:
    run = JournaledRun("r1j", kafka_bootstrap, tmp_path_factory.mktemp("r1j"), len(lines))
    run.prepare(lines)
    for name in ("persist", "gateway", "trading"):
        run.start(name)
    done, _ = kill_repeatedly(run, "trading", lines, kills, seed=3, output_topic=PREDICTIONS)
    return Killed(run=run, tables=dump(run.store), kills=len(done))


def by_id(records: list[dict[str, Any]], key: str, *, shape: bool = False) -> dict[str, set[bytes]]:
    """Each id's distinct records (progress markers aside); with `shape`, records of
    different types (an order and its cancel) count under separate ids."""
    found: dict[str, set[bytes]] = defaultdict(set)
    for record in records:
        if "progress_id" not in record:
            name = f"{record[key]}|{','.join(sorted(record))}" if shape else record[key]
            found[name].add(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    return found


def test_trading_killed_with_the_journaled_gate_loses_and_contradicts_nothing(
    journaled_killed: Killed, record: Callable[[str, dict[str, Any]], None]
) -> None:
    run = journaled_killed.run

    def log(topic: str) -> list[dict[str, Any]]:
        return read_log(run.bootstrap, run.prefix + topic, timeout_s=60)

    signals = {r["signal_id"] for r in log(SIGNALS)}
    journaled = Counter(key for r in log(GATE_JOURNAL) for key in r["inputs"])
    decisions = by_id(log(DECISIONS), "signal_id")
    sent = by_id(log(ORDERS), "client_order_id", shape=True)
    orders = {name for name in sent if "|" in name and ",side," in name}
    fills = by_id(log(FILLS), "fill_id")
    lost = len(signals - decisions.keys())
    duplicated = len(decisions.keys() - signals)
    for table, ids in (("orders", orders), ("fills", fills.keys()), ("risk_decisions", signals)):
        rows, repeated = journaled_killed.tables.keyed(table)
        lost += max(0, len(ids) - len(rows))
        duplicated += repeated + max(0, len(rows) - len(ids))
    figures = {
        "kills": journaled_killed.kills,
        "signals": len(signals),
        "orders": len(orders),
        "fills": len(fills),
        "journaled_twice": sum(1 for key, n in journaled.items() if n > 1 and key[0] == "s"),
        "lost": lost,
        "duplicated": duplicated,
        # One id, two different records: a replay decided otherwise than the crashed run.
        "mismatched": sum(
            len(v) > 1 for v in (*decisions.values(), *sent.values(), *fills.values())
        ),
    }
    contradicted = [
        (name, sorted(v))
        for name, v in (
            *(("decision", v) for v in decisions.values()),
            *(("order", v) for v in sent.values()),
            *(("fill", v) for v in fills.values()),
        )
        if len(v) > 1
    ]
    if contradicted:  # the first contradiction, field by field
        kind, (a, b, *_) = contradicted[0]
        one, two = orjson.loads(a), orjson.loads(b)
        figures["first_mismatch"] = {
            "kind": kind,
            "fields": {
                k: (one.get(k), two.get(k))
                for k in one.keys() | two.keys()
                if one.get(k) != two.get(k)
            },
        }
        figures["mismatched_by_kind"] = {
            k: sum(1 for name, _ in contradicted if name == k)
            for k in ("decision", "order", "fill")
        }
    record("R1-journal", figures)
    assert figures["signals"] and figures["orders"] and figures["fills"]
    assert (figures["lost"], figures["duplicated"], figures["mismatched"]) == (0, 0, 0), figures
    # Stricter than equal records: no execution applied a signal again in its own
    # arrival order (it could have decided the same by luck).
    assert figures["journaled_twice"] == 0, figures
