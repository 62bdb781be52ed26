"""The dashboard's background loop: read a snapshot, check health, fire alerts, cache JSON.

Readers (HTTP handlers, the Prometheus collector, the SSE stream) only take the cached
bytes, so serving costs the same for one viewer or a hundred, and the store sees one
set of queries per refresh whatever the load.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from typing import Any

from prometheus_client import CollectorRegistry

from connectors.codec import encode
from dashboard.alert import AlertEngine, Webhook
from dashboard.config import DashboardConfig
from dashboard.health import (
    Check,
    broker_check,
    clickhouse_check,
    data_checks,
    lag_check,
    process_checks,
    snapshot_check,
)
from dashboard.publisher import Publisher
from dashboard.snapshot import Query, read_snapshot
from risk.domain.control import Alert
from risk.domain.error import HflError

LOG = logging.getLogger("hfl.dashboard")
SECTIONS = (
    "equity",
    "positions",
    "orders",
    "signals",
    "risk",
    "models",
    "pipeline",
    "alerts",
    "audit",
    "health",
    "flows",
)
_QUANTILES = (0.5, 0.99)


def histogram_quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Estimate quantile `q` from cumulative (upper bound, count) buckets, as PromQL does.

    >>> histogram_quantile([(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)], 0.75)
    0.15
    """
    total = buckets[-1][1] if buckets else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float("inf"):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return round(lower_bound + (bound - lower_bound) * share, 9)
        lower_bound, lower_count = bound, count
    return lower_bound


def flow_figures(registry: CollectorRegistry) -> dict[str, Any]:
    """Pipeline figures from the flows' metrics: records per step, lag, latency."""
    figures: dict[str, Any] = {
        "records_in": {},
        "records_out": {},
        "consumer_lag": {},
        "heartbeats": {},
    }
    buckets: list[tuple[float, float]] = []
    for family in registry.collect():
        for sample in family.samples:
            step = sample.labels.get("step", "")
            match sample.name:
                case "hfl_pipeline_records_in_total":
                    figures["records_in"][step] = sample.value
                case "hfl_pipeline_records_out_total":
                    figures["records_out"][step] = sample.value
                case "hfl_pipeline_consumer_lag_records":
                    figures["consumer_lag"][step] = sample.value
                case "hfl_pipeline_tick_to_decision_seconds_bucket":
                    buckets.append((float(sample.labels["le"]), sample.value))
                case "hfl_persist_lag_seconds":
                    figures["persist_lag_s"] = sample.value
                case "hfl_process_heartbeat_seconds":
                    figures["heartbeats"][sample.labels["component"]] = sample.value
    buckets.sort()
    finite = [(bound, count) for bound, count in buckets if bound != float("inf")]
    total = buckets[-1][1] if buckets else 0.0
    for q in _QUANTILES:
        name = f"tick_to_decision_p{round(q * 100)}_ms"
        if finite and total > 0 and q * total > finite[-1][1]:
            # Beyond the top bucket: only a lower bound is known, never a made-up value.
            figures[name], figures[name + "_above"] = None, finite[-1][0] * 1e3
            continue
        seconds = histogram_quantile(buckets, q)
        figures[name] = None if seconds is None else seconds * 1e3
        if seconds is not None:
            # The estimate is interpolated within one bucket: its bounds say how exact.
            low, high = quantile_bucket(buckets, q)
            figures[name + "_bucket"] = [low * 1e3, high * 1e3]
    return figures


def quantile_bucket(buckets: list[tuple[float, float]], q: float) -> tuple[float, float]:
    """The (lower, upper) bounds of the bucket quantile `q` falls in.

    >>> quantile_bucket([(0.1, 50.0), (0.2, 100.0), (float("inf"), 100.0)], 0.75)
    (0.1, 0.2)
    """
    rank = q * buckets[-1][1]
    lower = 0.0
    for bound, count in buckets:
        if count >= rank:
            return lower, bound
        lower = bound
    return lower, lower


class Monitor:
    """Refresh the snapshot every `refresh_s` in a daemon thread and keep it as JSON."""

    def __init__(
        self,
        config: DashboardConfig,
        query: Query,
        flows: CollectorRegistry,
        publisher: Publisher | None,
    ) -> None:
        self._config = config
        self._query = query
        self._flows = flows
        self._publisher = publisher
        webhook = Webhook(config.webhook_url) if config.webhook_url else None
        self.alerts = AlertEngine(config.alerts, self._publish_alerts, webhook=webhook)
        self.snapshot: dict[str, Any] | None = None
        self.payload = b"{}"
        self.sections: dict[str, bytes] = dict.fromkeys(SECTIONS, b"null")
        self.checks: list[Check] = []
        self.version = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Refresh once now, then keep refreshing in the background."""
        self.refresh()
        self._thread = threading.Thread(target=self._run, name="hfl-dashboard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the refresh loop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # A fixed rate, not a fixed pause: the period stays `refresh_s` however long
        # the reads take (up to the read time itself on a loaded machine).
        while True:
            started = time.monotonic()
            self.refresh()
            pause = self._config.refresh_s - (time.monotonic() - started)
            if self._stop.wait(max(0.0, pause)):
                return

    def refresh(self) -> None:
        """Read, check, alert and publish one snapshot; a failed read keeps the last one."""
        error = None
        try:
            snapshot = read_snapshot(self._query, self._config)
        except (HflError, OSError) as exc:
            error = str(exc)
            snapshot = None
        previous = self.snapshot or {}
        current = snapshot or previous
        flows = flow_figures(self._flows)
        checks = self.health(current, error, flows)
        if snapshot is not None:
            self.alerts.evaluate(snapshot, checks)
        current = current | {
            "health": [asdict(check) for check in checks],
            "flows": flows,
            "error": error,
        }
        self.snapshot, self.checks = current, checks
        self.sections = {name: encode(current.get(name)) for name in SECTIONS}
        self.payload = encode(current)
        self.version += 1

    def health(
        self, snapshot: dict[str, Any], error: str | None, flows: dict[str, Any]
    ) -> list[Check]:
        """Every health check against the newest snapshot and flow figures."""
        limits = self._config.alerts
        lags = flows["consumer_lag"].values()
        now_s = time.time()
        return [
            *process_checks(flows["heartbeats"], now_s, limits.heartbeat_s),
            broker_check(self._config.bootstrap),
            clickhouse_check(error),
            *data_checks(snapshot.get("pipeline", {}), limits),
            lag_check(max(lags) if lags else None, limits),
            snapshot_check(self._config.recovery_dirs, now_s, limits.snapshot_age_s),
        ]

    def _publish_alerts(self, alerts: list[Alert]) -> None:
        if self._publisher is None:
            return
        try:
            self._publisher.publish(alerts)
        except HflError as exc:
            LOG.error("alerts not delivered to Kafka: %s", exc)
