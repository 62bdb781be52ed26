"""Sign what an operator publishes on the control topics with the caller's API key.

The caller's key is `security.api_key` (`HFL_API_KEY`, or `HFL_API_KEY_FILE` for a
Docker secret); the dashboard passes the key of the request instead. The name that
goes into the command's `actor` and the audit row is the key's name from the key file
(the key id when the file is not readable here, e.g. on another host): the trading
flow replaces it with the name it verifies anyway.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from connectors import topic
from connectors.kafka.record import OutboundRecord
from connectors.keyfile import load_keys
from dataflows.settings import Settings
from risk.access import AccessError, Token, derive_digest, parse_token, sign
from risk.domain.error import ConfigError

SIGNED_TOPICS = (topic.CONTROL, topic.MODEL_CONTROL)


def caller_token(settings: Settings, token: str | None = None) -> Token:
    """The token to sign with: `token` when given, else the configured API key.

    Raises:
        ConfigError: there is no key, or it is not a token.
    """
    text = token if token is not None else settings.security.api_key.reveal()
    if not text:
        msg = (
            "commands on the control topics are signed: set HFL_API_KEY (or HFL_API_KEY_FILE)"
            " to a key with the right role (`hfl keys create --role trader --name NAME`)"
        )
        raise ConfigError(msg)
    try:
        return parse_token(text)
    except AccessError as exc:
        raise ConfigError(f"HFL_API_KEY: {exc}") from exc


def caller_name(settings: Settings, token: Token) -> str:
    """The key's name from the key file, or its id when the file does not have it."""
    try:
        keys = load_keys(settings.security.keys_file)
    except AccessError:
        return token.key_id
    return next((key.name for key in keys if key.key_id == token.key_id), token.key_id)


class Signer:
    """Sign records for the control topics as the holder of one token."""

    def __init__(self, settings: Settings, token: Token) -> None:
        """Derive the signing digest once (scrypt costs tens of milliseconds)."""
        prefix = settings.kafka.topic_prefix
        self._topics = frozenset(prefix + name for name in SIGNED_TOPICS)
        self._token = token
        self._digest = derive_digest(token.secret, token.salt)

    def sign(self, records: Iterable[OutboundRecord]) -> list[OutboundRecord]:
        """`records` with those for signed topics wrapped in signed envelopes."""
        return [
            OutboundRecord(
                record.topic,
                record.key,
                sign(
                    record.topic,
                    record.value,
                    key_id=self._token.key_id,
                    digest=self._digest,
                    ts_ns=time.time_ns(),
                ),
            )
            if record.topic in self._topics
            else record
            for record in records
        ]
