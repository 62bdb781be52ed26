"""Admit only one read-only `SELECT` over the project's tables, checked by ClickHouse itself.

Every SQL text that reaches the store from outside the writer (`hfl sql`, the dashboard's
console and panels, the model loader) passes `SelectGuard.check` and then runs on a
session opened with `readonly_settings`:

- ClickHouse's own parser normalises the text (`formatQuerySingleLine`, which also
  refuses several statements) and `EXPLAIN AST` gives its syntax tree; the guard walks
  that tree, never the text, so comments, quoting and case cannot hide anything;
- the tree must be one `SELECT` (unions, intersections, CTEs and subqueries allowed)
  without `INTO OUTFILE`, `FORMAT` or `SETTINGS`; every table it names is one of the
  project's (the current database); a table function is only a pure generator
  (`numbers`, `zeros`, `values`, ...) or one of the project's parameterized views;
  no function that reads files, other servers,
  dictionaries or the host (`file`, `url`, `remote`, `s3`, `dictGet`, `joinGet`, ...);
- the session (`readonly=1`, so no `SET` and no `SETTINGS` either) carries the limits:
  time, memory, result rows and bytes, one thread.

chDB runs as ClickHouse's `default` user with every grant, and `readonly=1` alone still
allows `SYSTEM`, `KILL`, `INTO OUTFILE` and the `file()` function; the tree check closes
those. Against a ClickHouse server the same limits live in the `hfl_console` profile of
`docker/clickhouse/users.d/hfl.xml`, so the server enforces them too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from risk.domain.error import HflError

MAX_CONSOLE_SQL_BYTES = 64 * 1024
_CACHE_SIZE = 512

# Pure row generators: they read no file, table, server or host state.
TABLE_FUNCTIONS_ALLOWED = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generateseries", "generate_series", "values"}
)
# Ordinary functions that reach outside the query's own tables: files, the host's
# disks and certificates, dictionaries and Join tables (any database), server and
# cluster settings, introspection, and chDB's Python objects.
FUNCTIONS_REFUSED = frozenset(
    name.lower()
    for name in (
        "file",
        "filesystemAvailable",
        "filesystemCapacity",
        "filesystemUnreserved",
        "joinGet",
        "joinGetOrNull",
        "getServerSetting",
        "getMergeTreeSetting",
        "getMacro",
        "showCertificate",
        "getClientHTTPHeader",
        "currentRequestURL",
        "globalVariable",
        "logTrace",
        "fuzzQuery",
        "getOSKernelVersion",
        "hostName",
        "hostname",
        "fullHostName",
        "tcpPort",
        "getServerPort",
        "serverUUID",
        "zookeeperSessionUptime",
        "addressToLine",
        "addressToLineWithInlines",
        "addressToSymbol",
        "demangle",
        "python",
    )
)
_DICTIONARY_PREFIX = "dict"  # dictGet*, dictHas, dictIsIn: dictionaries read any source


def readonly_settings(
    *,
    max_execution_time_s: float,
    max_memory_bytes: int,
    max_result_rows: int = 0,
    max_result_bytes: int = 0,
    max_threads: int = 1,
) -> dict[str, Any]:
    """Session settings of a read-only reader, `readonly=1` last (it freezes the others).

    >>> list(readonly_settings(max_execution_time_s=5, max_memory_bytes=1)).pop()
    'readonly'
    """
    settings: dict[str, Any] = {
        "max_execution_time": max_execution_time_s,
        "timeout_overflow_mode": "throw",
        "max_memory_usage": max_memory_bytes,
        "max_threads": max_threads,
        "allow_ddl": 0,
        "allow_introspection_functions": 0,
    }
    if max_result_rows:
        settings |= {"max_result_rows": max_result_rows, "result_overflow_mode": "throw"}
    if max_result_bytes:
        settings |= {"max_result_bytes": max_result_bytes, "result_overflow_mode": "throw"}
    settings["readonly"] = 1
    return settings


# The SQL console (`/api/sql`, `hfl sql`): a person's ad-hoc query.
CONSOLE_SETTINGS = readonly_settings(
    max_execution_time_s=10,
    max_memory_bytes=512 * 1024 * 1024,
    max_result_rows=100_000,
    max_result_bytes=64 * 1024 * 1024,
)
# The project's own readers (dashboard panels, trail, model loader): larger results
# (model checkpoints are blobs), same refusals.
READER_SETTINGS = readonly_settings(
    max_execution_time_s=60, max_memory_bytes=1024 * 1024 * 1024, max_threads=2
)


class QueryError(HflError):
    """ClickHouse refused or failed a query; the message is its explanation."""


class QueryRefusedError(QueryError):
    """The guard refused a statement before it ran; the message says which rule."""


Run = Callable[[str, dict[str, Any] | None], Sequence[Sequence[Any]]]


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str
    text: str
    depth: int
    declared: int
    children: list[_Node]


def parse_ast_dump(lines: Sequence[str]) -> _Node:
    """Build the tree of an `EXPLAIN AST` dump, checking it is exactly one tree.

    Each line is a node: its depth is its count of leading spaces, `(children N)` its
    declared child count. A name with a line break inside would break the dump into
    extra lines; the depth and child-count checks refuse any such dump.

    >>> root = parse_ast_dump(["SelectWithUnionQuery (children 1)", " ExpressionList"])
    >>> root.kind, root.children[0].kind
    ('SelectWithUnionQuery', 'ExpressionList')
    >>> parse_ast_dump(["Literal 'a", "b'"])  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    ...
    sinks.guard.QueryRefusedError: the statement's syntax tree is not one tree (line 2)
    """
    stack: list[_Node] = []
    root: _Node | None = None
    for number, line in enumerate(lines, start=1):
        depth = len(line) - len(line.lstrip(" "))
        kind, _, text = line.strip(" ").partition(" ")
        declared = 0
        marker = text.rfind("(children ")
        if marker >= 0 and text.endswith(")"):
            count = text[marker + len("(children ") : -1]
            if count.isdigit():
                declared = int(count)
                text = text[:marker].rstrip()
        if not kind.isidentifier() or not kind[:1].isupper():
            raise QueryRefusedError(f"the statement's syntax tree is not one tree (line {number})")
        node = _Node(kind, text, depth, declared, [])
        while stack and stack[-1].depth >= depth:
            stack.pop()
        if not stack:
            if root is not None or depth != 0:
                raise QueryRefusedError(
                    f"the statement's syntax tree is not one tree (line {number})"
                )
            root = node
        else:
            if depth != stack[-1].depth + 1:
                raise QueryRefusedError(
                    f"the statement's syntax tree is not one tree (line {number})"
                )
            stack[-1].children.append(node)
        stack.append(node)
    if root is None:
        raise QueryRefusedError("empty statement")
    _check_counts(root)
    return root


def _check_counts(node: _Node) -> None:
    if len(node.children) != node.declared:
        raise QueryRefusedError("the statement's syntax tree is not one tree (child count)")
    for child in node.children:
        _check_counts(child)


def _walk(node: _Node, parent: _Node | None = None) -> list[tuple[_Node, _Node | None]]:
    out = [(node, parent)]
    for child in node.children:
        out.extend(_walk(child, node))
    return out


def _name(text: str) -> str:
    """The name in a node's text, without its `(alias …)` suffix."""
    head, _, _ = text.partition(" (alias ")
    return head


