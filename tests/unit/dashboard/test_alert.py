"""The in-process alert engine: conditions, deduplication, repeats, rate limit, webhook."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest

from dashboard.alert import AlertEngine, Counts, RateLimit, Webhook, conditions
from dashboard.config import AlertThresholds
from dashboard.health import Check
from risk.domain.control import Alert

LIMITS = AlertThresholds(max_drawdown_ratio=0.1, repeat_after_s=60, max_per_minute=3)
SECOND = 1_000_000_000
STALE = Check(name="market_data", ok=False, detail="newest tick 30.0s old (limit 10s)")


def snapshot(drawdown: float = 0.0, state: str = "active", dlq: int = 0, drift: int = 0) -> dict:
    return {
        "account": "paper-1",
        "equity": {"drawdown": drawdown},
        "risk": {"state": {"state": state, "trigger": "kill", "reason": "test"}},
        "pipeline": {"dlq": {"malformed_json": dlq}},
        "models": {"drift_total": drift},
    }


class Sent:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def __call__(self, alerts: list[Alert]) -> None:
        self.alerts.extend(alerts)


def test_failing_freshness_check_is_a_stale_data_alert() -> None:
    found = conditions(snapshot(), [STALE], LIMITS, Counts())
    assert list(found) == [("stale_data", "market_data")]


def test_halted_state_is_a_kill_switch_alert() -> None:
    assert ("kill_switch", "paper-1") in conditions(snapshot(state="halted"), [], LIMITS, Counts())


def test_dlq_and_drift_fire_on_increase_not_on_first_sight() -> None:
    seen = Counts()
    assert conditions(snapshot(dlq=500, drift=2), [], LIMITS, seen) == {}
    found = conditions(snapshot(dlq=1000, drift=3), [], LIMITS, seen)
    assert set(found) == {("dlq_rate", "hfl.dlq"), ("drift", "models")}


def test_condition_fires_once_while_it_lasts() -> None:
    sent = Sent()
    engine = AlertEngine(LIMITS, sent)
    for i in range(5):
        engine.evaluate(snapshot(drawdown=0.2), [], now_ns=i * SECOND)
    assert [alert.name for alert in sent.alerts] == ["drawdown"]
    assert engine.fired["drawdown"] == 1


def test_condition_lasting_past_repeat_time_fires_again() -> None:
    sent = Sent()
    engine = AlertEngine(LIMITS, sent)
    engine.evaluate(snapshot(drawdown=0.2), [], now_ns=0)
    engine.evaluate(snapshot(drawdown=0.2), [], now_ns=61 * SECOND)
    assert len(sent.alerts) == 2


def test_cleared_condition_fires_again_when_it_returns() -> None:
    sent = Sent()
    engine = AlertEngine(LIMITS, sent)
    engine.evaluate(snapshot(drawdown=0.2), [], now_ns=0)
    engine.evaluate(snapshot(drawdown=0.0), [], now_ns=SECOND)
    engine.evaluate(snapshot(drawdown=0.2), [], now_ns=2 * SECOND)
    assert len(sent.alerts) == 2
    assert sent.alerts[0].alert_id != sent.alerts[1].alert_id


def test_rate_limit_caps_alerts_per_minute() -> None:
    limit = RateLimit(3)
    assert [limit.allow(t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert limit.allow(60.5)


class FlakyHook(BaseHTTPRequestHandler):
    """Fails the first `failures` posts with HTTP 503, then accepts."""

    failures = 2
    received: list[dict] = []
    attempts = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).attempts += 1
        if type(self).attempts <= type(self).failures:
            self.send_response(503)
        else:
            type(self).received.append(orjson.loads(body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def hook() -> Iterator[str]:
    FlakyHook.received, FlakyHook.attempts = [], 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FlakyHook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def test_webhook_retries_with_backoff_until_delivered(hook: str) -> None:
    sent = Sent()
    webhook = Webhook(hook, attempts=4, backoff_s=0.05)
    engine = AlertEngine(LIMITS, sent, webhook=webhook)
    engine.evaluate(snapshot(), [STALE], now_ns=SECOND)
    deadline = time.monotonic() + 10
    while webhook.delivered < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert FlakyHook.attempts == 3
    assert [alert["name"] for alert in FlakyHook.received] == ["stale_data"]
