"""The API key file: salted hashes of the keys, their names and roles (never a secret).

One JSON document ``{"version": 1, "keys": [{key_id, name, role, salt, digest,
created_ns, revoked_ns}, ...]}`` written atomically with mode 0600. `hfl keys` edits
it; the dashboard and the trading flow read it through `WatchedKeyRing`, which reloads
it when it changes, so a rotation or revocation needs no restart.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from risk.access import AccessError, ApiKey, KeyRing, Role

VERSION = 1


def load_keys(path: str | Path) -> list[ApiKey]:
    """Read the keys of `path` ([] when the file does not exist).

    Raises:
        AccessError: the file exists but is not a key file.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise AccessError(f"cannot read key file {path}: {exc}") from exc
    try:
        document = json.loads(text)
        if document.get("version") != VERSION:
            raise ValueError(f"version {document.get('version')!r} is not {VERSION}")
        return [
            ApiKey(
                key_id=str(entry["key_id"]),
                name=str(entry["name"]),
                role=Role(entry["role"]),
                salt=str(entry["salt"]),
                digest=str(entry["digest"]),
                created_ns=int(entry["created_ns"]),
                revoked_ns=int(entry.get("revoked_ns", 0)),
            )
            for entry in document["keys"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AccessError(f"key file {path} is not a key file: {exc}") from exc


def save_keys(path: str | Path, keys: Iterable[ApiKey]) -> None:
    """Write `keys` to `path` atomically, readable by its owner only."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    document = {"version": VERSION, "keys": [asdict(key) for key in keys]}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle, indent=1)
        handle.write("\n")
    os.replace(temporary, target)


class WatchedKeyRing:
    """The key ring of a file, reloaded when the file's modification time or size changes.

    A file that becomes unreadable keeps the last good ring (and `error` says why):
    a half-written edit must not lock everyone out, and a revocation already read stays.
    """

    def __init__(self, path: str | Path) -> None:
        """Watch `path` (it may not exist yet: the ring is then empty)."""
        self._path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._ring = KeyRing()
        self.error = ""
        self.ring()

    @property
    def path(self) -> Path:
        """The watched file."""
        return self._path

    def ring(self) -> KeyRing:
        """The current ring (one `stat` per call; reads the file only when it changed)."""
        try:
            status = self._path.stat()
            stamp = (status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        with self._lock:
            if stamp != self._stamp:
                try:
                    self._ring = KeyRing.of(load_keys(self._path))
                    self.error = ""
                except AccessError as exc:
                    self.error = str(exc)
                self._stamp = stamp
            return self._ring
