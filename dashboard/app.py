"""The dashboard web app (Starlette on uvicorn, bound to 127.0.0.1).

Routes:

- ``/``: the page (vanilla JS; charts are server-side SVG);
- ``/api/snapshot`` and ``/api/<section>``: cached JSON of the latest snapshot;
- ``/api/stream``: server-sent events, one snapshot per refresh (≤ 1 s);
- ``/api/control`` (POST): kill switch / resume, needs the trader token;
- ``/api/sql`` (POST): read-only SQL console;
- ``/metrics``: Prometheus (flows' metrics plus snapshot-derived ones);
- ``/health/live`` and ``/health/ready``.

In local mode the dashboard is its own process reading the embedded store through the
persist flow's read-only query endpoint (it never opens chDB itself, which would lock
the persist flow out); in Docker mode it reads clickhouse-server by URL.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.telemetry.metric import multiprocess_registry
from dashboard.config import DashboardConfig
from dashboard.exporter import SnapshotCollector
from dashboard.monitor import SECTIONS, Monitor
from dashboard.publisher import Publisher
from dashboard.snapshot import Query
from risk.domain.enums import ControlAction
from risk.domain.error import HflError

STATIC = Path(__file__).parent / "static"
SQL_ROW_LIMIT = 1000
STREAM_POLL_S = 0.1


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


SendControl = Callable[[ControlAction, str, str], str]


def create_app(
    config: DashboardConfig,
    query: Query,
    publisher: Publisher | None,
    send_control: SendControl | None,
) -> Starlette:
    """Build the app; the monitor starts and stops with it.

    `send_control(action, reason, actor)` publishes a kill or resume command with its
    audit record and returns the command id; None disables the buttons.
    """
    flows = multiprocess_registry(config.metrics_dir) if config.metrics_dir else CollectorRegistry()
    monitor = Monitor(config, query, flows, publisher)
    registry = CollectorRegistry()
    registry.register(
        SnapshotCollector(
            config,
            lambda: monitor.snapshot,
            lambda: {check.name: check.ok for check in monitor.checks},
            lambda: monitor.alerts.fired,
        )
    )

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def snapshot(request: Request) -> Response:
        return _json(monitor.payload)

    async def section(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in SECTIONS:
            return JSONResponse({"error": f"no section {name!r}"}, status_code=404)
        return _json(monitor.sections[name])

    async def stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            seen = -1
            while not await request.is_disconnected():
                if monitor.version != seen:
                    seen = monitor.version
                    yield b"data: " + monitor.payload + b"\n\n"
                await asyncio.sleep(STREAM_POLL_S)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def control(request: Request) -> Response:
        return await _control(config, send_control, await _body(request))

    async def sql(request: Request) -> Response:
        body = await _body(request)
        try:
            columns, rows = await run_in_threadpool(query, str(body.get("sql", "")))
        except HflError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        payload = {"columns": columns, "rows": rows[:SQL_ROW_LIMIT], "total": len(rows)}
        return _json(encode_lenient(payload))

    async def metrics(request: Request) -> Response:
        body = generate_latest(registry) + generate_latest(flows)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def live(request: Request) -> Response:
        processes = {
            check.name: check.ok for check in monitor.checks if check.name.endswith("_process")
        }
        return JSONResponse({"status": "alive", "processes": processes})

    async def ready(request: Request) -> Response:
        checks = [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in monitor.checks]
        ok = bool(checks) and all(check["ok"] for check in checks)
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(monitor.start)
        yield
        await run_in_threadpool(monitor.stop)

    app = Starlette(
        routes=[
            Route("/", page),
            Route("/api/snapshot", snapshot),
            Route("/api/stream", stream),
            Route("/api/control", control, methods=["POST"]),
            Route("/api/sql", sql, methods=["POST"]),
            Route("/api/{name}", section),
            Route("/metrics", metrics),
            Route("/health/live", live),
            Route("/health/ready", ready),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
    )
    app.state.monitor = monitor
    return app


async def _control(
    config: DashboardConfig, send_control: SendControl | None, body: dict[str, Any]
) -> Response:
    """Check the trader token, then publish the command and its audit record."""
    if not config.trader_token:
        return JSONResponse({"error": "no trader token configured"}, status_code=503)
    token = str(body.get("token", ""))
    if not hmac.compare_digest(token.encode(), config.trader_token.encode()):
        return JSONResponse({"error": "wrong trader token"}, status_code=403)
    try:
        action = ControlAction(body.get("action"))
    except ValueError:
        return JSONResponse({"error": "action must be kill or resume"}, status_code=400)
    if send_control is None:
        return JSONResponse({"error": "no broker configured"}, status_code=503)
    reason = str(body.get("reason") or "dashboard")[:200]
    actor = str(body.get("actor") or "trader")[:64]
    try:
        command_id = await run_in_threadpool(send_control, action, reason, actor)
    except HflError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    return JSONResponse({"ok": True, "action": action, "command_id": command_id})


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def encode_lenient(payload: object) -> bytes:
    """JSON for query results: exotic column types print as text."""
    return orjson.dumps(payload, default=str)


def serve(
    config: DashboardConfig,
    query: Query,
    publisher: Publisher | None,
    send_control: SendControl | None,
) -> None:
    """Run the dashboard on `config.host:config.port` until interrupted (SIGINT/SIGTERM)."""
    import uvicorn

    uvicorn.run(
        create_app(config, query, publisher, send_control),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
