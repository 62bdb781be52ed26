"""Who may do what: roles, API keys held as salted hashes, and signed commands.

An API key is shown once as a token ``hfl.<key_id>.<salt>.<secret>``; the key file
keeps only ``scrypt(secret, salt)`` (its digest), the key's name and role. The digest
authenticates the token (the dashboard, `hfl` commands) and is also the HMAC-SHA256
key of the commands signed with it: the signer derives it from the token, the
trading flow reads it from the key file. So the key file never holds a secret a
person can type, but it does hold what signs commands: keep it private (0600).

A signed command is the JSON envelope ``{"v":1,"key_id","ts_ns","nonce","payload",
"sig"}`` where `payload` is the command's own JSON text and `sig` the HMAC over
`signing_bytes` (the topic, key id, timestamp, nonce and payload). `verify` checks the
envelope, the key, the signature, the timestamp against the record's log time and the
nonce against those seen; the caller then checks the role against the command.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from risk.domain.enums import ControlAction
from risk.domain.error import HflError

TOKEN_PREFIX = "hfl"
SIGNATURE_VERSION = 1
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_DIGEST_BYTES = 32
_MAX_ENVELOPE_BYTES = 64 * 1024
_MAX_NONCES = 100_000


class Role(StrEnum):
    """What a key's holder is: each role has the rights of the one before, and more."""

    VIEWER = "viewer"
    TRADER = "trader"
    RISK = "risk"
    ADMIN = "admin"


class Permission(StrEnum):
    """One privileged action (reading the dashboard and API is `READ`)."""

    READ = "read"
    SQL = "sql"
    KILL = "kill"
    REDUCE = "reduce"
    RESUME = "resume"
    LIMITS = "limits"
    MODELS = "models"
    KEYS = "keys"


ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.TRADER: frozenset(
        {Permission.READ, Permission.SQL, Permission.KILL, Permission.REDUCE, Permission.RESUME}
    ),
    Role.RISK: frozenset(
        {
            Permission.READ,
            Permission.SQL,
            Permission.KILL,
            Permission.REDUCE,
            Permission.RESUME,
            Permission.LIMITS,
            Permission.MODELS,
        }
    ),
    Role.ADMIN: frozenset(Permission),
}


def allows(role: Role, permission: Permission) -> bool:
    """Return whether `role` may do `permission`.

    >>> allows(Role.TRADER, Permission.KILL), allows(Role.VIEWER, Permission.KILL)
    (True, False)
    >>> allows(Role.TRADER, Permission.LIMITS), allows(Role.RISK, Permission.LIMITS)
    (False, True)
    """
    return permission in ROLE_PERMISSIONS[role]


def control_permission(action: ControlAction) -> Permission:
    """The permission a kill-switch command needs.

    >>> control_permission(ControlAction.RESUME)
    <Permission.RESUME: 'resume'>
    """
    match action:
        case ControlAction.KILL:
            return Permission.KILL
        case ControlAction.REDUCE:
            return Permission.REDUCE
        case ControlAction.RESUME:
            return Permission.RESUME
    raise AssertionError(action)  # pragma: no cover - exhaustive over the enum


