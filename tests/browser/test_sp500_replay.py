"""The README's S&P 500 replay, watched in real Chromium: replayed history shows.

`hfl up` runs the broker, the three flows and the dashboard; River's daily S&P 500
series (2013-2018) is replayed with `hfl feed replay`. The dashboard selects the newest
run's rows by event time, so years-old events show, not only those newer than the run's
wall-clock start. The test waits until the trading flow booked P&L snapshots of the
replay: the P&L panel shows equity, and the equity chart is drawn with its value scale
and an event-time scale of dates from 2013. A screenshot of that is left in
``var/browser/sp500-replay.png``.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from support.browser import screenshot, wait_for
from support.loopback import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SP500 = "AAPL,AMZN,IBM,INTC,JNJ,JPM,KO,MSFT,WMT,XOM"
FIRST_DAY_NS = 1_360_000_000_000_000_000  # Feb 2013: the series starts here
MIN_PNL_POINTS = 20
WALL_START_NS = time.time_ns()
# The whole replay through a loaded machine: the trading flow may take minutes.
PATIENCE_S = 900.0


@dataclass(frozen=True)
class System:
    """A running `hfl up` with its dashboard, fed the S&P 500 replay."""

    port: int
    rows: int


def hfl(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "dataflows.commands", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp_path = tmp_path_factory.mktemp("sp500")
    port = free_port()
    env = {
        **os.environ,
        "HFL_CONFIG_DIR": str(ROOT / "config"),
        "HFL_BROKER__PORT": str(free_port()),  # the clients follow (kafka.bootstrap)
        "HFL_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "HFL_DASHBOARD__PORT": str(port),
        "HFL_DASHBOARD__OPEN_READ": "true",  # the page and the test read without a key
        "HFL_TRADING__INSTRUMENTS": SP500,
    }
    env.pop("HFL_KAFKA__BOOTSTRAP", None)
    env.pop("HFL_KAFKA__TOPIC_PREFIX", None)
    csv = tmp_path / "sp500.csv"
    subprocess.run(
        [sys.executable, "-m", "connectors.feeds.sp500", str(csv)],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    rows = len(csv.read_text().splitlines()) - 1
    board = f"dashboard={sys.executable} -m dataflows.commands dashboard"
    log = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen(
        [sys.executable, "-m", "dataflows.commands", "up", "--with", board],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for((tmp_path / "var" / "runs" / "up.json").exists, "hfl up to register", 600)
        wait_for(lambda: snapshot(port), "the dashboard", 600)
        hfl(env, tmp_path, "feed", "replay", str(csv))
        yield System(port, rows)
    finally:
        up.send_signal(signal.SIGTERM)  # hfl up stops its flows, dashboard and broker
        try:
            up.wait(120)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        log.close()


def snapshot(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/api/snapshot")
    return dict(orjson.loads(connection.getresponse().read()))


def equity_shown(driver: webdriver.Chrome) -> bool:
    """The P&L panel shows an equity figure, and the chart a line on its value scale and
    an event-time scale of dates from 2013 on (years back: replayed history)."""
    pnl = driver.find_element(By.ID, "pnl").text
    curve = driver.find_element(By.ID, "curve")
    scale = [t.text for t in curve.find_elements(By.CSS_SELECTOR, "svg text")]
    return (
        re.match(r"equity\s+-?[\d,]+\.\d\d\b", pnl) is not None
        and bool(curve.find_elements(By.CSS_SELECTOR, "svg polyline"))
        and any(label.startswith("2013-") for label in scale)
        and sum(re.fullmatch(r"20(1[3-8])-\d\d-\d\d", label) is not None for label in scale) >= 3
    )


def test_replayed_sp500_history_shows_on_the_dashboard(
    system: System, browser: webdriver.Chrome
) -> None:
    wait_for(
        lambda: snapshot(system.port)["pipeline"]["ticks"] == system.rows,
        "every replayed tick",
        PATIENCE_S,
        every_s=1.0,
    )
    shown = snapshot(system.port)
    assert FIRST_DAY_NS <= shown["since_ns"] < WALL_START_NS - 10**17  # event time, years back
    wait_for(
        lambda: (
            {r["instrument"] for r in snapshot(system.port)["models"]["scores"]}
            == set(SP500.split(","))
        ),
        "every instrument's model scores (the trading flow may still be behind)",
        PATIENCE_S,
        every_s=1.0,
    )
    # P&L: the trading flow booked into the series (a curve of P&L snapshots).
    equity = wait_for(
        lambda: (e := snapshot(system.port)["equity"])["points"] >= MIN_PNL_POINTS and e,
        "P&L snapshots of the replay (the trading flow may still be behind)",
        PATIENCE_S,
        every_s=1.0,
    )
    assert FIRST_DAY_NS <= equity["ts"] < WALL_START_NS - 10**17  # the replay's event time
    assert equity["equity"] > 0
    browser.get(f"http://127.0.0.1:{system.port}/")
    wait_for(
        lambda: browser.find_element(By.ID, "ticks").text.replace(",", "") == str(system.rows),
        "the page to show every replayed tick",
        PATIENCE_S,
    )
    wait_for(
        lambda: equity_shown(browser), "the P&L panel and equity chart on the page", PATIENCE_S
    )
    page = browser.find_element(By.TAG_NAME, "body").text
    assert all(name in page for name in SP500.split(","))
    screenshot(browser, "sp500-replay")
