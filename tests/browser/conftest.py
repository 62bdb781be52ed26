"""Browser tests need Chromium and its driver (Debian: chromium, chromium-driver).

Where they are missing, the tests are skipped with the reason printed in the report
summary, except under CI (`CI=true`), whose `.ci/run` installs them: there a missing
browser must fail, never hide the tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.browser import (
    CHROMEDRIVER,
    CHROMIUM,
    browser,  # noqa: F401  (the fixture every browser test uses)
)

REQUIRED = (CHROMIUM, CHROMEDRIVER)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    missing = [str(path) for path in REQUIRED if not path.exists()]
    if not missing or os.environ.get("CI") == "true":
        return None
    return (
        f"browser tests skipped: {', '.join(missing)} missing "
        "(install with `apt-get install chromium chromium-driver`, as .ci/run does)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reason = missing_browser()
    if reason is not None:
        terminalreporter.write_line(reason, yellow=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = missing_browser()
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.skip(reason=reason))
