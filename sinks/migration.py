"""Apply the versioned SQL files in `sinks/migrations/` once each, in order.

A migration file is named ``NNNN_name.sql`` and holds statements ended by ``;``
at the end of a line. Applied versions are recorded in ``schema_migrations``;
statements use ``IF NOT EXISTS`` so a run interrupted halfway can simply be repeated.

One source, two topologies: the files are written for one server
(``ReplacingMergeTree``); `for_cluster` rewrites each statement for a ClickHouse
cluster with Keeper (``ON CLUSTER``, ``ReplicatedReplacingMergeTree`` whose replicas
take their shard and replica names from the server's macros, plus a ``Distributed``
table ``<name>_all`` over every shard; views are created on every server).
`migrate(client, cluster=...)` applies that
variant. A statement the rewrite does not understand fails the migration rather than
create a table that is silently not replicated.
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


_CREATE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)(?=\s)")
_VIEW = re.compile(r"^CREATE VIEW IF NOT EXISTS (\w+)(?=\s)")
_ALTER = re.compile(r"^ALTER TABLE (\w+) (ADD|DROP|MODIFY|RENAME) COLUMN ")
_ENGINE = re.compile(r"ENGINE = ReplacingMergeTree(?:\((?P<args>[^)]*)\))?(?=\s|$)")
_ANY_ENGINE = re.compile(r"ENGINE\s*=")
_NON_REPLICATED = "non_replicated_deduplication_window"
_REPLICATED = "replicated_deduplication_window"
# Keeper path per shard and table; `{shard}` and `{replica}` are the server's macros.
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
DISTRIBUTED_SUFFIX = "_all"


def for_cluster(statement: str, cluster: str) -> tuple[str, ...]:
    """Rewrite one single-server statement for cluster `cluster`.

    >>> create = ("CREATE TABLE IF NOT EXISTS t (x UInt8) ENGINE = ReplacingMergeTree "
    ...           "ORDER BY x SETTINGS non_replicated_deduplication_window = 1000")
    >>> for line in for_cluster(create, "hfl"):
    ...     print(*re.split(" (?=ENGINE|ORDER|SETTINGS|AS )", line.replace(REPLICA_PATH, "P")))
    CREATE TABLE IF NOT EXISTS t ON CLUSTER hfl (x UInt8) ENGINE = ReplicatedReplacingMergeTree(P) \
ORDER BY x SETTINGS replicated_deduplication_window = 1000
    CREATE TABLE IF NOT EXISTS t_all ON CLUSTER hfl AS t \
ENGINE = Distributed(hfl, currentDatabase(), t, rand())
    >>> for line in for_cluster("ALTER TABLE t ADD COLUMN IF NOT EXISTS y UInt8", "hfl"):
    ...     print(line)
    ALTER TABLE t ON CLUSTER hfl ADD COLUMN IF NOT EXISTS y UInt8
    ALTER TABLE t_all ON CLUSTER hfl ADD COLUMN IF NOT EXISTS y UInt8

    Raises:
        ConfigError: the statement is not one the rewrite knows (a new engine or kind).
    """
    if not re.fullmatch(r"\w+", cluster):
        raise ConfigError(f"clickhouse cluster name {cluster!r} must be a plain identifier")
    if created := _CREATE.match(statement):
        table = created.group(1)
        engines = _ANY_ENGINE.findall(statement)
        engine = _ENGINE.search(statement)
        if engine is None or len(engines) != 1:
            msg = f"cluster migration: {table} must use ENGINE = ReplacingMergeTree[(version)]"
            raise ConfigError(msg)
        args = REPLICA_PATH + (f", {engine.group('args')}" if engine.group("args") else "")
        replicated = (
            statement[: created.end()]
            + f" ON CLUSTER {cluster}"
            + statement[created.end() : engine.start()]
            + f"ENGINE = ReplicatedReplacingMergeTree({args})"
            + statement[engine.end() :]
        ).replace(_NON_REPLICATED, _REPLICATED)
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {table}{DISTRIBUTED_SUFFIX} ON CLUSTER {cluster} "
            f"AS {table} ENGINE = Distributed({cluster}, currentDatabase(), {table}, rand())"
        )
        return replicated, distributed
    if viewed := _VIEW.match(statement):
        # A plain view reads the replica's own tables on every server it is created on.
        return (statement[: viewed.end()] + f" ON CLUSTER {cluster}" + statement[viewed.end() :],)
    if altered := _ALTER.match(statement):
        table, rest = altered.group(1), statement[len(f"ALTER TABLE {altered.group(1)}") :]
        return (
            f"ALTER TABLE {table} ON CLUSTER {cluster}{rest}",
            f"ALTER TABLE {table}{DISTRIBUTED_SUFFIX} ON CLUSTER {cluster}{rest}",
        )
    raise ConfigError(f"cluster migration: cannot rewrite statement {statement[:80]!r}")


def statements_for(migration: Migration, cluster: str = "") -> tuple[str, ...]:
    """The statements of `migration` for one server (`cluster` empty) or for a cluster."""
    if not cluster:
        return migration.statements
    return tuple(
        out for statement in migration.statements for out in for_cluster(statement, cluster)
    )


def _ledger_ddl(cluster: str) -> str:
    if not cluster:
        return _LEDGER_DDL
    return for_cluster(_LEDGER_DDL.strip(), cluster)[0]


def applied(client: Client, *, cluster: str = "") -> set[str]:
    """Return the versions already recorded in ``schema_migrations``.

    The ledger is created only when it is missing, so a client without DDL rights (the
    persist flow's server user) can check that everything is applied.
    """
    if not int(client.command("EXISTS TABLE schema_migrations")):
        client.command(_ledger_ddl(cluster))
    result = client.query("SELECT version FROM schema_migrations FINAL")
    return {row[0] for row in result.result_rows}


def migrate(client: Client, *, cluster: str = "") -> list[str]:
    """Apply every packaged migration not applied yet; return the versions applied now.

    `cluster`: the ClickHouse cluster name (replicated and distributed tables, see
    `for_cluster`); empty for one server or the embedded engine.
    """
    done = applied(client, cluster=cluster)
    newly: list[str] = []
    for migration in available():
        if migration.version in done:
            continue
        for statement in statements_for(migration, cluster):
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
