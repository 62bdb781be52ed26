"""A ClickHouse HTTP interface over an embedded chDB engine, on 127.0.0.1, for tests.

No clickhouse-server can run on the development machines or in CI (no Docker), yet the
compose stack talks to ClickHouse over HTTP with a user and a password. This front speaks
the part of ClickHouse's HTTP protocol that clickhouse-connect's HTTP client uses, so our
server code path (`sinks.client` with an ``http://user:pass@host:port/db`` URL) runs for
real against the same SQL engine:

- ``GET /ping`` → ``Ok.``; ``POST /`` with the query in the body, or in ``?query=`` with the
  insert data in the body; ``database``, ``param_*`` (query parameters), every other
  parameter is a setting applied to that one request (``SET``, then ``SET … = DEFAULT``);
- users by HTTP Basic auth or ``X-ClickHouse-User``/``X-ClickHouse-Key``; a wrong password
  is ClickHouse's error 516 with HTTP 401; a user marked read-only gets error 164 on
  anything but a read (``readonly`` requested by a client is honoured the same way);
- request bodies in any ``Content-Encoding`` clickhouse-connect sends (lz4, zstd, gzip…);
  insert data is ingested with ``INSERT … FROM INFILE`` (as clickhouse-connect's own chDB
  backend does), so ``insert_deduplication_token`` and friends act as in ClickHouse;
- errors come back as HTTP 500 with ClickHouse's ``Code: N. DB::Exception: …`` text and the
  ``X-ClickHouse-Exception-Code`` header, which clickhouse-connect turns into its errors.

What it does not do: server-side users, grants, settings profiles, quotas, TLS, sessions,
compression of responses, replication. Those live in clickhouse-server's configuration
(docker/clickhouse/) and are not exercised here (docs/deployment.md says so).

Run: ``python -m support.http_front DIR --users name:password[:ro],...`` prints the port.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import re
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
from clickhouse_connect.driver._backend.chdb_backend import _decompress

_TRAILING_FORMAT = re.compile(r"\s+FORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_READ = re.compile(r"^\s*(\(?\s*SELECT|WITH|SHOW|DESC|DESCRIBE|EXISTS|EXPLAIN)\b", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")
_NOT_SETTINGS = {
    "query",
    "database",
    "default_format",
    "query_id",
    "session_id",
    "user",
    "password",
    "compress",
    "decompress",
    "enable_http_compression",
    "wait_end_of_query",
    "send_progress_in_http_headers",
    "http_headers_progress_interval_ms",
}


class Front:
    """The engine, its lock (chDB serves one call at a time per connection) and the users."""

    def __init__(self, path: str, users: dict[str, tuple[str, bool]]) -> None:
        os.makedirs(path, exist_ok=True)
        self.connection = chdb.connect(path)
        self.users = users
        self.lock = threading.Lock()
        self.connection.query("CREATE DATABASE IF NOT EXISTS hfl", "TabSeparated")

    def run(
        self,
        sql: str,
        *,
        fmt: str,
        database: str,
        settings: dict[str, str],
        params: dict[str, str],
        data: bytes | None,
    ) -> bytes:
        """Run one request's statement with its settings; return the formatted result."""
        with self.lock, tempfile.TemporaryDirectory() as scratch:
            if data is not None:
                infile = os.path.join(scratch, "data")
                with open(infile, "wb") as handle:
                    handle.write(data)
                head, found = sql, _TRAILING_FORMAT.search(sql)
                tail = ""
                if found:
                    head, tail = sql[: found.start()], sql[found.start() :]
                sql = f"{head} FROM INFILE '{infile}'{tail}"
            applied = []
            try:
                self.connection.query(f"USE `{database}`", "TabSeparated")
                for name, value in settings.items():
                    quoted = value if re.fullmatch(r"-?\d+(\.\d+)?", value) else _quote(value)
                    self.connection.query(f"SET {name} = {quoted}", "TabSeparated")
                    applied.append(name)
                result = self.connection.query(sql, fmt, params=params)
                return bytes(result.bytes()) if result is not None else b""
            finally:
                for name in applied:
                    with contextlib.suppress(Exception):
                        self.connection.query(f"SET {name} = DEFAULT", "TabSeparated")


