"""Read-only SQL for `hfl sql`: a local HTTP endpoint, a client for it, and formatters.

chDB lets only one process open a data directory, and the persist process holds it.
That process therefore runs a `QueryServer` on 127.0.0.1 and records its port in
``<data dir>/query.port`` and a random token in ``<data dir>/query.token`` (mode 0600:
only the store's owner may read through it); `query` goes through it when it answers
and opens the engine directly otherwise (a server URL, or nothing is running).

Every statement passes `sinks.guard.SelectGuard` (one SELECT over the project's
tables, by ClickHouse's own parser) and runs on a read-only session with limits.
The server keeps its sessions apart: the guard's parser, the project's readers and
the console each have their own handles, so a slow console query holds no handle the
others need, and no query ever takes the writer's handle.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import secrets
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from connectors.codec import encode
from sinks.client import embedded_path, is_embedded, open_client, redact_url
from sinks.guard import (
    CONSOLE_SETTINGS,
    MAX_CONSOLE_SQL_BYTES,
    READER_SETTINGS,
    QueryError,
    QueryRefusedError,
    SelectGuard,
)

__all__ = ["QueryError", "QueryRefusedError", "QueryServer", "query", "reader"]

PORT_FILE = "query.port"
TOKEN_FILE = "query.token"
TOKEN_HEADER = "X-Hfl-Query-Token"
MAX_SQL_BYTES = MAX_CONSOLE_SQL_BYTES
_HOST = "127.0.0.1"
# Concurrent statements per kind; one more waits up to _BUSY_WAIT_S, then gets 503.
_READERS = 2
_CONSOLES = 2
_BUSY_WAIT_S = 5.0


def port_file(url: str) -> str | None:
    """Return where the query port of an embedded on-disk URL is recorded, else None.

    >>> port_file("chdb:///var/ch")
    '/var/ch/query.port'
    >>> port_file("chdb://memory") is None
    True
    """
    path = embedded_path(url)
    return None if path is None else os.path.join(path, PORT_FILE)


def write_port_file(url: str, port: int) -> None:
    """Record `port` for `url` atomically (no-op for memory and server URLs)."""
    target = port_file(url)
    if target is None:
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    temporary = f"{target}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="ascii") as handle:
        handle.write(f"{port}\n")
    os.replace(temporary, target)


def read_port_file(url: str) -> int | None:
    """Return the recorded query port for `url`, or None when there is none."""
    target = port_file(url)
    if target is None:
        return None
    try:
        with open(target, encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return None


def remove_port_file(url: str) -> None:
    """Delete the recorded query port and token for `url`, if any."""
    target = port_file(url)
    if target is not None:
        for path in (target, _token_path(target)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _token_path(port_path: str) -> str:
    return os.path.join(os.path.dirname(port_path), TOKEN_FILE)


def write_token_file(url: str, token: str) -> None:
    """Record the endpoint's token for `url`, readable by the owner only."""
    target = port_file(url)
    if target is None:
        return
    path = _token_path(target)
    temporary = f"{path}.{os.getpid()}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(f"{token}\n")
    os.replace(temporary, path)


