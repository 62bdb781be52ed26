"""Open ClickHouse clients from one URL: embedded chDB or a server over HTTP(S).

URL forms:

- ``chdb:///abs/path`` — embedded engine on disk (the directory is created if missing);
- ``chdb://memory`` — embedded engine in memory (gone when the process exits);
- ``http://user:pass@host:8123/db`` or ``https://…`` — a ClickHouse server
  (database ``default`` when the path is empty).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from risk.domain.error import ConfigError
from risk.redact import redact_url
from sinks.guard import READER_SETTINGS

__all__ = ["Target", "close_all", "connect", "open_client", "parse_url", "redact_url"]

MEMORY_URL = "chdb://memory"

# chDB hosts exactly one engine per process and locks its data directory, so a
# second engine cannot be opened anyway; sharing one client per URL also keeps
# per-call setup off the hot path. Server clients are cached too: clickhouse-connect
# pools HTTP connections inside one client.
_CLIENTS: dict[str, Client] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """Where a ClickHouse URL points: an embedded path (or memory) or a server."""

    embedded: bool
    path: str | None = None
    interface: str = "http"
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    database: str = "default"


def parse_url(url: str) -> Target:
    """Split a ClickHouse URL into its parts; raises `ConfigError` when it is unusable.

    >>> parse_url("chdb:///var/hfl/ch").path
    '/var/hfl/ch'
    >>> parse_url("chdb://memory").path is None
    True
    >>> t = parse_url("http://u:p%40ss@ch:8123/hfl")
    >>> (t.host, t.port, t.username, t.password, t.database)
    ('ch', 8123, 'u', 'p@ss', 'hfl')
    """
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return _parse_chdb(url, parts.netloc, parts.path)
    if parts.scheme in ("http", "https"):
        return _parse_server(url, parts.scheme)
    raise ConfigError(
        f"clickhouse url {redact_url(url)!r}: scheme must be chdb:///abs/path, chdb://memory, "
        "http://host:port/db or https://host:port/db"
    )


def _parse_chdb(url: str, netloc: str, path: str) -> Target:
    if netloc in ("memory", ":memory:") and path in ("", "/"):
        return Target(embedded=True)
    if netloc or not path.startswith("/") or path == "/":
        raise ConfigError(
            f"clickhouse url {url!r}: embedded chDB needs an absolute path (chdb:///abs/path) "
            "or chdb://memory"
        )
    return Target(embedded=True, path=os.path.normpath(path))


def _parse_server(url: str, scheme: str) -> Target:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"clickhouse url {redact_url(url)!r}: invalid port") from exc
    if not parts.hostname:
        raise ConfigError(f"clickhouse url {redact_url(url)!r}: missing host")
    database = parts.path.strip("/") or "default"
    if "/" in database:
        raise ConfigError(f"clickhouse url {redact_url(url)!r}: path must be one database name")
    return Target(
        embedded=False,
        interface=scheme,
        host=parts.hostname,
        port=port or (8443 if scheme == "https" else 8123),
        username=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        database=database,
    )


def is_embedded(url: str) -> bool:
    """Return True when `url` names an in-process chDB engine.

    >>> is_embedded("chdb://memory"), is_embedded("http://localhost:8123")
    (True, False)
    """
    return parse_url(url).embedded


def embedded_path(url: str) -> str | None:
    """Return the data directory of an embedded URL (None for memory or a server).

    >>> embedded_path("chdb:///tmp/ch/"), embedded_path("chdb://memory")
    ('/tmp/ch', None)
    """
    target = parse_url(url)
    return target.path if target.embedded else None


def connect(url: str) -> Client:
    """Return this process's shared client for `url`, opening it on first use.

    Raises:
        ConfigError: `url` is not one of the supported forms.
    """
    with _LOCK:
        client = _CLIENTS.get(url)
        if client is None:
            client = _CLIENTS[url] = open_client(url)
        return client


def open_client(
    url: str, *, readonly: bool = False, settings: dict[str, Any] | None = None
) -> Client:
    """Open a new, unshared client for `url`.

    Each chDB client owns its own handle (session settings, a lock serialising its
    calls) on the process's one engine, so a reader gets its own handle and never
    queues behind the writer's inserts.

    Args:
        url: a ClickHouse URL (see the module docstring).
        readonly: open a session that refuses every write, DDL statement and setting
            change (`readonly=1`, with the reader limits of `sinks.guard` unless
            `settings` gives others).
        settings: session settings; a read-only session must list `readonly` last.
    """
    target = parse_url(url)
    if settings is None:
        settings = dict(READER_SETTINGS) if readonly else {}
    if target.embedded:
        if target.path is not None:
            os.makedirs(target.path, exist_ok=True)
        dsn = MEMORY_URL if target.path is None else f"chdb://{target.path}"
        return clickhouse_connect.get_client(dsn=dsn, settings=settings, tz_mode="schema")
    return clickhouse_connect.get_client(
        interface=target.interface,
        host=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        database=target.database,
        settings=settings,
        tz_mode="schema",
        # One client is shared by threads; a session id would make their queries collide.
        autogenerate_session_id=False,
    )


def close_all() -> None:
    """Close every cached client (tests, orderly shutdown)."""
    with _LOCK:
        clients = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in clients:
        client.close()
