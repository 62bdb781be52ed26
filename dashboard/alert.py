"""The in-process alert engine for local mode: rules over snapshots, Kafka, a webhook.

Each refresh the engine evaluates its rules on the latest snapshot and health checks.
A condition fires once when it starts (deduplicated by name and subject), again only
if it persists past `repeat_after_s`, and never more than `max_per_minute` alerts a
minute overall. Alerts go to `hfl.alerts` (the persist flow writes them to the
`alerts` table; the risk gate reacts to some) and, when configured, to a webhook,
posted from a background thread with retries and exponential backoff. Prometheus
rules in ``docker/prometheus/`` express the same conditions for the compose stack.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from connectors.codec import encode
from dashboard.config import AlertThresholds
from dashboard.health import Check
from risk.domain.control import Alert
from risk.domain.enums import AlertSeverity, TradingState
from risk.domain.ids import stable_id

ALERT_NAMES = (
    "stale_data",
    "persist_lag",
    "consumer_lag",
    "dlq_rate",
    "drawdown",
    "kill_switch",
    "drift",
)
LOG = logging.getLogger("hfl.dashboard.alert")
Condition = tuple[AlertSeverity, str]
_CHECK_ALERTS = {
    "market_data": ("stale_data", AlertSeverity.CRITICAL),
    "persist": ("persist_lag", AlertSeverity.WARNING),
    "consumer_lag": ("consumer_lag", AlertSeverity.WARNING),
}


@dataclass(slots=True)
class Counts:
    """Totals seen at the previous evaluation, to turn totals into rates."""

    dlq: int | None = None
    drift: int | None = None


def conditions(
    snapshot: dict[str, Any], checks: Sequence[Check], limits: AlertThresholds, seen: Counts
) -> dict[tuple[str, str], Condition]:
    """Which alert conditions hold now, keyed by (alert name, subject).

    >>> snap = {"account": "a", "equity": {"drawdown": 0.2}, "risk": {}, "models": {},
    ...         "pipeline": {}}
    >>> list(conditions(snap, [], AlertThresholds(max_drawdown_ratio=0.1), Counts()))
    [('drawdown', 'a')]
    """
    account = snapshot.get("account", "")
    found: dict[tuple[str, str], Condition] = {}
    for check in checks:
        if not check.ok and check.name in _CHECK_ALERTS:
            name, severity = _CHECK_ALERTS[check.name]
            found[name, check.name] = (severity, check.detail)
    drawdown = snapshot.get("equity", {}).get("drawdown") or 0.0
    if drawdown > limits.max_drawdown_ratio:
        message = f"drawdown {drawdown:.2%} above {limits.max_drawdown_ratio:.2%}"
        found["drawdown", account] = (AlertSeverity.CRITICAL, message)
    state = snapshot.get("risk", {}).get("state", {})
    if state.get("state") == TradingState.HALTED:
        message = f"trading halted ({state.get('trigger')}: {state.get('reason')})"
        found["kill_switch", account] = (AlertSeverity.CRITICAL, message)
    dlq = sum(snapshot.get("pipeline", {}).get("dlq", {}).values())
    if seen.dlq is not None and dlq - seen.dlq > limits.dlq_per_refresh:
        message = f"{dlq - seen.dlq} dead letters since the last check"
        found["dlq_rate", "hfl.dlq"] = (AlertSeverity.WARNING, message)
    drift = snapshot.get("models", {}).get("drift_total", 0)
    if seen.drift is not None and drift > seen.drift:
        message = f"{drift - seen.drift} new drift detections"
        found["drift", "models"] = (AlertSeverity.WARNING, message)
    seen.dlq, seen.drift = dlq, drift
    return found


class RateLimit:
    """At most `limit` events in any 60 s window."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._times: deque[float] = deque()

    def allow(self, now_s: float) -> bool:
        """Record and allow one event at `now_s` unless the window is full."""
        while self._times and now_s - self._times[0] >= 60.0:
            self._times.popleft()
        if len(self._times) >= self._limit:
            return False
        self._times.append(now_s)
        return True


class Webhook:
    """Post alerts as JSON from a background thread, retrying with exponential backoff."""

    def __init__(
        self, url: str, *, attempts: int = 4, backoff_s: float = 0.5, timeout_s: float = 5.0
    ) -> None:
        self._url = url
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._timeout_s = timeout_s
        self._queue: queue.Queue[Alert] = queue.Queue(maxsize=1000)
        self.delivered = 0
        threading.Thread(target=self._run, name="hfl-alert-webhook", daemon=True).start()

    def post(self, alert: Alert) -> None:
        """Queue `alert` for delivery; a full queue is logged, not blocking the engine."""
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            LOG.error("webhook queue full, alert %s not posted", alert.alert_id)

    def _run(self) -> None:
        while True:
            self._deliver(self._queue.get())

    def _deliver(self, alert: Alert) -> None:
        body = encode(asdict(alert))
        delay = self._backoff_s
        for attempt in range(1, self._attempts + 1):
            request = urllib.request.Request(
                self._url, data=body, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout_s):
                    self.delivered += 1
                    return
            except OSError as exc:
                LOG.warning("webhook attempt %d for %s failed: %s", attempt, alert.alert_id, exc)
            if attempt < self._attempts:
                time.sleep(delay)
                delay *= 2
        LOG.error("webhook gave up on alert %s after %d attempts", alert.alert_id, attempt)


class AlertEngine:
    """Fire deduplicated, rate-limited alerts for the conditions of each snapshot."""

    def __init__(
        self,
        limits: AlertThresholds,
        publish: Callable[[list[Alert]], None],
        *,
        source: str = "dashboard",
        webhook: Webhook | None = None,
    ) -> None:
        self._limits = limits
        self._publish = publish
        self._source = source
        self._webhook = webhook
        self._seen = Counts()
        self._active: dict[tuple[str, str], float] = {}
        self._rate = RateLimit(limits.max_per_minute)
        self.fired: dict[str, int] = dict.fromkeys(ALERT_NAMES, 0)

    def evaluate(
        self, snapshot: dict[str, Any], checks: Sequence[Check], now_ns: int | None = None
    ) -> list[Alert]:
        """Fire alerts for conditions that started (or persisted past the repeat time)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        now_s = now_ns / 1e9
        found = conditions(snapshot, checks, self._limits, self._seen)
        for key in [key for key in self._active if key not in found]:
            del self._active[key]  # the condition cleared: its next start fires again
        alerts = []
        for (name, subject), (severity, message) in found.items():
            last = self._active.get((name, subject))
            if last is not None and now_s - last < self._limits.repeat_after_s:
                continue
            if not self._rate.allow(now_s):
                LOG.warning("alert rate limit reached; %s on %s not sent", name, subject)
                continue
            self._active[name, subject] = now_s
            alerts.append(self._alert(name, subject, severity, message, now_ns))
        if alerts:
            self._publish(alerts)
            for alert in alerts:
                self.fired[alert.name] += 1
                if self._webhook is not None:
                    self._webhook.post(alert)
        return alerts

    def _alert(
        self, name: str, subject: str, severity: AlertSeverity, message: str, now_ns: int
    ) -> Alert:
        return Alert(
            alert_id=stable_id("alert", name, subject, now_ns),
            name=name,
            severity=severity,
            source=self._source,
            subject=subject,
            message=message,
            ts_event=now_ns,
            ts_init=now_ns,
        )
