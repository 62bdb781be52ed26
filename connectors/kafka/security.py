"""Kafka transport security: SASL/SCRAM credentials and TLS files for every client.

Docker mode runs Apache Kafka with SASL/SCRAM-SHA-512 (over TLS when a CA is given);
the local Tansu broker runs without. Each component has its own principal (see
`connectors.kafka.acl`), so what a stolen credential can touch is bounded by its ACLs.

Every producer, consumer and admin client of this package builds its settings through
`client_config`, which merges the security the process declared once at start
(`use`, called from the settings loader's user); nothing here reads the environment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSecurity:
    """How a client authenticates to the broker and protects the connection.

    `password` is the revealed secret (the settings' `Secret` wraps it until here);
    `repr` never shows it.
    """

    protocol: str = "PLAINTEXT"
    mechanism: str = "SCRAM-SHA-512"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    check_hostname: bool = True

    def __repr__(self) -> str:
        return (
            f"KafkaSecurity(protocol={self.protocol!r}, mechanism={self.mechanism!r}, "
            f"username={self.username!r}, password='***', ca_file={self.ca_file!r})"
        )

    def problems(self) -> list[str]:
        """Everything wrong with this configuration (empty when usable)."""
        found = []
        if self.protocol not in PROTOCOLS:
            found.append(f"kafka.security.protocol {self.protocol!r}: one of {PROTOCOLS}")
        if self.protocol.startswith("SASL"):
            if self.mechanism not in MECHANISMS:
                found.append(f"kafka.security.mechanism {self.mechanism!r}: one of {MECHANISMS}")
            if not self.username or not self.password:
                found.append("kafka.security: SASL needs a username and a password")
        if self.protocol in ("SSL", "SASL_SSL") and not self.ca_file:
            found.append("kafka.security: TLS needs ca_file (the broker's CA certificate)")
        if bool(self.cert_file) != bool(self.key_file):
            found.append("kafka.security: cert_file and key_file go together (mTLS)")
        return found


def client_config(security: KafkaSecurity) -> dict[str, object]:
    """The librdkafka settings for `security` (empty for plaintext).

    >>> client_config(KafkaSecurity())
    {}
    >>> sorted(client_config(KafkaSecurity(protocol="SASL_PLAINTEXT", username="u", password="p")))
    ['sasl.mechanism', 'sasl.password', 'sasl.username', 'security.protocol']
    """
    if security.protocol == "PLAINTEXT":
        return {}
    config: dict[str, object] = {"security.protocol": security.protocol}
    if security.protocol.startswith("SASL"):
        config |= {
            "sasl.mechanism": security.mechanism,
            "sasl.username": security.username,
            "sasl.password": security.password,
        }
    if security.protocol in ("SSL", "SASL_SSL"):
        config |= {
            "ssl.ca.location": security.ca_file,
            "ssl.endpoint.identification.algorithm": "https" if security.check_hostname else "none",
        }
        if security.cert_file:
            config |= {
                "ssl.certificate.location": security.cert_file,
                "ssl.key.location": security.key_file,
            }
    return config


class _Declared:
    security = KafkaSecurity()
    lock = threading.Lock()


def use(security: KafkaSecurity) -> None:
    """Declare the security every Kafka client of this process uses from now on.

    Raises:
        ValueError: `security` is not usable (the message lists every problem).
    """
    problems = security.problems()
    if problems:
        raise ValueError("; ".join(problems))
    with _Declared.lock:
        _Declared.security = security


def current() -> KafkaSecurity:
    """The security declared by `use` (plaintext until then)."""
    return _Declared.security


def with_security(config: dict[str, object]) -> dict[str, object]:
    """`config` plus the declared security settings."""
    return config | client_config(_Declared.security)


def admin_config(bootstrap: str) -> dict[str, object]:
    """Settings of an admin client for `bootstrap` with the declared security."""
    return with_security({"bootstrap.servers": bootstrap})
