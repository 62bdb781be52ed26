"""Roles, API keys as salted hashes, and signed-command verification (pure)."""

from __future__ import annotations

import json

import pytest

from risk.access import (
    AccessError,
    KeyRing,
    NonceWindow,
    Permission,
    Refusal,
    Refused,
    Role,
    Signed,
    allows,
    derive_digest,
    new_key,
    parse_token,
    revoke,
    sign,
    sign_with_token,
    verify,
)

TOPIC = "hfl.control"
WINDOW_NS = 30 * 10**9
NOW = 1_700_000_000 * 10**9
PAYLOAD = b'{"command_id":"c1","account":"paper-1","action":"kill"}'

# The README's table: what each role may do (True) and is refused (False).
EXPECTED = {
    Role.VIEWER: {"read"},
    Role.TRADER: {"read", "sql", "kill", "reduce", "resume"},
    Role.RISK: {"read", "sql", "kill", "reduce", "resume", "limits", "models"},
    Role.ADMIN: {"read", "sql", "kill", "reduce", "resume", "limits", "models", "keys"},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_role_allows_exactly_its_permissions(role: Role, permission: Permission) -> None:
    assert allows(role, permission) is (permission.value in EXPECTED[role])


@pytest.fixture(scope="module")
def keys() -> dict[Role, tuple[object, object]]:
    return {role: new_key(f"{role}-1", role, created_ns=NOW) for role in Role}


def test_key_file_record_holds_no_secret(keys: dict) -> None:
    key, token = keys[Role.TRADER]
    assert token.secret not in json.dumps(key.__repr__()) and token.secret not in key.digest
    assert key.digest == derive_digest(token.secret, token.salt)
    assert "***" in repr(token) and token.secret not in repr(token)


def test_authenticate_accepts_token_and_refuses_wrong_or_revoked(keys: dict) -> None:
    key, token = keys[Role.RISK]
    ring = KeyRing.of([key])
    assert ring.authenticate(str(token)).name == "risk-1"
    forged = f"hfl.{token.key_id}.{token.salt}.{token.secret[:-2]}AA"
    with pytest.raises(AccessError):
        ring.authenticate(forged)
    with pytest.raises(AccessError):
        ring.authenticate("not a token")
    with pytest.raises(AccessError):
        KeyRing.of([revoke(key, revoked_ns=NOW)]).authenticate(str(token))


def _check(raw: bytes, ring: KeyRing, window: NonceWindow, now: int = NOW) -> Signed | Refused:
    return verify(raw, topic=TOPIC, ring=ring, now_ns=now, window=window)


def test_signed_command_verifies_once_then_is_a_replay(keys: dict) -> None:
    key, token = keys[Role.TRADER]
    ring, window = KeyRing.of([key]), NonceWindow(WINDOW_NS)
    raw = sign_with_token(TOPIC, PAYLOAD, parse_token(str(token)), ts_ns=NOW)
    first = _check(raw, ring, window)
    assert isinstance(first, Signed) and first.payload == PAYLOAD and first.key.name == "trader-1"
    again = _check(raw, ring, window)
    assert isinstance(again, Refused) and again.refusal is Refusal.REPLAYED


@pytest.mark.parametrize(
    ("tamper", "refusal"),
    [
        (lambda env: env | {"sig": "0" * 64}, Refusal.BAD_SIGNATURE),
        (
            lambda env: env | {"payload": env["payload"].replace("kill", "resume")},
            Refusal.BAD_SIGNATURE,
        ),
        (lambda env: env | {"ts_ns": env["ts_ns"] + 1}, Refusal.BAD_SIGNATURE),
        (lambda env: env | {"key_id": "nosuchkey"}, Refusal.UNKNOWN_KEY),
        (lambda env: {k: v for k, v in env.items() if k != "nonce"}, Refusal.UNSIGNED),
        (lambda env: env | {"ts_ns": True}, Refusal.UNSIGNED),
        (lambda env: json.loads(env["payload"]), Refusal.UNSIGNED),
    ],
    ids=[
        "forged sig",
        "changed payload",
        "changed time",
        "unknown key",
        "no nonce",
        "bool time",
        "unsigned command",
    ],
)
def test_tampered_envelope_is_refused(keys: dict, tamper, refusal: Refusal) -> None:
    key, token = keys[Role.TRADER]
    raw = sign_with_token(TOPIC, PAYLOAD, parse_token(str(token)), ts_ns=NOW)
    changed = json.dumps(tamper(json.loads(raw))).encode()
    outcome = _check(changed, KeyRing.of([key]), NonceWindow(WINDOW_NS))
    assert isinstance(outcome, Refused) and outcome.refusal is refusal


def test_stale_revoked_and_cross_topic_commands_are_refused(keys: dict) -> None:
    key, token = keys[Role.TRADER]
    parsed = parse_token(str(token))
    old = sign_with_token(TOPIC, PAYLOAD, parsed, ts_ns=NOW - 2 * WINDOW_NS)
    stale = _check(old, KeyRing.of([key]), NonceWindow(WINDOW_NS))
    assert isinstance(stale, Refused) and stale.refusal is Refusal.STALE
    fresh = sign_with_token(TOPIC, PAYLOAD, parsed, ts_ns=NOW)
    revoked = _check(fresh, KeyRing.of([revoke(key, revoked_ns=NOW)]), NonceWindow(WINDOW_NS))
    assert isinstance(revoked, Refused) and revoked.refusal is Refusal.REVOKED_KEY
    other_topic = sign(
        "hfl.models.control", PAYLOAD, key_id=key.key_id, digest=key.digest, ts_ns=NOW
    )
    crossed = _check(other_topic, KeyRing.of([key]), NonceWindow(WINDOW_NS))
    assert isinstance(crossed, Refused) and crossed.refusal is Refusal.BAD_SIGNATURE


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"this is not json",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"sig": 1}',
        b"1e999",
        b'{"v":1,"key_id":"x","ts_ns":18446744073709551616,"nonce":"nnnnnnnn","payload":"","sig":""}',
    ],
)
def test_any_bytes_give_a_refusal_never_an_exception(keys: dict, raw: bytes) -> None:
    key, _ = keys[Role.ADMIN]
    assert isinstance(_check(raw, KeyRing.of([key]), NonceWindow(WINDOW_NS)), Refused)


def test_nonce_window_stays_bounded_by_time() -> None:
    window = NonceWindow(10)
    for n in range(1000):
        assert window.admit(f"nonce-{n}", ts_ns=n, now_ns=n)
    assert len(window.seen) <= 21 + 1
