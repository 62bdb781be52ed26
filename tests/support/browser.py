"""What the browser tests share: headless Debian Chromium and a patient poll.

`chromium(*extra_flags)` yields a driver with a fresh profile and no background
traffic, the `browser` fixture one per test; `wait_for` polls a condition, counting
errors of a page or a server that is not there yet as "not yet", and fails naming what
it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1600,1400",
)
# Any request leaving the machine fails (a page that must be self-contained).
OFFLINE_FLAGS = ("--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "browser"


@contextmanager
def chromium(*flags: str) -> Iterator[webdriver.Chrome]:
    """Headless Chromium driven by chromium-driver; later `flags` override earlier ones
    (`--window-size=1600,2400`)."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, *flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """A test's own headless Chromium (`tests/browser/conftest.py` provides it)."""
    with chromium() as driver:
        yield driver


def wait_for(
    condition: Callable[[], Any],
    what: str | Callable[[], str],
    timeout_s: float = 90.0,
    every_s: float = 0.25,
) -> Any:
    """Poll `condition` until it returns something truthy and return that; errors
    (connection refused, a page element not there yet, a half-written reply) count as
    not yet. Fail naming `what` (or what `what()` says then) after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = condition()
        except (OSError, ValueError, KeyError, TypeError, WebDriverException):
            result = None
        if result:
            return result
        time.sleep(every_s)
    said = what if isinstance(what, str) else what()
    raise AssertionError(f"timed out after {timeout_s:g}s waiting for {said}")


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Save the page as `var/browser/<name>.png` and return the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), path
    return path