class SelectGuard:
    """Check SQL texts against the rules above using ClickHouse's parser.

    `run(sql, parameters)` executes on a read-only session and returns rows. The
    project's tables are those of the session's current database.
    """

    def __init__(self, run: Run) -> None:
        """Learn what the parser appends for the driver and which names exist."""
        self._run = run
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, str] = OrderedDict()
        baseline = self._ast("SELECT 1")
        # The driver appends its own FORMAT clause, which the parser shows as trailing
        # children of the root; a user statement must add none (no OUTFILE, no FORMAT).
        self._trailer = [(c.kind, c.text) for c in baseline.children[1:]]
        self._database = str(run("SELECT currentDatabase()", None)[0][0])
        self._table_functions = {
            str(row[0]).lower() for row in run("SELECT name FROM system.table_functions", None)
        }
        functions = {str(row[0]).lower() for row in run("SELECT name FROM system.functions", None)}
        self._refused_elsewhere = FUNCTIONS_REFUSED | (
            self._table_functions - functions - TABLE_FUNCTIONS_ALLOWED
        )
        self._databases = {
            str(row[0]).lower() for row in run("SELECT name FROM system.databases", None)
        }
        self._views = self._load_views()

    def _load_views(self) -> frozenset[str]:
        """The project's tables and views: a parameterized view is called like a table
        function (`FROM post_trade_quality(account = 'x')`)."""
        rows = self._run("SELECT name FROM system.tables WHERE database = currentDatabase()", None)
        return frozenset(str(row[0]) for row in rows)

    def _ast(self, sql: str) -> _Node:
        try:
            rows = self._run(f"EXPLAIN AST {sql}", None)
        except QueryError as exc:
            raise QueryRefusedError(f"not a statement the console runs: {exc}") from exc
        return parse_ast_dump([str(row[0]) for row in rows])

    def check(self, sql: str) -> str:
        """Return ClickHouse's normalised text of `sql` when it may run; raise otherwise.

        Raises:
            QueryRefusedError: the statement breaks a rule (the message says which), or the
                parser rejects it.
        """
        if len(sql.encode()) > MAX_CONSOLE_SQL_BYTES:
            raise QueryRefusedError(f"statement longer than {MAX_CONSOLE_SQL_BYTES} bytes")
        with self._lock:
            cached = self._cache.get(sql)
            if cached is not None:
                self._cache.move_to_end(sql)
                return cached
        try:
            rows = self._run("SELECT formatQuerySingleLine({sql:String})", {"sql": sql})
        except QueryError as exc:
            raise QueryRefusedError(f"ClickHouse cannot parse it as one statement: {exc}") from exc
        canonical = str(rows[0][0])
        self._check_tree(self._ast(canonical))
        with self._lock:
            self._cache[sql] = canonical
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return canonical

    def _check_tree(self, root: _Node) -> None:
        if root.kind != "SelectWithUnionQuery":
            raise QueryRefusedError(f"only SELECT is allowed, not {root.kind}")
        trailer = [(c.kind, c.text) for c in root.children[1:]]
        if trailer != self._trailer:
            raise QueryRefusedError("INTO OUTFILE and FORMAT are not allowed")
        for node, parent in _walk(root):
            match node.kind:
                case "Set" | "SetQuery":
                    raise QueryRefusedError("SETTINGS are not allowed (the session is read-only)")
                case "Explain" | "InsertQuery" | "SystemQuery" | "KillQueryQuery":
                    raise QueryRefusedError(f"{node.kind} is not allowed")
                case "TableIdentifier":
                    self._check_table(_name(node.text))
                case "Identifier":
                    self._check_qualified(_name(node.text))
                case "Function":
                    self._check_function(
                        _name(node.text),
                        table=parent is not None and parent.kind == "TableExpression",
                    )
                case _:
                    pass

    def _check_function(self, name: str, *, table: bool) -> None:
        lowered = name.lower()
        if table:
            if lowered not in TABLE_FUNCTIONS_ALLOWED and name not in self._views:
                self._views = self._load_views()  # a migration may have added it
            if lowered not in TABLE_FUNCTIONS_ALLOWED and name not in self._views:
                raise QueryRefusedError(
                    f"table function {name}() is not allowed"
                    f" (allowed: {', '.join(sorted(TABLE_FUNCTIONS_ALLOWED))})"
                )
            return
        if lowered in self._refused_elsewhere or lowered.startswith(_DICTIONARY_PREFIX):
            raise QueryRefusedError(f"function {name}() reaches outside the project's tables")

    def _check_table(self, name: str) -> None:
        # An unqualified name is a CTE or a table of the current database, which holds
        # only the project's tables; anything else must be qualified.
        database, dot, _ = name.rpartition(".")
        if dot and database != self._database:
            raise QueryRefusedError(f"table {name} is outside the project's database")

    def _check_qualified(self, name: str) -> None:
        # `x IN system.processes` names a table through a plain identifier.
        head, dot, _ = name.partition(".")
        if dot and head.lower() in self._databases and head != self._database:
            raise QueryRefusedError(f"{name} is outside the project's database")
