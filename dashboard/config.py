"""What the dashboard process needs to know, passed explicitly (it never reads settings)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertThresholds:
    """When the in-process alert engine fires (local mode; Prometheus rules mirror them)."""

    stale_data_s: float = 10.0
    persist_lag_s: float = 30.0
    consumer_lag_records: int = 50_000
    dlq_per_refresh: int = 100
    snapshot_age_s: float = 60.0
    heartbeat_s: float = 15.0  # a busy flow's sampler thread waits for the GIL
    max_drawdown_ratio: float = 0.10
    repeat_after_s: float = 300.0
    max_per_minute: int = 30


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardConfig:
    """Where the dashboard reads and writes, and what it shows.

    `since_ns` limits every panel to event times from then on (the store keeps all
    runs); 0 means "the run `run_id`'s rows" (its `runs` row: `snapshot.run_window`),
    and an empty `run_id` the newest run's. `instruments`, `models` and
    `score_names` bound the metric labels. `metrics_dir` is the
    PROMETHEUS_MULTIPROC_DIR the flows write to (empty: none).

    `keys_file` holds the API keys (salted hashes) every call is checked against; with
    `open_read` (loopback binds only) reads need no key. `origins` adds origins a
    browser may call from besides the bind's own; the `*_limit`s are rates per key and
    per client (`limits` notation: "10/second").
    """

    clickhouse_url: str
    bootstrap: str
    topic_prefix: str = ""
    account: str = "paper-1"
    instruments: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    score_names: tuple[str, ...] = ()
    max_gross_exposure: float = 0.0
    max_position: float = 0.0
    keys_file: str = ""
    open_read: bool = False
    origins: tuple[str, ...] = ()
    read_limit: str = "2000/second"
    write_limit: str = "10/second"
    sql_limit: str = "60/minute"
    host: str = "127.0.0.1"
    port: int = 8050
    refresh_s: float = 0.5
    since_ns: int = 0
    run_id: str = ""
    metrics_dir: str = ""
    recovery_dirs: tuple[str, ...] = ()
    webhook_url: str = ""
    alerts: AlertThresholds = field(default_factory=AlertThresholds)
