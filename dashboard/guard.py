"""The dashboard's door: Host and Origin checks, API keys and roles, rate limits, headers.

An ASGI middleware in front of every route:

- `Host` must be one the dashboard serves as (DNS rebinding), and a state-changing
  call (any method but GET/HEAD/OPTIONS) must come with a JSON content type, an
  `Origin` (when the client sends one) among the configured origins, and the caller's
  key in `X-Hfl-Key` — never only a cookie, so a cross-site form cannot act;
- reads need a key too (header, or the HttpOnly session cookie `POST /api/session`
  sets for the page's event stream) unless `open_read` is on and the bind is loopback;
- each key and each client address has its own rate limit (the `limits` library,
  moving windows in memory); a refusal is 429 with `Retry-After`;
- every response carries CSP, `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`,
  `X-Content-Type-Options: nosniff`.

Every refusal of a key (unknown, wrong role) is an audit row through `audit`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from risk.access import AccessError, ApiKey, KeyRing, Permission, allows

KEY_HEADER = "x-hfl-key"
SESSION_COOKIE = "hfl_session"
SESSION_TTL_S = 8 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_AUTH_CACHE = 1024

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'none'; object-src 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"cross-origin-opener-policy", b"same-origin"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]
AuditRefusal = Callable[[str, str, str], None]


def is_loopback(host: str) -> bool:
    """True when `host` is a loopback address or `localhost`.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorPolicy:
    """What the door admits: hosts, origins, whether reads need a key, the limits."""

    hosts: frozenset[str]
    origins: frozenset[str]
    open_read: bool
    read_limit: str = "2000/second"
    write_limit: str = "10/second"
    sql_limit: str = "60/minute"


def default_policy(
    host: str,
    port: int,
    *,
    extra_origins: tuple[str, ...] = (),
    open_read: bool = False,
    read_limit: str = "2000/second",
    write_limit: str = "10/second",
    sql_limit: str = "60/minute",
) -> DoorPolicy:
    """The hosts and origins a dashboard bound to `host:port` answers as.

    Raises:
        ValueError: `open_read` asked for on a non-loopback bind.
    """
    names = {host, "127.0.0.1", "localhost"} if is_loopback(host) else {host}
    if open_read and not is_loopback(host):
        raise ValueError(f"dashboard.open_read needs a loopback bind, not {host}")
    with_port = {f"{name}:{port}" for name in names}
    # A bare name is still one of ours (clients omit the port on 80); what must never
    # pass is another name resolving here (DNS rebinding).
    hosts = frozenset(with_port | names)
    origins = frozenset({f"http://{h}" for h in with_port} | set(extra_origins))
    return DoorPolicy(
        hosts=hosts,
        origins=origins,
        open_read=open_read,
        read_limit=read_limit,
        write_limit=write_limit,
        sql_limit=sql_limit,
    )


class Keys:
    """Authenticate presented tokens against a key ring, with a cache of good tokens.

    scrypt costs tens of milliseconds by design; a token that authenticated once is
    remembered by its SHA-256 (never the token) and re-checked against the current
    ring, so a revocation applies at once.
    """

    def __init__(self, ring: Callable[[], KeyRing]) -> None:
        """Use `ring()` for the current keys (a `WatchedKeyRing.ring`)."""
        self._ring = ring
        self._good: OrderedDict[bytes, str] = OrderedDict()
        self._sessions: dict[str, tuple[str, float, str]] = {}
        self._lock = threading.Lock()

    def authenticate(self, token: str) -> ApiKey:
        """The active key of `token`; raises `AccessError`."""
        ring = self._ring()
        fingerprint = hashlib.sha256(token.encode()).digest()
        with self._lock:
            key_id = self._good.get(fingerprint)
        if key_id is not None:
            key = ring.keys.get(key_id)
            if key is not None and key.active:
                return key
        key = ring.authenticate(token)
        with self._lock:
            self._good[fingerprint] = key.key_id
            while len(self._good) > _AUTH_CACHE:
                self._good.popitem(last=False)
        return key

    def open_session(self, token: str) -> tuple[str, ApiKey]:
        """A session id for the page's cookie (reads only), for an authenticated token."""
        key = self.authenticate(token)
        session = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {s: v for s, v in self._sessions.items() if v[1] > now}
            self._sessions[session] = (key.key_id, now + SESSION_TTL_S, key.salt)
        return session, key

    def session_key(self, session: str) -> ApiKey | None:
        """The key of a live session (None when unknown, expired, or its key revoked)."""
        with self._lock:
            entry = self._sessions.get(session)
        if entry is None or entry[1] < time.monotonic():
            return None
        key = self._ring().keys.get(entry[0])
        return key if key is not None and key.active and key.salt == entry[2] else None


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return ""


