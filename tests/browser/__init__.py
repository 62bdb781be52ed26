"""Browser tests: headless Chromium drives the dashboard and the report."""
