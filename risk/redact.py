"""Mask secrets inside text that leaves the process: URLs with passwords, known values."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# A URL with user info anywhere in a text (an error message, a log line): scheme,
# "//", user, ":", password, "@". The password is what gets masked.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)@")


def redact_url(url: str) -> str:
    """Return `url` with its password (if any) replaced by ``***``.

    >>> redact_url("http://hfl:s3cret@ch:8123/hfl")
    'http://hfl:***@ch:8123/hfl'
    >>> redact_url("chdb:///var/hfl/ch")
    'chdb:///var/hfl/ch'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:{MASK}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords and each of `secrets` (values of 4+ characters) in `text`.

    >>> redact_text("cannot reach http://u:pw@h:1/db; token abcd1234", ["abcd1234"])
    'cannot reach http://u:***@h:1/db; token ***'
    """
    masked = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
    for secret in secrets:
        if len(secret) >= 4:
            masked = masked.replace(secret, MASK)
    return masked