def _cookie(scope: Scope, name: str) -> str:
    for part in _header(scope, b"cookie").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def required_permission(method: str, path: str) -> Permission | None:
    """What a request needs (None: open to anyone, like health and the page's files).

    >>> required_permission("POST", "/api/sql"), required_permission("GET", "/health/ready")
    (<Permission.SQL: 'sql'>, None)
    """
    if path.startswith(("/health/", "/static/")) or path in ("/", "/metrics"):
        return None  # probes, the page's files, Prometheus scrapes
    if path == "/api/session":
        return None
    if path == "/api/sql":
        return Permission.SQL
    if path == "/api/control":
        return Permission.READ  # the route checks the action's own permission
    if method not in _SAFE_METHODS:
        return Permission.KEYS  # no other writing route: admin only, should one appear
    return Permission.READ


class Door:
    """The ASGI middleware described in the module docstring."""

    def __init__(self, app: App, policy: DoorPolicy, keys: Keys, audit: AuditRefusal) -> None:
        """Guard `app` by `policy`, authenticate with `keys`, report refusals to `audit`."""
        self._app = app
        self._policy = policy
        self._keys = keys
        self._audit = audit
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._read: RateLimitItem = parse(policy.read_limit)
        self._write: RateLimitItem = parse(policy.write_limit)
        self._sql: RateLimitItem = parse(policy.sql_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        refusal = self._check(scope)
        if refusal is not None:
            status, text, extra = refusal
            await _reply(send_with_headers, status, text, extra)
            return
        await self._app(scope, receive, send_with_headers)

    def _check(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        policy = self._policy
        method, path = scope["method"], scope["path"]
        host = _header(scope, b"host")
        if host not in policy.hosts:
            return 421, f"this dashboard does not answer as host {host!r}", []
        client = (scope.get("client") or ("?", 0))[0]
        writing = method not in _SAFE_METHODS
        if writing:
            origin = _header(scope, b"origin")
            if origin and origin not in policy.origins:
                self._audit("anonymous", "origin_refused", f"{method} {path} from {origin}")
                return 403, f"origin {origin!r} may not call this dashboard", []
            content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
            if content_type != "application/json":
                return 415, "state-changing calls take Content-Type: application/json", []
        needed = required_permission(method, path)
        token = _header(scope, KEY_HEADER.encode())
        key: ApiKey | None = None
        if token:
            try:
                key = self._keys.authenticate(token)
            except AccessError as exc:
                self._audit("anonymous", "key_refused", f"{method} {path}: {exc}")
                return 401, str(exc), []
        elif not writing:
            key = self._keys.session_key(_cookie(scope, SESSION_COOKIE))
        limited = self._limit(key, client, path, writing)
        if limited is not None:
            return limited
        if needed is None:
            scope["hfl.key"] = key
            scope["hfl.token"] = token
            return None
        if key is None:
            if writing:
                return 401, f"state-changing calls need the {KEY_HEADER} header", []
            if not policy.open_read:
                return 401, f"this dashboard needs an API key ({KEY_HEADER})", []
        elif not allows(key.role, needed):
            self._audit(key.name, "role_refused", f"{method} {path} needs {needed}")
            return 403, f"key {key.name} ({key.role}) may not {needed}", []
        scope["hfl.key"] = key
        scope["hfl.token"] = token
        return None

    def _limit(
        self, key: ApiKey | None, client: str, path: str, writing: bool
    ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        item = self._sql if path == "/api/sql" else self._write if writing else self._read
        for who in ([f"key:{key.key_id}"] if key is not None else []) + [f"client:{client}"]:
            if not self._limiter.hit(item, who, path if writing else "read"):
                reset = self._limiter.get_window_stats(item, who, path if writing else "read")
                wait = max(1, int(reset.reset_time - time.time()) + 1)
                return (
                    429,
                    f"rate limit {item} reached for {who.split(':')[0]}",
                    [(b"retry-after", str(wait).encode())],
                )
        return None


async def _reply(send: Send, status: int, text: str, extra: list[tuple[bytes, bytes]]) -> None:
    body = json.dumps({"error": text}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + extra})
    await send({"type": "http.response.body", "body": body})
