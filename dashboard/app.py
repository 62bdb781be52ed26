"""The dashboard web app (Starlette on uvicorn, bound to 127.0.0.1).

Routes:

- ``/``: the page (vanilla JS; charts are server-side SVG);
- ``/api/snapshot`` and ``/api/<section>``: cached JSON of the latest snapshot;
- ``/api/stream``: server-sent events, one snapshot per refresh (≤ 1 s);
- ``/api/session`` (POST ``{"key": …}``): an HttpOnly cookie for the page's reads;
- ``/api/control`` (POST): kill switch / reduce / resume, signed with the caller's key
  (a trader, risk or admin key in ``X-Hfl-Key``);
- ``/api/sql`` (POST): the guarded read-only SQL console (`sinks.guard`);
- ``/metrics``: Prometheus (flows' metrics plus snapshot-derived ones);
- ``/health/live`` and ``/health/ready``.

In local mode the dashboard is its own process reading the embedded store through the
persist flow's read-only query endpoint (it never opens chDB itself, which would lock
the persist flow out); in Docker mode it reads clickhouse-server by URL.

`dashboard.guard.Door` stands in front of every route: Host/Origin checks, keys and
roles, rate limits, security headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from connectors.telemetry.metric import multiprocess_registry
from dashboard.config import DashboardConfig
from dashboard.exporter import SnapshotCollector
from dashboard.guard import SESSION_COOKIE, SESSION_TTL_S, Door, Keys, default_policy
from dashboard.monitor import SECTIONS, Monitor
from dashboard.publisher import Publisher
from dashboard.snapshot import Query
from risk.access import AccessError, ApiKey, KeyRing, allows, control_permission
from risk.domain.control import AuditEvent
from risk.domain.enums import ControlAction
from risk.domain.error import HflError
from risk.domain.ids import stable_id

STATIC = Path(__file__).parent / "static"
SQL_ROW_LIMIT = 1000
STREAM_POLL_S = 0.1


class RefusalAudit:
    """Record the dashboard's refusals (and console queries) as audit events, off the
    event loop.

    Publishing waits for the broker's acknowledgement, so a daemon thread does it from
    a bounded queue; when the queue is full (a flood of refusals) the excess is
    counted in `dropped`, never allowed to slow the refusals themselves.
    """

    def __init__(self, audit: Audit | None, capacity: int = 10_000) -> None:
        """Send events through `audit` (None: record nothing)."""
        self._audit = audit
        self._queue: queue.Queue[AuditEvent] = queue.Queue(maxsize=capacity)
        self.dropped = 0
        if audit is not None:
            threading.Thread(target=self._drain, name="hfl-dashboard-audit", daemon=True).start()

    def __call__(self, actor: str, action: str, detail: str) -> None:
        """Queue one refusal: who (a key name or "anonymous"), what, and the request."""
        if self._audit is None:
            return
        now = time.time_ns()
        event = AuditEvent(
            audit_id=stable_id("dashboard-refusal", actor, action, detail, now),
            actor=actor,
            action=action,
            subject="dashboard",
            reason=detail[:200],
            detail="{}",
            ts_event=now,
            ts_init=now,
        )
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _drain(self) -> None:
        assert self._audit is not None
        while True:
            event = self._queue.get()
            with contextlib.suppress(HflError):
                self._audit(event)


def _sql_route(console: Query, refused: RefusalAudit) -> Callable[[Request], Any]:
    """`POST /api/sql`: the guarded console; every query and refusal is audited."""

    async def sql(request: Request) -> Response:
        body = await _body(request)
        statement = str(body.get("sql", ""))
        key = request.scope.get("hfl.key")
        actor = key.name if key is not None else "anonymous"
        try:
            columns, rows = await run_in_threadpool(console, statement)
        except HflError as exc:
            refusal = type(exc).__name__ == "QueryRefusedError"
            if refusal:
                refused(actor, "sql_refused", f"{exc}: {statement}")
            return JSONResponse({"error": str(exc)}, status_code=403 if refusal else 400)
        refused(actor, "sql_console", statement)  # a privileged read: audited too
        payload = {"columns": columns, "rows": rows[:SQL_ROW_LIMIT], "total": len(rows)}
        return _json(encode_lenient(payload))

    return sql


def _session_route(keys: Keys, refused: RefusalAudit) -> Callable[[Request], Any]:
    """`POST /api/session`: a key in, an HttpOnly SameSite=Strict read cookie out."""

    async def session(request: Request) -> Response:
        body = await _body(request)
        try:
            session_id, key = await run_in_threadpool(keys.open_session, str(body.get("key", "")))
        except AccessError as exc:
            refused("anonymous", "key_refused", f"POST /api/session: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=401)
        response = JSONResponse({"ok": True, "name": key.name, "role": key.role})
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            max_age=SESSION_TTL_S,
            httponly=True,
            samesite="strict",
            path="/",
        )
        return response

    return session


def _json(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


SendControl = Callable[[ControlAction, str, str], str]
Audit = Callable[[AuditEvent], None]


def create_app(
    config: DashboardConfig,
    query: Query,
    publisher: Publisher | None,
    send_control: SendControl | None,
    *,
    ring: Callable[[], KeyRing] = KeyRing,
    console: Query | None = None,
    audit: Audit | None = None,
) -> Starlette:
    """Build the app; the monitor starts and stops with it.

    `send_control(action, reason, token)` signs with the caller's API key and publishes
    a kill, reduce or resume command with its audit record, returning the command id;
    None disables the buttons. `ring()` gives the current API keys; `console` runs the
    SQL console's statements (default `query`); `audit` records refusals (default:
    the publisher's audit topic when there is a publisher).
    """
    console = console or query
    if audit is None and publisher is not None:
        audit = publisher.audit
    policy = default_policy(
        config.host,
        config.port,
        extra_origins=config.origins,
        open_read=config.open_read,
        read_limit=config.read_limit,
        write_limit=config.write_limit,
        sql_limit=config.sql_limit,
    )
    keys = Keys(ring)

    refused = RefusalAudit(audit)

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
        key = request.scope.get("hfl.key")
        token = request.scope.get("hfl.token", "")
        body = await _body(request)
        return await _control(send_control, body, key, token, refused)

    session = _session_route(keys, refused)

    sql = _sql_route(console, refused)

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
            Route("/api/session", session, methods=["POST"]),
            Route("/api/sql", sql, methods=["POST"]),
            Route("/api/{name}", section),
            Route("/metrics", metrics),
            Route("/health/live", live),
            Route("/health/ready", ready),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        lifespan=lifespan,
        middleware=[Middleware(Door, policy=policy, keys=keys, audit=refused)],
    )
    app.state.monitor = monitor
    return app


async def _control(
    send_control: SendControl | None,
    body: dict[str, Any],
    key: ApiKey | None,
    token: str,
    refused: RefusalAudit,
) -> Response:
    """Check the caller's role for the action, then sign and publish the command."""
    try:
        action = ControlAction(body.get("action"))
    except ValueError:
        return JSONResponse({"error": "action must be kill, reduce or resume"}, status_code=400)
    if key is None or not token:
        return JSONResponse({"error": "control needs an API key in X-Hfl-Key"}, status_code=401)
    needed = control_permission(action)
    if not allows(key.role, needed):
        refused(key.name, "role_refused", f"POST /api/control {action} needs {needed}")
        return JSONResponse(
            {"error": f"key {key.name} ({key.role}) may not {needed}"}, status_code=403
        )
    if send_control is None:
        return JSONResponse({"error": "no broker configured"}, status_code=503)
    reason = str(body.get("reason") or "dashboard")[:200]
    try:
        command_id = await run_in_threadpool(send_control, action, reason, token)
    except HflError as exc:
        return JSONResponse({"error": str(exc)}, status_code=502)
    return JSONResponse({"ok": True, "action": action, "command_id": command_id, "actor": key.name})


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
    *,
    ring: Callable[[], KeyRing] = KeyRing,
    console: Query | None = None,
) -> None:
    """Run the dashboard on `config.host:config.port` until interrupted (SIGINT/SIGTERM)."""
    import uvicorn

    uvicorn.run(
        create_app(config, query, publisher, send_control, ring=ring, console=console),
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
