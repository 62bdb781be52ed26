"""The key file keeps hashes only, is private, and reloads when it changes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from connectors.keyfile import WatchedKeyRing, load_keys, save_keys
from risk.access import AccessError, Role, new_key, revoke


def test_saved_key_file_is_private_and_holds_no_secret(tmp_path: Path) -> None:
    key, token = new_key("alice", Role.TRADER, created_ns=1)
    path = tmp_path / "keys.json"
    save_keys(path, [key])
    assert path.stat().st_mode & 0o777 == 0o600
    assert token.secret not in path.read_text() and str(token) not in path.read_text()
    assert load_keys(path) == [key]


def test_watched_ring_sees_revocation_without_restart(tmp_path: Path) -> None:
    key, token = new_key("bob", Role.RISK, created_ns=1)
    path = tmp_path / "keys.json"
    save_keys(path, [key])
    watched = WatchedKeyRing(path)
    assert watched.ring().authenticate(str(token)).name == "bob"
    time.sleep(0.01)
    save_keys(path, [revoke(key, revoked_ns=2)])
    os.utime(path, ns=(time.time_ns(), time.time_ns()))
    with pytest.raises(AccessError):
        watched.ring().authenticate(str(token))


def test_broken_key_file_keeps_last_ring_and_says_why(tmp_path: Path) -> None:
    key, _ = new_key("carol", Role.VIEWER, created_ns=1)
    path = tmp_path / "keys.json"
    save_keys(path, [key])
    watched = WatchedKeyRing(path)
    path.write_text("{not json")
    assert key.key_id in watched.ring().keys
    assert "not a key file" in watched.error
    with pytest.raises(AccessError):
        load_keys(path)
