"""The whole trading path on the real broker and ClickHouse engine.

One replay file of simulated ticks with bad records mixed in goes through `hfl feed
replay` into a fresh topic namespace; the trading, gateway and persist flows run as
`python -m bytewax.run` processes with recovery on, as a bounded run: each ends by
itself at the end-of-stream markers of its inputs (never by an idle window); the
results are read back with `hfl sql --format json`, as a user would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from connectors.codec import encode
from connectors.feeds.simulator import SimulationConfig, simulate
from connectors.kafka.admin import create_topics
from connectors.kafka.reader import read_log
from connectors.topic import ORDERS
from dataflows.ops.process import start_flow, wait_all
from dataflows.settings import load_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = ("AAPL", "MSFT", "AMZN", "GOOG", "META")
FLOW_TIMEOUT_S = 240


@dataclass(frozen=True)
class StackRun:
    """What a run was given and how to query its store."""

    prefix: str
    env: dict[str, str]
    good_ticks: int
    expected_dead: Counter[str]


def good_lines() -> list[bytes]:
    """40 s of event time for five instruments: enough for warm features and signals."""
    config = SimulationConfig(
        symbols=SYMBOLS, seed=11, ticks_per_second=150.0, start_ns=1_700_000_000_000_000_000
    )
    return [encode(record) for record in simulate(config, 6_000)]


def with_bad_records(lines: list[bytes]) -> tuple[list[bytes], Counter[str]]:
    """Insert one bad record of each kind at fixed places; return them and the reasons."""
    first = orjson.loads(lines[100])
    bad = [
        (encode({**first, "seq": 10_001, "price": "NaN"}), "non_finite"),
        (encode({**first, "seq": 10_002}).replace(b'"size":', b'"size":-', 1), "negative_size"),
        (b'{"instrument": "AAPL", "seq": 10003, "price": NaN}', "non_finite"),
        (b'{"instrument": "AAPL", "seq":', "malformed_json"),
        (encode({**first, "seq": 10_004, "pad": "x" * 70_000}), "oversized"),
        (encode({**first, "instrument": "ZZZZ"}), "unknown_instrument"),
        (lines[100], "duplicate_sequence"),
        (encode({**first, "seq": 1}), "backwards_sequence"),
    ]
    out = list(lines[:101]) + [line for line, _ in bad] + list(lines[101:])
    return out, Counter(reason for _, reason in bad)


def run_env(kafka_bootstrap: str, prefix: str, store: Path) -> dict[str, str]:
    """Environment of every process of one run."""
    return {
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
        "HFL_CLICKHOUSE_URL": f"chdb://{store}",
        "HFL_TRADING__INSTRUMENTS": ",".join(SYMBOLS),
        "HFL_MODEL__MIN_LABELLED": "20",
        "HFL_MODEL__SIGNAL__ENGINE": "hysteresis",  # chatty thresholds on purpose
        "HFL_MODEL__HORIZON_S": "1",
        "HFL_MODEL__ENTER_LONG": "0.51",
        "HFL_MODEL__ENTER_SHORT": "0.49",
        "HFL_RUN_ID": prefix.rstrip("."),
    }


def hfl(env: dict[str, str], *args: str) -> str:
    """Run the `hfl` CLI as a user would; return its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def sql(env: dict[str, str], query: str) -> list[dict[str, object]]:
    """Rows of `query` as dicts, through `hfl sql --format json`."""
    return orjson.loads(hfl(env, "sql", query, "--format", "json"))


