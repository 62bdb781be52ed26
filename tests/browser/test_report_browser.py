"""`hfl report`'s HTML opened in headless Chromium, as a user would open the file.

The report of a run over the real S&P 500 replay is written under ``var/reports/``,
loaded from disk with networking off (it must need none), and every chart must have
drawn; the success-metrics table shows each target as met, not met or n/a. A
screenshot is left in ``var/browser/report.png``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from support.research_run import sp500_run

from dataflows.ops.report import write_report

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "var" / "reports" / "sp500-test.html"
SCREENSHOT = ROOT / "var" / "browser" / "report.png"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,2400",
    # Any request leaving the machine fails: the report must be self-contained.
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
CHARTS = ("equity", "underwater", "monthly", "rolling", "exposure", "trades", "fan", "scores")


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def test_report_opens_offline_and_draws_every_chart(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    write_report(sp500_run(tmp_path), REPORT)
    browser.get(REPORT.as_uri())
    drawn = WebDriverWait(browser, 60).until(
        lambda d: (
            d.execute_script(
                "return typeof Plotly !== 'undefined' && "
                "Array.from(document.querySelectorAll('.js-plotly-plot'))"
                ".filter(e => e.querySelector('.main-svg')).map(e => e.id)"
            )
            if len(d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot .main-svg")) >= len(CHARTS)
            else None
        )
    )
    assert set(CHARTS) <= set(drawn)
    statuses = [
        cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#success td:last-child")
    ]
    assert len(statuses) == 9
    assert set(statuses) <= {"met", "not met", "n/a"}
    assert "not met" in statuses or "met" in statuses
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
