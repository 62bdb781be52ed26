"""The dashboard's door: each role's allowed and refused calls, CSRF, Host, headers, limits."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from support.loopback import free_port

from dashboard.app import create_app
from dashboard.config import DashboardConfig
from risk.access import KeyRing, Role, new_key
from risk.domain.control import AuditEvent
from risk.domain.enums import ControlAction
from sinks.guard import QueryError

KEYS = {role: new_key(f"{role}-key", role, created_ns=1) for role in Role}
RING = KeyRing.of(key for key, _ in KEYS.values())


def token(role: Role) -> str:
    return str(KEYS[role][1])


@dataclass
class Recorded:
    controls: list[tuple[ControlAction, str, str]] = field(default_factory=list)
    audits: list[AuditEvent] = field(default_factory=list)
    sql: list[str] = field(default_factory=list)


@dataclass
class Board:
    port: int
    recorded: Recorded

    def call(
        self,
        method: str,
        path: str,
        body: object = None,
        *,
        headers: dict[str, str] | None = None,
        role: Role | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        sent = {"Host": f"127.0.0.1:{self.port}"}
        if body is not None:
            sent["Content-Type"] = "application/json"
        if role is not None:
            sent["X-Hfl-Key"] = token(role)
        sent |= headers or {}
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()


def _no_store(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    raise QueryError("no store in this test")


@pytest.fixture(scope="module")
def board() -> Iterator[Board]:
    recorded = Recorded()
    port = free_port()
    config = DashboardConfig(
        clickhouse_url="chdb://memory",
        bootstrap="127.0.0.1:9",
        port=port,
        refresh_s=5.0,
        write_limit="20/second",
        sql_limit="5/minute",
    )

    def send(action: ControlAction, reason: str, caller_token: str) -> str:
        recorded.controls.append((action, reason, caller_token))
        return "command-1"

    def console(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        recorded.sql.append(sql)
        return ["one"], [(1,)]

    app = create_app(
        config,
        _no_store,
        None,
        send,
        ring=lambda: RING,
        console=console,
        audit=recorded.audits.append,
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    result = Board(port, recorded)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if result.call("GET", "/health/live")[0] == 200:
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield result
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _audited(board: Board, actor: str, action: str) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if any(a.actor == actor and a.action == action for a in board.recorded.audits):
            return True
        time.sleep(0.05)
    return False


# The README's table, as calls: (role, method, path, body) -> expected status.
CALLS = {
    "read snapshot": ("GET", "/api/snapshot", None),
    "sql console": ("POST", "/api/sql", {"sql": "SELECT 1"}),
    "kill": ("POST", "/api/control", {"action": "kill", "reason": "t"}),
    "reduce": ("POST", "/api/control", {"action": "reduce", "reason": "t"}),
    "resume": ("POST", "/api/control", {"action": "resume", "reason": "t"}),
}
ALLOWED = {
    Role.VIEWER: {"read snapshot"},
    Role.TRADER: {"read snapshot", "sql console", "kill", "reduce", "resume"},
    Role.RISK: {"read snapshot", "sql console", "kill", "reduce", "resume"},
    Role.ADMIN: {"read snapshot", "sql console", "kill", "reduce", "resume"},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("call", list(CALLS))
def test_each_role_is_allowed_or_refused_its_calls(board: Board, role: Role, call: str) -> None:
    method, path, body = CALLS[call]
    status, _, _ = board.call(method, path, body, role=role)
    if call in ALLOWED[role]:
        assert status == 200
    else:
        assert status == 403
        assert _audited(board, f"{role}-key", "role_refused")


def test_control_signs_with_the_callers_key(board: Board) -> None:
    status, _, body = board.call(
        "POST",
        "/api/control",
        {"action": "kill", "reason": "why", "actor": "spoof"},
        role=Role.TRADER,
    )
    assert status == 200 and json.loads(body)["actor"] == "trader-key"
    assert board.recorded.controls[-1] == (ControlAction.KILL, "why", token(Role.TRADER))


def test_calls_without_a_key_or_with_a_wrong_one_are_refused(board: Board) -> None:
    assert board.call("GET", "/api/snapshot")[0] == 401
    assert board.call("POST", "/api/control", {"action": "kill"})[0] == 401
    wrong = {"X-Hfl-Key": token(Role.TRADER)[:-3] + "AAA"}
    assert board.call("POST", "/api/control", {"action": "kill"}, headers=wrong)[0] == 401
    assert _audited(board, "anonymous", "key_refused")
    assert board.call("GET", "/health/live")[0] == 200  # probes stay open


def test_cross_site_text_plain_post_is_refused(board: Board) -> None:
    forged = {"Content-Type": "text/plain", "Origin": "http://evil.example"}
    status, _, _ = board.call(
        "POST", "/api/control", {"action": "kill"}, headers=forged, role=Role.TRADER
    )
    assert status == 403
    same_site_plain = {"Content-Type": "text/plain"}
    status, _, _ = board.call(
        "POST", "/api/sql", {"sql": "SELECT 1"}, headers=same_site_plain, role=Role.TRADER
    )
    assert status == 415


def test_foreign_host_header_is_refused(board: Board) -> None:
    status, _, _ = board.call(
        "GET", "/api/snapshot", headers={"Host": "rebind.example:80"}, role=Role.VIEWER
    )
    assert status == 421


def test_every_response_carries_the_security_headers(board: Board) -> None:
    for path in ("/", "/api/snapshot"):
        _, headers, _ = board.call("GET", path)
        lowered = {k.lower(): v for k, v in headers.items()}
        assert "frame-ancestors 'none'" in lowered["content-security-policy"]
        assert lowered["x-frame-options"] == "DENY"
        assert lowered["referrer-policy"] == "no-referrer"


def test_session_cookie_opens_reads_but_never_writes(board: Board) -> None:
    status, headers, _ = board.call("POST", "/api/session", {"key": token(Role.VIEWER)})
    assert status == 200
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    session = {"Cookie": cookie.split(";")[0]}
    assert board.call("GET", "/api/snapshot", headers=session)[0] == 200
    status, _, _ = board.call("POST", "/api/control", {"action": "kill"}, headers=session)
    assert status == 401


def test_sql_console_queries_are_audited_with_the_keys_name(board: Board) -> None:
    assert board.call("POST", "/api/sql", {"sql": "SELECT 2"}, role=Role.RISK)[0] == 200
    assert _audited(board, "risk-key", "sql_console")


def test_sql_console_is_rate_limited_per_key(board: Board) -> None:
    statuses = [
        board.call("POST", "/api/sql", {"sql": "SELECT 1"}, role=Role.ADMIN)[0] for _ in range(8)
    ]
    assert 429 in statuses
    limited = board.call("POST", "/api/sql", {"sql": "SELECT 1"}, role=Role.ADMIN)
    assert limited[0] == 429 and "retry-after" in {k.lower() for k in limited[1]}