class AccessError(HflError):
    """A token or key operation failed (malformed token, unknown key, bad role)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    """One API key as the key file keeps it: never the secret, only its salted hash."""

    key_id: str
    name: str
    role: Role
    salt: str
    digest: str
    created_ns: int
    revoked_ns: int = 0

    @property
    def active(self) -> bool:
        """True until the key is revoked."""
        return self.revoked_ns == 0


@dataclass(frozen=True, slots=True)
class Token:
    """The parts of a token a holder presents: key id, salt and secret."""

    key_id: str
    salt: str
    secret: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}.{self.key_id}.{self.salt}.{self.secret}"

    def __repr__(self) -> str:
        return f"Token(key_id={self.key_id!r}, secret='***')"


def parse_token(text: str) -> Token:
    """Split a presented token into its parts; raises `AccessError` when malformed.

    >>> parse_token("hfl.k1.c2FsdA.c2VjcmV0").key_id
    'k1'
    """
    parts = text.strip().split(".")
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX or not all(parts[1:]):
        raise AccessError("an API key looks like hfl.<key id>.<salt>.<secret>")
    return Token(parts[1], parts[2], parts[3])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise AccessError("an API key part is not base64") from exc


def derive_digest(secret: str, salt: str) -> str:
    """scrypt of the token's secret with its salt, hex: what the key file keeps and
    what signs commands."""
    raw = hashlib.scrypt(
        _unb64(secret),
        salt=_unb64(salt),
        n=_SCRYPT_N,
        r=_SCRYPT_R,
        p=_SCRYPT_P,
        maxmem=64 * 1024 * 1024,
        dklen=_DIGEST_BYTES,
    )
    return raw.hex()


def new_key(name: str, role: Role, *, created_ns: int) -> tuple[ApiKey, Token]:
    """Make a key: the record to keep and the token to show once."""
    token = Token(
        key_id=secrets.token_hex(6),
        salt=_b64(secrets.token_bytes(16)),
        secret=_b64(secrets.token_bytes(32)),
    )
    key = ApiKey(
        key_id=token.key_id,
        name=name,
        role=role,
        salt=token.salt,
        digest=derive_digest(token.secret, token.salt),
        created_ns=created_ns,
    )
    return key, token


@dataclass(frozen=True, slots=True)
class KeyRing:
    """The keys of one key file, by id."""

    keys: Mapping[str, ApiKey] = field(default_factory=dict)

    @classmethod
    def of(cls, keys: Iterable[ApiKey]) -> KeyRing:
        """A ring holding `keys`."""
        return cls({key.key_id: key for key in keys})

    def authenticate(self, token_text: str) -> ApiKey:
        """Return the active key a presented token belongs to.

        Raises:
            AccessError: malformed, unknown, revoked or wrong token (one message for
                the last three, so a caller learns nothing about which keys exist).
        """
        token = parse_token(token_text)
        key = self.keys.get(token.key_id)
        if key is None or not key.active or token.salt != key.salt:
            raise AccessError("unknown, revoked or wrong API key")
        candidate = derive_digest(token.secret, token.salt)
        if not hmac.compare_digest(candidate, key.digest):
            raise AccessError("unknown, revoked or wrong API key")
        return key


class Refusal(StrEnum):
    """Why a command on a control topic had no effect (also its DLQ reason)."""

    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    REVOKED_KEY = "revoked_key"
    FORBIDDEN = "forbidden"
    STALE = "stale"
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed:
    """A verified envelope: the command's own bytes and the key that signed them."""

    payload: bytes
    key: ApiKey
    nonce: str
    ts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Refused:
    """An envelope that failed verification; `key_name` is '' when no key was found."""

    refusal: Refusal
    detail: str
    key_id: str = ""
    key_name: str = ""


def signing_bytes(topic: str, key_id: str, ts_ns: int, nonce: str, payload: bytes) -> bytes:
    """The exact bytes a command's signature covers (the topic stops cross-topic replay).

    >>> signing_bytes("hfl.control", "k1", 5, "n", b"{}")
    b'hfl-signed-v1\\nhfl.control\\nk1\\n5\\nn\\n{}'
    """
    head = f"hfl-signed-v{SIGNATURE_VERSION}\n{topic}\n{key_id}\n{ts_ns}\n{nonce}\n"
    return head.encode() + payload


def sign(
    topic: str, payload: bytes, *, key_id: str, digest: str, ts_ns: int, nonce: str | None = None
) -> bytes:
    """Wrap a command's JSON `payload` in a signed envelope for `topic`."""
    nonce = nonce or secrets.token_hex(16)
    mac = hmac.new(
        bytes.fromhex(digest), signing_bytes(topic, key_id, ts_ns, nonce, payload), "sha256"
    )
    envelope = {
        "v": SIGNATURE_VERSION,
        "key_id": key_id,
        "ts_ns": ts_ns,
        "nonce": nonce,
        "payload": payload.decode(),
        "sig": mac.hexdigest(),
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def sign_with_token(topic: str, payload: bytes, token: Token, *, ts_ns: int) -> bytes:
    """Sign as the holder of `token` does: the digest comes from the secret."""
    digest = derive_digest(token.secret, token.salt)
    return sign(topic, payload, key_id=token.key_id, digest=digest, ts_ns=ts_ns)


def _envelope(raw: bytes) -> dict[str, object] | str:
    """The envelope's fields, or why it is not one (never raises on any bytes)."""
    if len(raw) > _MAX_ENVELOPE_BYTES:
        return f"longer than {_MAX_ENVELOPE_BYTES} bytes"
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError, UnicodeDecodeError):
        return "not JSON"
    if not isinstance(parsed, dict) or "sig" not in parsed:
        return "no signature envelope"
    return parsed


