"""`hfl ingest history` against the local REST stand-in: killed mid-way, resumed, 0 doubled.

The real ccxt client talks to `connectors.feeds.history.rest_server` (each venue's
documented wire format) on 127.0.0.1; the store is an embedded chDB directory that a
fresh process reads afterwards. The server answers every 5th candle request with the
venue's rate-limit reply, so the retries are part of the run that gets killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from connectors.feeds.history.rest_server import RestVenueServer

ROOT = Path(__file__).resolve().parents[2]
START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
DAYS = 3
CANDLES = DAYS * 1440


def _ingest(url: str, tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "dataflows.commands", "ingest", "history",
            "--venue", "coinbase", "--symbols", "BTC-USD",
            "--since", "2026-01-01T00:00", "--until", f"2026-01-0{1 + DAYS}T00:00",
            "--base-url", url, "--state-dir", str(tmp_path / "state"),
        ],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _counts(env: dict[str, str]) -> dict[str, int]:
    script = (
        "import json\nfrom sinks.client import connect\nimport os\n"
        "c = connect(os.environ['HFL_CLICKHOUSE__URL'])\n"
        "r = c.query('SELECT count(), uniqExact(venue, instrument, interval_s, ts_event),"
        " min(ts_event), max(ts_event) FROM history_bars').result_rows[0]\n"
        "print(json.dumps({'rows': r[0], 'keys': r[1], 'first': str(r[2]), 'last': str(r[3])}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_killed_ingestion_resumes_with_no_row_doubled(tmp_path: Path) -> None:
    server = RestVenueServer(
        start_ms=START_MS, end_ms=START_MS + (DAYS + 1) * 86_400_000, delay_s=0.15, throttle_every=5
    )
    url = server.start()
    env = {**os.environ, "HFL_CLICKHOUSE__URL": f"chdb://{tmp_path / 'ch'}"}
    try:
        first = _ingest(url, tmp_path, env)
        assert first.stderr is not None
        pages = 0
        deadline = time.monotonic() + 120
        while pages < 5 and time.monotonic() < deadline:  # 5 of 15 pages stored, then kill
            line = first.stderr.readline()
            if not line:
                break
            if line.startswith("ingest coinbase"):
                pages = int(line.split(" rows, ")[1].split(" pages")[0])
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        assert pages >= 5, "the first run never got going"
        cursor = json.loads((tmp_path / "state" / "coinbase" / "BTC-USD.1m.json").read_text())
        assert START_MS < cursor["next_ms"] < START_MS + DAYS * 86_400_000
        partial = _counts(env)
        assert 0 < partial["rows"] < CANDLES

        second = _ingest(url, tmp_path, env)
        out, err = second.communicate(timeout=200)
        assert second.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["resumed_from_ms"] == cursor["next_ms"]
        assert summary["rows"] == CANDLES - (cursor["next_ms"] - START_MS) // 60_000
    finally:
        server.stop()
    assert server.throttled > 0  # rate-limit answers were met and retried
    total = _counts(env)
    assert total == {
        "rows": CANDLES,  # raw rows, no FINAL: nothing was written twice
        "keys": CANDLES,
        "first": "2026-01-01 00:00:00+00:00",
        "last": "2026-01-03 23:59:00+00:00",
    }


SCHEDULE_YAML = """
live:
  venues:
    binance:
      url: ws://unused
      instruments:
        BTC-USDT: {symbol: BTCUSDT, tick_size: 0.01, lot_size: 0.00001}
history:
  venues:
    binance: {rate_per_s: 100, burst: 100, weight: 2, page_limit: 1000}
  schedule:
    - {venue: binance, symbols: [BTC-USDT], interval: 1m, every_s: 3600, lookback_s: 7200}
"""


def test_the_schedule_ingests_onto_kafka_for_replay(kafka_bootstrap: str, tmp_path: Path) -> None:
    import uuid

    from connectors.kafka.reader import read_log

    now_ms = time.time_ns() // 1_000_000
    hour_ms = 3_600_000
    server = RestVenueServer(start_ms=now_ms - 3 * hour_ms, end_ms=now_ms + hour_ms)
    url = server.start()
    prefix = f"hist-{uuid.uuid4().hex[:8]}."
    config = tmp_path / "feeds.yaml"
    config.write_text(SCHEDULE_YAML)
    env = {
        **os.environ,
        "HFL_CLICKHOUSE__URL": f"chdb://{tmp_path / 'ch'}",
        "HFL_KAFKA__BOOTSTRAP": kafka_bootstrap,
        "HFL_KAFKA__TOPIC_PREFIX": prefix,
    }
    command = [
        sys.executable, "-m", "dataflows.commands", "ingest", "schedule", "--once", "--kafka",
        "--config", str(config), "--base-url", url, "--state-dir", str(tmp_path / "state"),
    ]  # fmt: skip
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=200, check=False
        )
        assert done.returncode == 0, done.stderr[-3000:]
        first = json.loads(done.stdout.strip().splitlines()[-1])
        again = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=200, check=False
        )
        assert again.returncode == 0, again.stderr[-3000:]
        second = json.loads(again.stdout.strip().splitlines()[-1])
    finally:
        server.stop()
    # Two hours back, complete candles only; the second run resumes where the first ended.
    assert first["instrument"] == "BTC-USDT" and 119 <= first["rows"] <= 121
    assert second["resumed_from_ms"] == first["next_ms"] and second["rows"] <= 1
    replayed = read_log(kafka_bootstrap, prefix + "md.history")
    assert len(replayed) == first["rows"] + second["rows"] == _counts(env)["rows"]
    assert {r["venue"] for r in replayed} == {"binance"}
    times = [r["ts_event"] for r in replayed]
    assert times == sorted(times) and len(set(times)) == len(times)