def read_token_file(url: str) -> str:
    """Return the recorded endpoint token for `url` ('' when there is none)."""
    target = port_file(url)
    if target is None:
        return ""
    try:
        with open(_token_path(target), encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def run_query(client: Client, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on `client` and return column names and rows; raises `QueryError`.

    No check here: callers pass statements `SelectGuard.check` returned.
    """
    try:
        result = client.query(sql)
    except ClickHouseError as exc:
        raise QueryError(str(exc).strip()) from exc
    return list(result.column_names), [tuple(row) for row in result.result_rows]


def _rows(client: Client) -> Callable[[str, dict[str, Any] | None], list[tuple[Any, ...]]]:
    def run(sql: str, parameters: dict[str, Any] | None) -> list[tuple[Any, ...]]:
        try:
            result = client.query(sql, parameters=parameters)
        except ClickHouseError as exc:
            raise QueryError(str(exc).strip()) from exc
        return [tuple(row) for row in result.result_rows]

    return run


class GuardedReader:
    """Guarded, limited read-only statements on a pool of sessions of one engine.

    One session parses (the guard's); `readers` sessions run the project's own
    queries (`READER_SETTINGS`) and `consoles` run people's (`CONSOLE_SETTINGS`).
    A statement takes a free session of its kind, waiting at most `busy_wait_s`.
    """

    def __init__(
        self,
        url: str,
        *,
        readers: int = _READERS,
        consoles: int = _CONSOLES,
        busy_wait_s: float = _BUSY_WAIT_S,
    ) -> None:
        """Open the sessions for `url` (an embedded path opens the process's engine)."""
        self._opened: list[Client] = []
        self._url = url
        parser = self._open(url, READER_SETTINGS)
        self.guard = SelectGuard(_rows(parser))
        self._pools = {
            False: self._pool(url, READER_SETTINGS, readers),
            True: self._pool(url, CONSOLE_SETTINGS, consoles),
        }
        self._busy_wait_s = busy_wait_s

    def _open(self, url: str, settings: dict[str, Any]) -> Client:
        client = open_client(url, readonly=True, settings=settings)
        self._opened.append(client)
        return client

    def _pool(self, url: str, settings: dict[str, Any], size: int) -> queue.Queue[Client]:
        pool: queue.Queue[Client] = queue.Queue()
        for _ in range(size):
            pool.put(self._open(url, settings))
        return pool

    def run(self, sql: str, *, console: bool) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Check `sql` and run it on a free session of its kind.

        Raises:
            QueryRefusedError: the guard refused it.
            QueryError: ClickHouse failed it (limits included), or every session of
                its kind stayed busy.
        """
        canonical = self.guard.check(sql)
        pool = self._pools[console]
        try:
            client = pool.get(timeout=self._busy_wait_s)
        except queue.Empty as exc:
            kind = "console" if console else "reader"
            msg = f"every {kind} session is busy; try again"
            raise QueryError(msg) from exc
        try:
            return run_query(client, canonical)
        except QueryError:
            # A query stopped mid-stream (a result or memory limit) can leave a block of
            # its rows in the session, which the next query on it would return first:
            # seen once in 26.9 with numbers() past max_result_rows. Never reuse it.
            client = self._replace(client, console=console)
            raise
        finally:
            pool.put(client)

    def _replace(self, client: Client, *, console: bool) -> Client:
        with contextlib.suppress(Exception):
            client.close()
        self._opened.remove(client)
        return self._open(self._url, CONSOLE_SETTINGS if console else READER_SETTINGS)

    def close(self) -> None:
        """Close every session."""
        for client in self._opened:
            client.close()
        self._opened.clear()


def _json_bytes(payload: object) -> bytes:
    try:
        return encode(payload)
    except TypeError:
        # Exotic column types (IPv4, UUID inside maps, bytes…) print as text.
        return json.dumps(payload, default=str).encode()


_PATHS = {"/sql": False, "/console": True}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        console = _PATHS.get(self.path)
        if console is None:
            self._reply(404, {"error": f"no such endpoint {self.path}"})
            return
        token = self.headers.get(TOKEN_HEADER, "")
        if not secrets.compare_digest(token.encode(), self.server.token.encode()):
            self._reply(403, {"error": f"missing or wrong {TOKEN_HEADER}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_SQL_BYTES:
            self._reply(400, {"error": f"SQL body must be 1..{MAX_SQL_BYTES} bytes"})
            return
        sql = self.rfile.read(length).decode("utf-8", errors="replace")
        try:
            columns, rows = self.server.reader.run(sql, console=console)
        except QueryRefusedError as exc:
            self._reply(403, {"error": str(exc), "refused": True})
            return
        except QueryError as exc:
            self._reply(400, {"error": str(exc)})
            return
        self._reply(200, {"columns": columns, "rows": rows})

    def _reply(self, status: int, payload: object) -> None:
        body = _json_bytes(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: every request would otherwise print to stderr."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    reader: GuardedReader
    token: str


class QueryServer:
    """Serve guarded read-only SQL over HTTP on 127.0.0.1 for other processes.

    ``POST /sql`` (the project's readers) or ``POST /console`` (people's queries) with
    the SQL as the body and the token of ``query.token`` in ``X-Hfl-Query-Token``
    returns ``{"columns": [...], "rows": [[...]]}``; a refused statement returns 403
    with ``{"error": rule, "refused": true}``, a failing one 400 with ``{"error": …}``.
    """

    def __init__(self, url: str, *, port: int = 0) -> None:
        """Prepare a server for the engine at `url` on `port` (0 picks a free one)."""
        self._url = url
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.token = secrets.token_urlsafe(32)

    def start(self) -> int:
        """Start serving in a daemon thread, record the port and token, and return it."""
        if self._server is not None:
            return self._server.server_address[1]
        server = _Server((_HOST, self._port), _Handler)
        server.reader = GuardedReader(self._url)
        server.token = self.token
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="hfl-query-server", daemon=True
        )
        self._thread.start()
        port = server.server_address[1]
        write_token_file(self._url, self.token)
        write_port_file(self._url, port)
        return port

    def stop(self) -> None:
        """Stop serving, close the read-only sessions and remove the port file."""
        server, self._server = self._server, None
        if server is None:
            return
        remove_port_file(self._url)
        server.shutdown()
        server.server_close()
        server.reader.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> QueryServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def query_http(
    port: int,
    sql: str,
    *,
    token: str = "",
    console: bool = True,
    timeout_s: float = 60.0,
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` through the `QueryServer` on 127.0.0.1:`port`.

    Raises:
        QueryRefusedError: the server's guard refused the statement.
        QueryError: the server failed the query or refused the token.
        OSError: nothing answers on that port.
    """
    connection = http.client.HTTPConnection(_HOST, port, timeout=timeout_s)
    try:
        connection.request(
            "POST",
            "/console" if console else "/sql",
            body=sql.encode(),
            headers={"Content-Type": "text/plain", TOKEN_HEADER: token},
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise OSError(f"port {port} does not speak the hfl query protocol") from exc
    if response.status != 200:
        message = str(payload.get("error", f"HTTP {response.status}"))
        raise QueryRefusedError(message) if payload.get("refused") else QueryError(message)
    return payload["columns"], [tuple(row) for row in payload["rows"]]


def query(url: str, sql: str, *, console: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run guarded read-only `sql` against `url` and return column names and rows.

    `console` marks a person's statement (`hfl sql`): the console's tighter limits.
    For an embedded engine owned by another process, goes through that process's
    `QueryServer`; a stale port file (nothing answering) falls back to opening the
    engine here, which fails clearly if another process still holds it.

    Raises:
        QueryRefusedError: the guard refused the statement.
        QueryError: ClickHouse failed the query.
    """
    port = read_port_file(url)
    if port is not None:
        try:
            return query_http(port, sql, token=read_token_file(url), console=console)
        except (OSError, http.client.HTTPException):
            pass
    try:
        guarded = GuardedReader(url, readers=1, consoles=1)
    except ClickHouseError as exc:
        msg = f"cannot open ClickHouse at {redact_url(url)} (is another process holding it?)"
        raise QueryError(f"{msg}: {exc}") from exc
    try:
        return guarded.run(sql, console=console)
    finally:
        guarded.close()


def _cell(value: object) -> str:
    return "NULL" if value is None else str(value)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as an aligned text table with a header rule and a row count.

    >>> print(format_table(["sym", "n"], [("AAPL", 10), ("X", None)]))
    sym  | n
    -----+-----
    AAPL | 10
    X    | NULL
    (2 rows)
    """
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(name) for name in columns]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = [
        " | ".join(name.ljust(width) for name, width in zip(columns, widths, strict=True)).rstrip(),
        "-+-".join("-" * width for width in widths),
    ]
    lines.extend(
        " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines)


def format_json(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render rows as one JSON array of objects keyed by column name.

    >>> format_json(["sym", "qty"], [("AAPL", 10)])
    '[{"sym":"AAPL","qty":10}]'
    """
    objects = [dict(zip(columns, row, strict=True)) for row in rows]
    return _json_bytes(objects).decode()


def reader(
    url: str, *, console: bool = False
) -> Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]:
    """A guarded read-only query function for a long-running process that must not own
    the store (`console`: people's statements, with the console's limits).

    An embedded store is read only through its owner's `QueryServer` (looked up on
    every call, so it follows a restarted persist flow); opening it here would lock
    the persist flow out. A server URL gets its own guarded sessions.

    Raises (from the returned function):
        QueryRefusedError: the guard refused the statement.
        QueryError: the query failed, or no process serves the embedded store.
    """
    if is_embedded(url):

        def served(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            port = read_port_file(url)
            if port is None:
                raise QueryError(f"no process serves {url} (is the persist flow running?)")
            try:
                return query_http(
                    port, sql, token=read_token_file(url), console=console, timeout_s=30.0
                )
            except (OSError, http.client.HTTPException) as exc:
                raise QueryError(f"query endpoint on port {port} failed: {exc}") from exc

        return served
    guarded = GuardedReader(url)

    def direct(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        return guarded.run(sql, console=console)

    return direct