def bounded(env: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """`env` for a bounded run of flows `names`: each ends at its writers' end markers,
    of the feed and of those of `names` that write (the others do not run)."""
    writers = ["feed", *(name for name in ("trading", "gateway") if name in names)]
    return env | {"HFL_KAFKA__BOUNDED": "1", "HFL_KAFKA__END_WRITERS": ",".join(writers)}


def run_flows(names: tuple[str, ...], env: dict[str, str], run_dir: Path) -> None:
    """Start the flows as a bounded run, wait until they reach the end of their data and
    exit, and require exit code 0."""
    env = bounded(env, names)
    settings = load_settings(ROOT / "config", env={**os.environ, **env})
    children = [start_flow(name, settings, run_dir, env) for name in names]
    codes = wait_all(children, FLOW_TIMEOUT_S)
    for child in children:
        if codes[child.name] is None:
            child.process.kill()
        assert codes[child.name] == 0, f"{child.name}: {codes[child.name]}\n{child.tail()}"


def publish(tmp_path: Path, lines: list[bytes], env: dict[str, str], *, end: bool = True) -> None:
    """Write the replay file and publish it with `hfl feed replay` (then its end-of-stream
    marker, unless more is to come: `end=False`)."""
    replay = tmp_path / "ticks.jsonl"
    replay.write_bytes(b"\n".join(lines) + b"\n")
    hfl(env, "feed", "replay", str(replay), *(() if end else ("--no-end",)))


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> StackRun:
    """One full run: replay with bad records, then trading, gateway and persist."""
    tmp_path = tmp_path_factory.mktemp("stack")
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    env = run_env(kafka_bootstrap, prefix, tmp_path / "clickhouse")
    create_topics(kafka_bootstrap, prefix=prefix)
    lines, expected = with_bad_records(good_lines())
    publish(tmp_path, lines, env)
    run_flows(("persist", "trading", "gateway"), env, tmp_path)
    return StackRun(prefix=prefix, env=env, good_ticks=6_000, expected_dead=expected)


def test_run_with_bad_records_produces_orders_and_fills(stack: StackRun) -> None:
    counts = sql(
        stack.env,
        "SELECT (SELECT count() FROM orders FINAL) AS orders, "
        "(SELECT count() FROM fills FINAL) AS fills, "
        "(SELECT count() FROM ticks FINAL) AS ticks, "
        "(SELECT count() FROM positions FINAL) AS positions",
    )[0]
    assert counts["ticks"] == stack.good_ticks
    assert counts["orders"] > 0
    assert counts["fills"] > 0
    assert counts["positions"] > 0


def test_each_bad_record_is_one_dead_letter_with_its_reason(stack: StackRun) -> None:
    rows = sql(stack.env, "SELECT reason, count() AS n FROM dlq FINAL GROUP BY reason")
    assert Counter({row["reason"]: row["n"] for row in rows}) == stack.expected_dead


def test_documented_lineage_query_joins_tick_to_fill(stack: StackRun) -> None:
    page = (ROOT / "docs" / "architecture.md").read_text()
    query = re.search(r"```sql\n(.*?)```", page, re.DOTALL)
    assert query is not None
    rows = sql(stack.env, query.group(1))
    assert rows
    assert any(row["fill_price"] is not None and row["outcome"] == "approved" for row in rows)


def test_same_seeded_input_twice_gives_identical_orders(
    stack: StackRun, kafka_bootstrap: str, tmp_path: Path
) -> None:
    prefix = f"e2e-again-{uuid.uuid4().hex[:8]}."
    env = run_env(kafka_bootstrap, prefix, tmp_path / "unused-clickhouse")
    create_topics(kafka_bootstrap, prefix=prefix)
    lines, _ = with_bad_records(good_lines())
    publish(tmp_path, lines, env)
    run_flows(("trading", "gateway"), env, tmp_path)

    # Progress markers say how far a flow got, which depends on batching.
    first = [o for o in read_log(kafka_bootstrap, stack.prefix + ORDERS) if "progress_id" not in o]
    second = [o for o in read_log(kafka_bootstrap, prefix + ORDERS) if "progress_id" not in o]
    assert first
    assert sorted(first, key=lambda o: o["client_order_id"]) == sorted(
        second, key=lambda o: o["client_order_id"]
    )


def test_reconcile_after_a_drained_run_finds_log_and_store_consistent(stack: StackRun) -> None:
    result = orjson.loads(hfl(stack.env, "reconcile"))
    assert result["consistent"] is True
    assert result["orders_in_log"] > 0
    assert result["fills_in_log"] > 0
    assert result["orders_missing_in_store"] == result["fills_missing_in_store"] == []


def test_denials_and_risk_figures_are_in_clickhouse(stack: StackRun) -> None:
    by_reason = sql(
        stack.env,
        "SELECT outcome, reason, count() AS n FROM risk_decisions FINAL "
        "GROUP BY outcome, reason ORDER BY n DESC",
    )
    denied = [row for row in by_reason if row["outcome"] == "denied"]
    assert denied
    assert all(row["reason"] for row in denied)
    assert all(not row["reason"] for row in by_reason if row["outcome"] == "approved")
    figures = sql(
        stack.env,
        "SELECT metric, count() AS n FROM risk_metrics FINAL "
        "WHERE metric IN ('var_hist', 'cvar_ewma', 'beta', 'drawdown') GROUP BY metric",
    )
    assert {row["metric"] for row in figures} == {"var_hist", "cvar_ewma", "beta", "drawdown"}
