"""`hfl bench dashboard`: request rate and latency of the dashboard's JSON endpoints."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from connectors.codec import encode
from dataflows.bench.dashboard_load import run_load
from dataflows.ops.observe import wait_http
from dataflows.settings import Settings
from sinks.client import connect
from sinks.migration import migrate
from sinks.query import QueryServer, read_port_file

BENCH_PATHS = (
    "/api/snapshot",
    "/api/positions",
    "/api/risk",
    "/api/equity",
    "/api/pipeline",
    "/health/live",
)


def bench_dashboard(
    settings: Settings, root: Path, *, clients: int, duration_s: float, port: int
) -> dict[str, float | int | None]:
    """Load the dashboard's JSON endpoints with `clients` concurrent clients; print figures.

    As many live viewers follow `/api/stream` meanwhile; the gaps between the updates
    they receive show whether live updates keep their period under load.

    Serves the configured store itself when no persist flow does (chDB allows one
    owner), starts `hfl dashboard` as a child process, loads it, and stops it.
    """
    url = settings.clickhouse.url.reveal()
    server = None
    if read_port_file(url) is None:
        migrate(connect(url))
        server = QueryServer(url)
        server.start()
    env = {
        **os.environ,
        "HFL_CLICKHOUSE_URL": url,
        "HFL_DASHBOARD__PORT": str(port),
        # The load reads without a key, as a loopback viewer page may when allowed.
        "HFL_DASHBOARD__OPEN_READ": "true",
        # All clients share one loopback address; the bench measures the server's
        # capacity, not the per-client limiter (which refuses past its read limit).
        "HFL_DASHBOARD__READ_LIMIT": "1000000/second",
    }
    log = root / "var" / "bench" / "dashboard.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "dataflows.commands", "dashboard"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_http("127.0.0.1", port, "/health/live", timeout_s=60)
        asyncio.run(run_load("127.0.0.1", port, BENCH_PATHS, clients=clients, duration_s=2.0))
        result = asyncio.run(
            run_load(
                "127.0.0.1",
                port,
                BENCH_PATHS,
                clients=clients,
                duration_s=duration_s,
                viewers=clients,
            )
        )
    finally:
        child.terminate()
        child.wait(timeout=30)
        if server is not None:
            server.stop()
    figures = result.summary() | {
        "clients": clients,
        "viewers": clients,
        "paths": len(BENCH_PATHS),
    }
    print(
        f"{clients} clients and {clients} live viewers, {duration_s:g}s over "
        f"{', '.join(BENCH_PATHS)}; dashboard log in {log}",
        file=sys.stderr,
    )
    print(encode(figures).decode())
    return figures
