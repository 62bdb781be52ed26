"""Apply the versioned SQL files in `sinks/migrations/` once each, in order.

A migration file is named ``NNNN_name.sql`` and holds statements ended by ``;``
at the end of a line. Applied versions are recorded in ``schema_migrations``;
statements use ``IF NOT EXISTS`` so a run interrupted halfway can simply be repeated.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from importlib import resources

from clickhouse_connect.driver.client import Client

from risk.domain.error import ConfigError

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_STATEMENT_END = re.compile(r";[ \t]*(?:\n|$)")

_LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version String,
    applied_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One migration file: its version (the file stem) and its statements."""

    version: str
    statements: tuple[str, ...]


def split_statements(sql: str) -> tuple[str, ...]:
    """Split a migration script into statements, dropping ``--`` comment lines.

    >>> split_statements("-- note\\nCREATE TABLE a (x UInt8) ENGINE = Memory;\\nSELECT 1\\n;\\n")
    ('CREATE TABLE a (x UInt8) ENGINE = Memory', 'SELECT 1')
    """
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    chunks = _STATEMENT_END.split("\n".join(lines))
    return tuple(chunk.strip() for chunk in chunks if chunk.strip())


def available() -> list[Migration]:
    """Return the packaged migrations sorted by version."""
    folder = resources.files("sinks") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        if not _FILE_NAME.match(entry.name):
            raise ConfigError(f"migration file {entry.name!r} must be named NNNN_name.sql")
        statements = split_statements(entry.read_text(encoding="utf-8"))
        found.append(Migration(version=entry.name.removesuffix(".sql"), statements=statements))
    return sorted(found, key=lambda migration: migration.version)


def applied(client: Client) -> set[str]:
    """Return the versions already recorded in ``schema_migrations``."""
    client.command(_LEDGER_DDL)
    result = client.query("SELECT version FROM schema_migrations FINAL")
    return {row[0] for row in result.result_rows}


def migrate(client: Client) -> list[str]:
    """Apply every packaged migration not applied yet; return the versions applied now."""
    done = applied(client)
    newly: list[str] = []
    for migration in available():
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version], [time.time_ns() // 1_000_000]],
            column_names=["version", "applied_at"],
            column_oriented=True,
        )
        logger.info("applied migration %s", migration.version)
        newly.append(migration.version)
    return newly
