"""Read-only SQL for `hfl sql`: a local HTTP endpoint, a client for it, and formatters.

chDB lets only one process open a data directory, and the persist process holds it.
That process therefore runs a `QueryServer` on 127.0.0.1 and records its port in
``<data dir>/query.port``; `query` goes through it when it answers and opens the
engine directly otherwise (a server URL, or nothing is running).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError

from connectors.codec import encode
from risk.domain.error import HflError
from sinks.client import embedded_path, is_embedded, open_client

PORT_FILE = "query.port"
MAX_SQL_BYTES = 1024 * 1024
_HOST = "127.0.0.1"


class QueryError(HflError):
    """ClickHouse refused or failed a query; the message is its explanation."""


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
    """Delete the recorded query port for `url`, if any."""
    target = port_file(url)
    if target is not None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(target)


def run_query(client: Client, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` on `client` and return column names and rows; raises `QueryError`."""
    try:
        result = client.query(sql)
    except ClickHouseError as exc:
        raise QueryError(str(exc).strip()) from exc
    return list(result.column_names), [tuple(row) for row in result.result_rows]


def _json_bytes(payload: object) -> bytes:
    try:
        return encode(payload)
    except TypeError:
        # Exotic column types (IPv4, UUID inside maps, bytes…) print as text.
        return json.dumps(payload, default=str).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        if self.path != "/sql":
            self._reply(404, {"error": f"no such endpoint {self.path}"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_SQL_BYTES:
            self._reply(400, {"error": f"SQL body must be 1..{MAX_SQL_BYTES} bytes"})
            return
        sql = self.rfile.read(length).decode("utf-8", errors="replace")
        try:
            with self.server.client_lock:
                columns, rows = run_query(self.server.client, sql)
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
    client: Client
    client_lock: threading.Lock


class QueryServer:
    """Serve read-only SQL over HTTP on 127.0.0.1 for other processes.

    ``POST /sql`` with the SQL as the body returns ``{"columns": [...], "rows": [[...]]}``;
    a refused or failing query returns HTTP 400 with ``{"error": message}``. Queries run
    on a session opened read-only, so writes and DDL are refused by ClickHouse itself.
    """

    def __init__(self, url: str, *, port: int = 0) -> None:
        """Prepare a server for the engine at `url` on `port` (0 picks a free one)."""
        self._url = url
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Start serving in a daemon thread, record the port, and return it."""
        if self._server is not None:
            return self._server.server_address[1]
        server = _Server((_HOST, self._port), _Handler)
        server.client = open_client(self._url, readonly=True)
        # A client serialises calls on its handle anyway; the lock makes that explicit
        # for server clients too.
        server.client_lock = threading.Lock()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="hfl-query-server", daemon=True
        )
        self._thread.start()
        port = server.server_address[1]
        write_port_file(self._url, port)
        return port

    def stop(self) -> None:
        """Stop serving, close the read-only client and remove the port file."""
        server, self._server = self._server, None
        if server is None:
            return
        remove_port_file(self._url)
        server.shutdown()
        server.server_close()
        server.client.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> QueryServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def query_http(
    port: int, sql: str, *, timeout_s: float = 60.0
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run `sql` through the `QueryServer` on 127.0.0.1:`port`.

    Raises:
        QueryError: the server refused or failed the query.
        OSError: nothing answers on that port.
    """
    connection = http.client.HTTPConnection(_HOST, port, timeout=timeout_s)
    try:
        connection.request(
            "POST", "/sql", body=sql.encode(), headers={"Content-Type": "text/plain"}
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
        raise QueryError(str(payload.get("error", f"HTTP {response.status}")))
    return payload["columns"], [tuple(row) for row in payload["rows"]]


def query(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run read-only `sql` against `url` and return column names and rows.

    For an embedded engine owned by another process, goes through that process's
    `QueryServer`; a stale port file (nothing answering) falls back to opening the
    engine here, which fails clearly if another process still holds it.

    Raises:
        QueryError: ClickHouse refused or failed the query.
    """
    port = read_port_file(url)
    if port is not None:
        try:
            return query_http(port, sql)
        except (OSError, http.client.HTTPException):
            pass
    try:
        client = open_client(url, readonly=True)
    except ClickHouseError as exc:
        msg = f"cannot open ClickHouse at {url} (is another process holding it?): {exc}"
        raise QueryError(msg) from exc
    try:
        return run_query(client, sql)
    finally:
        client.close()


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


def reader(url: str) -> Callable[[str], tuple[list[str], list[tuple[Any, ...]]]]:
    """A read-only query function for a long-running process that must not own the store.

    An embedded store is read only through its owner's `QueryServer` (looked up on
    every call, so it follows a restarted persist flow); opening it here would lock
    the persist flow out. A server URL gets one read-only client, serialised by a lock.

    Raises (from the returned function):
        QueryError: the query failed, or no process serves the embedded store.
    """
    if is_embedded(url):

        def served(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
            port = read_port_file(url)
            if port is None:
                raise QueryError(f"no process serves {url} (is the persist flow running?)")
            try:
                return query_http(port, sql, timeout_s=10.0)
            except (OSError, http.client.HTTPException) as exc:
                raise QueryError(f"query endpoint on port {port} failed: {exc}") from exc

        return served
    client = open_client(url, readonly=True)
    lock = threading.Lock()

    def direct(sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with lock:
            return run_query(client, sql)

    return direct
