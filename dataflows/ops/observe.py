"""`hfl dashboard`, `hfl status`, `hfl trail` and `hfl bench dashboard`: settings to dashboard."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from connectors.telemetry.metric import multiprocess_registry
from dashboard.config import AlertThresholds, DashboardConfig
from dashboard.health import Check, broker_check, data_checks, process_checks, snapshot_check
from dashboard.monitor import flow_figures
from dashboard.snapshot import pipeline_panel, run_window
from dataflows.settings import Settings, secret_values
from online_models.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS
from risk.redact import redact_text
from risk.timescale import TICK
from sinks.query import QueryError, format_table, query, read_port_file, reader
from sinks.trail import chain_ids, trail_logs, trail_rows


def dashboard_config(
    settings: Settings,
    *,
    port: int | None = None,
    since_ns: int = 0,
    run_id: str = "",
    recovery_dirs: tuple[str, ...] = (),
) -> DashboardConfig:
    """The dashboard's explicit configuration from `settings`; the run shown is `run_id`,
    else the one this process belongs to (`HFL_RUN_ID`), else the newest."""
    board = settings.dashboard
    limits = settings.risk.limits
    return DashboardConfig(
        clickhouse_url=settings.clickhouse.url.reveal(),
        bootstrap=settings.kafka.bootstrap,
        topic_prefix=settings.kafka.topic_prefix,
        account=settings.trading.account,
        instruments=settings.trading.instruments,
        models=tuple(settings.model.pipelines),
        score_names=tuple(
            prefix + name
            for name in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS)
            for prefix in ("", "rolling_")
        ),
        max_gross_exposure=float(limits.max_gross_exposure),
        max_position=float(limits.max_position),
        keys_file=settings.security.keys_file,
        open_read=board.open_read,
        origins=board.origins,
        read_limit=board.read_limit,
        write_limit=board.write_limit,
        sql_limit=board.sql_limit,
        host=board.host,
        port=board.port if port is None else port,
        refresh_s=board.refresh_s,
        since_ns=since_ns,
        run_id=run_id or os.environ.get("HFL_RUN_ID", ""),
        metrics_dir=board.metrics_dir or os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""),
        recovery_dirs=recovery_dirs,
        webhook_url=board.webhook_url,
        alerts=AlertThresholds(
            stale_data_s=board.stale_data_s or TICK.stale_ns / 1e9,  # null: ticks' 10 s
            persist_lag_s=board.persist_lag_s,
            max_drawdown_ratio=board.max_drawdown_ratio,
        ),
    )


def run_dashboard(
    settings: Settings, *, port: int | None, since_ns: int, recovery: str, run_id: str = ""
) -> None:
    """Serve the dashboard until interrupted."""
    from connectors.keyfile import WatchedKeyRing
    from dashboard.app import serve
    from dashboard.publisher import Publisher
    from dataflows.ops.control import publish_control

    config = dashboard_config(
        settings,
        port=port,
        since_ns=since_ns,
        run_id=run_id,
        recovery_dirs=(recovery,) if recovery else (),
    )
    keys = WatchedKeyRing(config.keys_file)
    print(
        f"dashboard on http://{config.host}:{config.port} (keys: {keys.path},"
        f" open reads: {config.open_read})",
        file=sys.stderr,
        flush=True,
    )
    sql_url = settings.dashboard.sql_url.reveal() or config.clickhouse_url
    serve(
        config,
        reader(config.clickhouse_url),
        Publisher(config.bootstrap, config.topic_prefix),
        lambda action, reason, token: (
            publish_control(settings, action, reason, "", token=token).command_id
        ),
        ring=keys.ring,
        console=reader(sql_url, console=True),
    )


def status_checks(settings: Settings, root: Path) -> list[Check]:
    """Health of the local system, checked directly (no dashboard needed)."""
    url = settings.clickhouse.url.reveal()
    config = dashboard_config(settings)
    limits = config.alerts
    runs = sorted((root / "var" / "runs").glob("*/metrics"), key=lambda path: path.stat().st_mtime)
    metrics_dir = config.metrics_dir or (str(runs[-1]) if runs else "")
    heartbeats = (
        flow_figures(multiprocess_registry(metrics_dir))["heartbeats"] if metrics_dir else {}
    )
    checks = [
        *process_checks(heartbeats, time.time(), limits.heartbeat_s),
        broker_check(settings.kafka.bootstrap),
    ]
    try:
        window = run_window(lambda sql: query(url, sql), settings.trading.account, config.run_id)
        pipeline = pipeline_panel(lambda sql: query(url, sql), window, time.time_ns())
    except QueryError as exc:
        detail = redact_text(str(exc), secret_values(settings))
        checks.append(Check(name="clickhouse", ok=False, detail=detail))
    else:
        served = "served by the persist flow" if read_port_file(url) else "opened directly"
        checks.append(Check(name="clickhouse", ok=True, detail=served))
        checks.extend(data_checks(pipeline, limits))
    recovery = [str(path) for path in (root / "var" / "runs").glob("*/recovery")]
    recovery.append(str(root / settings.recovery.directory))
    checks.append(snapshot_check(recovery[-5:], time.time(), limits.snapshot_age_s))
    return checks


def print_status(settings: Settings, root: Path) -> int:
    """Print every check; exit status 0 when all pass."""
    checks = status_checks(settings, root)
    rows = [(c.name, "ok" if c.ok else "FAIL", c.detail) for c in checks]
    print(format_table(["check", "status", "detail"], rows))
    return 0 if all(check.ok for check in checks) else 1


def print_trail(settings: Settings, root: Path, client_order_id: str) -> int:
    """Print the log lines and rows behind one order."""
    url = settings.clickhouse.url.reveal()
    ids = chain_ids(lambda sql: query(url, sql), client_order_id)
    print(f"ids: {json.dumps(ids)}")
    logs = sorted((root / "var" / "runs").glob("*/*.log"))
    print(f"== log lines ({len(logs)} log files under var/runs)")
    for line in trail_logs(logs, ids):
        print(line)
    for table, columns, rows in trail_rows(lambda sql: query(url, sql), ids):
        print(f"== {table}")
        print(format_table(columns, rows))
    return 0


def wait_http(host: str, port: int, path: str, *, timeout_s: float) -> None:
    """Poll `http://host:port/path` until it answers 200 or `timeout_s` passes."""
    import http.client

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection = http.client.HTTPConnection(host, port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"http://{host}:{port}{path} did not answer in {timeout_s:g}s")
        time.sleep(0.2)