_INSERT_HEAD = re.compile(rb"^\s*INSERT\b.*?\bFORMAT\s+\w+[ \t]*\r?\n?", re.IGNORECASE | re.DOTALL)


def _split_insert(body: bytes) -> tuple[str, bytes | None]:
    """Split a body that holds ``INSERT … FORMAT X`` followed by its data, as ClickHouse
    accepts; any other body is the statement itself."""
    head = _INSERT_HEAD.match(body[:65536])
    if head is None:
        return body.decode(), None
    return head.group(0).decode().strip(), body[head.end() :] or None


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Handler(BaseHTTPRequestHandler):
    """One HTTP request of the ClickHouse protocol."""

    front: Front
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/ping":
            self._reply(200, b"Ok.\n")
        else:
            self._handle(b"")

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        encoding = self.headers.get("Content-Encoding")
        if encoding and body:
            body = _decompress(body, encoding)
        self._handle(body)

    def _read_chunked(self) -> bytes:
        """The body of a request sent with ``Transfer-Encoding: chunked`` (inserts are)."""
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _handle(self, body: bytes) -> None:
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        user, password = self._credentials(query)
        known = self.front.users.get(user)
        if known is None or known[0] != password:
            message = (
                f"Code: 516. DB::Exception: {user}: Authentication failed. (AUTHENTICATION_FAILED)"
            )
            self._error(401, 516, message)
            return
        if "query" in query:
            sql, data = query["query"], (body if body else None)
        else:
            sql, data = _split_insert(body)
        params = {k[6:]: v for k, v in query.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in query.items() if k not in _NOT_SETTINGS and not k.startswith("param_")
        }
        requested = settings.pop("readonly", "0")  # enforced below, never SET on the engine
        readonly = known[1] or requested not in ("0", "")
        if readonly and not _READ.match(sql):
            message = (
                f"Code: 164. DB::Exception: {user}: Cannot execute query in readonly mode. "
                "(READONLY)"
            )
            self._error(500, 164, message)
            return
        found = _TRAILING_FORMAT.search(sql)
        fmt = (
            found.group(1)
            if found and data is None
            else query.get("default_format", "TabSeparated")
        )
        try:
            out = self.front.run(
                sql,
                fmt=fmt,
                database=query.get("database", "default"),
                settings=settings,
                params=params,
                data=data,
            )
        except Exception as exc:  # chDB raises RuntimeError with ClickHouse's own text
            text = str(exc)
            code = _CODE.search(text)
            self._error(500, int(code.group(1)) if code else 1000, text)
            return
        self._reply(200, out, {"X-ClickHouse-Format": fmt, "X-ClickHouse-Timezone": "UTC"})

    def _credentials(self, query: dict[str, str]) -> tuple[str, str]:
        header = self.headers.get("Authorization", "")
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return user, password
        if "X-ClickHouse-User" in self.headers:
            return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
        return query.get("user", "default"), query.get("password", "")

    def _error(self, status: int, code: int, message: str) -> None:
        self._reply(status, message.encode() + b"\n", {"X-ClickHouse-Exception-Code": str(code)})

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(path: str, users: dict[str, tuple[str, bool]], port: int = 0) -> ThreadingHTTPServer:
    """Start the front on 127.0.0.1:`port` (0: a free one) in a thread; return the server."""
    handler = type("BoundHandler", (Handler,), {"front": Front(path, users)})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def parse_users(text: str) -> dict[str, tuple[str, bool]]:
    """``name:password[:ro],...`` → {name: (password, read_only)}."""
    users = {}
    for item in filter(None, text.split(",")):
        name, password, *flags = item.split(":")
        users[name] = (password, "ro" in flags)
    return users


def main() -> None:
    """Serve until killed; print the port on the first line of stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--users", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = serve(args.path, parse_users(args.users), args.port)
    print(server.server_address[1], flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
