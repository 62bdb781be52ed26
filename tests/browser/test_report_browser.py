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
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from support.browser import OFFLINE_FLAGS, chromium, screenshot
from support.research_run import sp500_run

from dataflows.ops.report import write_report

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "var" / "reports" / "sp500-test.html"
CHARTS = ("equity", "underwater", "monthly", "rolling", "exposure", "trades", "fan", "scores")


@pytest.fixture
def offline_browser() -> Iterator[webdriver.Chrome]:
    """A tall window with networking off: the report must be self-contained."""
    with chromium("--window-size=1600,2400", *OFFLINE_FLAGS) as driver:
        yield driver


def test_report_opens_offline_and_draws_every_chart(
    offline_browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser = offline_browser
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
    screenshot(browser, "report")