@dataclass(slots=True)
class NonceWindow:
    """Nonces of verified commands, kept while their timestamps are within reach.

    A nonce older than the freshness window can never verify again (it is stale), so
    dropping it keeps the set bounded by the command rate times the window. State of
    a stateful step: plain data, pickles.
    """

    window_ns: int
    seen: dict[str, int] = field(default_factory=dict)

    def admit(self, nonce: str, ts_ns: int, now_ns: int) -> bool:
        """Record `nonce`; False when it was seen already (a replay)."""
        if nonce in self.seen:
            return False
        horizon = now_ns - 2 * self.window_ns
        if len(self.seen) >= _MAX_NONCES or (self.seen and min(self.seen.values()) < horizon):
            self.seen = {n: t for n, t in self.seen.items() if t >= horizon}
        self.seen[nonce] = ts_ns
        return True


def verify(
    raw: bytes,
    *,
    topic: str,
    ring: KeyRing,
    now_ns: int,
    window: NonceWindow,
) -> Signed | Refused:
    """Verify a signed envelope read from `topic` at log time `now_ns`.

    Checks in order: the envelope's shape, the key (known, not revoked), the HMAC,
    the timestamp (within `window.window_ns` of `now_ns` either way), the nonce (not
    seen before). Only a signed command records its nonce. Never raises on any bytes.
    """
    fields = _envelope(raw)
    if isinstance(fields, str):
        return Refused(refusal=Refusal.UNSIGNED, detail=fields)
    key_id, ts_ns, nonce, payload, sig = (
        fields.get("key_id"),
        fields.get("ts_ns"),
        fields.get("nonce"),
        fields.get("payload"),
        fields.get("sig"),
    )
    if (
        fields.get("v") != SIGNATURE_VERSION
        or not isinstance(key_id, str)
        or type(ts_ns) is not int
        or not isinstance(nonce, str)
        or not 8 <= len(nonce) <= 128
        or not isinstance(payload, str)
        or not isinstance(sig, str)
    ):
        return Refused(refusal=Refusal.UNSIGNED, detail="malformed signature envelope")
    key = ring.keys.get(key_id)
    if key is None:
        return Refused(refusal=Refusal.UNKNOWN_KEY, detail="no such key", key_id=key_id[:64])
    named = {"key_id": key.key_id, "key_name": key.name}
    if not key.active:
        return Refused(refusal=Refusal.REVOKED_KEY, detail="key revoked", **named)
    try:
        payload_bytes = payload.encode()
    except UnicodeEncodeError:
        return Refused(refusal=Refusal.BAD_SIGNATURE, detail="payload not UTF-8", **named)
    expected = hmac.new(
        bytes.fromhex(key.digest),
        signing_bytes(topic, key_id, ts_ns, nonce, payload_bytes),
        "sha256",
    ).hexdigest()
    if not hmac.compare_digest(expected, sig):
        return Refused(refusal=Refusal.BAD_SIGNATURE, detail="signature does not match", **named)
    if abs(now_ns - ts_ns) > window.window_ns:
        age_s = (now_ns - ts_ns) / 1e9
        return Refused(refusal=Refusal.STALE, detail=f"signed {age_s:.1f} s from log time", **named)
    if not window.admit(nonce, ts_ns, now_ns):
        return Refused(refusal=Refusal.REPLAYED, detail=f"nonce {nonce} seen before", **named)
    return Signed(payload=payload_bytes, key=key, nonce=nonce, ts_ns=ts_ns)


def revoke(key: ApiKey, *, revoked_ns: int) -> ApiKey:
    """The same key, revoked at `revoked_ns`."""
    return replace(key, revoked_ns=revoked_ns)
