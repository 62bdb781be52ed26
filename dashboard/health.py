"""Health checks: broker, ClickHouse, market-data freshness, lags and snapshot age.

Each check is a plain value (`Check`); the dashboard serves them at ``/health/ready``
(HTTP 503 when any fails), exports them as ``hfl_health_check_up`` and `hfl status`
prints them. Liveness (``/health/live``) only says the dashboard process answers.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard.config import AlertThresholds

COMPONENTS = ("trading", "gateway", "persist")
CHECK_NAMES = (
    *(f"{component}_process" for component in COMPONENTS),
    "broker",
    "clickhouse",
    "market_data",
    "persist",
    "consumer_lag",
    "recovery_snapshot",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """The outcome of one health check with a short human explanation."""

    name: str
    ok: bool
    detail: str


def process_checks(heartbeats: dict[str, float], now_s: float, limit_s: float) -> list[Check]:
    """Liveness of each flow from its heartbeat (none reported: no flow metrics to judge).

    >>> [(c.name, c.ok) for c in process_checks({"trading": 99.0, "persist": 90.0}, 100.0, 5)]
    [('trading_process', True), ('gateway_process', False), ('persist_process', False)]
    """
    if not heartbeats:
        return []
    checks = []
    for component in COMPONENTS:
        beat = heartbeats.get(component)
        name = f"{component}_process"
        if beat is None:
            checks.append(Check(name=name, ok=False, detail="no heartbeat reported"))
        else:
            age = now_s - beat
            detail = f"last heartbeat {age:.1f}s ago (limit {limit_s:g}s)"
            checks.append(Check(name=name, ok=age <= limit_s, detail=detail))
    return checks


def broker_check(bootstrap: str, timeout_s: float = 1.0) -> Check:
    """Whether the first broker of `bootstrap` accepts a TCP connection."""
    host, _, port = bootstrap.split(",", maxsplit=1)[0].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return Check(name="broker", ok=True, detail=f"{host}:{port} reachable")
    except (OSError, ValueError) as exc:
        return Check(name="broker", ok=False, detail=f"{bootstrap}: {exc}")


def clickhouse_check(error: str | None) -> Check:
    """Whether the last read of the store succeeded (`error` is its failure, if any)."""
    if error is None:
        return Check(name="clickhouse", ok=True, detail="last read succeeded")
    return Check(name="clickhouse", ok=False, detail=error)


def _age_check(name: str, age_s: float | None, limit_s: float, what: str) -> Check:
    if age_s is None:
        return Check(name=name, ok=True, detail=f"no {what} yet")
    ok = age_s <= limit_s
    return Check(name=name, ok=ok, detail=f"{what} {age_s:.1f}s old (limit {limit_s:g}s)")


def data_checks(pipeline: dict[str, Any], limits: AlertThresholds) -> list[Check]:
    """Market data freshness and how far persistence is behind, from a snapshot panel.

    >>> [c.ok for c in data_checks({"tick_age_s": 30.0, "persist_age_s": 1.0},
    ...                            AlertThresholds(stale_data_s=10))]
    [False, True]
    """
    return [
        _age_check("market_data", pipeline.get("tick_age_s"), limits.stale_data_s, "newest tick"),
        _age_check("persist", pipeline.get("persist_age_s"), limits.persist_lag_s, "last insert"),
    ]


def lag_check(max_lag_records: float | None, limits: AlertThresholds) -> Check:
    """Whether every flow's consumer lag is within bounds (None: no flow reports)."""
    if max_lag_records is None:
        return Check(name="consumer_lag", ok=True, detail="no flow reports lag")
    ok = max_lag_records <= limits.consumer_lag_records
    detail = f"max {max_lag_records:.0f} records (limit {limits.consumer_lag_records})"
    return Check(name="consumer_lag", ok=ok, detail=detail)


def newest_mtime(directories: Iterable[str]) -> float | None:
    """The newest modification time of any file under `directories` (None if none)."""
    newest = None
    for directory in directories:
        for path in Path(directory).rglob("*"):
            if path.is_file():
                mtime = path.stat().st_mtime
                newest = mtime if newest is None else max(newest, mtime)
    return newest


def snapshot_check(directories: Iterable[str], now_s: float, limit_s: float) -> Check:
    """Age of the newest Bytewax recovery write under `directories`."""
    directories = [d for d in directories if os.path.isdir(d)]
    if not directories:
        return Check(name="recovery_snapshot", ok=True, detail="no recovery store configured")
    newest = newest_mtime(directories)
    age = None if newest is None else now_s - newest
    return _age_check("recovery_snapshot", age, limit_s, "newest snapshot")
